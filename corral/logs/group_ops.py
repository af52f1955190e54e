"""Log group operations (a mixin of LogsProvider):

    CreateLogGroup        a row in logs_groups; tags into the shared tag store (by logGroupArn)
    DeleteLogGroup        the group, its streams and filters now; its events in chunks later
    DescribeLogGroups     prefix | pattern | identifiers, logGroupClass, ASCII name order, pages
    PutRetentionPolicy    retentionInDays among AWS's values; the retention controller enforces
    DeleteRetentionPolicy never expire again
    PutLogGroupDeletionProtection   blocks DeleteLogGroup while enabled

The model's bounds (name pattern and length, limit 1–50, the class enum) are checked by the
protocol layer before these run; what is left is what the model cannot say.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Row, func, select

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.logs import names
from corral.logs import store as logs
from corral.logs.errors import (
    GROUP_EXISTS,
    INVALID_TOKEN,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ValidationException,
    group_not_found,
)
from corral.logs.tag_ops import check_tags
from corral.store import tags as tag_store
from corral.store.db import emit
from corral.store.schema import logs_metric_filters

# [BC Days]: the retention periods AWS accepts, in days.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)
DELIVERY_RETENTION_DAYS = 1  # [BC LogGroupClass]: DELIVERY keeps events for one day
DEFAULT_LIMIT = 50
PROTECTED = ("The log group has deletion protection enabled. Disable it with "
             "PutLogGroupDeletionProtection before deleting the log group.")


def now_ms() -> int:
    return int(time.time() * 1000)


def get_group(ctx: RequestContext, params: dict[str, Any]) -> Row:
    """The group the request names (logGroupName or logGroupIdentifier), or
    ResourceNotFoundException; both given is InvalidParameterException."""
    if params.get("logGroupName") and params.get("logGroupIdentifier"):
        raise InvalidParameterException(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if not params.get("logGroupName") and not params.get("logGroupIdentifier"):
        raise InvalidParameterException(
            "Either logGroupName or logGroupIdentifier must be specified.")
    row = logs.group(ctx.db, ctx.account_id, ctx.region, names.group_name(ctx, params))
    if row is None:
        raise group_not_found()
    return row


def group_view(db: Connection, row: Row, region: str, *, brief: bool = False) -> dict:
    """The LogGroup shape; ``brief``: what a logGroupNamePattern search shows."""
    arn = names.group_arn(region, row.account_id, row.name)
    out: dict[str, Any] = {"logGroupName": row.name, "creationTime": row.created_at,
                           "arn": arn + ":*"}
    if brief:
        return out
    count = db.execute(select(func.count()).select_from(logs_metric_filters).where(
        logs_metric_filters.c.group_id == row.id)).scalar()
    out.update(metricFilterCount=count, storedBytes=max(row.stored_bytes, 0),
               logGroupClass=row.log_group_class, logGroupArn=arn,
               deletionProtectionEnabled=bool(row.doc.get("deletionProtectionEnabled")))
    if row.retention_days is not None:
        out["retentionInDays"] = row.retention_days
    if row.kms_key_id:
        out["kmsKeyId"] = row.kms_key_id
    return out


def _cursor(params: dict[str, Any]) -> str | None:
    try:
        cursor = pagination.decode(params.get("nextToken"), after=str)
    except ValueError:
        raise InvalidParameterException(INVALID_TOKEN) from None
    return cursor["after"] if cursor else None


def _describe_filters(params: dict[str, Any]) -> dict[str, Any]:
    prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
    idents = params.get("logGroupIdentifiers")
    if prefix and pattern:
        raise InvalidParameterException(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
    if idents and (prefix or pattern or params.get("logGroupClass")):
        raise InvalidParameterException(
            "logGroupIdentifiers can only be combined with includeLinkedAccounts.")
    return {"prefix": prefix, "pattern": pattern, "group_class": params.get("logGroupClass")}


class GroupOperations:
    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def create_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        name = params["logGroupName"]
        if name.startswith("aws/"):
            raise InvalidParameterException("Log group names can't start with the string aws/.")
        if logs.group(ctx.db, ctx.account_id, ctx.region, name) is not None:
            raise ResourceAlreadyExistsException(GROUP_EXISTS)
        tags = check_tags(params.get("tags") or {})
        doc = {"deletionProtectionEnabled": bool(params.get("deletionProtectionEnabled"))}
        logs.create_group(ctx.db, ctx.account_id, ctx.region, name, now_ms(),
                          log_group_class=params.get("logGroupClass") or "STANDARD",
                          kms_key_id=params.get("kmsKeyId"), doc=doc)
        tag_store.put(ctx.db, names.group_arn(ctx.region, ctx.account_id, name), tags)
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def delete_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = get_group(ctx, params)
        if row.doc.get("deletionProtectionEnabled"):
            raise ValidationException(PROTECTED)
        logs.delete_group(ctx.db, row)
        tag_store.remove_all(ctx.db, names.group_arn(ctx.region, ctx.account_id, row.name))
        emit(ctx.db, "logs.purge")
        return {}

    @acts_on(lambda ctx, p: [names.all_groups(ctx.region, ctx.account_id)])
    def describe_log_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        filters = _describe_filters(params)
        idents = params.get("logGroupIdentifiers")
        wanted = None
        if idents:
            wanted = [names.group_name(ctx, {"logGroupIdentifier": i}) for i in idents]
        limit = params.get("limit") or DEFAULT_LIMIT
        rows = logs.list_groups(ctx.db, ctx.account_id, ctx.region, names=wanted,
                                after=_cursor(params), limit=limit + 1, **filters)
        brief = bool(filters["pattern"])
        out: dict[str, Any] = {"logGroups": [group_view(ctx.db, r, ctx.region, brief=brief)
                                             for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = pagination.encode({"after": rows[limit - 1].name})
        return out

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def put_retention_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        days = params["retentionInDays"]
        if days not in RETENTION_DAYS:
            allowed = ", ".join(map(str, RETENTION_DAYS))
            raise InvalidParameterException(  # the text AWS's validator gives
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{allowed}]")
        row = get_group(ctx, params)
        logs.update_group(ctx.db, row, retention_days=days)
        emit(ctx.db, "logs.retention.changed", group_id=row.id)
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def delete_retention_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        logs.update_group(ctx.db, get_group(ctx, params), retention_days=None)
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def put_log_group_deletion_protection(self, ctx: RequestContext,
                                          params: dict[str, Any]) -> dict:
        row = get_group(ctx, params)
        doc = {**row.doc, "deletionProtectionEnabled": bool(params["deletionProtectionEnabled"])}
        logs.update_group(ctx.db, row, doc=doc)
        return {}
