"""Metric filters and subscription filters, stored (a mixin of LogsProvider):

    PutMetricFilter / DescribeMetricFilters / DeleteMetricFilter
    PutSubscriptionFilter / DescribeSubscriptionFilters / DeleteSubscriptionFilter

Each filter is one row keyed by (group id, filter name) holding the MetricFilter or
SubscriptionFilter shape as Describe returns it; a Put of an existing name replaces it and
keeps its creationTime. The pattern must compile (corral.logs.filter_pattern, the grammar
FilterLogEvents runs), so a stored filter is one the metrics issue can run as is.

Limits [BC PutMetricFilter, PutSubscriptionFilter, MetricTransformation.dimensions]: 100
metric filters and 2 subscription filters per group, one metric transformation of at most 3
dimensions. Nothing is delivered to a subscription's destination yet (no Kinesis, Firehose
or Lambda in Corral): the filter is stored and described as AWS would.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, Table, delete, func, insert, select, update

from corral.aws import arns, pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.logs import filter_pattern, names
from corral.logs.errors import (
    INVALID_TOKEN,
    LIMIT_EXCEEDED,
    InvalidParameterException,
    LimitExceededException,
    ResourceNotFoundException,
)
from corral.logs.group_ops import DEFAULT_LIMIT, get_group, now_ms
from corral.store.schema import logs_groups, logs_metric_filters, logs_subscription_filters

MAX_METRIC_FILTERS = 100
MAX_SUBSCRIPTION_FILTERS = 2
MAX_DIMENSIONS = 3


def _compile(text: str) -> Any:
    try:
        return filter_pattern.compile(text)
    except filter_pattern.InvalidFilterPattern as e:
        raise InvalidParameterException(str(e)) from None


def _check_transformation(pattern: Any, t: dict[str, Any]) -> None:
    dims = t.get("dimensions") or {}
    if len(dims) > MAX_DIMENSIONS:
        raise InvalidParameterException(
            f"A metric filter can have at most {MAX_DIMENSIONS} dimensions.")
    if dims and t.get("defaultValue") is not None:
        raise InvalidParameterException(
            "A metric transformation with dimensions can't have a defaultValue.")
    for selector in [t["metricValue"], *dims.values()]:
        if selector.startswith("$") and not filter_pattern.valid_selector(pattern, selector):
            raise InvalidParameterException(
                f"Invalid metric transformation: {selector} is not a field of the filter "
                f"pattern.")


def _put(db: Connection, table: Table, group: Row, name: str, doc: dict, limit: int) -> None:
    """Insert or replace a filter, within the group's limit (LimitExceededException)."""
    c = table.c
    old = db.execute(select(c.doc).where(c.group_id == group.id, c.name == name)).first()
    if old is not None:
        doc["creationTime"] = old.doc["creationTime"]
        db.execute(update(table).where(c.group_id == group.id, c.name == name).values(doc=doc))
        return
    count = len(db.execute(select(c.name).where(c.group_id == group.id)).all())
    if count >= limit:
        raise LimitExceededException(LIMIT_EXCEEDED)
    db.execute(insert(table).values(group_id=group.id, name=name, doc=doc))


def _delete(db: Connection, table: Table, group: Row, name: str, what: str) -> None:
    c = table.c
    done = db.execute(delete(table).where(c.group_id == group.id, c.name == name)).rowcount
    if not done:
        raise ResourceNotFoundException(f"The specified {what} does not exist.")


def _page(db: Connection, table: Table, where: list, params: dict, key: str) -> dict:
    """Filters in ASCII name order (then group name), offset-paged."""
    try:
        cursor = pagination.decode(params.get("nextToken"), offset=int)
    except ValueError:
        raise InvalidParameterException(INVALID_TOKEN) from None
    start = cursor["offset"] if cursor else 0
    limit = params.get("limit") or DEFAULT_LIMIT
    q = (select(table.c.doc).join(logs_groups, logs_groups.c.id == table.c.group_id)
         .where(*where).order_by(table.c.name, logs_groups.c.name)
         .offset(max(start, 0)).limit(limit + 1))
    docs = [r.doc for r in db.execute(q)]
    out: dict[str, Any] = {key: docs[:limit]}
    if len(docs) > limit:
        out["nextToken"] = pagination.encode({"offset": start + limit})
    return out


def _prefix(table: Table, params: dict) -> list:
    prefix = params.get("filterNamePrefix")
    # substr, not LIKE: SQLite's LIKE ignores case, and filter names are case-sensitive
    return [func.substr(table.c.name, 1, len(prefix)) == prefix] if prefix else []


class FilterMetaOperations:
    # --- metric filters ---------------------------------------------------------------------

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def put_metric_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group = get_group(ctx, params)
        pattern = _compile(params["filterPattern"])
        for t in params["metricTransformations"]:
            _check_transformation(pattern, t)
        doc = {"filterName": params["filterName"], "filterPattern": params["filterPattern"],
               "metricTransformations": params["metricTransformations"],
               "creationTime": now_ms(), "logGroupName": group.name,
               "applyOnTransformedLogs": bool(params.get("applyOnTransformedLogs"))}
        for opt in ("fieldSelectionCriteria", "emitSystemFieldDimensions"):
            if params.get(opt) is not None:
                doc[opt] = params[opt]
        _put(ctx.db, logs_metric_filters, group, params["filterName"], doc,
             MAX_METRIC_FILTERS)
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def describe_metric_filters(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        metric, namespace = params.get("metricName"), params.get("metricNamespace")
        if (metric is None) != (namespace is None):
            raise InvalidParameterException(
                "metricName and metricNamespace must be specified together.")
        t = logs_metric_filters
        where = [logs_groups.c.account_id == ctx.account_id, logs_groups.c.region == ctx.region]
        if params.get("logGroupName"):
            where += [t.c.group_id == get_group(ctx, params).id, *_prefix(t, params)]
        out = _page(ctx.db, t, where, params, "metricFilters")
        if metric is not None:  # a filter's one transformation names its metric
            out["metricFilters"] = [
                f for f in out["metricFilters"]
                if any(m["metricName"] == metric and m["metricNamespace"] == namespace
                       for m in f["metricTransformations"])]
        return out

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def delete_metric_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        _delete(ctx.db, logs_metric_filters, get_group(ctx, params), params["filterName"],
                "metric filter")
        return {}

    # --- subscription filters ---------------------------------------------------------------

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def put_subscription_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group = get_group(ctx, params)
        _compile(params["filterPattern"])
        if arns.parse(params["destinationArn"]) is None:
            raise InvalidParameterException(
                f"Invalid destinationArn: {params['destinationArn']}")
        doc = {"filterName": params["filterName"], "logGroupName": group.name,
               "filterPattern": params["filterPattern"],
               "destinationArn": params["destinationArn"],
               "distribution": params.get("distribution") or "ByLogStream",
               "applyOnTransformedLogs": bool(params.get("applyOnTransformedLogs")),
               "creationTime": now_ms()}
        for opt in ("roleArn", "fieldSelectionCriteria", "emitSystemFields"):
            if params.get(opt) is not None:
                doc[opt] = params[opt]
        _put(ctx.db, logs_subscription_filters, group, params["filterName"], doc,
             MAX_SUBSCRIPTION_FILTERS)
        return {}

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def describe_subscription_filters(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        t = logs_subscription_filters
        where = [t.c.group_id == get_group(ctx, params).id, *_prefix(t, params)]
        return _page(ctx.db, t, where, params, "subscriptionFilters")

    @acts_on(lambda ctx, p: [names.request_group_arn(ctx, p)])
    def delete_subscription_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        _delete(ctx.db, logs_subscription_filters, get_group(ctx, params),
                params["filterName"], "subscription filter")
        return {}

