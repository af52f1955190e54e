"""Task rows: the Task shape as a JSON document plus the columns queries filter on.

The document's ``x-corral`` key holds what Corral needs and AWS does not show: the task
definition the task was started from, the resources it holds on its container instance, the
principal its images are pulled as, and each container's runtime facts (see ``task_engine``).
``view`` strips it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from corral.ecs.event_stream import TASK_STATE
from corral.store.db import emit
from corral.store.schema import ecs_tasks

PRIVATE = "x-corral"
ACTIVE_STATES = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING",
                 "DEPROVISIONING")


@dataclass
class TaskRow:
    account_id: str
    region: str
    task_id: str
    cluster: str
    version: int
    doc: dict[str, Any]

    @property
    def private(self) -> dict[str, Any]:
        return self.doc[PRIVATE]


def _row(r) -> TaskRow:
    return TaskRow(r.account_id, r.region, r.task_id, r.cluster, r.version, r.doc)


def insert(db: Connection, account: str, region: str, cluster: str, task_id: str,
           doc: dict[str, Any]) -> None:
    db.execute(ecs_tasks.insert().values(
        account_id=account, region=region, task_id=task_id, cluster=cluster,
        family=doc["taskDefinitionArn"].rsplit("/", 1)[1].split(":")[0],
        started_by=doc.get("startedBy"), service=doc[PRIVATE].get("service"),
        desired_status=doc["desiredStatus"], last_status=doc["lastStatus"],
        launch_type=doc["launchType"], container_instance=doc[PRIVATE].get("instance"),
        created_at=_time(doc["createdAt"]), stopped_at=None, version=doc["version"], doc=doc))
    emit(db, TASK_STATE, account=account, region=region, task=_snapshot(doc), at=time.time())


def _snapshot(doc: dict[str, Any]) -> dict[str, Any]:
    """The Task shape as ``view`` gives it, copied: the caller goes on changing ``doc`` before
    the commit publishes the event (corral.ecs.event_stream)."""
    return copy.deepcopy({k: v for k, v in doc.items() if k != PRIVATE})


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def get(db: Connection, account: str, region: str, task_id: str) -> TaskRow | None:
    t = ecs_tasks.c
    r = db.execute(select(ecs_tasks).where(t.account_id == account, t.region == region,
                                           t.task_id == task_id)).first()
    return _row(r) if r else None


def save(db: Connection, row: TaskRow, *, bump: bool = True) -> None:
    """Write the row's document back (one task state change: ``version`` + 1)."""
    doc = row.doc
    doc["version"] = row.version + (1 if bump else 0)  # never a stale copy's number
    db.execute(update(ecs_tasks).where(
        ecs_tasks.c.account_id == row.account_id, ecs_tasks.c.region == row.region,
        ecs_tasks.c.task_id == row.task_id).values(
        desired_status=doc["desiredStatus"], last_status=doc["lastStatus"],
        stopped_at=_time(doc.get("stoppedAt")), version=doc["version"], doc=doc))
    row.version = doc["version"]
    if bump:  # a visible state change: announce it (an unbumped save is Corral bookkeeping)
        emit(db, TASK_STATE, account=row.account_id, region=row.region, task=_snapshot(doc),
             at=time.time())


def query(db: Connection, account: str, region: str, cluster: str, *,
          family: str | None = None, started_by: str | None = None,
          service: str | None = None, desired: str | None = None,
          last: str | None = None, instance: str | None = None,
          launch_type: str | None = None) -> list[TaskRow]:
    t = ecs_tasks.c
    cond = [t.account_id == account, t.region == region, t.cluster == cluster]
    for col, value in ((t.family, family), (t.started_by, started_by), (t.service, service),
                       (t.desired_status, desired), (t.last_status, last),
                       (t.container_instance, instance), (t.launch_type, launch_type)):
        if value is not None:
            cond.append(col == value)
    rows = db.execute(select(ecs_tasks).where(and_(*cond)).order_by(t.created_at, t.task_id))
    return [_row(r) for r in rows]


def active(db: Connection) -> list[TaskRow]:
    """Every task on this host that is not STOPPED yet, of every account and region."""
    rows = db.execute(select(ecs_tasks).where(ecs_tasks.c.last_status.in_(ACTIVE_STATES)))
    return [_row(r) for r in rows]


def stopped_before(db: Connection, when: datetime) -> list[TaskRow]:
    t = ecs_tasks.c
    rows = db.execute(select(ecs_tasks).where(t.last_status == "STOPPED", t.stopped_at < when))
    return [_row(r) for r in rows]


def remove(db: Connection, row: TaskRow) -> None:
    t = ecs_tasks.c
    db.execute(delete(ecs_tasks).where(t.account_id == row.account_id, t.region == row.region,
                                       t.task_id == row.task_id))


def view(row: TaskRow, tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The Task shape: the document without Corral's private part. Timestamps are kept as
    epoch seconds throughout the document, which the JSON protocol sends as they are."""
    out = {k: v for k, v in row.doc.items() if k != PRIVATE}
    out["containers"] = [dict(c) for c in out.get("containers", [])]
    if tags is not None:
        out["tags"] = tags
    return out
