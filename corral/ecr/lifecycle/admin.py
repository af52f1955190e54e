"""Corral's own lifecycle and GC actions (``POST /_corral/api/<action>``), used by
``corral lifecycle run``, ``corral lifecycle history`` and ``corral gc``.

- ``lifecycle/run`` ``{"repository"?: name, "now"?: ISO-8601}``: apply the caller's
  account+region policies now (or one repository's), then collect garbage. ``now`` plans as if
  it were that time — for tests and demos only; deletions and audit records still carry the
  real time.
- ``lifecycle/history`` ``{"repository"?: name, "limit"?: 1-1000}``: audit records, newest
  first.
- ``gc`` ``{}``: one garbage-collection pass over the whole blob store (blobs are shared by
  every account, so the pass is too; it reports counts only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.admin import AdminApi
from corral.aws.context import RequestContext
from corral.aws.errors import ValidationException
from corral.ecr import repositories
from corral.ecr.errors import LifecyclePolicyNotFoundException, RepositoryNotFoundException
from corral.ecr.lifecycle import records
from corral.ecr.lifecycle.executor import LifecycleRunner
from corral.registry.gc import GarbageCollector


def _string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ValidationException(f"'{key}' must be a non-empty string")
    return value


def _now(body: dict[str, Any]) -> datetime | None:
    text = _string(body, "now")
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationException(f"'now' must be an ISO-8601 time, not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _event_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"repositoryName": row["repository_name"], "imageDigest": row["image_digest"],
            "imageTags": row["image_tags"], "appliedRulePriority": row["rule_priority"],
            "expiredAt": row["expired_at"].isoformat(), "actor": row["actor"]}


def register(admin: AdminApi, runner: LifecycleRunner, gc: GarbageCollector) -> None:
    def check_repository(ctx: RequestContext, name: str) -> None:
        with runner.store.transaction(write=False) as db:
            repo = repositories.get(db, ctx.account_id, ctx.region, name)
            if repo is None:
                raise RepositoryNotFoundException(name, ctx.account_id)
            if records.get_policy(db, repo.id) is None:
                raise LifecyclePolicyNotFoundException(name, ctx.account_id)

    @admin.action("lifecycle/run", transaction=False)
    def run(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        name, now = _string(body, "repository"), _now(body)
        if name is not None:
            check_repository(ctx, name)
        report = runner.run(account_id=ctx.account_id, region=ctx.region, repository=name,
                            now=now, actor=ctx.principal.arn)
        return {"repositories": report.repositories,
                "expired": [_event_view(r) for r in report.expired],
                "gc": report.gc.as_dict() if report.gc else None}

    @admin.action("lifecycle/history")
    def history(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        limit = body.get("limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise ValidationException("'limit' must be an integer from 1 to 1000")
        rows = records.history(ctx.db, ctx.account_id, ctx.region,
                               repository=_string(body, "repository"), limit=limit)
        return {"events": [_event_view(r) for r in rows]}

    @admin.action("gc", transaction=False)
    def collect(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return {"gc": gc.collect().as_dict()}
