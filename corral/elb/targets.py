"""The target registry: which targets a target group has and what state each is in.

Used by the ELBv2 API (Register/DeregisterTargets, DescribeTargetHealth), the data plane
(health-check transitions, expiring drained targets) and ECS (registering a service's tasks).
One row per (target group, id, port):

    register     ─> initial (Elb.RegistrationInProgress); a draining target comes back
    set_state    ─> healthy | unhealthy | initial, by the data plane's health checks
    deregister   ─> draining (Target.DeregistrationInProgress) until now + the group's
                    deregistration_delay.timeout_seconds
    expire_drained ─> the row is gone: the target is ``unused`` / Target.NotRegistered

``unused`` is never stored: DescribeTargetHealth computes it for a target that is not
registered, for every target of a group no load balancer forwards to (Target.NotInUse), and
for a draining target whose delay has passed before the data plane removed it. Every write
emits ``elb.changed`` with the target group's ARN.

Target ids: ``ip`` targets are IPv4 addresses; ``instance`` targets are the ec2InstanceId of
an ECS container instance of the account and region — this machine, reached on loopback.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from corral.elb import records
from corral.elb.errors import InvalidTarget, TargetGroupNotFound, TooManyTargets
from corral.store.db import emit
from corral.store.schema import ecs_container_instances, elb_target_groups, elb_targets

MAX_TARGETS = 1000  # per target group (AWS's quota: targets per application load balancer)
LOOPBACK = "127.0.0.1"
DESCRIPTIONS = {  # reference §8.2, exact
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Elb.InternalError": "Health checks failed due to an internal error",
    "Elb.RegistrationInProgress": "Target registration is in progress",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.HealthCheckDisabled": "Health checks are disabled",
    "Target.InvalidState": "Target is in an invalid state",
    "Target.IpUnusable": "The IP address cannot be used as a target, as it is in use by a "
                         "load balancer",
    "Target.NotInUse": "Target group is not configured to receive traffic from the load "
                       "balancer",
    "Target.NotRegistered": "Target is not registered to the target group",
    "Target.Timeout": "Request timed out",
}


def _group(db: Connection, tg_row_or_arn: Row | str) -> Row:
    if not isinstance(tg_row_or_arn, str):
        return tg_row_or_arn
    row = db.execute(select(elb_target_groups)
                     .where(elb_target_groups.c.arn == tg_row_or_arn)).first()
    if row is None:
        raise TargetGroupNotFound("One or more target groups not found")
    return row


def _key(tg: Row, target: dict[str, Any]) -> tuple[str, int]:
    return target["Id"], int(target.get("Port") or tg.doc["Port"])


def _rows(db: Connection, tg_arn: str) -> dict[tuple[str, int], Row]:
    rows = db.execute(select(elb_targets).where(elb_targets.c.target_group_arn == tg_arn))
    return {(r.target_id, r.port): r for r in rows}


# --- checks ----------------------------------------------------------------------------------

def check(db: Connection, tg: Row, targets: list[dict[str, Any]]) -> None:
    """Raise InvalidTarget for ids the group's target type cannot take (AWS's texts)."""
    if tg.doc["TargetType"] == "instance":
        known = set(db.execute(select(ecs_container_instances.c.ec2_instance_id).where(
            ecs_container_instances.c.account_id == tg.account_id,
            ecs_container_instances.c.region == tg.region,
            ecs_container_instances.c.status != "INACTIVE")).scalars())
        bad = [t["Id"] for t in targets if t["Id"] not in known]
        if bad:
            raise InvalidTarget("The following targets are not valid instances: "
                                + ", ".join(f"'{b}'" for b in bad))
        return
    for target in targets:
        try:
            ipaddress.IPv4Address(target["Id"])
        except ValueError:
            raise InvalidTarget(f"The IP address '{target['Id']}' is not a valid IPv4 "
                                "address") from None


def address(tg_doc: dict[str, Any], target_id: str) -> str:
    """Where the data plane connects to a target: an ip target's own address; an instance
    target is this machine (bridge-mode host ports are reachable on loopback)."""
    return LOOPBACK if tg_doc["TargetType"] == "instance" else target_id


# --- writes ----------------------------------------------------------------------------------

def register(db: Connection, tg_row_or_arn: Row | str, targets: list[dict[str, Any]],
             now: datetime) -> list[dict[str, Any]]:
    """Register (or re-register) targets; returns them as [{Id, Port, AvailabilityZone?}]."""
    tg = _group(db, tg_row_or_arn)
    check(db, tg, targets)
    targets = list({_key(tg, t): t for t in targets}.values())  # one row per (Id, Port)
    existing = _rows(db, tg.arn)
    added = {_key(tg, t): t for t in targets if _key(tg, t) not in existing}
    if len(existing) + len(added) > MAX_TARGETS:
        raise TooManyTargets(f"You've reached the limit on the number of targets registered "
                             f"to target group '{tg.doc['TargetGroupName']}' ({MAX_TARGETS})")
    out = []
    for target in targets:
        target_id, port = _key(tg, target)
        row = existing.get((target_id, port))
        if row is None:
            db.execute(elb_targets.insert().values(
                target_group_arn=tg.arn, target_id=target_id, port=port,
                availability_zone=target.get("AvailabilityZone"), registered_at=now,
                updated_at=now, **_initial()))
        elif row.state == "draining":  # re-registering a draining target: back in service
            db.execute(_where(update(elb_targets), tg.arn, target_id, port)
                       .values(registered_at=now, updated_at=now, drain_until=None,
                               **_initial()))
        out.append(_target(target_id, port, target.get("AvailabilityZone")))
    emit(db, "elb.changed", arn=tg.arn)
    return out


def _initial() -> dict[str, str]:
    reason = "Elb.RegistrationInProgress"
    return {"state": "initial", "reason": reason, "description": DESCRIPTIONS[reason]}


def _where(stmt, tg_arn: str, target_id: str, port: int):
    return stmt.where(elb_targets.c.target_group_arn == tg_arn,
                      elb_targets.c.target_id == target_id, elb_targets.c.port == port)


def registered(db: Connection, tg_row_or_arn: Row | str, targets: list[dict[str, Any]],
               now: datetime) -> list[dict[str, Any]]:
    """The given targets that are registered (and not drained away): the rest of the list is
    what DeregisterTargets refuses."""
    tg = _group(db, tg_row_or_arn)
    rows = _rows(db, tg.arn)
    return [t for t in targets if _key(tg, t) in rows and not _gone(rows[_key(tg, t)], now)]


def deregister(db: Connection, tg_arn: str, targets: list[dict[str, Any]],
               now: datetime) -> None:
    """Start draining the targets; unknown or already draining ones are left as they are."""
    tg = _group(db, tg_arn)
    delay = int(records.private(tg.doc)["attributes"]["deregistration_delay.timeout_seconds"])
    reason = "Target.DeregistrationInProgress"
    for target in targets:
        target_id, port = _key(tg, target)
        db.execute(_where(update(elb_targets), tg.arn, target_id, port)
                   .where(elb_targets.c.state != "draining")
                   .values(state="draining", reason=reason, description=DESCRIPTIONS[reason],
                           drain_until=now + timedelta(seconds=delay), updated_at=now))
    emit(db, "elb.changed", arn=tg.arn)


def set_state(db: Connection, tg_arn: str, target_id: str, port: int, state: str,
              reason: str | None, description: str | None, now: datetime) -> bool:
    """A health-check transition (the data plane's); False if the target is gone or
    draining (deregistration wins over a check that was in flight)."""
    result = db.execute(_where(update(elb_targets), tg_arn, target_id, port)
                        .where(elb_targets.c.state != "draining")  # a check in flight when
                        .values(state=state, reason=reason,    # DeregisterTargets committed
                                description=description, updated_at=now))
    if result.rowcount:
        emit(db, "elb.changed", arn=tg_arn)
    return bool(result.rowcount)


def expire_drained(db: Connection, now: datetime) -> list[tuple[str, str, int]]:
    """Remove draining targets whose delay has passed; returns (tg_arn, id, port) of each."""
    done = db.execute(select(elb_targets.c.target_group_arn, elb_targets.c.target_id,
                             elb_targets.c.port)
                      .where(elb_targets.c.state == "draining",
                             elb_targets.c.drain_until <= now)).all()
    for tg_arn, target_id, port in done:
        db.execute(_where(delete(elb_targets), tg_arn, target_id, port))
    for tg_arn in {d[0] for d in done}:
        emit(db, "elb.changed", arn=tg_arn)
    return [tuple(d) for d in done]


def remove_all(db: Connection, tg_arn: str) -> None:
    db.execute(delete(elb_targets).where(elb_targets.c.target_group_arn == tg_arn))


# --- reads -----------------------------------------------------------------------------------

def _gone(row: Row, now: datetime) -> bool:
    return row.state == "draining" and row.drain_until is not None and row.drain_until <= now


def _target(target_id: str, port: int, zone: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"Id": target_id, "Port": port}
    if zone:
        out["AvailabilityZone"] = zone
    return out


def health(db: Connection, tg_arn: str, targets: list[dict[str, Any]] | None,
           now: datetime | None = None, *, in_use: bool | None = None) -> list[dict[str, Any]]:
    """TargetHealthDescriptions of the asked-for targets (all registered ones if None).
    ``in_use``: whether a load balancer forwards to the group (computed when not given)."""
    tg = _group(db, tg_arn)
    now = now or datetime.now(UTC)
    if in_use is None:
        refs = records.references(db, tg.account_id, tg.region)
        in_use = bool(refs.get(tg.arn))
    rows = {k: r for k, r in _rows(db, tg.arn).items() if not _gone(r, now)}
    keys = [_key(tg, t) for t in targets] if targets is not None else sorted(rows)
    return [_description(tg, key, rows.get(key), in_use) for key in keys]


def _description(tg: Row, key: tuple[str, int], row: Row | None,
                 in_use: bool) -> dict[str, Any]:
    target_id, port = key
    hc_port = tg.doc["HealthCheckPort"]
    out: dict[str, Any] = {
        "Target": _target(target_id, port, row.availability_zone if row else None),
        "HealthCheckPort": str(port) if hc_port == "traffic-port" else hc_port}
    if row is None:
        out["TargetHealth"] = _unused("Target.NotRegistered")
    elif not in_use and row.state != "draining":
        out["TargetHealth"] = _unused("Target.NotInUse")
    else:
        out["TargetHealth"] = {"State": row.state}
        if row.reason:
            out["TargetHealth"].update(Reason=row.reason, Description=row.description)
    return out


def _unused(reason: str) -> dict[str, str]:
    return {"State": "unused", "Reason": reason, "Description": DESCRIPTIONS[reason]}
