"""Migration 0003 creates exactly the lifecycle tables schema.py declares."""

from __future__ import annotations

from sqlalchemy import inspect

from corral.store import Store
from corral.store.schema import metadata

TABLES = ("ecr_lifecycle_policies", "ecr_lifecycle_previews", "ecr_lifecycle_events")


def test_lifecycle_tables_match_the_schema(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    try:
        found = inspect(store.engine)
        for name in TABLES:
            migrated = {c["name"]: c["nullable"] for c in found.get_columns(name)}
            declared = {c.name: c.nullable for c in metadata.tables[name].columns}
            assert migrated == declared, name
            assert ([c["name"] for c in found.get_columns(name)]
                    == [c.name for c in metadata.tables[name].columns])
        indexes = {i["name"] for i in found.get_indexes("ecr_lifecycle_events")}
        assert "ix_ecr_lifecycle_events_scope" in indexes
    finally:
        store.close()
