"""What the data plane needs to know, read from the store in one transaction.

The balancer's reconcile reads a :class:`Snapshot` — plain frozen data, no rows or
connections — and hands it to the event loop, which makes the running proxies match it. Only
target groups some listener's rule forwards to are in it: the others receive no traffic and
are not health-checked (DescribeTargetHealth shows their targets ``unused`` /
``Target.NotInUse``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from corral.elb import health, records, targets
from corral.store.schema import (
    elb_listeners,
    elb_load_balancers,
    elb_rules,
    elb_target_groups,
    elb_targets,
)


@dataclass(frozen=True)
class TargetSpec:
    target_id: str
    port: int
    host: str  # where to connect (targets.address)
    state: str
    reason: str | None
    description: str | None
    drain_until: datetime | None
    updated_at: datetime | None = None  # the row's last write: tells a stale read from news

    @property
    def key(self) -> tuple[str, int]:
        return self.target_id, self.port


@dataclass(frozen=True)
class GroupSpec:
    arn: str
    algorithm: str
    slow_start: float
    health: health.Settings
    targets: tuple[TargetSpec, ...]


@dataclass(frozen=True)
class ListenerSpec:
    arn: str
    load_balancer_arn: str
    port: int
    protocol: str
    rules: tuple[dict[str, Any], ...]  # Rule docs, any order
    idle_timeout: float


@dataclass(frozen=True)
class Snapshot:
    listeners: tuple[ListenerSpec, ...]
    groups: dict[str, GroupSpec]
    provisioning: tuple[str, ...]  # load balancers still to be marked active

    def drained_due(self, now: datetime) -> bool:
        return any(t.state == "draining" and t.drain_until is not None and t.drain_until <= now
                   for g in self.groups.values() for t in g.targets)


def read(db: Connection) -> Snapshot:
    balancers = {r.arn: r.doc for r in db.execute(select(elb_load_balancers))}
    rules_by_listener: dict[str, list[dict]] = {}
    for listener_arn, doc in db.execute(select(elb_rules.c.listener_arn, elb_rules.c.doc)):
        rules_by_listener.setdefault(listener_arn, []).append(records.public(doc))
    listeners = tuple(_listener(row, balancers.get(row.load_balancer_arn) or {},
                                rules_by_listener.get(row.arn, []))
                      for row in db.execute(select(elb_listeners).order_by(elb_listeners.c.arn))
                      if row.load_balancer_arn in balancers)
    used = {arn for spec in listeners for doc in spec.rules
            for arn in records.forwarded_to(doc.get("Actions") or [])}
    groups = {row.arn: _group(db, row) for row in db.execute(
        select(elb_target_groups).where(elb_target_groups.c.arn.in_(used)))}
    provisioning = tuple(arn for arn, doc in balancers.items()
                         if (doc.get("State") or {}).get("Code") == "provisioning")
    return Snapshot(listeners, groups, provisioning)


def _listener(row, lb_doc: dict, rules: list[dict]) -> ListenerSpec:
    attrs = records.private(dict(lb_doc)).get("attributes", {})
    return ListenerSpec(row.arn, row.load_balancer_arn, row.port,
                        row.doc.get("Protocol", "HTTP"), tuple(rules),
                        float(attrs.get("idle_timeout.timeout_seconds", "60")))


def _group(db: Connection, row) -> GroupSpec:
    attrs = records.private(dict(row.doc)).get("attributes", {})
    rows = db.execute(select(elb_targets).where(elb_targets.c.target_group_arn == row.arn))
    specs = tuple(TargetSpec(t.target_id, t.port, targets.address(row.doc, t.target_id),
                             t.state, t.reason, t.description, t.drain_until, t.updated_at)
                  for t in rows)
    return GroupSpec(row.arn, attrs.get("load_balancing.algorithm.type", "round_robin"),
                     float(attrs.get("slow_start.duration_seconds", "0")),
                     health.Settings.from_doc(row.doc), specs)
