"""The service scheduler: keeps every ACTIVE service at its desired count and carries out its
deployments, one pass per service per tick.

    ServiceScheduler (controller: woken by service and task changes, and every second)
      for each ACTIVE or DRAINING service, in one write transaction:
        read the service and its tasks ─> service_planner.plan (pure)
        ─> insert the tasks it starts (placed like RunTask's), mark the ones it stops
        ─> save the service document (deployments, counts, events)

Level-triggered: deployments and desired state are stored, so after a restart the next pass
resumes the same rollout; a task is started in the same transaction that records the plan
naming it, so a crash never starts one twice.
"""

from __future__ import annotations

import copy
import logging
import random
import time
import uuid

from corral.controller import Controller
from corral.ecs import clusters, instances, load_balancing, placement, services, taskdefs, tasks
from corral.ecs.service_planner import TargetHealth, TaskInfo, plan
from corral.ecs.services import PRIVATE, ServiceRow, add_event
from corral.ecs.task_ops import launch_task
from corral.store import Store
from corral.store.db import emit

log = logging.getLogger("corral.ecs.scheduler")

PLACEMENT_FAILED = ("was unable to place a task because no container instance met all of its "
                    "requirements. The closest matching (container-instance {instance}) {why}. "
                    "For more information, see the Troubleshooting section of the Amazon ECS "
                    "Developer Guide.")
WHY = {"RESOURCE:MEMORY": "has insufficient memory available",
       "RESOURCE:CPU": "has insufficient CPU units available",
       "RESOURCE:PORTS": "is already using a port required by your task"}


class ServiceScheduler(Controller):
    name = "ecs-scheduler"
    interval = 1.0

    def __init__(self, store: Store):
        super().__init__()
        self.store = store
        self.paused = False  # `corral down --stop-tasks`: stopping (and draining), not replacing

    def reconcile(self) -> None:
        with self.store.transaction(write=False) as db:
            keys = [(r.account_id, r.region, r.cluster, r.name) for r in services.scheduled(db)]
        for key in keys:
            try:
                self.reconcile_service(*key)
            except Exception:  # one broken service must not stop the others
                log.exception("service %s: pass failed; retrying at the next tick", key[3])

    def reconcile_service(self, account: str, region: str, cluster: str, name: str) -> None:
        with self.store.transaction() as db:
            row = services.get(db, account, region, cluster, name)
            if row is None or row.doc["status"] not in ("ACTIVE", "DRAINING"):
                return
            rows = tasks.query(db, account, region, cluster, service=name)
            known = {d["id"] for d in row.doc["deployments"]}
            now = time.time()
            lb_health, messages = load_balancing.sync(db, row.doc, rows, now)
            infos = [_info(t, lb_health.get(t.task_id)) for t in rows
                     if t.doc.get("startedBy") in known]
            doc = row.doc
            if messages:
                doc = copy.deepcopy(doc)
                for message in messages:
                    add_event(doc, message, now, str(uuid.uuid4()))
            if self.paused:  # `corral down --stop-tasks`: drain what stops, start nothing
                if messages:
                    row.doc = doc
                    services.save(db, row)
                return
            p = plan(doc, infos, now=now, new_id=lambda: str(uuid.uuid4()))
            if not p.start and not p.stop and p.doc == row.doc:
                return  # steady: no write (the store fsyncs every commit)
            by_id = {t.task_id: t for t in rows}
            for task_id, reason in p.stop:
                _stop(db, by_id[task_id], reason, now)
            row.doc = p.doc
            self._start(db, row, p.start, now)
            services.save(db, row)

    def _start(self, db, row: ServiceRow, starts: list[tuple[str, str]], now: float) -> None:
        doc = row.doc
        cluster = clusters.get(db, row.account_id, row.region, row.cluster)
        by_deployment = {d["id"]: d for d in doc["deployments"]}
        for deployment_id, task_id in starts:
            d = by_deployment[deployment_id]
            td = taskdefs.deployed(db, row.account_id, row.region, d["taskDefinition"])
            if td is None or cluster is None:
                log.warning("service %s: task definition %s is gone", row.name,
                            d["taskDefinition"])
                continue
            launch = d.get("launchType") or "EC2"
            reservation = placement.reservation(td, None)
            instance_id = None
            if launch == "EC2":
                instance_id = self._place(db, row, td, reservation, now)
                if instance_id is None:
                    _drop_start(doc, deployment_id, task_id)
                    continue
            params = {"group": f"service:{row.name}", "startedBy": deployment_id,
                      "networkConfiguration": d.get("networkConfiguration"),
                      "platformVersion": d.get("platformVersion")}
            if doc.get("propagateTags") == "SERVICE":
                from corral.ecs.tag_ops import tags_view

                params["tags"] = tags_view(db, doc["serviceArn"])
            provider = ((d.get("capacityProviderStrategy") or [{}])[0]
                        .get("capacityProvider"))
            launch_task(db, row.account_id, row.region, doc.get("createdBy") or "", params,
                        cluster, td, launch, provider, instance_id, reservation,
                        task_id=task_id, service=row.name)

    def _place(self, db, row: ServiceRow, td: dict, reservation, now: float) -> str | None:
        doc = row.doc
        candidates = instances.candidates(db, row.account_id, row.region, row.cluster)
        constraints = [*(td.get("placementConstraints") or []),
                       *(doc.get("placementConstraints") or [])]
        try:
            result = placement.place(reservation, candidates, constraints,
                                     doc.get("placementStrategy") or [],
                                     group=f"service:{row.name}", count=1, rng=random.Random())
        except placement.NoContainerInstances:
            _once(doc, "placement", now, "was unable to place a task because no container "
                  "instance met all of its requirements. Reason: No Container Instances were "
                  "found in your cluster. For more information, see the Troubleshooting section "
                  "of the Amazon ECS Developer Guide.")
            return None
        if result.placed:
            doc[PRIVATE].pop("placement", None)
            return result.placed[0]
        arn, reason = result.failures[0]
        why = WHY.get(reason, f'encountered error "{reason}"')
        _once(doc, "placement", now, PLACEMENT_FAILED.format(instance=arn.rsplit("/", 1)[1],
                                                             why=why))
        return None


def _info(row: tasks.TaskRow, lb: TargetHealth | None) -> TaskInfo:
    doc = row.doc
    defs = row.private["td"]["containerDefinitions"]
    return TaskInfo(
        task_id=row.task_id, deployment=doc.get("startedBy") or "",
        last_status=doc["lastStatus"], desired_status=doc["desiredStatus"],
        health=doc.get("healthStatus", "UNKNOWN"),
        checked=any(c.get("essential", True) and c.get("healthCheck") for c in defs),
        created_at=doc["createdAt"], started_at=doc.get("startedAt"),
        stop_code=doc.get("stopCode"), lb=lb)


def _stop(db, row: tasks.TaskRow, reason: str, now: float) -> None:
    doc = row.doc
    if doc["desiredStatus"] == "STOPPED":
        return
    doc.update(desiredStatus="STOPPED", stopCode="ServiceSchedulerInitiated",
               stoppedReason=reason, stoppingAt=now)
    tasks.save(db, row)
    emit(db, "ecs.task.changed", task=[row.account_id, row.region, row.task_id])


def _drop_start(doc: dict, deployment_id: str, task_id: str) -> None:
    """A planned task that could not be placed: not pending after all."""
    for d in doc["deployments"]:
        if d["id"] == deployment_id:
            d["pendingCount"] = max(0, d["pendingCount"] - 1)
    doc["pendingCount"] = max(0, doc["pendingCount"] - 1)
    doc["events"] = [e for e in doc["events"] if task_id not in e["message"]]


def _once(doc: dict, key: str, now: float, message: str) -> None:
    if not doc[PRIVATE].get(key):
        doc[PRIVATE][key] = True
        add_event(doc, f"(service {doc['serviceName']}) {message}", now, str(uuid.uuid4()))
