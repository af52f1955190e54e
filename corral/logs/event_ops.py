"""PutLogEvents and GetLogEvents (a mixin of LogsProvider).

PutLogEvents stores a batch by the rules in :mod:`corral.logs.batch_rules` (through
``store.ingest``), in the request's transaction: the answer goes out after the commit, so an
acknowledged event is on disk. Sequence tokens are accepted and ignored, as AWS does since
2023; a ``nextSequenceToken`` is still returned for clients that print it.

GetLogEvents reads one stream in time order. Its tokens have AWS's form, ``f/<56 digits>/s``
forward and ``b/<56 digits>/s`` backward (tokens without the ``/s`` AWS gave before 2021 are
read too). The digits are a keyset position between two events, never an offset:

    <20: timestamp><20: event id><16: stream id mod 10^16>

    f/P   the events after P, oldest first        b/P   the events before P, newest first
                                                        (a page is returned oldest first)

A page's nextForwardToken is the position after its last event, its nextBackwardToken the
position before its first. A page with no events gives back the token it was asked with (so a
``while the token changes`` loop ends at the end of the stream, and resumes when events
arrive) [BC GetLogEvents.nextForwardToken]. Without a token, startFromHead picks the first
page of the range (true) or the last (false, the default). A page holds at most ``limit``
events (default and maximum 10,000) and 1 MB.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Row

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.logs import names
from corral.logs import store as logs
from corral.logs.batch_rules import MAX_EVENTS
from corral.logs.errors import INVALID_TOKEN, InvalidParameterException
from corral.logs.group_ops import get_group, now_ms
from corral.logs.stream_ops import get_stream

_TOKEN = re.compile(r"^([fb])/(\d{20})(\d{20})(\d{16})(/s)?$")
_MAX_TS = 2 ** 63 - 1  # the largest BIGINT; the digits leave room


def _token(direction: str, ts: int, event_id: int, stream_id: int) -> str:
    ts = min(max(ts, 0), _MAX_TS)
    return f"{direction}/{ts:020d}{max(event_id, 0):020d}{stream_id % 10 ** 16:016d}/s"


def _parse_token(token: str, stream_id: int) -> tuple[str, tuple[int, int]]:
    """(direction, (ts, id)) of a token of this stream; InvalidParameterException if not."""
    m = _TOKEN.match(token)
    if m is None or int(m.group(4)) != stream_id % 10 ** 16:
        raise InvalidParameterException(INVALID_TOKEN)
    ts, event_id = (min(int(m.group(i)), _MAX_TS) for i in (2, 3))
    return m.group(1), (ts, event_id)


def _page(ctx: RequestContext, stream: Row, params: dict[str, Any]) -> tuple[list, str, str]:
    """(events, nextForwardToken, nextBackwardToken) of one GetLogEvents call."""
    start, end = params.get("startTime"), params.get("endTime")
    limit = params.get("limit") or MAX_EVENTS
    token = params.get("nextToken")
    bounds = {"start_ms": start, "end_ms": end, "limit": limit}
    if token:
        direction, pos = _parse_token(token, stream.id)
        if direction == "f":
            events = logs.read_stream(ctx.db, stream, after=pos, **bounds)
        else:
            events = logs.read_stream(ctx.db, stream, before=pos, from_end=True, **bounds)
    else:
        events = logs.read_stream(ctx.db, stream, from_end=not params.get("startFromHead"),
                                  **bounds)
    if events:
        first, last = events[0], events[-1]
        return (events, _token("f", last.ts, last.id, stream.id),
                _token("b", first.ts, first.id, stream.id))
    if not token:  # an empty range: before its start, after its end
        return ([], _token("f", start or 0, 0, stream.id),
                _token("b", _MAX_TS if end is None else end, 0, stream.id))
    ts, event_id = pos
    if direction == "f":  # nothing after P: the same token; backward from P includes P's event
        return [], token, _token("b", ts, event_id + 1, stream.id)
    return [], _token("f", ts, event_id - 1, stream.id), token


class EventOperations:
    @acts_on(lambda ctx, p: [names.request_stream_arn(ctx, p)])
    def put_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group = get_group(ctx, params)
        stream = get_stream(ctx, group, params["logStreamName"])
        return logs.ingest(ctx.db, group, stream, params["logEvents"], now_ms())

    @acts_on(lambda ctx, p: [names.request_stream_arn(ctx, p)])
    def get_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group = get_group(ctx, params)
        stream = get_stream(ctx, group, params["logStreamName"])
        events, forward, backward = _page(ctx, stream, params)
        return {
            "events": [{"timestamp": e.ts, "message": e.message, "ingestionTime": e.ingested}
                       for e in events],
            "nextForwardToken": forward, "nextBackwardToken": backward,
        }
