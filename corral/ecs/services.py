"""Service rows: the Service shape as a JSON document (deployments and events included).

The API (``service_ops``) writes what the user asks for — the service, its desiredCount, a new
PRIMARY deployment on UpdateService, DRAINING on DeleteService — and the scheduler
(``scheduler``, carrying out the pure ``service_planner``) writes everything that follows from
running it: deployment counts and rolloutState, events, runningCount/pendingCount, INACTIVE.

Document (timestamps are epoch seconds, as in task documents):

    {…the Service shape…,
     "deployments": [Deployment, …]      PRIMARY first; INACTIVE ones are dropped from here
     "events": [ServiceEvent, …]          newest first, at most 100
     "x-corral": {
        "history": [Deployment, …]        every deployment ever made, for
                                          List/DescribeServiceDeployments (newest first)
        "throttle": {"failures": n, "until": t}   start back-off (reference §3.2)
        "steady": bool                    the last pass found the service steady
     }}

A Deployment carries the Deployment shape plus ``x-breaker`` {"failures": n} (the circuit
breaker's count) — stripped by ``view``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from corral.ecs.event_stream import SERVICE_STATE, service_changes
from corral.store.db import emit
from corral.store.schema import ecs_services

PRIVATE = "x-corral"
BREAKER = "x-breaker"
MAX_EVENTS = 100


@dataclass
class ServiceRow:
    account_id: str
    region: str
    cluster: str
    name: str
    doc: dict[str, Any]


def new_deployment_id(rng: random.Random | None = None) -> str:
    """``ecs-svc/`` and 19 decimal digits (reference §3.5)."""
    return f"ecs-svc/{(rng or random).randrange(10**18, 10**19)}"


def _row(r) -> ServiceRow:
    return ServiceRow(r.account_id, r.region, r.cluster, r.name, r.doc)


def insert(db: Connection, account: str, region: str, cluster: str, doc: dict) -> None:
    db.execute(ecs_services.insert().values(
        account_id=account, region=region, cluster=cluster, name=doc["serviceName"],
        status=doc["status"], created_at=datetime.fromtimestamp(doc["createdAt"], UTC),
        doc=doc))
    changes = service_changes(None, doc)
    if changes:  # the first deployment is IN_PROGRESS from the start
        emit(db, SERVICE_STATE, account=account, region=region, service=doc["serviceArn"],
             cluster=doc["clusterArn"], at=time.time(), **changes)


def get(db: Connection, account: str, region: str, cluster: str, name: str
        ) -> ServiceRow | None:
    s = ecs_services.c
    r = db.execute(select(ecs_services).where(and_(
        s.account_id == account, s.region == region, s.cluster == cluster, s.name == name))
    ).first()
    return _row(r) if r else None


def in_cluster(db: Connection, account: str, region: str, cluster: str, *,
               statuses: tuple[str, ...] = ("ACTIVE",)) -> list[ServiceRow]:
    s = ecs_services.c
    rows = db.execute(select(ecs_services).where(and_(
        s.account_id == account, s.region == region, s.cluster == cluster,
        s.status.in_(statuses))).order_by(s.name))
    return [_row(r) for r in rows]


def scheduled(db: Connection) -> list[ServiceRow]:
    """Every service the scheduler keeps: ACTIVE and DRAINING ones, of every account."""
    rows = db.execute(select(ecs_services).where(
        ecs_services.c.status.in_(("ACTIVE", "DRAINING"))))
    return [_row(r) for r in rows]


def save(db: Connection, row: ServiceRow) -> None:
    """Write the document back and announce what changed since the stored version (new
    events, rolloutState changes) on the event stream (corral.ecs.event_stream)."""
    s = ecs_services.c
    where = and_(s.account_id == row.account_id, s.region == row.region,
                 s.cluster == row.cluster, s.name == row.name)
    old = db.execute(select(s.doc).where(where)).scalar()
    db.execute(update(ecs_services).where(where).values(status=row.doc["status"], doc=row.doc))
    changes = service_changes(old, row.doc)
    if changes:
        emit(db, SERVICE_STATE, account=row.account_id, region=row.region,
             service=row.doc["serviceArn"], cluster=row.doc["clusterArn"], at=time.time(),
             **changes)


def remove(db: Connection, row: ServiceRow) -> None:
    """Delete a service's row (an INACTIVE service whose name is used again). Its tags are
    the caller's: they live in the shared tag store, keyed by the service ARN."""
    s = ecs_services.c
    db.execute(delete(ecs_services).where(and_(
        s.account_id == row.account_id, s.region == row.region, s.cluster == row.cluster,
        s.name == row.name)))


def add_event(doc: dict, message: str, now: float, event_id: str) -> None:
    doc["events"] = [{"id": event_id, "createdAt": now, "message": message},
                     *doc.get("events", [])][:MAX_EVENTS]


def view(row: ServiceRow, tags: list[dict] | None = None) -> dict[str, Any]:
    out = {k: v for k, v in row.doc.items() if k != PRIVATE}
    out["deployments"] = [{k: v for k, v in d.items() if k != BREAKER}
                          for d in out.get("deployments", [])]
    if tags is not None:
        out["tags"] = tags
    return out
