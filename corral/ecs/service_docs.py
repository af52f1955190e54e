"""The documents a service's deployments are kept in and shown as (pure).

    new_deployment / start_deployment    a PRIMARY Deployment (reference §3.5); the old PRIMARY
                                         turns ACTIVE, keeping its rolloutState (§3.3)
    history_entry                        the copy ``x-corral.history`` keeps, with what the
                                         deployment's service revision ran (``x-revision``)
    service_deployment / service_revision   the ServiceDeployment / ServiceRevision shapes
                                         built from a history entry

A service deployment and its service revision share the deployment's 19 digits:
``service-deployment/<cluster>/<service>/<digits>`` and ``service-revision/…/<digits>``
(built in :mod:`corral.ecs.names`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from corral.aws import arns
from corral.ecs import services
from corral.ecs.names import service_deployment_arn, service_revision_arn
from corral.ecs.services import BREAKER, PRIVATE

FARGATE_PLATFORM = "1.4.0"  # what LATEST means
MAX_HISTORY = 100  # deployments ListServiceDeployments can still show
REVISION = "x-revision"  # in history entries: what the deployment ran besides its Deployment


def launch_fields(doc: dict) -> tuple[str, list | None]:
    """(launch type, capacity provider strategy) of a service document."""
    strategy = doc.get("capacityProviderStrategy") or None
    return ("FARGATE" if strategy else doc.get("launchType", "EC2")), strategy


def new_deployment(doc: dict, td: dict, desired: int, now: float) -> dict:
    """A PRIMARY Deployment of the service's current settings (reference §3.5)."""
    dep_id = services.new_deployment_id()
    launch, strategy = launch_fields(doc)
    dep: dict[str, Any] = {
        "id": dep_id, "status": "PRIMARY", "taskDefinition": td["taskDefinitionArn"],
        "desiredCount": desired, "pendingCount": 0, "runningCount": 0, "failedTasks": 0,
        "createdAt": now, "updatedAt": now, "launchType": launch,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
        BREAKER: {"failures": 0}}
    if strategy:
        dep["capacityProviderStrategy"] = strategy
    if launch == "FARGATE":
        version = doc.get("platformVersion") or "LATEST"
        dep.update(platformVersion=FARGATE_PLATFORM if version == "LATEST" else version,
                   platformFamily="Linux")
    if doc.get("networkConfiguration"):
        dep["networkConfiguration"] = doc["networkConfiguration"]
    return dep


def history_entry(dep: dict, doc: dict, td: dict) -> dict:
    """The deployment as the history keeps it, with what its service revision ran."""
    images = [{"containerName": c["name"], "image": c["image"]}
              for c in td["containerDefinitions"]]
    return {**copy.deepcopy(dep), REVISION: {
        "loadBalancers": copy.deepcopy(doc.get("loadBalancers") or []),
        "serviceRegistries": [], "containerImages": images}}


def start_deployment(doc: dict, td: dict, desired: int, now: float) -> dict:
    """Make a new PRIMARY: the old one turns ACTIVE (keeping its rolloutState), the history
    and the start throttle start over (reference §3.2, §3.3)."""
    for d in doc.get("deployments", []):
        if d["status"] == "PRIMARY":
            d.update(status="ACTIVE", updatedAt=now)
            for h in doc[PRIVATE]["history"]:
                if h["id"] == d["id"]:
                    h.update(status="ACTIVE", updatedAt=now)
    dep = new_deployment(doc, td, desired, now)
    doc["deployments"] = [dep, *doc.get("deployments", [])]
    history = doc[PRIVATE]["history"]
    history.insert(0, history_entry(dep, doc, td))
    del history[MAX_HISTORY:]  # the document is rewritten on every change: keep it bounded
    doc[PRIVATE]["throttle"] = {"failures": 0, "until": 0}
    doc[PRIVATE]["steady"] = False
    doc["taskDefinition"] = td["taskDefinitionArn"]
    doc["currentServiceDeployment"] = service_deployment_arn(
        *_arn_scope(doc), dep["id"])
    return dep


def _arn_scope(doc: dict) -> tuple[str, str, str, str]:
    """(region, account, cluster, name) from the service ARN."""
    parsed = arns.parse(doc["serviceArn"])
    assert parsed is not None  # built by names.service_arn
    _, cluster, name = parsed.resource.split("/")
    return parsed.region, parsed.account, cluster, name


def _primary(doc: dict) -> dict | None:
    return (doc.get("deployments") or [None])[0]


def deployment_status(entry: dict, doc: dict) -> str:
    """The ServiceDeployment status of a history entry. First match wins:
    1. FAILED without rollback ⇒ STOPPED; with rollback ⇒ ROLLBACK_SUCCESSFUL /
       ROLLBACK_FAILED / ROLLBACK_IN_PROGRESS after the deployment rolled back to;
    2. COMPLETED ⇒ SUCCESSFUL;
    3. replaced by a newer deployment before it completed ⇒ STOPPED;
    4. the PRIMARY, rolling back ⇒ ROLLBACK_IN_PROGRESS, else IN_PROGRESS."""
    state, primary = entry.get("rolloutState"), _primary(doc)
    if state == "FAILED":
        breaker = doc.get("deploymentConfiguration", {}).get("deploymentCircuitBreaker") or {}
        if not breaker.get("rollback") or primary is None or primary["id"] == entry["id"]:
            return "STOPPED"
        return {"COMPLETED": "ROLLBACK_SUCCESSFUL", "FAILED": "ROLLBACK_FAILED"}.get(
            primary.get("rolloutState"), "ROLLBACK_IN_PROGRESS")
    if state == "COMPLETED":
        return "SUCCESSFUL"
    if primary is None or primary["id"] != entry["id"] or doc["status"] != "ACTIVE":
        return "STOPPED"
    if (entry.get("rolloutStateReason") or "").startswith(
            "ECS deployment circuit breaker: rolling back"):
        return "ROLLBACK_IN_PROGRESS"
    return "IN_PROGRESS"


def _revision_summary(entry: dict, scope: tuple) -> dict:
    return {"arn": service_revision_arn(*scope, entry["id"]),
            "requestedTaskCount": entry.get("desiredCount", 0),
            "runningTaskCount": entry.get("runningCount", 0),
            "pendingTaskCount": entry.get("pendingCount", 0)}


def _breaker_view(entry: dict, doc: dict) -> dict:
    cb = doc.get("deploymentConfiguration", {}).get("deploymentCircuitBreaker") or {}
    if not cb.get("enable"):
        return {"status": "DISABLED", "failureCount": 0, "threshold": 0}
    threshold = min(200, max(3, math.ceil(0.5 * doc.get("desiredCount", 0))))  # §3.6
    status = {"FAILED": "TRIGGERED", "COMPLETED": "MONITORING_COMPLETE"}.get(
        entry.get("rolloutState"), "MONITORING")
    return {"status": status, "failureCount": (entry.get(BREAKER) or {}).get("failures", 0),
            "threshold": threshold}


def service_deployment(entry: dict, doc: dict, brief: bool = False) -> dict:
    scope = _arn_scope(doc)
    status = deployment_status(entry, doc)
    out: dict[str, Any] = {
        "serviceDeploymentArn": service_deployment_arn(*scope, entry["id"]),
        "serviceArn": doc["serviceArn"], "clusterArn": doc["clusterArn"],
        "createdAt": entry["createdAt"], "startedAt": entry["createdAt"], "status": status,
        "statusReason": entry.get("rolloutStateReason", "")}
    if status not in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS"):
        out["finishedAt"] = entry.get("updatedAt", entry["createdAt"])
    if brief:
        out["targetServiceRevisionArn"] = service_revision_arn(*scope, entry["id"])
        return out
    history = doc[PRIVATE]["history"]
    older = history[history.index(entry) + 1:][:1] if entry in history else []
    out.update(updatedAt=entry.get("updatedAt", entry["createdAt"]),
               targetServiceRevision=_revision_summary(entry, scope),
               sourceServiceRevisions=[_revision_summary(e, scope) for e in older],
               deploymentConfiguration=doc.get("deploymentConfiguration", {}),
               deploymentCircuitBreaker=_breaker_view(entry, doc))
    if status == "STOPPED":
        out["stoppedAt"] = out["finishedAt"]
    return out


def service_revision(entry: dict, doc: dict) -> dict:
    extra = entry.get(REVISION) or {}
    out: dict[str, Any] = {
        "serviceRevisionArn": service_revision_arn(*_arn_scope(doc), entry["id"]),
        "serviceArn": doc["serviceArn"], "clusterArn": doc["clusterArn"],
        "taskDefinition": entry["taskDefinition"], "launchType": entry.get("launchType"),
        "loadBalancers": extra.get("loadBalancers", doc.get("loadBalancers", [])),
        "serviceRegistries": extra.get("serviceRegistries", []),
        "containerImages": extra.get("containerImages", []), "guardDutyEnabled": False,
        "createdAt": entry["createdAt"]}
    for key in ("capacityProviderStrategy", "platformVersion", "platformFamily",
                "networkConfiguration"):
        if entry.get(key):
            out[key] = entry[key]
    return {k: v for k, v in out.items() if v is not None}


def find_entry(doc: dict, digits: str) -> dict | None:
    return next((h for h in doc[PRIVATE]["history"]
                 if h["id"].rsplit("/", 1)[-1] == digits), None)
