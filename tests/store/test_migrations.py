"""The migrations create exactly what corral/store/schema.py declares, and rerun as no-ops."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from corral.store import Store
from corral.store.schema import metadata


def test_migrated_database_matches_the_declared_schema(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.migrate()
        with store.engine.connect() as conn:
            # Tables, columns, nullability, indexes and constraints (types differ by dialect
            # on purpose: UTCDateTime is REAL on SQLite).
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(context, metadata)
        assert diff == []
        assert set(inspect(store.engine).get_table_names()) >= set(metadata.tables)
        store.migrate()  # idempotent
    finally:
        store.close()
