"""Lifecycle state in the store: a repository's policy, its latest preview, and the audit
records of expired images. Every function works in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from corral.store.schema import (
    ecr_lifecycle_events,
    ecr_lifecycle_policies,
    ecr_lifecycle_previews,
    ecr_repositories,
)


@dataclass(frozen=True)
class StoredPolicy:
    repository_id: int
    policy_text: str
    updated_at: datetime
    last_evaluated_at: datetime | None


@dataclass(frozen=True)
class Preview:
    repository_id: int
    policy_text: str
    status: str
    results: list[dict[str, Any]]  # {digest, tags, pushedAt (epoch s), rulePriority}
    created_at: datetime


# --- policies ------------------------------------------------------------------------------


def get_policy(db: Connection, repo_id: int) -> StoredPolicy | None:
    row = db.execute(select(ecr_lifecycle_policies).where(
        ecr_lifecycle_policies.c.repository_id == repo_id)).first()
    return StoredPolicy(*row) if row else None


def put_policy(db: Connection, repo_id: int, text: str, now: datetime) -> None:
    t = ecr_lifecycle_policies.c
    if get_policy(db, repo_id) is None:
        db.execute(ecr_lifecycle_policies.insert().values(
            repository_id=repo_id, policy_text=text, updated_at=now, last_evaluated_at=None))
    else:
        db.execute(ecr_lifecycle_policies.update().where(t.repository_id == repo_id)
                   .values(policy_text=text, updated_at=now))


def mark_evaluated(db: Connection, repo_id: int, now: datetime) -> None:
    db.execute(ecr_lifecycle_policies.update().where(
        ecr_lifecycle_policies.c.repository_id == repo_id).values(last_evaluated_at=now))


def delete_policy(db: Connection, repo_id: int) -> None:
    db.execute(delete(ecr_lifecycle_policies).where(
        ecr_lifecycle_policies.c.repository_id == repo_id))


def forget_repository(db: Connection, repo_id: int) -> None:
    """The repository is being deleted: its policy and preview go with it (audit stays)."""
    delete_policy(db, repo_id)
    db.execute(delete(ecr_lifecycle_previews).where(
        ecr_lifecycle_previews.c.repository_id == repo_id))


def repositories_with_policies(db: Connection, account_id: str | None = None,
                               region: str | None = None) -> list[tuple[str, str, str]]:
    """(account, region, name) of every repository that has a policy, optionally scoped."""
    r, p = ecr_repositories.c, ecr_lifecycle_policies.c
    q = select(r.account_id, r.region, r.name).join(
        ecr_lifecycle_policies, p.repository_id == r.id)
    if account_id is not None:
        q = q.where(r.account_id == account_id)
    if region is not None:
        q = q.where(r.region == region)
    return [tuple(row) for row in db.execute(q.order_by(r.account_id, r.region, r.name))]


# --- previews ------------------------------------------------------------------------------


def put_preview(db: Connection, repo_id: int, text: str, results: list[dict[str, Any]],
                now: datetime) -> None:
    db.execute(delete(ecr_lifecycle_previews).where(
        ecr_lifecycle_previews.c.repository_id == repo_id))
    db.execute(ecr_lifecycle_previews.insert().values(
        repository_id=repo_id, policy_text=text, status="COMPLETE", results=results,
        created_at=now))


def get_preview(db: Connection, repo_id: int) -> Preview | None:
    row = db.execute(select(ecr_lifecycle_previews).where(
        ecr_lifecycle_previews.c.repository_id == repo_id)).first()
    return Preview(*row) if row else None


# --- audit ---------------------------------------------------------------------------------


def record_expiry(db: Connection, rows: list[dict[str, Any]]) -> None:
    """Rows: account_id, region, repository_name, image_digest, image_tags, rule_priority,
    expired_at, actor."""
    if rows:
        db.execute(ecr_lifecycle_events.insert(), rows)


def history(db: Connection, account_id: str, region: str, *, repository: str | None = None,
            limit: int = 100) -> list[dict[str, Any]]:
    """The newest audit records first."""
    t = ecr_lifecycle_events.c
    q = select(ecr_lifecycle_events).where(t.account_id == account_id, t.region == region)
    if repository:
        q = q.where(t.repository_name == repository)
    rows = db.execute(q.order_by(t.id.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]
