"""Finding what a request names, once for every operation: ARNs checked for shape (a malformed
ARN is a ValidationError naming the kind expected), then looked up in the caller's account
and region (anything else is the kind's NotFound error, with AWS's text); and Marker/PageSize
paging for the Describe operations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.elb import names, records
from corral.elb.errors import (
    ListenerNotFound,
    LoadBalancerNotFound,
    RuleNotFound,
    TargetGroupNotFound,
    ValidationError,
)
from corral.store.schema import elb_listeners, elb_load_balancers, elb_rules, elb_target_groups

TABLES = {"loadbalancer": elb_load_balancers, "listener": elb_listeners,
          "listener-rule": elb_rules, "targetgroup": elb_target_groups}
NOT_FOUND = {
    "loadbalancer": (LoadBalancerNotFound, "One or more load balancers not found"),
    "listener": (ListenerNotFound, "One or more listeners not found"),
    "listener-rule": (RuleNotFound, "One or more rules not found"),
    "targetgroup": (TargetGroupNotFound, "One or more target groups not found"),
}


def check_arn(arn: str, kind: str) -> str:
    if names.kind_of(arn) != kind:
        raise ValidationError(f"'{arn}' is not a valid {names.WHAT[kind]} ARN")
    return arn


def find(ctx: RequestContext, arn: str, kind: str) -> Row:
    """The row of a well-formed ARN of ``kind`` in the caller's account and region."""
    check_arn(arn, kind)
    row = records.get(ctx.db, TABLES[kind], arn, ctx.account_id, ctx.region)
    if row is None:
        error, message = NOT_FOUND[kind]
        raise error(message)
    return row


def find_all(ctx: RequestContext, refs: list[str], kind: str) -> list[Row]:
    return [find(ctx, arn, kind) for arn in dict.fromkeys(refs)]


def page(items: list[Any], params: dict[str, Any], key: str,
         default: int = 400) -> dict[str, Any]:
    """One page of ``items``: ``{key: [...], "NextMarker"?: …}`` (PageSize 1–400 is the
    model's; the marker is an opaque offset)."""
    limit = params.get("PageSize") or default
    try:
        cursor = pagination.decode(params.get("Marker"), offset=int) or {"offset": 0}
    except ValueError:
        raise ValidationError("The marker is not valid") from None
    start = cursor["offset"]
    out: dict[str, Any] = {key: items[start:start + limit]}
    if start + limit < len(items):
        out["NextMarker"] = pagination.encode({"offset": start + limit})
    return out


def exclusive(params: dict[str, Any], *keys: str) -> None:
    given = [k for k in keys if params.get(k)]
    if len(given) > 1:
        raise ValidationError(f"{' and '.join(given)} cannot be specified together")


def by_names(ctx: RequestContext, table, given: list[str], error: type,
             what: str) -> list[Row]:
    """Rows by name, in the order asked; any missing name is ``error`` naming all of them
    (AWS's text: ``Load balancers '[a, b]' not found``)."""
    found = {n: records.named(ctx.db, table, ctx.account_id, ctx.region, n)
             for n in dict.fromkeys(given)}
    missing = [n for n, row in found.items() if row is None]
    if missing:
        raise error(f"{what} '[{', '.join(missing)}]' not found")
    return list(found.values())
