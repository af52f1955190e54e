"""Service tasks behind target groups (reference §8.4): register, drain, and read health.

One call per scheduler pass, inside the pass's transaction, before the planner:

    sync(db, service, task_rows, now) -> (health by task id, service event messages)

- A RUNNING task not registered yet goes into each of the service's target groups: awsvpc
  as an ``ip`` target (the task's ENI address and containerPort), bridge and host as an
  ``instance`` target (its container instance's ec2InstanceId and the container's host port).
  ``registered <n> targets in (target-group <arn>)``.
- A registered task that is stopping (the scheduler, a user's StopTask, an essential container
  exiting) is deregistered, and the task engine holds it in DEACTIVATING while its targets
  drain (no new requests; in-flight ones finish). Once every group reports it unused — the
  group's deregistration delay — the task is released (``x-corral.lb.released``) and stops.
  ``deregistered <n> targets in (target-group <arn>)``.
- Health for the planner: ``healthy`` in every group, ``unhealthy`` in any (with the group,
  port and ALB's reason), else ``initial``.

The task's ``x-corral.lb`` belongs to the scheduler; the agent carries it over when it saves.
"""

from __future__ import annotations

import contextlib
import copy
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from corral.aws.errors import AwsError
from corral.ecs import tasks
from corral.ecs.errors import InvalidParameterException
from corral.ecs.service_planner import TargetHealth
from corral.elb import records
from corral.elb import targets as elb_targets
from corral.store.db import emit
from corral.store.schema import ecs_container_instances
from corral.store.schema import elb_target_groups as elb_target_groups_table

LB = "lb"  # the task's private registration record: {"registered": [[tg, id, port]], …}


def sync(db: Connection, service: dict[str, Any], rows: list[tasks.TaskRow], now: float
         ) -> tuple[dict[str, TargetHealth], list[str]]:
    lbs = [lb for lb in service.get("loadBalancers") or [] if lb.get("targetGroupArn")]
    if not lbs and not any(r.private.get(LB) for r in rows):
        return {}, []
    when = datetime.fromtimestamp(now, UTC)
    name = service["serviceName"]
    counts: dict[tuple[str, str], int] = defaultdict(int)  # (verb, group) -> targets
    messages: list[str] = []
    out: dict[str, TargetHealth] = {}
    for row in rows:
        if row.doc["desiredStatus"] == "STOPPED" or row.doc["lastStatus"] == "STOPPED":
            if row.private.get(LB) is not None:
                _drain(db, row, when, counts)
        elif lbs and row.doc["lastStatus"] == "RUNNING":
            record = _register(db, row, lbs, when, counts, messages, name)
            out[row.task_id] = _health(db, record, len(lbs), when)
    messages += [f"(service {name}) {verb} {n} targets in (target-group {tg})"
                 for (verb, tg), n in sorted(counts.items())]
    return out, messages


def _register(db: Connection, row: tasks.TaskRow, lbs: list[dict], when: datetime,
              counts: dict, messages: list[str], service: str) -> dict:
    """Register the task in every group it is not in yet; a group whose registration fails
    is said once and retried at the next pass. Saves only what changed."""
    record = copy.deepcopy(row.private.get(LB)) or {"registered": []}
    done = {tg for tg, _, _ in record["registered"]}
    changed = False
    for lb in lbs:
        tg = lb["targetGroupArn"]
        target = None if tg in done else _target(db, row, lb)
        if target is None:  # registered already, or its address is not known yet
            continue
        try:
            elb_targets.register(db, tg, [target], when)
        except AwsError as e:  # the group went away or cannot take this target
            if record.setdefault("errors", {}).get(tg) != e.message:
                record["errors"][tg] = e.message
                messages.append(f"(service {service}) failed to register targets in "
                                f"(target-group {tg}) with (error {e.message})")
                changed = True
            continue
        record["registered"].append([tg, target["Id"], target["Port"]])
        record.get("errors", {}).pop(tg, None)
        counts[("registered", tg)] += 1
        changed = True
    if changed:
        row.private[LB] = record
        _save(db, row)
    return record


def _drain(db: Connection, row: tasks.TaskRow, when: datetime, counts: dict) -> None:
    record = row.private[LB]
    if record.get("released"):
        return
    changed = False
    if not record.get("deregisteredAt"):
        for tg, target_id, port in record["registered"]:
            with contextlib.suppress(AwsError):  # a deleted group has nothing left to drain
                elb_targets.deregister(db, tg, [{"Id": target_id, "Port": port}], when)
            counts[("deregistered", tg)] += 1
        record["deregisteredAt"] = when.timestamp()
        changed = True
    if all(_state(db, tg, target_id, port, when) in ("unused", None)
           for tg, target_id, port in record["registered"]):
        record["released"] = True  # every group has let it go: the task may stop now
        changed = True
    if changed:  # a drain in progress writes nothing: the scheduler's tick notices its end
        _save(db, row)


def _health(db: Connection, record: dict, groups: int, when: datetime) -> TargetHealth:
    """Healthy in every group; unhealthy in any; else initial (also while a group has not
    taken the task yet)."""
    worst = TargetHealth("healthy" if len(record["registered"]) >= groups else "initial")
    for tg, target_id, port in record["registered"]:
        described = _described(db, tg, target_id, port, when)
        state = described["State"] if described else "unused"
        if state == "unhealthy":
            return TargetHealth("unhealthy", tg, port, described.get("Description", ""))
        if state != "healthy":
            worst = TargetHealth("initial", tg, port)
    return worst


def _described(db: Connection, tg: str, target_id: str, port: int, when: datetime
               ) -> dict | None:
    try:
        [d] = elb_targets.health(db, tg, [{"Id": target_id, "Port": port}], when, in_use=True)
    except AwsError:  # the target group was deleted
        return None
    return d["TargetHealth"]


def _state(db: Connection, tg: str, target_id: str, port: int, when: datetime) -> str | None:
    described = _described(db, tg, target_id, port, when)
    return described["State"] if described else None


def _target(db: Connection, row: tasks.TaskRow, lb: dict) -> dict | None:
    """The task's target for one load balancer entry, or None while its address is unknown."""
    doc = row.doc
    if doc.get("attachments"):  # awsvpc: the ENI's address and the container port
        details = {d["name"]: d["value"] for d in doc["attachments"][0].get("details") or []}
        ip = details.get("privateIPv4Address")
        return {"Id": ip, "Port": lb["containerPort"]} if ip else None
    container = next((c for c in doc["containers"] if c["name"] == lb["containerName"]), None)
    binding = next((b for b in (container or {}).get("networkBindings") or []
                    if b.get("containerPort") == lb["containerPort"]), None)
    instance = db.execute(select(ecs_container_instances.c.ec2_instance_id).where(
        ecs_container_instances.c.account_id == row.account_id,
        ecs_container_instances.c.region == row.region,
        ecs_container_instances.c.instance_id == row.private.get("instance"))).scalar()
    if binding is None or instance is None:
        return None
    return {"Id": instance, "Port": binding["hostPort"]}


def _save(db: Connection, row: tasks.TaskRow) -> None:
    tasks.save(db, row, bump=False)  # the registration record is not a visible state change
    emit(db, "ecs.task.changed", task=[row.account_id, row.region, row.task_id])



def check_target_groups(db: Connection, account: str, region: str, lbs: list[dict],
                        td: dict[str, Any]) -> None:
    """CreateService / UpdateService: each target group exists here, a load balancer forwards
    to it, and its target type fits the task's network mode (ECS's texts)."""
    refs = records.references(db, account, region)
    awsvpc = td.get("networkMode") == "awsvpc"
    for lb in lbs:
        arn = lb.get("targetGroupArn")
        if not arn:
            continue
        tg = records.get(db, elb_target_groups_table, arn, account, region)
        if tg is None:
            raise InvalidParameterException(
                f"The target group with targetGroupArn {arn} does not exist.")
        if not refs.get(arn):
            raise InvalidParameterException(
                f"The target group with targetGroupArn {arn} does not have an associated load "
                "balancer.")
        kind = tg.doc["TargetType"]
        if (kind == "ip") != awsvpc:
            mode = td.get("networkMode") or "bridge"
            raise InvalidParameterException(
                f"The provided target group {arn} has target type {kind}, which is "
                f"incompatible with the {mode} network mode specified in the task definition.")
