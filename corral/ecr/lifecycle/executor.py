"""Carrying out a lifecycle policy: evaluate a repository (shared by preview and run), expire
what the plan says, audit it; the runner that does it for every repository; the controller.

    run(scope) ─ for each repository with a policy, one write transaction:
                   load images ─ plan (pure) ─ keep index children ─ remove ─ audit ─ stamp
               ─ then garbage collection (blobs no image references any more)

Planning inside the repository's write transaction is what keeps concurrent pushes safe: a
push commits either before (and is planned with, as the newest image) or after (and is not
touched). Preview and run call the same :func:`evaluate`, so a run expires exactly what a
preview of the same state showed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from corral.controller import Controller
from corral.ecr import images, repositories
from corral.ecr.images import Image
from corral.ecr.lifecycle import records
from corral.ecr.lifecycle.planner import PlanImage, plan
from corral.ecr.lifecycle.policy import Policy, PolicyInvalid, parse
from corral.ecr.repositories import Repository
from corral.registry.gc import GarbageCollector, GcReport
from corral.store import Store, emit
from corral.store.schema import ecr_image_refs, ecr_images

log = logging.getLogger("corral.lifecycle")
CONTROLLER_ACTOR = "lifecycle"


@dataclass(frozen=True)
class Expiry:
    image: Image
    tags: list[str]
    rule_priority: int


def _index_children(db: Connection, repo_id: int) -> dict[str, set[str]]:
    """child manifest digest -> digests of the indexes in this repository that list it."""
    i, r = ecr_images.c, ecr_image_refs.c
    rows = db.execute(select(r.digest, i.digest).join(ecr_images, i.id == r.image_id)
                      .where(i.repository_id == repo_id, r.kind == "manifest"))
    out: dict[str, set[str]] = {}
    for child, parent in rows:
        out.setdefault(child, set()).add(parent)
    return out


def _keep_index_children(expiring: dict[str, int], parents: dict[str, set[str]]) -> None:
    """Drop from ``expiring`` every image an index that stays still lists (repeated, since
    keeping an index keeps its children). Corral's rule, not ECR's documented one: deleting
    a child would leave a surviving multi-platform image broken."""
    changed = True
    while changed:
        changed = False
        for digest in list(expiring):
            if any(p not in expiring for p in parents.get(digest, ())):
                del expiring[digest]
                changed = True


def evaluate(db: Connection, repo: Repository, policy: Policy, now: datetime) -> list[Expiry]:
    """What ``policy`` expires in ``repo`` at ``now``: oldest first."""
    found = images.all_images(db, repo.id)
    tags = images.tags_of(db, [i.id for i in found])
    plan_images = [PlanImage(i.digest, tuple(tags[i.id]), i.pushed_at, i.last_pulled_at, i.id)
                   for i in found]
    expiring = plan(policy.rules, plan_images, now=now)
    if expiring:
        _keep_index_children(expiring, _index_children(db, repo.id))
    chosen = [i for i in found if i.digest in expiring]
    chosen.sort(key=lambda i: (i.pushed_at, i.id))
    return [Expiry(i, tags[i.id], expiring[i.digest]) for i in chosen]


def expire_repository(db: Connection, repo: Repository, *, now: datetime, actor: str,
                      evaluated_at: datetime) -> list[dict[str, Any]]:
    """Apply the repository's stored policy in the caller's transaction; the audit rows."""
    stored = records.get_policy(db, repo.id)
    if stored is None:
        return []
    try:
        policy = parse(stored.policy_text)
    except PolicyInvalid as e:  # stored before a validation rule existed: skip, say so
        log.warning("lifecycle policy of %s is no longer valid, not applied: %s", repo.arn,
                    e.detail)
        return []
    expired = evaluate(db, repo, policy, now)
    for e in expired:
        images.remove_image(db, e.image)
        # Published after the commit, for whoever keeps per-image state (scan findings).
        emit(db, "image.expired", image_id=e.image.id, repository_id=repo.id,
             digest=e.image.digest)
    rows = [{"account_id": repo.account_id, "region": repo.region,
             "repository_name": repo.name, "image_digest": e.image.digest,
             "image_tags": e.tags, "rule_priority": e.rule_priority,
             "expired_at": evaluated_at, "actor": actor} for e in expired]
    records.record_expiry(db, rows)
    records.mark_evaluated(db, repo.id, evaluated_at)
    for row in rows:
        log.info("lifecycle expired %s@%s tags=%s rule=%s by %s", row["repository_name"],
                 row["image_digest"], row["image_tags"], row["rule_priority"], actor)
    return rows


@dataclass
class RunReport:
    expired: list[dict[str, Any]] = field(default_factory=list)
    repositories: int = 0
    gc: GcReport | None = None


class LifecycleRunner:
    """Runs policies for a scope (all, an account+region, or one repository), then GC."""

    def __init__(self, store: Store, gc: GarbageCollector | None):
        self.store = store
        self.gc = gc
        self._lock = threading.Lock()  # the controller and `corral lifecycle run` take turns

    def run(self, *, account_id: str | None = None, region: str | None = None,
            repository: str | None = None, now: datetime | None = None,
            actor: str = CONTROLLER_ACTOR) -> RunReport:
        report = RunReport()
        with self._lock:
            with self.store.transaction(write=False) as db:
                targets = records.repositories_with_policies(db, account_id, region)
            if repository is not None:
                targets = [t for t in targets if t[2] == repository]
            for account, reg, name in targets:
                report.expired += self._run_one(account, reg, name, now, actor)
                report.repositories += 1
            if self.gc is not None:
                report.gc = self.gc.collect()
        return report

    def _run_one(self, account: str, region: str, name: str, now: datetime | None,
                 actor: str) -> list[dict[str, Any]]:
        with self.store.transaction() as db:  # one repository, one transaction
            repo = repositories.get(db, account, region, name)
            if repo is None:  # deleted since we listed it
                return []
            evaluated_at = datetime.now(UTC)
            return expire_repository(db, repo, now=now or evaluated_at, actor=actor,
                                     evaluated_at=evaluated_at)


class LifecycleController(Controller):
    """Applies every repository's policy every ``interval`` seconds (AWS: within 24 hours)."""

    name = "lifecycle"

    def __init__(self, runner: LifecycleRunner, interval: float):
        super().__init__()
        self.runner = runner
        self.interval = max(interval, 1.0)  # 0 would spin
        self._first = True

    def reconcile(self) -> None:
        if self._first:  # the loop calls us at start; the first pass is one interval later
            self._first = False
            return
        report = self.runner.run()
        if report.expired or (report.gc and report.gc.blobs_deleted):
            log.info("lifecycle pass: %d images expired in %d repositories; gc %s",
                     len(report.expired), report.repositories, report.gc)
