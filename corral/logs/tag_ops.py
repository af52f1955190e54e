"""Log group tags (a mixin of LogsProvider), both generations of the API:

    TagLogGroup / UntagLogGroup / ListTagsLogGroup       by logGroupName (on the path to
                                                         deprecation, still served)
    TagResource / UntagResource / ListTagsForResource    by resourceArn: a log group's ARN
                                                         without the trailing ``:*``

Tags are stored by the group's ``logGroupArn`` in the shared tag store (corral.store.tags),
so both APIs see the same set, and DeleteLogGroup removes them. Rules [BC Tags, TagKey,
TagValue]: at most 50 per group; keys 1–128, values 0–256 characters of letters, numbers,
spaces and ``_ . : / = + - @``; keys starting ``aws:`` are AWS's.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Row

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.logs import names
from corral.logs import store as logs
from corral.logs.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
    TooManyTagsException,
    group_not_found,
)
from corral.store import tags as tag_store

MAX_TAGS = 50
_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")  # the model's \p{L}\p{Z}\p{N}_.:/=+\-@ in Python


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """Validate a ``tags`` map (InvalidParameterException); returns it."""
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or not _TEXT.match(key):
            raise InvalidParameterException(f"Invalid tag key: {key!r}.")
        if key.lower().startswith("aws:"):
            raise InvalidParameterException("Tag keys starting with 'aws:' are reserved.")
        if len(value) > 256 or not _TEXT.match(value):
            raise InvalidParameterException(f"Invalid tag value for key {key!r}.")
    return tags


def _group_by_name(ctx: RequestContext, name: str) -> Row:
    row = logs.group(ctx.db, ctx.account_id, ctx.region, name)
    if row is None:
        raise group_not_found()
    return row


def _group_by_arn(ctx: RequestContext, arn: str) -> Row:
    parsed = names.parse_group_arn(arn)
    if parsed is None or parsed[:2] != (ctx.region, ctx.account_id):
        raise ResourceNotFoundException("The specified resource does not exist.")
    return _group_by_name(ctx, parsed[2])


def _arn(ctx: RequestContext, row: Row) -> str:
    return names.group_arn(ctx.region, ctx.account_id, row.name)


def _add(ctx: RequestContext, row: Row, tags: dict[str, str], too_many: type) -> None:
    arn = _arn(ctx, row)
    merged = tag_store.get(ctx.db, arn) | check_tags(tags)
    if len(merged) > MAX_TAGS:
        raise too_many(f"A log group can have at most {MAX_TAGS} tags; this request would "
                       f"leave {len(merged)}.")
    tag_store.put(ctx.db, arn, tags)


class TagOperations:
    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def tag_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        _add(ctx, _group_by_name(ctx, params["logGroupName"]), params["tags"],
             InvalidParameterException)
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def untag_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = _group_by_name(ctx, params["logGroupName"])
        tag_store.remove(ctx.db, _arn(ctx, row), params["tags"])
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def list_tags_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = _group_by_name(ctx, params["logGroupName"])
        return {"tags": tag_store.get(ctx.db, _arn(ctx, row))}

    @acts_on(lambda ctx, p: [p["resourceArn"]])
    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        _add(ctx, _group_by_arn(ctx, params["resourceArn"]), params["tags"],
             TooManyTagsException)
        return {}

    @acts_on(lambda ctx, p: [p["resourceArn"]])
    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = _group_by_arn(ctx, params["resourceArn"])
        tag_store.remove(ctx.db, _arn(ctx, row), params["tagKeys"])
        return {}

    @acts_on(lambda ctx, p: [p["resourceArn"]])
    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = _group_by_arn(ctx, params["resourceArn"])
        return {"tags": tag_store.get(ctx.db, _arn(ctx, row))}
