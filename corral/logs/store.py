"""The CloudWatch Logs tables' API: groups, streams, events (the contract every Logs module
and the awslogs driver codes against).

Events live in the SQL store, one row each, so an acknowledged PutLogEvents is committed
(WAL, ``synchronous=FULL``) before the answer, readers never block the writer, and
retention is a DELETE. Two indexes serve every read:

    (stream_id, ts, id)   GetLogEvents: one stream, in time order, either direction
    (group_id, ts, id)    FilterLogEvents / Insights: a group, interleaved across streams

``(ts, id)`` is the total order of a group's events (``id`` is the ingestion order), and a
reader's position is a keyset ``(ts, id)``, never an offset. Deleting a stream or a group
only removes its rows and records the stream ids in ``logs_purges``; the events go in chunks
(retention.py), and until then no read sees them: every read joins ``logs_streams``.
Callers pass the time (``now_ms``); nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, case, delete, func, insert, select, tuple_, update

from corral.logs import batch_rules
from corral.store.db import emit
from corral.store.schema import (
    logs_events,
    logs_groups,
    logs_metric_filters,
    logs_purges,
    logs_streams,
    logs_subscription_filters,
)

G, S, E = logs_groups.c, logs_streams.c, logs_events.c


@dataclass(frozen=True)
class Event:
    """One stored event, as readers get it."""

    id: int
    stream: str
    ts: int
    ingested: int
    message: str


def sequence_token(event_id: int) -> str:
    """A 56-digit sequence token (AWS accepts and ignores them; clients still print them)."""
    return f"{event_id:056d}"


# --- groups ----------------------------------------------------------------------------------

def group(db: Connection, account: str, region: str, name: str) -> Row | None:
    return db.execute(select(logs_groups).where(
        G.account_id == account, G.region == region, G.name == name)).first()


def create_group(db: Connection, account: str, region: str, name: str, now_ms: int, *,
                 log_group_class: str = "STANDARD", kms_key_id: str | None = None,
                 doc: dict[str, Any] | None = None) -> Row:
    """A new group (the caller checked that the name is free)."""
    db.execute(insert(logs_groups).values(
        account_id=account, region=region, name=name, created_at=now_ms,
        log_group_class=log_group_class, kms_key_id=kms_key_id, stored_bytes=0,
        doc=doc or {}))
    return group(db, account, region, name)


def ensure_group(db: Connection, account: str, region: str, name: str, now_ms: int) -> Row:
    """The group, created (STANDARD, no retention) if missing."""
    return group(db, account, region, name) or create_group(db, account, region, name, now_ms)


def list_groups(db: Connection, account: str, region: str, *, prefix: str | None = None,
                pattern: str | None = None, group_class: str | None = None,
                names: Sequence[str] | None = None, after: str | None = None,
                limit: int = 50) -> list[Row]:
    """Groups in ASCII name order after the name ``after``: ``prefix`` and ``pattern`` (a
    case-sensitive substring) as DescribeLogGroups defines them."""
    q = select(logs_groups).where(G.account_id == account, G.region == region)
    if prefix:
        q = q.where(func.substr(G.name, 1, len(prefix)) == prefix)
    if pattern:
        q = q.where(_contains(db, G.name, pattern))
    if group_class:
        q = q.where(G.log_group_class == group_class)
    if names is not None:
        q = q.where(G.name.in_(list(names)))
    if after is not None:
        q = q.where(G.name > after)
    return list(db.execute(q.order_by(G.name).limit(limit)))


def update_group(db: Connection, group_row: Row, **values: Any) -> None:
    db.execute(update(logs_groups).where(G.id == group_row.id).values(**values))


def delete_group(db: Connection, group_row: Row) -> None:
    """The group, its streams and filters; its events are purged later (logs_purges)."""
    ids = [r.id for r in db.execute(select(S.id).where(S.group_id == group_row.id))]
    _forget_streams(db, ids)
    for table in (logs_metric_filters, logs_subscription_filters):
        db.execute(delete(table).where(table.c.group_id == group_row.id))
    db.execute(delete(logs_groups).where(G.id == group_row.id))


def _forget_streams(db: Connection, stream_ids: list[int]) -> None:
    if not stream_ids:
        return
    db.execute(insert(logs_purges), [{"stream_id": i} for i in stream_ids])
    db.execute(delete(logs_streams).where(S.id.in_(stream_ids)))


# --- streams ---------------------------------------------------------------------------------

def stream(db: Connection, group_row: Row, name: str) -> Row | None:
    return db.execute(select(logs_streams).where(
        S.group_id == group_row.id, S.name == name)).first()


def create_stream(db: Connection, group_row: Row, name: str, now_ms: int) -> Row:
    db.execute(insert(logs_streams).values(group_id=group_row.id, name=name, created_at=now_ms,
                                           stored_bytes=0))
    return stream(db, group_row, name)


def ensure_stream(db: Connection, group_row: Row, name: str, now_ms: int) -> Row:
    """The stream, created if missing."""
    return stream(db, group_row, name) or create_stream(db, group_row, name, now_ms)


def list_streams(db: Connection, group_row: Row, *, prefix: str | None = None,
                 by_last_event: bool = False, descending: bool = False,
                 after: tuple[Any, ...] | None = None, limit: int = 50) -> list[Row]:
    """A group's streams ordered by name, or by last event time (streams without events
    first, ties by name), keyset-paged after ``after`` (:func:`stream_key`)."""
    q = select(logs_streams).where(S.group_id == group_row.id)
    if prefix:
        q = q.where(func.substr(S.name, 1, len(prefix)) == prefix)
    cols = [func.coalesce(S.last_event_ts, -1), S.name] if by_last_event else [S.name]
    if after is not None:
        key = tuple_(*cols) if by_last_event else cols[0]
        mark = tuple_(*after) if by_last_event else after[0]
        q = q.where(key < mark if descending else key > mark)
    order = [c.desc() for c in cols] if descending else cols
    return list(db.execute(q.order_by(*order).limit(limit)))


def stream_key(row: Row, by_last_event: bool) -> list[Any]:
    """A stream's position in :func:`list_streams`' order (a paging cursor)."""
    if by_last_event:
        return [row.last_event_ts if row.last_event_ts is not None else -1, row.name]
    return [row.name]


def delete_stream(db: Connection, group_row: Row, stream_row: Row) -> None:
    """The stream; its bytes leave the group's count now, its events are purged later."""
    _forget_streams(db, [stream_row.id])
    db.execute(update(logs_groups).where(G.id == group_row.id).values(
        stored_bytes=G.stored_bytes - stream_row.stored_bytes))


# --- events ----------------------------------------------------------------------------------

def ingest(db: Connection, group_row: Row, stream_row: Row, events: list[dict],
           now_ms: int) -> dict:
    """Store a PutLogEvents batch ``[{"timestamp", "message"}]`` by PutLogEvents' rules
    (:mod:`corral.logs.batch_rules`); returns PutLogEvents' output. Raises
    InvalidParameterException with AWS's texts (nothing is stored then)."""
    events = [{"timestamp": e["timestamp"], "message": batch_rules.clean_message(e["message"])}
              for e in events]
    verdict = batch_rules.judge(events, now_ms, group_row.retention_days)
    kept = events[verdict.start:verdict.end]
    out: dict[str, Any] = {}
    if verdict.rejected:
        out["rejectedLogEventsInfo"] = verdict.rejected
    if kept:
        size = sum(verdict.sizes[verdict.start:verdict.end])
        db.execute(insert(logs_events), [
            {"group_id": group_row.id, "stream_id": stream_row.id, "ts": e["timestamp"],
             "ingested": now_ms, "message": e["message"]} for e in kept])
        _note_ingest(db, group_row, stream_row, kept[0]["timestamp"], kept[-1]["timestamp"],
                     size, now_ms)
        emit(db, "logs.ingested", group_id=group_row.id, stream_id=stream_row.id)
    last = db.execute(select(func.max(E.id)).where(E.stream_id == stream_row.id)).scalar()
    out["nextSequenceToken"] = sequence_token(last or 0)
    return out


def _note_ingest(db: Connection, group_row: Row, stream_row: Row, first: int, last: int,
                 size: int, now_ms: int) -> None:
    db.execute(update(logs_streams).where(S.id == stream_row.id).values(
        first_event_ts=case((S.first_event_ts.is_(None) | (S.first_event_ts > first), first),
                            else_=S.first_event_ts),
        last_event_ts=case((S.last_event_ts.is_(None) | (S.last_event_ts < last), last),
                           else_=S.last_event_ts),
        last_ingestion_time=now_ms, stored_bytes=S.stored_bytes + size))
    db.execute(update(logs_groups).where(G.id == group_row.id).values(
        stored_bytes=G.stored_bytes + size))


def read_stream(db: Connection, stream_row: Row, *, start_ms: int | None = None,
                end_ms: int | None = None, after: tuple[int, int] | None = None,
                before: tuple[int, int] | None = None, from_end: bool = False,
                limit: int = batch_rules.MAX_EVENTS,
                max_bytes: int = batch_rules.MAX_BATCH_BYTES) -> list[Event]:
    """One stream's events in [start_ms, end_ms) strictly between the keyset positions
    ``after`` and ``before``, ascending: the first ``limit`` of them, or the last when
    ``from_end``, at most ``max_bytes`` (message bytes + 26 each, as PutLogEvents counts)."""
    q = select(E.id, E.ts, E.ingested, E.message).where(E.stream_id == stream_row.id)
    q = _bounds(q, start_ms, end_ms, after, before)
    key = (E.ts.desc(), E.id.desc()) if from_end else (E.ts, E.id)
    rows = list(db.execute(q.order_by(*key).limit(limit)))
    out, total = [], 0
    for r in rows:
        total += batch_rules.event_size(r.message) + batch_rules.EVENT_OVERHEAD
        if total > max_bytes and out:
            break
        out.append(Event(r.id, stream_row.name, r.ts, r.ingested, r.message))
    return out[::-1] if from_end else out


def scan(db: Connection, group_row: Row, *, streams: list[str] | None = None,
         stream_prefix: str | None = None, start_ms: int | None = None,
         end_ms: int | None = None, after: tuple[int, int] | None = None,
         contains: Iterable[str] = (), limit: int = 10_000) -> list[Event]:
    """A group's events in [start_ms, end_ms) after the keyset position ``after``, ordered by
    ``(ts, id)`` and interleaved across its streams (those named, or with the prefix);
    ``contains``: literal substrings that must all occur (case-sensitive)."""
    q = (select(E.id, S.name, E.ts, E.ingested, E.message)
         .join(logs_streams, and_(S.id == E.stream_id, S.group_id == group_row.id))
         .where(E.group_id == group_row.id))
    if streams is not None:
        q = q.where(S.name.in_(streams))
    if stream_prefix:
        q = q.where(func.substr(S.name, 1, len(stream_prefix)) == stream_prefix)
    for text in contains:
        q = q.where(_contains(db, E.message, text))
    q = _bounds(q, start_ms, end_ms, after, None)
    rows = db.execute(q.order_by(E.ts, E.id).limit(limit))
    return [Event(r.id, r.name, r.ts, r.ingested, r.message) for r in rows]


def _bounds(q, start_ms, end_ms, after, before):
    if start_ms is not None:
        q = q.where(E.ts >= start_ms)
    if end_ms is not None:
        q = q.where(E.ts < end_ms)
    if after is not None:
        q = q.where(tuple_(E.ts, E.id) > tuple_(*after))
    if before is not None:
        q = q.where(tuple_(E.ts, E.id) < tuple_(*before))
    return q


def _contains(db: Connection, column, text: str):
    """A case-sensitive substring test (SQLite's LIKE ignores ASCII case)."""
    if db.dialect.name == "sqlite":
        return func.instr(column, text) > 0
    return func.strpos(column, text) > 0


# --- retention (retention.py runs these, one chunk per transaction) ---------------------------

def expire(db: Connection, group_row: Row, cutoff_ms: int, chunk: int) -> int:
    """Delete up to ``chunk`` of a group's events older than ``cutoff_ms``, oldest first,
    and take their bytes off the streams' and the group's counts; returns how many."""
    rows = list(db.execute(select(E.id, E.stream_id, E.message).where(
        E.group_id == group_row.id, E.ts < cutoff_ms).order_by(E.ts, E.id).limit(chunk)))
    if not rows:
        return 0
    freed: dict[int, int] = {}
    for r in rows:
        freed[r.stream_id] = freed.get(r.stream_id, 0) + batch_rules.event_size(r.message)
    db.execute(delete(logs_events).where(E.id.in_([r.id for r in rows])))
    for stream_id, size in freed.items():
        db.execute(update(logs_streams).where(S.id == stream_id).values(
            stored_bytes=S.stored_bytes - size))
    # A deleted stream's bytes already left the group's count (delete_stream).
    live = {r.id for r in db.execute(select(S.id).where(S.id.in_(list(freed))))}
    live_bytes = sum(size for sid, size in freed.items() if sid in live)
    db.execute(update(logs_groups).where(G.id == group_row.id).values(
        stored_bytes=G.stored_bytes - live_bytes))
    return len(rows)


def purge_deleted(db: Connection, chunk: int) -> int:
    """Delete up to ``chunk`` events of one deleted stream; its purge row goes once none of
    its events is left. Returns the work done (events deleted, plus 1 for a finished
    stream), 0 when nothing is left to purge."""
    row = db.execute(select(logs_purges.c.stream_id).limit(1)).first()
    if row is None:
        return 0
    ids = select(E.id).where(E.stream_id == row.stream_id).limit(chunk).scalar_subquery()
    deleted = db.execute(delete(logs_events).where(E.id.in_(ids))).rowcount
    if deleted < chunk:
        db.execute(delete(logs_purges).where(logs_purges.c.stream_id == row.stream_id))
        return deleted + 1
    return deleted
