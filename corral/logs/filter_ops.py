"""FilterLogEvents (a mixin of LogsProvider): a group's events that match a filter pattern,
interleaved across its streams in ``(timestamp, id)`` order, in pages.

    pattern = filter_pattern.compile(filterPattern)        InvalidParameterException if bad
    scan(group, contains=pattern.literals(), after=pos)    SQL: time range, streams, literals
      └─ pattern.match(message) in Python                  the grammar's exact verdict

Most rejects never leave SQL: the literals every match must contain are ``instr`` tests in
the scan's WHERE clause, so only candidates are decoded and matched. One call does bounded
work, as AWS's does: it stops at ``limit`` events (default and maximum 10,000), at 1 MB of
events, or after examining ``SCAN_BUDGET`` candidates; then it answers what it found with a
``nextToken`` that resumes exactly after the last event it examined (an empty page with a
token is possible, as on AWS). The token is the keyset position ``(ts, id)`` plus the
group's id, so it resumes exactly even while events arrive; no token means the range is
exhausted.

The answer's ``eventId`` is AWS's 56-digit form, built from the event's timestamp and id (so
the same event always has the same id); ``searchedLogStreams`` is the empty list AWS returns
since it stopped supporting the field (May 2020); ``interleaved`` is accepted and ignored,
as AWS ignores it since June 2019.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.logs import filter_pattern, names
from corral.logs import store as logs
from corral.logs.batch_rules import EVENT_OVERHEAD, MAX_BATCH_BYTES, MAX_EVENTS
from corral.logs.errors import INVALID_TOKEN, InvalidParameterException
from corral.logs.group_ops import get_group

SCAN_BUDGET = 200_000  # candidates examined per call at most (each a Python match)
PAGE = 5_000  # events per store.scan round trip
BOTH_STREAM_FILTERS = "Cannot specify both logStreamNames and logStreamNamePrefix."


def event_id(ts: int, row_id: int) -> str:
    """AWS's eventId shape: 56 digits; here the timestamp (20) then the row id (36)."""
    return f"{max(ts, 0):020d}{row_id:036d}"


def _position(token: str | None, group_row: Row) -> tuple[int, int] | None:
    try:
        cursor = pagination.decode(token, g=int, ts=int, id=int)
    except ValueError:
        raise InvalidParameterException(INVALID_TOKEN) from None
    if cursor is None:
        return None
    if cursor["g"] != group_row.id:
        raise InvalidParameterException(INVALID_TOKEN)
    return cursor["ts"], cursor["id"]


def _pattern(text: str | None) -> filter_pattern.Pattern:
    try:
        return filter_pattern.compile(text or "")
    except filter_pattern.InvalidFilterPattern as e:
        raise InvalidParameterException(str(e)) from None


class FilterOperations:
    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def filter_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group_row = get_group(ctx, params)
        if params.get("logStreamNames") and params.get("logStreamNamePrefix"):
            raise InvalidParameterException(BOTH_STREAM_FILTERS)
        pattern = _pattern(params.get("filterPattern"))
        after = _position(params.get("nextToken"), group_row)
        end = params.get("endTime")
        page = FilterPage(pattern, params.get("limit") or MAX_EVENTS)
        page.fill(lambda pos, n: logs.scan(
            ctx.db, group_row, streams=params.get("logStreamNames"),
            stream_prefix=params.get("logStreamNamePrefix"), start_ms=params.get("startTime"),
            end_ms=end + 1 if end is not None else None,  # endTime is inclusive
            after=pos, contains=pattern.literals(), limit=n), after)
        out: dict[str, Any] = {"events": page.events, "searchedLogStreams": []}
        if page.resume is not None:
            out["nextToken"] = pagination.encode(
                {"g": group_row.id, "ts": page.resume[0], "id": page.resume[1]})
        return out


class FilterPage:
    """One FilterLogEvents page: matched events and where the next page resumes (None when
    the scan reached the end of the range)."""

    def __init__(self, pattern: filter_pattern.Pattern, limit: int):
        self.pattern, self.limit = pattern, limit
        self.events: list[dict[str, Any]] = []
        self.resume: tuple[int, int] | None = None
        self.bytes = 0

    def fill(self, scan, after: tuple[int, int] | None) -> None:
        """``scan(after, n)`` gives the next ``n`` candidates after a keyset position."""
        examined = 0
        while True:
            batch = scan(after, PAGE)
            for e in batch:
                if not self._take(e):
                    self.resume = after  # resume at this event: it was not answered
                    return
                after, examined = (e.ts, e.id), examined + 1
            if len(batch) < PAGE:
                return  # the range is exhausted: no token
            if examined >= SCAN_BUDGET:
                self.resume = after
                return

    def _take(self, e: logs.Event) -> bool:
        """Answer ``e`` if it matches; False when the page is full (``e`` not consumed)."""
        if not self.pattern.match(e.message):
            return True
        size = len(e.message.encode()) + EVENT_OVERHEAD
        if len(self.events) >= self.limit or (self.events and self.bytes + size > MAX_BATCH_BYTES):
            return False
        self.bytes += size
        self.events.append({"logStreamName": e.stream, "timestamp": e.ts, "message": e.message,
                            "ingestionTime": e.ingested, "eventId": event_id(e.ts, e.id)})
        return True
