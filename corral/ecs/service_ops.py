"""ECS service operations (a mixin of EcsProvider): what the user asks of a service.

    CreateService   validate ─> one service row: the Service shape, one PRIMARY deployment
    UpdateService   validate ─> changed settings; a new PRIMARY deployment when the tasks must
                    change (task definition, forceNewDeployment, network, load balancers,
                    launch settings); a desiredCount-only change moves the PRIMARY's count
    DeleteService   desiredCount 0 (force) and DRAINING
    DescribeServices, ListServices, ListServicesByNamespace
    ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions
                    read from the deployment history the document keeps

What the user may give is checked in :mod:`corral.ecs.service_rules`; the deployment
documents and the ServiceDeployment / ServiceRevision shapes are built in
:mod:`corral.ecs.service_docs`. Everything that follows from *running* a service — task
counts, rolloutState, events, INACTIVE deployments and services — is the scheduler's
(``service_planner``); the document layout both sides share is in :mod:`corral.ecs.services`.
Every write ends with ``ecs.service.changed`` so the scheduler wakes once the transaction
commits.

Corral's choices where AWS has no equivalent here (each answers an AWS-shaped error):
- the ECS rolling controller only (see ``service_rules``);
- there are no Cloud Map namespaces: ListServicesByNamespace answers an empty list for a
  namespace some cluster names as its Service Connect default, NamespaceNotFoundException
  otherwise (no service can join a namespace, since Service Connect is refused);
- CreateService over the name of an INACTIVE service replaces that row (and its tags).
"""

from __future__ import annotations

import copy
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from corral.aws import arns
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.ecs import clusters, load_balancing, names, services, taskdefs
from corral.ecs import service_docs as docs
from corral.ecs import service_rules as rules
from corral.ecs.errors import (
    ClientException,
    InvalidParameterException,
    NamespaceNotFoundException,
    ServiceNotActiveException,
    ServiceNotFoundException,
)
from corral.ecs.paging import offset_page
from corral.ecs.services import PRIVATE
from corral.ecs.task_ops import _launch_type
from corral.store import tags as tag_store
from corral.store.db import emit

MAX_DESCRIBE = 10  # DescribeServices.services
MAX_DEPLOYMENT_ARNS = 20  # DescribeServiceDeployments / DescribeServiceRevisions
NOT_FOUND = "Service not found."  # AWS text
NOT_ACTIVE = "Service was not ACTIVE."  # AWS text
# Settings whose change starts a new deployment (reference §3.3, §8.4).
_REDEPLOY = ("taskDefinition", "networkConfiguration", "loadBalancers",
             "capacityProviderStrategy", "platformVersion")


# --- references ------------------------------------------------------------------------------

def _sub_arn(ctx: RequestContext, ref: str, kind: str) -> tuple[str, str, str] | None:
    """(cluster, service, digits) of a service-deployment / service-revision ARN here."""
    parsed = arns.parse(ref)
    if parsed is None or (parsed.service, parsed.account, parsed.region) != \
            ("ecs", ctx.account_id, ctx.region) or parsed.resource_type != kind:
        return None
    parts = parsed.resource.split("/")
    return (parts[1], parts[2], parts[3]) if len(parts) == 4 else None


def _service_name(ctx: RequestContext, cluster: str, ref: str) -> str | None:
    """The service name a name or ARN (``service/<cluster>/<name>``, old ``service/<name>``)
    refers to in ``cluster``; None when the ARN points elsewhere."""
    parsed = arns.parse(ref)
    if parsed is None:
        return ref
    if (parsed.service, parsed.account, parsed.region, parsed.resource_type) != \
            ("ecs", ctx.account_id, ctx.region, "service"):
        return None
    parts = parsed.resource.split("/")
    if len(parts) == 3:
        return parts[2] if parts[1] == cluster else None
    return parts[1] if len(parts) == 2 else None


def _service_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    cluster = clusters.name_of(ctx.account_id, ctx.region, params.get("cluster")) or \
        names.DEFAULT_CLUSTER
    refs = params.get("services") or [params.get("service") or params.get("serviceName") or ""]
    return [r if r.startswith("arn:") else
            names.service_arn(ctx.region, ctx.account_id, cluster, r) for r in refs]


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


class ServiceOperations:
    # --- create ---------------------------------------------------------------------------

    @acts_on(_service_arns)
    def create_service(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"))
        name = params["serviceName"]
        rules.check_name(name)
        existing = services.get(ctx.db, ctx.account_id, ctx.region, cluster["name"], name)
        if existing is not None and existing.doc["status"] != "INACTIVE":
            return {"service": self._existing(ctx, existing, params)}
        doc, td = self._new_service(ctx, params, cluster, name)
        if existing is not None:  # a service of this name went INACTIVE: it is replaced
            self._forget(ctx.db, existing)
        services.insert(ctx.db, ctx.account_id, ctx.region, cluster["name"], doc)
        tags = None
        if params.get("tags"):
            from corral.ecs.tag_ops import store_tags, tags_view

            store_tags(ctx.db, doc["serviceArn"], params["tags"])
            tags = tags_view(ctx.db, doc["serviceArn"])
        self._changed(ctx, cluster["name"], name)
        row = services.get(ctx.db, ctx.account_id, ctx.region, cluster["name"], name)
        return {"service": services.view(row, tags)}

    def _existing(self, ctx: RequestContext, row: services.ServiceRow, params: dict) -> dict:
        """An ACTIVE service of the same name: the same clientToken is a retry of the call
        that created it (AWS's idempotent CreateService); anything else is refused."""
        if row.doc["status"] == "DRAINING":
            raise InvalidParameterException(  # AWS text
                "Unable to Start a service that is still Draining.")
        token = params.get("clientToken")
        if not token or token != row.doc[PRIVATE].get("clientToken"):
            raise InvalidParameterException("Creation of service was not idempotent.")
        return services.view(row)

    def _new_service(self, ctx: RequestContext, params: dict, cluster: dict, name: str
                     ) -> tuple[dict, dict]:
        rules.check_unsupported(params)
        daemon = params.get("schedulingStrategy") == "DAEMON"
        desired = rules.desired_count(params, daemon)
        if not params.get("taskDefinition"):
            raise InvalidParameterException("TaskDefinition can not be blank.")
        td = self._runnable_definition(ctx, params["taskDefinition"])
        launch, _provider = _launch_type(params, cluster)
        if daemon and launch == "FARGATE":
            raise InvalidParameterException(
                "The daemon scheduling strategy does not support the FARGATE launch type.")
        self._check_run(ctx, params, td, launch)
        lbs = params.get("loadBalancers") or []
        rules.check_load_balancers(lbs, td)
        load_balancing.check_target_groups(ctx.db, ctx.account_id, ctx.region, lbs, td)
        rules.check_grace(params.get("healthCheckGracePeriodSeconds"), lbs)
        rules.check_placement(td, params.get("placementConstraints") or [],
                              params.get("placementStrategy") or [], daemon)
        doc = self._service_doc(ctx, params, cluster, name, td, launch, desired, daemon)
        role = rules.role_arn(ctx.account_id, params.get("role"), lbs, td)
        if role:
            self._pass_role(ctx, role)
            doc["roleArn"] = role
        return doc, td

    def _service_doc(self, ctx: RequestContext, params: dict, cluster: dict, name: str,
                     td: dict, launch: str, desired: int, daemon: bool) -> dict:
        now = time.time()
        strategy = params.get("capacityProviderStrategy") or \
            (None if params.get("launchType") else
             cluster["doc"].get("defaultCapacityProviderStrategy")) or None
        lbs = params.get("loadBalancers") or []
        doc: dict[str, Any] = {
            "serviceArn": names.service_arn(ctx.region, ctx.account_id, cluster["name"], name),
            "serviceName": name, "clusterArn": clusters.arn(cluster), "loadBalancers": lbs,
            "serviceRegistries": [], "status": "ACTIVE", "desiredCount": desired,
            "runningCount": 0, "pendingCount": 0,
            "taskDefinition": td["taskDefinitionArn"],
            "deploymentConfiguration": rules.deployment_configuration(
                params.get("deploymentConfiguration"), None, daemon),
            "deployments": [], "events": [], "createdAt": now,
            "placementConstraints": params.get("placementConstraints") or [],
            "placementStrategy": params.get("placementStrategy") or [],
            "schedulingStrategy": "DAEMON" if daemon else "REPLICA",
            "deploymentController": {"type": "ECS"}, "createdBy": ctx.principal.arn,
            "enableECSManagedTags": bool(params.get("enableECSManagedTags")),
            "propagateTags": params.get("propagateTags") or "NONE",
            "enableExecuteCommand": bool(params.get("enableExecuteCommand")),
            PRIVATE: {"history": [], "throttle": {"failures": 0, "until": 0},
                      "steady": False, "clientToken": params.get("clientToken")},
        }
        if strategy:
            doc["capacityProviderStrategy"] = strategy
        else:
            doc["launchType"] = launch
        version = rules.platform_version(launch, params.get("platformVersion"))
        if version:
            doc.update(platformVersion=version, platformFamily="Linux")
        if params.get("networkConfiguration"):
            doc["networkConfiguration"] = params["networkConfiguration"]
        if lbs:
            doc["healthCheckGracePeriodSeconds"] = params.get("healthCheckGracePeriodSeconds")\
                or 0
        if params.get("availabilityZoneRebalancing"):
            doc["availabilityZoneRebalancing"] = params["availabilityZoneRebalancing"]
        docs.start_deployment(doc, td, desired, now)
        return doc

    # --- update ---------------------------------------------------------------------------

    @acts_on(_service_arns)
    def update_service(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        row = self._service(ctx, cluster["name"], params["service"])
        if row.doc["status"] != "ACTIVE":
            raise ServiceNotActiveException(NOT_ACTIVE)
        rules.check_unsupported(params)
        doc = row.doc
        before = {k: copy.deepcopy(doc.get(k)) for k in _REDEPLOY}
        td = self._apply_update(ctx, params, cluster, doc)
        now = time.time()
        if params.get("forceNewDeployment") or any(doc.get(k) != v for k, v in before.items()):
            docs.start_deployment(doc, td, 0, now)  # the scheduler raises it (reference §3.3)
        elif doc["deployments"]:
            doc["deployments"][0]["desiredCount"] = doc["desiredCount"]
            doc[PRIVATE]["steady"] = False
        services.save(ctx.db, row)
        self._changed(ctx, cluster["name"], row.name)
        return {"service": services.view(row)}

    def _apply_update(self, ctx: RequestContext, params: dict, cluster: dict, doc: dict
                      ) -> dict:
        """Validate the update and write it into ``doc``; the task definition it runs."""
        daemon = doc["schedulingStrategy"] == "DAEMON"
        if params.get("desiredCount") is not None:
            doc["desiredCount"] = rules.desired_count(params, daemon)
        if params.get("taskDefinition"):
            td = self._runnable_definition(ctx, params["taskDefinition"])
        else:  # a deregistered definition still runs the service it was deployed to
            td = taskdefs.deployed(ctx.db, ctx.account_id, ctx.region, doc["taskDefinition"])
            if td is None:
                raise ClientException("TaskDefinition not found.")
        doc["taskDefinition"] = td["taskDefinitionArn"]
        if params.get("capacityProviderStrategy"):
            _launch_type({"capacityProviderStrategy": params["capacityProviderStrategy"]},
                         cluster)
            doc.pop("launchType", None)
            doc["capacityProviderStrategy"] = params["capacityProviderStrategy"]
        launch, _ = docs.launch_fields(doc)
        if params.get("networkConfiguration") is not None:
            doc["networkConfiguration"] = params["networkConfiguration"]
        self._check_run(ctx, {"networkConfiguration": doc.get("networkConfiguration")}, td,
                        launch)
        if params.get("platformVersion") is not None:
            doc["platformVersion"] = rules.platform_version(launch, params["platformVersion"])
        if params.get("loadBalancers") is not None:
            doc["loadBalancers"] = params["loadBalancers"]
        rules.check_load_balancers(doc.get("loadBalancers") or [], td)
        load_balancing.check_target_groups(ctx.db, ctx.account_id, ctx.region,
                                           doc.get("loadBalancers") or [], td)
        self._update_settings(params, doc, td, daemon)
        return td

    def _update_settings(self, params: dict, doc: dict, td: dict, daemon: bool) -> None:
        doc["deploymentConfiguration"] = rules.deployment_configuration(
            params.get("deploymentConfiguration"), doc.get("deploymentConfiguration"), daemon)
        lbs = doc.get("loadBalancers") or []
        grace = params.get("healthCheckGracePeriodSeconds")
        rules.check_grace(grace, lbs)
        if grace is not None:
            doc["healthCheckGracePeriodSeconds"] = grace
        elif not lbs:
            doc.pop("healthCheckGracePeriodSeconds", None)
        for key in ("placementConstraints", "placementStrategy"):
            if params.get(key) is not None:
                doc[key] = params[key]
        rules.check_placement(td, doc.get("placementConstraints") or [],
                              doc.get("placementStrategy") or [], daemon)
        for key in ("propagateTags", "enableECSManagedTags", "enableExecuteCommand",
                    "availabilityZoneRebalancing"):
            if params.get(key) is not None:
                doc[key] = params[key]

    # --- delete ---------------------------------------------------------------------------

    @acts_on(_service_arns)
    def delete_service(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        row = self._service(ctx, cluster["name"], params["service"])
        doc = row.doc
        if doc["status"] == "INACTIVE":
            raise ServiceNotFoundException(NOT_FOUND)
        if doc["status"] == "ACTIVE":
            if doc["desiredCount"] > 0 and not params.get("force"):
                raise InvalidParameterException(  # AWS text
                    "The service cannot be stopped while it is scaled above 0.")
            doc.update(status="DRAINING", desiredCount=0)
            for d in doc["deployments"]:
                d["desiredCount"] = 0
            doc[PRIVATE]["steady"] = False
            services.save(ctx.db, row)
            self._changed(ctx, cluster["name"], row.name)
        return {"service": services.view(row)}

    # --- reading --------------------------------------------------------------------------

    @acts_on(_service_arns)
    def describe_services(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        refs = params["services"]
        if not refs:
            raise InvalidParameterException("Services cannot be empty.")
        if len(refs) > MAX_DESCRIBE:
            raise InvalidParameterException(
                f"services can have at most {MAX_DESCRIBE} items.")
        with_tags = "TAGS" in (params.get("include") or [])
        out, failures = [], []
        for ref in refs:
            name = _service_name(ctx, cluster["name"], ref)
            row = name and services.get(ctx.db, ctx.account_id, ctx.region, cluster["name"],
                                        name)
            if not row:
                arn = ref if ref.startswith("arn:") else names.service_arn(
                    ctx.region, ctx.account_id, cluster["name"], ref)
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            tags = None
            if with_tags:
                from corral.ecs.tag_ops import tags_view

                tags = tags_view(ctx.db, row.doc["serviceArn"])
            out.append(services.view(row, tags))
        return {"services": out, "failures": failures}

    def list_services(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        rows = services.in_cluster(ctx.db, ctx.account_id, ctx.region, cluster["name"])
        launch, scheduling = params.get("launchType"), params.get("schedulingStrategy")
        arns_ = [r.doc["serviceArn"] for r in rows
                 if (launch is None or docs.launch_fields(r.doc)[0] == launch)
                 and (scheduling is None or r.doc["schedulingStrategy"] == scheduling)]
        return offset_page(arns_, params, "serviceArns", default=10)

    def list_services_by_namespace(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        namespace = params["namespace"]
        after = ""
        while batch := clusters.page(ctx.db, ctx.account_id, ctx.region, after=after,
                                     limit=100):
            for row in batch:
                default = (row["doc"].get("serviceConnectDefaults") or {}).get("namespace")
                if default and namespace in (default, default.rsplit("/", 1)[-1]):
                    return {"serviceArns": []}  # Service Connect is refused: none joined
            after = batch[-1]["name"]
        raise NamespaceNotFoundException("Namespace not found.")

    def list_service_deployments(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                   create_default=False)
        row = self._service(ctx, cluster["name"], params["service"])
        wanted = set(params.get("status") or [])
        window = params.get("createdAt") or {}
        after, before = _epoch(window.get("after")), _epoch(window.get("before"))
        out = []
        for entry in row.doc[PRIVATE]["history"]:
            brief = docs.service_deployment(entry, row.doc, brief=True)
            if (wanted and brief["status"] not in wanted) or \
                    (after is not None and entry["createdAt"] < after) or \
                    (before is not None and entry["createdAt"] > before):
                continue
            out.append(brief)
        return offset_page(out, params, "serviceDeployments", default=20)

    def describe_service_deployments(self, ctx: RequestContext, params: dict[str, Any]
                                     ) -> dict:
        return self._describe_history(ctx, params["serviceDeploymentArns"],
                                      "service-deployment", "serviceDeployments",
                                      docs.service_deployment)

    def describe_service_revisions(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        return self._describe_history(ctx, params["serviceRevisionArns"], "service-revision",
                                      "serviceRevisions", docs.service_revision)

    # --- helpers --------------------------------------------------------------------------

    def _describe_history(self, ctx: RequestContext, refs: list[str], kind: str, key: str,
                          shape) -> dict:
        if not 1 <= len(refs) <= MAX_DEPLOYMENT_ARNS:
            raise InvalidParameterException(
                f"Specify between 1 and {MAX_DEPLOYMENT_ARNS} {kind} ARNs.")
        found, failures = [], []
        for ref in refs:
            parts = _sub_arn(ctx, ref, kind)
            row = parts and services.get(ctx.db, ctx.account_id, ctx.region, *parts[:2])
            entry = row and docs.find_entry(row.doc, parts[2])
            if not entry:
                failures.append({"arn": ref, "reason": "MISSING"})
                continue
            found.append(shape(entry, row.doc))
        return {key: found, "failures": failures}

    def _service(self, ctx: RequestContext, cluster: str, ref: str) -> services.ServiceRow:
        name = _service_name(ctx, cluster, ref)
        row = name and services.get(ctx.db, ctx.account_id, ctx.region, cluster, name)
        if not row:
            raise ServiceNotFoundException(NOT_FOUND)
        return row

    def _pass_role(self, ctx: RequestContext, role: str) -> None:
        if self.authorizer is not None:
            from corral.iam.vending import check_pass_role

            check_pass_role(self.authorizer, ctx, role, "ecs.amazonaws.com")

    @staticmethod
    def _forget(db: Connection, row: services.ServiceRow) -> None:
        """Remove an INACTIVE service's row and tags before its name is used again."""
        services.remove(db, row)
        arn = row.doc["serviceArn"]
        tag_store.remove_all(db, arn)

    @staticmethod
    def _changed(ctx: RequestContext, cluster: str, name: str) -> None:
        emit(ctx.db, "ecs.service.changed", service=[ctx.account_id, ctx.region, cluster, name])
