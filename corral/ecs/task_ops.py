"""ECS task operations: RunTask, StartTask, StopTask, DescribeTasks, ListTasks.

RunTask validates, places the tasks on the local container instance (EC2) or on the host's
Fargate capacity, and records them PROVISIONING (awsvpc) or PENDING; the task agent takes them
from there once the transaction commits (``ecs.task.changed``). StopTask only records the
desired status and the reason — the agent stops the containers.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from corral.aws.context import RequestContext
from corral.ecs import clusters, instances, names, placement, taskdefs, tasks
from corral.ecs.errors import ClientException, InvalidParameterException
from corral.ecs.paging import offset_page
from corral.ecs.tasks import PRIVATE
from corral.store.db import emit

MAX_COUNT = 10  # RunTask count per call (reference §4.6)
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


class TaskOperations:
    # --- starting -------------------------------------------------------------------------

    def run_task(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        count = params.get("count", 1)
        if not 1 <= count <= MAX_COUNT:
            raise InvalidParameterException("count must be between 1 and 10.")
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"))
        td = self._runnable_definition(ctx, params["taskDefinition"])
        launch, provider = _launch_type(params, cluster)
        self._check_run(ctx, params, td, launch)
        reservation = placement.reservation(td, params.get("overrides"))
        if launch == "FARGATE":
            return self._start(ctx, params, cluster, td, launch, provider, [None] * count, [])
        placed, failures = self._place(ctx, params, cluster, td, reservation, count)
        return self._start(ctx, params, cluster, td, launch, provider, placed, failures,
                           reservation)

    def start_task(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"))
        td = self._runnable_definition(ctx, params["taskDefinition"])
        self._check_run(ctx, params, td, "EC2")
        refs = params["containerInstances"]
        if not 1 <= len(refs) <= MAX_COUNT:
            raise InvalidParameterException("containerInstances must hold 1 to 10 instances.")
        local = instances.ensure_local(ctx.db, ctx.account_id, ctx.region, cluster["name"],
                                       datetime.now(UTC))
        reservation = placement.reservation(td, params.get("overrides"))
        placed, failures = [], []
        for ref in refs:
            if local is None or names.last_part(ref) != local["instance_id"]:
                failures.append({"arn": ref, "reason": "MISSING"})
                continue
            got, failed = self._place(ctx, params, cluster, td, reservation, 1)
            placed += got
            failures += failed
        return self._start(ctx, params, cluster, td, "EC2", None, placed, failures, reservation)

    def _runnable_definition(self, ctx: RequestContext, ref: str) -> dict:
        try:
            td = taskdefs.resolve(ctx.db, ctx.account_id, ctx.region, ref)
        except ValueError:
            td = None
        if td is None:
            raise ClientException("TaskDefinition not found.")
        problem = taskdefs.runnable_error(td)
        if problem:
            raise ClientException(problem)
        return td

    def _check_run(self, ctx: RequestContext, params: dict, td: dict, launch: str) -> None:
        if launch == "FARGATE" and "FARGATE" not in (td.get("compatibilities") or []):
            raise InvalidParameterException(
                "Task definition does not support launch_type FARGATE.")
        mode = td.get("networkMode") or "bridge"
        vpc = (params.get("networkConfiguration") or {}).get("awsvpcConfiguration")
        if mode == "awsvpc" and not (vpc and vpc.get("subnets")):
            raise InvalidParameterException(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
        if mode != "awsvpc" and params.get("networkConfiguration"):
            raise InvalidParameterException(
                "Network Configuration is not valid for the given networkMode of this task "
                "definition.")
        known = {c["name"] for c in td["containerDefinitions"]}
        for o in (params.get("overrides") or {}).get("containerOverrides") or []:
            if o.get("name") not in known:
                raise InvalidParameterException(
                    f"Override for container named {o.get('name')} is not a container in the "
                    f"TaskDefinition.")
        for role in ((params.get("overrides") or {}).get("taskRoleArn"),
                     (params.get("overrides") or {}).get("executionRoleArn")):
            if role and self.authorizer is not None:
                from corral.iam.vending import check_pass_role

                check_pass_role(self.authorizer, ctx, role, "ecs-tasks.amazonaws.com")

    def _place(self, ctx: RequestContext, params: dict, cluster: dict, td: dict,
               reservation, count: int) -> tuple[list[str | None], list[dict]]:
        instances.ensure_local(ctx.db, ctx.account_id, ctx.region, cluster["name"],
                               datetime.now(UTC))
        candidates = instances.candidates(ctx.db, ctx.account_id, ctx.region, cluster["name"])
        constraints = [*(td.get("placementConstraints") or []),
                       *(params.get("placementConstraints") or [])]
        placement.validate_constraints(constraints)
        placement.validate_strategies(params.get("placementStrategy") or [])
        group = params.get("group") or f"family:{td['family']}"
        result = placement.place(reservation, candidates, constraints,
                                 params.get("placementStrategy") or [], group=group,
                                 count=count, rng=random.Random())
        failures = [{"arn": arn, "reason": reason} for arn, reason in result.failures]
        return list(result.placed), failures

    def _start(self, ctx: RequestContext, params: dict, cluster: dict, td: dict, launch: str,
               provider: str | None, placed: list, failures: list, reservation=None) -> dict:
        out = []
        for instance_id in placed:
            row = launch_task(ctx.db, ctx.account_id, ctx.region, ctx.principal.arn, params,
                              cluster, td, launch, provider, instance_id, reservation)
            out.append(tasks.view(row))
        return {"tasks": out, "failures": failures}

    # --- stopping -------------------------------------------------------------------------

    def stop_task(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        row = self._task(ctx, cluster["name"], params["task"])
        doc = row.doc
        if doc["desiredStatus"] != "STOPPED":
            doc["desiredStatus"] = "STOPPED"
            doc["stopCode"] = "UserInitiated"
            doc["stoppedReason"] = params.get("reason") or "Task stopped by user"
            doc["stoppingAt"] = time.time()
            tasks.save(ctx.db, row)
            emit(ctx.db, "ecs.task.changed", task=[ctx.account_id, ctx.region, row.task_id])
        return {"task": tasks.view(row)}

    def _task(self, ctx: RequestContext, cluster: str, ref: str) -> tasks.TaskRow:
        row = tasks.get(ctx.db, ctx.account_id, ctx.region, names.last_part(ref))
        if row is None or row.cluster != cluster:
            raise InvalidParameterException("The referenced task was not found.")
        return row

    # --- reading --------------------------------------------------------------------------

    def describe_tasks(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        if len(params["tasks"]) > 100:
            raise InvalidParameterException("Tasks cannot be longer than 100.")
        with_tags = "TAGS" in (params.get("include") or [])
        out, failures = [], []
        for ref in params["tasks"]:
            row = tasks.get(ctx.db, ctx.account_id, ctx.region, names.last_part(ref))
            if row is None or row.cluster != cluster["name"]:
                failures.append({"arn": _task_ref_arn(ctx, cluster["name"], ref),
                                 "reason": "MISSING"})
                continue
            tags = None
            if with_tags:
                from corral.ecs.tag_ops import tags_view

                tags = tags_view(ctx.db, row.doc["taskArn"])
            out.append(tasks.view(row, tags))
        return {"tasks": out, "failures": failures}

    def list_tasks(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        desired = params.get("desiredStatus") or "RUNNING"
        instance = params.get("containerInstance")
        rows = tasks.query(
            ctx.db, ctx.account_id, ctx.region, cluster["name"],
            family=params.get("family"), started_by=params.get("startedBy"),
            service=params.get("serviceName"),
            instance=names.last_part(instance) if instance else None,
            launch_type=params.get("launchType"),
            desired=None if desired == "PENDING" else desired,
            last="PENDING" if desired == "PENDING" else None)
        arns = [r.doc["taskArn"] for r in rows]
        return offset_page(arns, params, "taskArns")


def launch_task(db, account: str, region: str, principal_arn: str, params: dict, cluster: dict,
                td: dict, launch: str, provider: str | None, instance_id: str | None,
                reservation, *, task_id: str | None = None, service: str | None = None
                ) -> tasks.TaskRow:
    """Record one new task (PROVISIONING or PENDING) and wake the agent after the commit:
    RunTask, StartTask and the service scheduler all start tasks here."""
    doc = _task_doc(account, region, principal_arn, params, cluster, td, launch, provider,
                    instance_id, reservation, task_id, service)
    task_id = doc["taskArn"].rsplit("/", 1)[1]
    tasks.insert(db, account, region, cluster["name"], task_id, doc)
    if params.get("tags"):
        from corral.ecs.tag_ops import store_tags

        store_tags(db, doc["taskArn"], params["tags"])
    emit(db, "ecs.task.changed", task=[account, region, task_id])
    return tasks.get(db, account, region, task_id)


def _task_ref_arn(ctx: RequestContext, cluster: str, ref: str) -> str:
    return ref if ref.startswith("arn:") else names.task_arn(ctx.region, ctx.account_id,
                                                             cluster, ref)


def _launch_type(params: dict, cluster: dict) -> tuple[str, str | None]:
    """(launchType, capacityProviderName): launchType, else the strategy (given or the
    cluster's default) — FARGATE / FARGATE_SPOT providers run as FARGATE —, else EC2."""
    if params.get("launchType") and params.get("capacityProviderStrategy"):
        raise InvalidParameterException(
            "Specifying both a launch type and capacity provider strategy is not supported. "
            "Remove one and try again.")
    if params.get("launchType"):
        if params["launchType"] not in ("EC2", "FARGATE"):
            raise InvalidParameterException(
                f"Corral runs EC2 and FARGATE tasks, not launch type {params['launchType']}.")
        return params["launchType"], None
    strategy = params.get("capacityProviderStrategy") or \
        (cluster.get("doc") or {}).get("defaultCapacityProviderStrategy") or []
    if strategy:
        weights = [s for s in strategy if s.get("weight", 0) > 0 or s.get("base")] or strategy
        provider = weights[0]["capacityProvider"]
        if provider not in FARGATE_PROVIDERS:
            raise InvalidParameterException(
                f"The specified capacity provider {provider} is not in the cluster's capacity "
                f"providers.")
        return "FARGATE", provider
    return "EC2", None


def _task_doc(account: str, region: str, principal_arn: str, params: dict, cluster: dict,
              td: dict, launch: str, provider: str | None, instance_id: str | None,
              reservation, task_id: str | None, service: str | None) -> dict:
    now = time.time()
    task_id = task_id or names.new_id()
    cluster_name = cluster["name"]
    arn = names.task_arn(region, account, cluster_name, task_id)
    overrides = params.get("overrides") or {}
    by_override = {o["name"]: o for o in overrides.get("containerOverrides") or []}
    containers, facts = [], {}
    for c in td["containerDefinitions"]:
        o = by_override.get(c["name"], {})
        entry = {"containerArn": names.container_arn(region, account, cluster_name,
                                                     task_id, str(uuid.uuid4())),
                 "taskArn": arn, "name": c["name"], "image": c["image"],
                 "runtimeId": f"{task_id}-{random.randrange(10**9, 10**10)}",
                 "lastStatus": "PENDING", "networkBindings": [], "networkInterfaces": [],
                 "cpu": str(o.get("cpu", c.get("cpu", 0)))}
        for key in ("memory", "memoryReservation"):
            value = o.get(key, c.get(key))
            if value is not None:
                entry[key] = str(value)
        if c.get("healthCheck"):
            entry["healthStatus"] = "UNKNOWN"
        containers.append(entry)
        facts[c["name"]] = {"runtimeId": entry["runtimeId"], "known": "NONE"}
    awsvpc = (td.get("networkMode") or "bridge") == "awsvpc"
    doc: dict[str, Any] = {
        "taskArn": arn, "clusterArn": clusters.arn(cluster),
        "taskDefinitionArn": td["taskDefinitionArn"], "overrides": _overrides_view(overrides),
        "lastStatus": "PROVISIONING" if awsvpc else "PENDING", "desiredStatus": "RUNNING",
        "containers": containers, "createdAt": now, "version": 1, "launchType": launch,
        "group": params.get("group") or f"family:{td['family']}",
        "connectivity": "CONNECTED", "connectivityAt": now,
        "availabilityZone": f"{region}a", "healthStatus": "UNKNOWN",
        "enableExecuteCommand": bool(params.get("enableExecuteCommand")),
        "attachments": [_eni_attachment(params)] if awsvpc else [],
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "tags": [],
        PRIVATE: {"td": _snapshot(td), "containers": facts, "instance": instance_id,
                  "reserved": _reserved(reservation),
                  "principal": principal_arn,
                  "service": service},
    }
    for key, value in (("cpu", overrides.get("cpu") or td.get("cpu")),
                       ("memory", overrides.get("memory") or td.get("memory")),
                       ("startedBy", params.get("startedBy")), ("capacityProviderName", provider)):
        if value:
            doc[key] = value
    if instance_id:
        doc["containerInstanceArn"] = names.container_instance_arn(
            region, account, cluster_name, instance_id)
    if launch == "FARGATE":
        doc.update(platformVersion=params.get("platformVersion") or "1.4.0",
                   platformFamily="Linux", ephemeralStorage={"sizeInGiB": 20})
    return doc


def _snapshot(td: dict) -> dict:
    """The task definition as the task started from it (timestamps as epoch seconds)."""
    return {k: (v.timestamp() if isinstance(v, datetime) else v) for k, v in td.items()}


def _reserved(r) -> dict | None:
    """What the task holds on its container instance until it is STOPPED (§4.2)."""
    if r is None:
        return None
    return r.to_doc()


def _overrides_view(overrides: dict) -> dict:
    out = dict(overrides)
    out.setdefault("containerOverrides", [])
    out.setdefault("inferenceAcceleratorOverrides", [])
    return out


def _eni_attachment(params: dict) -> dict:
    vpc = params["networkConfiguration"]["awsvpcConfiguration"]
    return {"id": str(uuid.uuid4()), "type": "ElasticNetworkInterface", "status": "PRECREATED",
            "details": [{"name": "subnetId", "value": vpc["subnets"][0]}]}
