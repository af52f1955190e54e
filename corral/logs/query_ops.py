"""Logs Insights queries (a mixin of LogsProvider): StartQuery, GetQueryResults, StopQuery,
DescribeQueries. The queries themselves run on :class:`corral.logs.query_runner.QueryRunner`.

    StartQuery ──> logs_queries row (Scheduled) ──emit logs.query.started──> runner
                     runner: Running → Complete | Failed | Timeout   (its own transactions)
    StopQuery  ──> Cancelled (if Scheduled or Running) ──emit logs.query.stopped──> runner
    GetQueryResults / DescribeQueries read the row

StartQuery compiles the query before it answers, so a malformed query is a
MalformedQueryException (with ``queryCompileError.location``) and never a Failed query. Its
``startTime`` / ``endTime`` are epoch seconds and both inclusive; ``limit`` defaults to
10,000 and the model caps it at 100,000; up to 50 log groups; ``queryLanguage`` CWLI only.
AWS allows 100 concurrent Logs Insights queries per account (LimitExceededException).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, func, select, update

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.logs import insights, names
from corral.logs import store as logs
from corral.logs.errors import (
    INVALID_TOKEN,
    InvalidParameterException,
    LimitExceededException,
    MalformedQueryException,
    ResourceNotFoundException,
)
from corral.logs.group_ops import now_ms
from corral.store.db import emit
from corral.store.schema import logs_queries

Q = logs_queries.c
MAX_GROUPS = 50
MAX_CONCURRENT = 100
DEFAULT_LIMIT = 10_000
ACTIVE = ("Scheduled", "Running")
QUERY_NOT_FOUND = "The specified query does not exist."
ONE_SOURCE = ("Exactly one of logGroupName, logGroupNames and logGroupIdentifiers must be "
              "specified.")


def malformed(e: insights.QueryError) -> MalformedQueryException:
    """AWS's MalformedQueryException: the message, and ``queryCompileError`` with the
    offsets for clients that read it (``fields`` is rendered into the error body)."""
    err = MalformedQueryException(f"{e.message} (at characters {e.start}-{e.end})")
    err.fields = {"queryCompileError": {  # type: ignore[attr-defined]
        "location": {"startCharOffset": e.start, "endCharOffset": e.end},
        "message": e.message}}
    return err


def _group_refs(params: dict[str, Any]) -> list[str]:
    given = [k for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if params.get(k)]
    if len(given) != 1:
        raise InvalidParameterException(ONE_SOURCE)
    refs = params[given[0]]
    refs = [refs] if isinstance(refs, str) else list(dict.fromkeys(refs))
    if len(refs) > MAX_GROUPS:
        raise InvalidParameterException(
            f"A query can search at most {MAX_GROUPS} log groups; this one names {len(refs)}.")
    return refs


def _groups(ctx: RequestContext, refs: list[str]) -> list[Row]:
    rows = []
    for ref in refs:
        name = names.group_name(ctx, {"logGroupIdentifier": ref})
        row = logs.group(ctx.db, ctx.account_id, ctx.region, name) if name else None
        if row is None:
            raise ResourceNotFoundException(
                f"Log group '{ref}' does not exist for account ID '{ctx.account_id}'")
        rows.append(row)
    return rows


def _query_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    refs = [params.get("logGroupName")] + list(params.get("logGroupNames") or []) \
        + list(params.get("logGroupIdentifiers") or [])
    return [names.request_group_arn(ctx, {"logGroupIdentifier": r}) for r in refs if r] or \
        [names.all_groups(ctx.region, ctx.account_id)]


def _row(ctx: RequestContext, query_id: str) -> Row:
    row = ctx.db.execute(select(logs_queries).where(
        Q.query_id == query_id, Q.account_id == ctx.account_id, Q.region == ctx.region)).first()
    if row is None:
        raise ResourceNotFoundException(QUERY_NOT_FOUND)
    return row


def _check_language(params: dict[str, Any]) -> None:
    language = params.get("queryLanguage") or "CWLI"
    if language != "CWLI":
        raise InvalidParameterException(
            f"Corral runs Logs Insights QL (queryLanguage CWLI) only; {language} queries are "
            "not implemented.")


class QueryOperations:
    @acts_on(_query_arns)
    def start_query(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        _check_language(params)
        groups = _groups(ctx, _group_refs(params))
        start, end = params["startTime"], params["endTime"]
        if end < start:
            raise InvalidParameterException("endTime must be greater than or equal to startTime.")
        try:
            insights.compile(params["queryString"])
        except insights.QueryError as e:
            raise malformed(e) from None
        active = ctx.db.execute(select(func.count()).select_from(logs_queries).where(
            Q.account_id == ctx.account_id, Q.region == ctx.region,
            Q.status.in_(ACTIVE))).scalar()
        if active >= MAX_CONCURRENT:
            raise LimitExceededException(
                f"Account has reached the limit of {MAX_CONCURRENT} concurrent queries.")
        query_id = str(uuid.uuid4())
        ctx.db.execute(logs_queries.insert().values(
            query_id=query_id, account_id=ctx.account_id, region=ctx.region,
            status="Scheduled", created_at=now_ms(), doc={
                "queryString": params["queryString"], "queryLanguage": "CWLI",
                "logGroupNames": [g.name for g in groups], "groupIds": [g.id for g in groups],
                "startTime": start, "endTime": end,
                "limit": params.get("limit") or DEFAULT_LIMIT,
                "userIdentity": ctx.principal.arn, "results": [], "statistics": {}}))
        emit(ctx.db, "logs.query.started", query_id=query_id)
        return {"queryId": query_id}

    def get_query_results(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = _row(ctx, params["queryId"])
        doc = row.doc
        results = doc.get("results") or []
        start = _offset(params.get("nextToken"))
        size = params.get("maxItems") or len(results) or 1
        page = results[start:start + size]
        stats = {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0,
                 **(doc.get("statistics") or {})}
        out: dict[str, Any] = {"queryLanguage": "CWLI", "results": page, "statistics": stats,
                               "status": row.status}
        if start + size < len(results):
            out["nextToken"] = pagination.encode({"o": start + size})
        return out

    def stop_query(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = _row(ctx, params["queryId"])
        stopped = ctx.db.execute(update(logs_queries).where(
            Q.query_id == row.query_id, Q.status.in_(ACTIVE)).values(
            status="Cancelled", doc={**row.doc, "endedAt": now_ms()})).rowcount
        if stopped:
            emit(ctx.db, "logs.query.stopped", query_id=row.query_id)
        return {"success": bool(stopped)}

    def describe_queries(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        language = params.get("queryLanguage")
        if language and language != "CWLI":
            return {"queries": []}  # Corral runs no other language's queries
        q = select(logs_queries).where(Q.account_id == ctx.account_id, Q.region == ctx.region)
        if params.get("status"):
            q = q.where(Q.status == params["status"])
        after = _describe_position(params.get("nextToken"))
        if after is not None:  # newest first: (created_at, query_id) descending
            q = q.where((Q.created_at < after[0])
                        | ((Q.created_at == after[0]) & (Q.query_id < after[1])))
        wanted = params.get("maxResults") or 1000
        group = params.get("logGroupName")
        out, last = [], None
        for row in ctx.db.execute(q.order_by(Q.created_at.desc(), Q.query_id.desc())):
            last = row
            if group and group not in row.doc.get("logGroupNames", []):
                continue
            out.append(query_info(row))
            if len(out) == wanted:
                break
        result: dict[str, Any] = {"queries": out}
        if len(out) == wanted and last is not None:
            result["nextToken"] = pagination.encode({"c": last.created_at, "q": last.query_id})
        return result


def query_info(row: Row) -> dict[str, Any]:
    doc = row.doc
    info: dict[str, Any] = {
        "queryLanguage": "CWLI", "queryId": row.query_id, "queryString": doc["queryString"],
        "status": row.status, "createTime": row.created_at,
        "logGroupName": (doc.get("logGroupNames") or [None])[0],
        "bytesScanned": float((doc.get("statistics") or {}).get("bytesScanned", 0.0)),
        "userIdentity": doc.get("userIdentity")}
    if doc.get("endedAt"):
        info["queryDuration"] = doc["endedAt"] - row.created_at
    return {k: v for k, v in info.items() if v is not None}


def _offset(token: str | None) -> int:
    try:
        cursor = pagination.decode(token, o=int)
    except ValueError:
        raise InvalidParameterException(INVALID_TOKEN) from None
    return 0 if cursor is None else max(cursor["o"], 0)


def _describe_position(token: str | None) -> tuple[int, str] | None:
    try:
        cursor = pagination.decode(token, c=int, q=str)
    except ValueError:
        raise InvalidParameterException(INVALID_TOKEN) from None
    return None if cursor is None else (cursor["c"], cursor["q"])
