"""The state store: engine setup, migrations and one-transaction-per-change helpers.

SQLite (the default) runs in WAL mode with ``synchronous=FULL``: a committed change survives a
crash or ``kill -9``, and readers never block the single writer. Write transactions start with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of deadlocking on an upgrade.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def emit(db: Connection, topic: str, **payload) -> None:
    """Publish an event once the transaction ``db`` belongs to commits (never if it rolls
    back), so subscribers that read the store see the change the event announces."""
    db.info.setdefault("events", []).append((topic, payload))


class Store:
    def __init__(self, url: str):
        self.url = url
        self.events = None  # an EventBus (corral.events) set by the app: see emit()
        self.is_sqlite = url.startswith("sqlite")
        self.engine: Engine = self._make_engine(url)

    def _make_engine(self, url: str) -> Engine:
        if not self.is_sqlite:
            return create_engine(url, pool_pre_ping=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            # Take transaction control away from pysqlite so BEGIN is ours to issue.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection):
            conn.exec_driver_sql(
                "BEGIN IMMEDIATE" if conn.info.get("write", True) else "BEGIN"
            )

        return engine

    def migrate(self) -> None:
        """Bring the schema to the newest version (idempotent)."""
        if self.is_sqlite:
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect() as conn:
            conn.info["write"] = True
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises.
        Events recorded with :func:`emit` are published only after the commit."""
        with self.engine.connect() as conn:
            conn.info["write"] = write
            conn.info["events"] = []  # the DBAPI connection (and its info) is pooled
            with conn.begin():
                yield conn
            pending = conn.info.pop("events", [])
        if self.events is not None:
            for topic, payload in pending:
                self.events.publish(topic, **payload)

    def close(self) -> None:
        self.engine.dispose()
