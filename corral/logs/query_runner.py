"""The Logs Insights worker: runs Scheduled queries on its own thread (a controller).

    reconcile():  for each Scheduled query, oldest first:
        Scheduled ─[write txn]─> Running
        events: every named group's events in the time range, merged by timestamp, read in
                pages, one short READ transaction per page (a query never holds the write
                lock, nor one long snapshot)
        insights.compile(q).run(events)
        Running ─[write txn]─> Complete (results, statistics) | Timeout | Failed

Every status change out of Running is conditional (``WHERE status = 'Running'``), so a
StopQuery that won the race (Cancelled) is never overwritten. StopQuery also publishes
``logs.query.stopped``; the running query checks that flag every thousand events and ends.

After a restart nothing is running, so the first pass marks queries left Running as Failed
(their worker died with the process); Scheduled ones simply run. Query rows are kept 7 days,
as AWS keeps query results, then deleted.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import delete, select, update

from corral.aws import pagination
from corral.controller import Controller
from corral.logs import insights
from corral.logs import store as logs
from corral.store import Store
from corral.store.schema import logs_groups, logs_queries

log = logging.getLogger("corral.logs.queries")
Q = logs_queries.c
PAGE = 5_000
TIMEOUT_S = 60 * 60  # "Queries time out after 60 minutes of runtime"
KEEP_MS = 7 * 24 * 3_600_000


def ptr(group_id: int, event_id: int) -> str:
    """@ptr: an opaque pointer to one event (what GetLogRecord would take)."""
    return pagination.encode({"g": group_id, "e": event_id})


class QueryRunner(Controller):
    name = "logs-queries"
    interval = 30.0

    def __init__(self, store: Store, *, timeout_s: float = TIMEOUT_S):
        super().__init__()
        self.store = store
        self.timeout_s = timeout_s
        self._stopped: set[str] = set()
        self._lock = threading.Lock()
        self._recovered = False

    def stopped(self, payload: dict | None = None) -> None:
        """``logs.query.stopped``: the query must end at its next check."""
        if payload and payload.get("query_id"):
            with self._lock:
                self._stopped.add(payload["query_id"])
        self.wake()

    def reconcile(self) -> None:
        if not self._recovered:
            self._recover()
            self._recovered = True
        while (query_id := self._next_scheduled()) is not None:
            self.run_one(query_id)
        self._forget_old()

    def _recover(self) -> None:
        with self.store.transaction() as db:
            n = db.execute(update(logs_queries).where(Q.status == "Running").values(
                status="Failed")).rowcount
        if n:
            log.info("marked %d queries interrupted by a restart as Failed", n)

    def _next_scheduled(self) -> str | None:
        with self.store.transaction(write=False) as db:
            return db.execute(select(Q.query_id).where(Q.status == "Scheduled")
                              .order_by(Q.created_at).limit(1)).scalar()

    def run_one(self, query_id: str) -> None:
        with self.store.transaction() as db:
            row = db.execute(select(logs_queries).where(Q.query_id == query_id)).first()
            if row is None or row.status != "Scheduled" or not db.execute(
                    update(logs_queries).where(Q.query_id == query_id, Q.status == "Scheduled")
                    .values(status="Running")).rowcount:
                return
        doc = dict(row.doc)
        deadline = time.monotonic() + self.timeout_s
        status = "Complete"
        try:
            result = insights.compile(doc["queryString"]).run(
                self._events(row.account_id, doc), limit=doc["limit"],
                should_stop=lambda: self._should_stop(query_id, deadline),
                ptr=lambda _log, e: e.ptr)  # type: ignore[attr-defined]
            doc.update(results=result.rows, statistics=result.statistics)
        except insights.Cancelled:
            status = "Timeout" if time.monotonic() >= deadline else "Cancelled"
        except Exception:  # the documented edge: a query's bug fails that query, not Corral
            log.exception("query %s failed", query_id)
            status = "Failed"
        self._finish(query_id, status, doc)

    def _should_stop(self, query_id: str, deadline: float) -> bool:
        with self._lock:
            cancelled = query_id in self._stopped
        return cancelled or time.monotonic() >= deadline or self._stop.is_set()

    def _finish(self, query_id: str, status: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._stopped.discard(query_id)
        if status == "Cancelled":
            return  # StopQuery already recorded it
        doc["endedAt"] = int(time.time() * 1000)
        with self.store.transaction() as db:
            db.execute(update(logs_queries).where(
                Q.query_id == query_id, Q.status == "Running").values(status=status, doc=doc))

    def _events(self, account: str, doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """The named groups' events in [startTime, endTime] (seconds, both inclusive), merged
        across groups by timestamp."""
        start_ms, end_ms = doc["startTime"] * 1000, (doc["endTime"] + 1) * 1000
        literals = insights_literals(doc["queryString"])
        streams = [self._group_events(account, gid, start_ms, end_ms, literals)
                   for gid in doc["groupIds"]]
        yield from heapq.merge(*streams, key=lambda pair: (pair[1].ts, pair[1].id))

    def _group_events(self, account: str, group_id: int, start_ms: int, end_ms: int,
                      literals: list[str]) -> Iterator[tuple[str, Any]]:
        after = None
        while True:
            with self.store.transaction(write=False) as db:
                group_row = db.execute(select(logs_groups).where(
                    logs_groups.c.id == group_id)).first()
                if group_row is None:
                    return  # deleted while the query ran: it has no more events
                batch = logs.scan(db, group_row, start_ms=start_ms, end_ms=end_ms, after=after,
                                  contains=literals, limit=PAGE)
            label = f"{account}:{group_row.name}"
            for e in batch:
                yield label, _Pointed(e, ptr(group_id, e.id))
            if len(batch) < PAGE:
                return
            after = (batch[-1].ts, batch[-1].id)

    def _forget_old(self) -> None:
        cutoff = int(time.time() * 1000) - KEEP_MS
        with self.store.transaction() as db:
            db.execute(delete(logs_queries).where(Q.created_at < cutoff,
                                                  Q.status.not_in(("Scheduled", "Running"))))


class _Pointed:
    """An event with its @ptr (store.Event is frozen and ptr-less)."""

    __slots__ = ("id", "stream", "ts", "ingested", "message", "ptr")

    def __init__(self, e: logs.Event, pointer: str):
        self.id, self.stream, self.ts = e.id, e.stream, e.ts
        self.ingested, self.message, self.ptr = e.ingested, e.message, pointer


def insights_literals(query: str) -> list[str]:
    """Substrings of @message every event a query can use must contain (SQL prefilter)."""
    try:
        return insights.compile(query).message_literals()
    except insights.QueryError:
        return []
