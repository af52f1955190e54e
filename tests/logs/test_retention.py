"""Retention really deletes: the controller over a real SQLite store, with an injected clock."""

from __future__ import annotations

from sqlalchemy import func, select

from corral.logs import store as logs
from corral.logs.batch_rules import DAY_MS
from corral.logs.retention import RetentionController
from corral.store import Store
from corral.store.schema import logs_events, logs_purges

T0 = 1_700_000_000_000  # ms; the ingest time of the first day's events


def _store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    return store


def _put(store: Store, group: str, stream: str, day: int, count: int, size: int = 10) -> None:
    """``count`` events of ``size`` bytes, stamped and ingested ``day`` days after T0."""
    now = T0 + day * DAY_MS
    with store.transaction() as db:
        g = logs.ensure_group(db, "000000000000", "us-east-1", group, T0)
        s = logs.ensure_stream(db, g, stream, T0)
        logs.ingest(db, g, s, [{"timestamp": now + i, "message": "x" * size}
                               for i in range(count)], now)


def _state(store: Store, group: str) -> tuple[int, int, list[int]]:
    """(group storedBytes, stored events, each event's day)."""
    with store.transaction(write=False) as db:
        g = logs.group(db, "000000000000", "us-east-1", group)
        events = logs.scan(db, g)
        return g.stored_bytes, len(events), sorted({(e.ts - T0) // DAY_MS for e in events})


def test_expired_events_are_deleted_and_stored_bytes_go_down(tmp_path):
    store = _store(tmp_path)
    try:
        for day in range(5):  # 5 days of 300 events, 10 bytes each
            _put(store, "/ret/g", "s", day, 300)
        _put(store, "/ret/keep", "s", 0, 50)  # no retention: never expires
        with store.transaction() as db:
            logs.update_group(db, logs.group(db, "000000000000", "us-east-1", "/ret/g"),
                              retention_days=3)
        assert _state(store, "/ret/g") == (5 * 300 * 10, 1500, [0, 1, 2, 3, 4])

        # Day 5 + 1 ms: the cutoff is day 2 + 1 ms, so days 0 and 1 go, and day 2's first
        # event (stamped exactly day 2) is older than the cutoff too.
        clock = (T0 + 5 * DAY_MS + 1) / 1000
        controller = RetentionController(store, clock=lambda: clock, chunk=128)
        controller.reconcile()
        assert _state(store, "/ret/g") == (899 * 10, 899, [2, 3, 4])
        assert _state(store, "/ret/keep") == (500, 50, [0])

        controller.reconcile()  # level-triggered: a second pass changes nothing
        assert _state(store, "/ret/g") == (899 * 10, 899, [2, 3, 4])
    finally:
        store.close()


def test_delivery_class_groups_keep_one_day(tmp_path):
    store = _store(tmp_path)
    try:
        with store.transaction() as db:
            logs.create_group(db, "000000000000", "us-east-1", "/ret/delivery", T0,
                              log_group_class="DELIVERY")
        _put(store, "/ret/delivery", "s", 0, 10)
        _put(store, "/ret/delivery", "s", 1, 10)
        clock = (T0 + 2 * DAY_MS - 100) / 1000  # day 0's events are older than one day
        RetentionController(store, clock=lambda: clock).reconcile()
        assert _state(store, "/ret/delivery") == (100, 10, [1])
    finally:
        store.close()


def test_deleted_streams_and_groups_are_purged_in_chunks(tmp_path):
    store = _store(tmp_path)
    try:
        _put(store, "/ret/a", "gone", 0, 1000)
        _put(store, "/ret/a", "stays", 0, 10)
        _put(store, "/ret/b", "s", 0, 500)
        with store.transaction() as db:
            a = logs.group(db, "000000000000", "us-east-1", "/ret/a")
            logs.delete_stream(db, a, logs.stream(db, a, "gone"))
            logs.delete_group(db, logs.group(db, "000000000000", "us-east-1", "/ret/b"))
        # Gone from every read at once, and from the group's count…
        assert _state(store, "/ret/a") == (100, 10, [0])
        with store.transaction(write=False) as db:
            assert db.execute(select(func.count()).select_from(logs_events)).scalar() == 1510
        # …and from the disk once the controller ran (chunks of 64 rows).
        RetentionController(store, clock=lambda: T0 / 1000, chunk=64).reconcile()
        with store.transaction(write=False) as db:
            assert db.execute(select(func.count()).select_from(logs_events)).scalar() == 10
            assert db.execute(select(func.count()).select_from(logs_purges)).scalar() == 0
        # A new stream of the same name starts empty.
        _put(store, "/ret/a", "gone", 0, 1)
        assert _state(store, "/ret/a") == (110, 11, [0])
    finally:
        store.close()
