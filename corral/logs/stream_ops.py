"""Log stream operations (a mixin of LogsProvider):

    CreateLogStream      a row in logs_streams (names: 1–512 characters, no ``:`` or ``*``)
    DeleteLogStream      the stream now, its events in chunks later (retention.py)
    DescribeLogStreams   logStreamNamePrefix, orderBy LogStreamName | LastEventTime,
                         descending, keyset pages of 1–50 (default 50)

The LogStream shape: firstEventTimestamp, lastEventTimestamp and lastIngestionTime once the
stream has events; uploadSequenceToken (ignored by PutLogEvents, still shown); ``storedBytes``
is always 0, as AWS reports it for streams since June 17, 2019 [BC LogStream.storedBytes]
(the group's storedBytes is the real count).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.logs import names
from corral.logs import store as logs
from corral.logs.errors import (
    INVALID_TOKEN,
    STREAM_EXISTS,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    stream_not_found,
)
from corral.logs.group_ops import DEFAULT_LIMIT, get_group, now_ms
from corral.store.db import emit
from corral.store.schema import logs_events

PREFIX_WITH_LAST_EVENT = "Cannot order by LastEventTime with a logStreamNamePrefix."  # AWS


def get_stream(ctx: RequestContext, group_row: Row, name: str) -> Row:
    row = logs.stream(ctx.db, group_row, name)
    if row is None:
        raise stream_not_found()
    return row


def stream_view(ctx: RequestContext, group_row: Row, row: Row) -> dict:
    out: dict[str, Any] = {
        "logStreamName": row.name, "creationTime": row.created_at,
        "arn": names.stream_arn(ctx.region, ctx.account_id, group_row.name, row.name),
        "storedBytes": 0,
    }
    if row.first_event_ts is not None:
        out.update(firstEventTimestamp=row.first_event_ts, lastEventTimestamp=row.last_event_ts,
                   lastIngestionTime=row.last_ingestion_time)
        last = ctx.db.execute(select(func.max(logs_events.c.id))
                              .where(logs_events.c.stream_id == row.id)).scalar()
        out["uploadSequenceToken"] = logs.sequence_token(last or 0)
    return out


def _cursor(params: dict[str, Any], by_last_event: bool) -> list | None:
    try:
        cursor = pagination.decode(params.get("nextToken"), after=list)
    except ValueError:
        raise InvalidParameterException(INVALID_TOKEN) from None
    if cursor is None:
        return None
    after = cursor["after"]
    kinds = (int, str) if by_last_event else (str,)  # a token of the other order fails here
    if len(after) != len(kinds) or not all(type(v) is k for v, k in zip(after, kinds,
                                                                           strict=False)):
        raise InvalidParameterException(INVALID_TOKEN)
    return after


class StreamOperations:
    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def create_log_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group = get_group(ctx, params)
        name = params["logStreamName"]
        if logs.stream(ctx.db, group, name) is not None:
            raise ResourceAlreadyExistsException(STREAM_EXISTS)
        logs.create_stream(ctx.db, group, name, now_ms())
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def delete_log_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group = get_group(ctx, params)
        logs.delete_stream(ctx.db, group, get_stream(ctx, group, params["logStreamName"]))
        emit(ctx.db, "logs.purge")
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def describe_log_streams(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        by_last_event = params.get("orderBy") == "LastEventTime"
        if by_last_event and params.get("logStreamNamePrefix"):
            raise InvalidParameterException(PREFIX_WITH_LAST_EVENT)
        group = get_group(ctx, params)
        limit = params.get("limit") or DEFAULT_LIMIT
        after = _cursor(params, by_last_event)
        rows = logs.list_streams(ctx.db, group, prefix=params.get("logStreamNamePrefix"),
                                 by_last_event=by_last_event,
                                 descending=bool(params.get("descending")),
                                 after=tuple(after) if after else None, limit=limit + 1)
        out: dict[str, Any] = {"logStreams": [stream_view(ctx, group, r) for r in rows[:limit]]}
        if len(rows) > limit:
            key = logs.stream_key(rows[limit - 1], by_last_event)
            out["nextToken"] = pagination.encode({"after": key})
        return out
