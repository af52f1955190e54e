"""Retention: the controller that deletes expired events and the events of deleted streams.

Each pass, level-triggered (safe to rerun after a crash at any point):

    for every group with a retention period (DELIVERY-class groups: 1 day [BC LogGroupClass])
        delete its events older than now - retentionInDays, oldest first, CHUNK at a time
    for every stream in logs_purges (deleted alone or with its group)
        delete its events, CHUNK at a time; then the purge row

Each chunk is its own short write transaction, so PutLogEvents waits at most one chunk for
the write lock, never a whole purge; the streams' and the group's ``stored_bytes`` go down
in the same transaction as the rows. Time comes from ``clock`` (injected in tests).

Disk space: SQLite keeps the pages freed by a DELETE in the database file's freelist and
reuses them for the next inserts, so a group under retention stops growing once its window is
full, but the file does not shrink. Corral's database was created without
``auto_vacuum=INCREMENTAL`` and SQLite cannot switch an existing file to it without a full
VACUUM (which rewrites the file under an exclusive lock), so ``PRAGMA incremental_vacuum``
does nothing here; returning the space to the OS is a VACUUM with Corral stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import or_, select

from corral.controller import Controller
from corral.logs import store as logs
from corral.logs.batch_rules import DAY_MS
from corral.logs.group_ops import DELIVERY_RETENTION_DAYS
from corral.store import Store
from corral.store.schema import logs_groups

log = logging.getLogger("corral.logs.retention")

CHUNK = 2_000


class RetentionController(Controller):
    name = "logs-retention"

    def __init__(self, store: Store, *, interval: float = 60.0,
                 clock: Callable[[], float] = time.time, chunk: int = CHUNK):
        super().__init__()
        self.store = store
        self.interval = interval
        self.clock = clock
        self.chunk = chunk

    def reconcile(self) -> None:
        expired = sum(self._expire(group_id, cutoff) for group_id, cutoff in self._cutoffs())
        purged = self._purge_deleted()
        if expired or purged:
            log.info("retention deleted %d expired events; purged %d", expired, purged)

    def _cutoffs(self) -> list[tuple[int, int]]:
        """(group id, cutoff ms) of every group whose events expire."""
        now_ms = int(self.clock() * 1000)
        g = logs_groups.c
        with self.store.transaction(write=False) as db:
            rows = db.execute(select(g.id, g.retention_days, g.log_group_class).where(or_(
                g.retention_days.is_not(None), g.log_group_class == "DELIVERY"))).all()
        out = []
        for r in rows:
            days = r.retention_days or DELIVERY_RETENTION_DAYS
            if r.log_group_class == "DELIVERY":
                days = min(days, DELIVERY_RETENTION_DAYS)
            out.append((r.id, now_ms - days * DAY_MS))
        return out

    def _expire(self, group_id: int, cutoff_ms: int) -> int:
        total = 0
        while not self._stop.is_set():
            with self.store.transaction() as db:
                row = db.execute(select(logs_groups).where(logs_groups.c.id == group_id)).first()
                done = logs.expire(db, row, cutoff_ms, self.chunk) if row is not None else 0
            total += done
            if done < self.chunk:
                return total
        return total

    def _purge_deleted(self) -> int:
        total = 0
        while not self._stop.is_set():
            with self.store.transaction() as db:
                done = logs.purge_deleted(db, self.chunk)
            if not done:
                return total
            total += done
        return total
