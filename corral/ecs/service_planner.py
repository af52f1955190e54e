"""The service scheduler's pure planner (reference §3): one pass over a service.

    plan(service, tasks, *, now, new_id) -> Plan(doc', start=[(deployment, task id)],
                                                 stop=[(task id, stoppedReason)])

``service`` is the service document (``services.ServiceRow.doc``), ``tasks`` what the service's
tasks look like now. The plan says which tasks to start (ids chosen here, so the events can
name them) and which to stop, and carries the document with deployments, counts, rollout
state, circuit breaker, throttle and events brought up to date. The scheduler applies it in one
transaction with the task rows it inserts, so a crash repeats a pass, never half of one.

The rolling update is arithmetic over counts (Kubernetes' rolling.go, Nomad's reconciler):

    D          = desiredCount (0 while DRAINING)
    ceiling    = floor(D × maximumPercent / 100)      tasks PENDING, RUNNING or STOPPING
    floor      = ceil(D × minimumHealthyPercent / 100)   tasks RUNNING and healthy
    start      min(D − active(PRIMARY), ceiling − in flight)      unless throttled or FAILED
    stop       old deployments' tasks that are not healthy, then healthy ones while
               healthy − 1 ≥ floor; PRIMARY tasks above D (pending first)

Rules, first match wins where they overlap:
1. A RUNNING task whose essential containers are UNHEALTHY, or whose load balancer target is
   unhealthy, after healthCheckGracePeriodSeconds is stopped (``Task failed container health
   checks`` / ``Task failed ELB health checks in (target-group …)``) and replaced.
2. A task counts as healthy once RUNNING and, with container health checks, HEALTHY; behind a
   load balancer, once its targets are healthy too; with neither, 40 seconds after it started
   RUNNING (§3.4).
3. Tasks of the PRIMARY deployment that fail — stop before RUNNING, or fail health checks —
   count toward the circuit breaker; a healthy PRIMARY task resets the count. At
   min(200, max(3, ceil(D / 2))) failures the deployment is FAILED; with rollback, the most
   recent COMPLETED deployment becomes PRIMARY again (§3.6).
4. Tasks that stop before RUNNING, in a row, throttle new starts: 5 s, doubling, at most 15
   minutes (§3.2: the curve is undocumented, the cap is); a task reaching RUNNING resets it.
5. An old deployment with no task left is INACTIVE and leaves ``deployments``; the PRIMARY is
   COMPLETED once it alone runs D healthy tasks: ``deployment completed.``, then ``has
   reached a steady state.``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corral.aws import arns
from corral.ecs import names
from corral.ecs.services import BREAKER, PRIVATE, add_event

HEALTHY_AFTER = 40.0  # seconds RUNNING before a task without health checks counts (§3.4)
THROTTLE_BASE, THROTTLE_MAX = 5.0, 900.0
BREAKER_KEEP = 200  # task ids a deployment remembers having counted
STARTING = ("PROVISIONING", "PENDING", "ACTIVATING")
UNHEALTHY = "Task failed container health checks"
ELB_UNHEALTHY = "Task failed ELB health checks in (target-group {})"


@dataclass(frozen=True)
class TargetHealth:
    """A task's targets, as the load balancers see them (corral/ecs/load_balancing.py)."""
    state: str  # initial | healthy | unhealthy
    target_group: str = ""
    port: int = 0
    reason: str = ""  # ALB's description, e.g. "Health checks failed with these codes: [500]"


@dataclass(frozen=True)
class TaskInfo:
    task_id: str
    deployment: str  # the task's startedBy
    last_status: str
    desired_status: str
    health: str  # the task's healthStatus
    checked: bool  # an essential container has a health check
    created_at: float
    started_at: float | None = None  # reached RUNNING at
    stop_code: str | None = None
    lb: TargetHealth | None = None  # behind load balancers: its targets' health

    @property
    def done(self) -> bool:
        return self.last_status == "STOPPED"

    @property
    def active(self) -> bool:
        return self.desired_status == "RUNNING" and not self.done

    @property
    def running(self) -> bool:
        return self.active and self.last_status == "RUNNING"

    @property
    def pending(self) -> bool:
        return self.active and self.last_status in STARTING

    def healthy(self, now: float) -> bool:
        if not self.running:
            return False
        if self.checked and self.health != "HEALTHY":
            return False
        if self.lb is not None:
            return self.lb.state == "healthy"
        return self.checked or (self.started_at is not None
                                and now - self.started_at >= HEALTHY_AFTER)

    @property
    def failed_to_start(self) -> bool:
        return self.done and self.started_at is None and self.stop_code not in (
            "ServiceSchedulerInitiated", "UserInitiated")


@dataclass
class Plan:
    doc: dict[str, Any]
    start: list[tuple[str, str]] = field(default_factory=list)  # (deployment id, task id)
    stop: list[tuple[str, str]] = field(default_factory=list)  # (task id, stoppedReason)


def bounds(desired: int, config: dict[str, Any]) -> tuple[int, int]:
    """(ceiling, floor): maximumPercent rounds down, minimumHealthyPercent rounds up."""
    ceiling = math.floor(desired * config.get("maximumPercent", 200) / 100)
    floor = math.ceil(desired * config.get("minimumHealthyPercent", 100) / 100)
    return ceiling, floor


def breaker_threshold(desired: int) -> int:
    return min(200, max(3, math.ceil(0.5 * desired)))


def plan(service: dict[str, Any], tasks: list[TaskInfo], *, now: float,
         new_id: Callable[[], str]) -> Plan:
    doc = copy.deepcopy(service)
    p = Plan(doc)
    name = doc["serviceName"]

    def event(message: str) -> None:
        add_event(doc, f"(service {name}) {message}", now, new_id())

    by_id = {t.task_id: t for t in tasks}
    unhealthy = _unhealthy(doc, tasks, now)
    _count_failures(doc, tasks, unhealthy, now, event)
    for t in unhealthy:
        if t.lb is not None and t.lb.state == "unhealthy":
            event(f"(task {t.task_id}) (port {t.lb.port}) is unhealthy in (target-group "
                  f"{t.lb.target_group}) due to (reason {t.lb.reason}).")
            p.stop.append((t.task_id, ELB_UNHEALTHY.format(t.lb.target_group)))
        else:
            event(f"(task {t.task_id}) failed container health checks.")
            p.stop.append((t.task_id, UNHEALTHY))
    stopped = {t for t, _ in p.stop}
    live = [t for t in tasks if t.active and t.task_id not in stopped]
    desired = 0 if doc["status"] == "DRAINING" else doc["desiredCount"]
    launching = _launching(doc)
    ceiling, floor = bounds(desired, doc.get("deploymentConfiguration") or {})
    healthy = sum(t.healthy(now) for t in live)
    in_flight = sum(1 for t in tasks if not t.done)  # stopping ones too, until STOPPED

    for t in _stop_order(doc, live, launching, desired, now):
        deploy = by_id[t].deployment
        surplus_primary = launching is not None and deploy == launching["id"]
        if by_id[t].healthy(now) and not surplus_primary:
            if healthy - 1 < floor:
                continue
            healthy -= 1
        p.stop.append((t, f"Scaling activity initiated by (deployment {deploy})"))
    scaled = [t for t, _ in p.stop if t not in stopped]
    if scaled:
        event(f"has stopped {len(scaled)} running tasks: "
              + " ".join(f"(task {t})" for t in scaled) + ".")

    if launching is not None and not _throttled(doc, now, event):
        mine = sum(1 for t in live if t.deployment == launching["id"])
        room = ceiling - in_flight
        count = max(0, min(desired - mine, room))
        p.start = [(launching["id"], new_id().replace("-", "")[:32]) for _ in range(count)]
        if desired - mine > 0 and room <= 0 and not p.stop:
            _once(doc, "config", event, "was unable to stop or start tasks during a deployment "
                  "because of the service deployment configuration. Update the "
                  "minimumHealthyPercent or maximumPercent value and try again.")
    if p.start:
        text = " ".join(f"(task {t})" for _, t in p.start)
        extra = f" Amazon ECS replaced {len(unhealthy)} tasks due to an unhealthy status." \
            if unhealthy else ""
        event(f"has started {len(p.start)} tasks: {text}.{extra}")

    if p.start or p.stop:
        doc[PRIVATE].pop("config", None)  # the configuration no longer blocks the rollout
    _account(doc, tasks, stopped | set(scaled), p.start, desired, now, event)
    return p


# --- failures: circuit breaker, throttle, unhealthy tasks -------------------------------------

def _count_failures(doc: dict, tasks: list[TaskInfo], unhealthy: list[TaskInfo], now: float,
                    event) -> None:
    primary = doc["deployments"][0]
    breaker = primary.setdefault(BREAKER, {})
    breaker.setdefault("failures", 0)
    breaker.setdefault("seen", [])
    throttle = doc[PRIVATE].setdefault("throttle", {"failures": 0, "until": 0})
    seen = set(breaker["seen"])
    for t in sorted(tasks, key=lambda t: t.created_at):
        if t.deployment != primary["id"] or t.task_id in seen:
            continue
        if t.started_at is not None and not t.done:
            throttle["failures"] = 0  # a task reached RUNNING
        failed = t.failed_to_start or t in unhealthy
        if t.healthy(now):
            breaker["failures"] = 0
            breaker["seen"].append(t.task_id)
        elif failed:
            breaker["failures"] += 1
            breaker["seen"].append(t.task_id)
            if t.failed_to_start:
                throttle["failures"] += 1
                throttle["until"] = now + min(THROTTLE_MAX,
                                              THROTTLE_BASE * 2 ** (throttle["failures"] - 1))
    breaker["seen"] = breaker["seen"][-BREAKER_KEEP:]
    primary["failedTasks"] = breaker["failures"]
    cb = (doc.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    if cb.get("enable") and primary.get("rolloutState") == "IN_PROGRESS" and \
            breaker["failures"] >= breaker_threshold(doc["desiredCount"]):
        _trip(doc, bool(cb.get("rollback")), now, event)


def _trip(doc: dict, rollback: bool, now: float, event) -> None:
    failed = doc["deployments"][0]
    failed.update(rolloutState="FAILED", updatedAt=now,
                  rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.")
    _history(doc, failed["id"], rolloutState="FAILED", updatedAt=now)
    event(f"(deployment {failed['id']}) deployment failed: tasks failed to start.")
    target = next((d for d in doc["deployments"][1:] if d.get("rolloutState") == "COMPLETED"),
                  None)
    if not rollback or target is None:
        return
    failed["status"] = "ACTIVE"
    target.update(status="PRIMARY", rolloutState="IN_PROGRESS", updatedAt=now,
                  rolloutStateReason=f"ECS deployment circuit breaker: rolling back to "
                                     f"deploymentId {target['id']}.")
    target[BREAKER] = {"failures": 0, "seen": []}
    doc["deployments"] = [target, *[d for d in doc["deployments"] if d is not target]]
    doc["taskDefinition"] = target["taskDefinition"]
    arn = arns.parse(doc.get("serviceArn") or "")
    if arn is not None:
        _, cluster, name = arn.resource.split("/", 2)
        doc["currentServiceDeployment"] = names.service_deployment_arn(
            arn.region, arn.account, cluster, name, target["id"])
    doc[PRIVATE]["throttle"] = {"failures": 0, "until": 0}
    event(f"rolling back to deployment {target['id']}.")


def _throttled(doc: dict, now: float, event) -> bool:
    throttle = doc[PRIVATE]["throttle"]
    if now >= throttle.get("until", 0):
        doc[PRIVATE].pop("throttled", None)
        return False
    _once(doc, "throttled", event, "is unable to consistently start tasks successfully.")
    return True


def _once(doc: dict, key: str, event, message: str) -> None:
    """An event said once until its cause goes away (the console's de-duplication)."""
    if not doc[PRIVATE].get(key):
        doc[PRIVATE][key] = True
        event(message)


def _unhealthy(doc: dict, tasks: list[TaskInfo], now: float) -> list[TaskInfo]:
    grace = doc.get("healthCheckGracePeriodSeconds") or 0
    return [t for t in tasks if t.running and t.started_at is not None
            and now - t.started_at >= grace
            and ((t.checked and t.health == "UNHEALTHY")
                 or (t.lb is not None and t.lb.state == "unhealthy"))]


# --- which deployment launches, which tasks stop ----------------------------------------------

def _launching(doc: dict) -> dict | None:
    """The deployment new tasks come from: the PRIMARY, unless its rollout FAILED."""
    primary = doc["deployments"][0]
    return None if primary.get("rolloutState") == "FAILED" else primary


def _stop_order(doc: dict, live: list[TaskInfo], launching: dict | None, desired: int,
                now: float) -> list[str]:
    """Candidates to stop, cheapest first: tasks of old deployments, then PRIMARY tasks above
    desiredCount; pending before unhealthy before healthy, newest first. (Only healthy ones
    are held back by the floor: the others do not count toward it.)"""
    def order(ts: list[TaskInfo]) -> list[str]:
        return [t.task_id for t in sorted(ts, key=lambda t: (t.healthy(now), t.running,
                                                              -t.created_at))]

    if launching is None:  # a FAILED rollout without a rollback keeps what runs
        return []
    old = [t for t in live if t.deployment != launching["id"]]
    mine = [t for t in live if t.deployment == launching["id"]]
    extra = order(mine)[:max(0, len(mine) - desired)]
    return order(old) + extra


# --- bookkeeping ------------------------------------------------------------------------------

def _account(doc: dict, tasks: list[TaskInfo], stopping: set[str], started: list,
             desired: int, now: float, event) -> None:
    """Deployment and service counts, INACTIVE deployments, completion and steady state."""
    launched = {}
    for deployment, _ in started:
        launched[deployment] = launched.get(deployment, 0) + 1
    keep = []
    for i, d in enumerate(doc["deployments"]):
        mine = [t for t in tasks if t.deployment == d["id"] and t.active
                and t.task_id not in stopping]
        running = sum(t.running for t in mine)
        pending = sum(t.pending for t in mine) + launched.get(d["id"], 0)
        d.update(runningCount=running, pendingCount=pending,
                 desiredCount=desired if i == 0 else running + pending)
        alive = [t for t in tasks if t.deployment == d["id"] and not t.done]
        if i > 0 and not alive and not launched.get(d["id"]):
            _history(doc, d["id"], status="INACTIVE", updatedAt=now)
            continue  # fully replaced: INACTIVE, no longer listed
        keep.append(d)
    doc["deployments"] = keep
    doc["runningCount"] = sum(d["runningCount"] for d in keep)
    doc["pendingCount"] = sum(d["pendingCount"] for d in keep)
    primary = keep[0]
    healthy = sum(t.healthy(now) for t in tasks if t.deployment == primary["id"]
                  and t.active and t.task_id not in stopping)
    settled = len(keep) == 1 and primary["runningCount"] == desired == healthy and \
        primary["pendingCount"] == 0
    if settled and primary.get("rolloutState") == "IN_PROGRESS":
        primary.update(rolloutState="COMPLETED", updatedAt=now,
                       rolloutStateReason=f"ECS deployment {primary['id']} completed.")
        _history(doc, primary["id"], rolloutState="COMPLETED", updatedAt=now)
        event(f"(deployment {primary['id']}) deployment completed.")
    steady = settled and primary.get("rolloutState") == "COMPLETED"
    if steady and not doc[PRIVATE].get("steady"):
        event("has reached a steady state.")
    doc[PRIVATE]["steady"] = steady
    if doc["status"] == "DRAINING" and not any(not t.done for t in tasks) and not started:
        doc["status"] = "INACTIVE"


def _history(doc: dict, deployment_id: str, **changes) -> None:
    for d in doc[PRIVATE].setdefault("history", []):
        if d["id"] == deployment_id:
            d.update(changes)
