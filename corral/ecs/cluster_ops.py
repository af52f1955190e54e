"""ECS cluster operations (a mixin of EcsProvider).

CreateCluster, DescribeClusters, ListClusters, UpdateCluster, UpdateClusterSettings,
DeleteCluster and PutClusterCapacityProviders. Storage, counts and the Cluster shape live in
:mod:`corral.ecs.clusters`; this module holds AWS's rules:

- creating a cluster that is ACTIVE returns it unchanged (AWS's idempotent CreateCluster);
- ``containerInsights`` takes enabled | disabled | enhanced;
- the capacity providers a cluster may name are the reserved FARGATE and FARGATE_SPOT (Corral
  has no Auto Scaling groups to back others), and a default strategy may only name providers
  associated with the cluster;
- DeleteCluster is refused while services are ACTIVE or tasks are not STOPPED. **This machine is
  an implicit member of every cluster**: DeleteCluster deregisters it itself when no task is
  active, instead of answering ClusterContainsContainerInstancesException (which only other,
  explicitly registered instances would cause).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.ecs import clusters, instances, names, paging
from corral.ecs.errors import (
    ClusterContainsContainerInstancesException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
    InvalidParameterException,
)
from corral.store import tags as tag_store

CAPACITY_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
INSIGHTS_VALUES = ("enabled", "disabled", "enhanced")


def cluster_resource(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    ref = params.get("cluster") or params.get("clusterName")
    name = clusters.name_of(ctx.account_id, ctx.region, ref) or names.DEFAULT_CLUSTER
    return [names.cluster_arn(ctx.region, ctx.account_id, name)]


def _cluster_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    refs = params.get("clusters") or [names.DEFAULT_CLUSTER]
    return [names.cluster_arn(ctx.region, ctx.account_id,
                              clusters.name_of(ctx.account_id, ctx.region, r) or r)
            for r in refs]


def _settings(given: list[dict] | None, current: list[dict]) -> list[dict]:
    """``current`` with ``given`` merged in by name (containerInsights is the only one)."""
    merged = {s["name"]: s["value"] for s in current}
    for s in given or []:
        if s.get("name") != "containerInsights":  # the only cluster setting ECS has
            raise InvalidParameterException(
                f"Invalid cluster setting name {s.get('name')}. Valid names are "
                f"containerInsights.")
        if s.get("value") not in INSIGHTS_VALUES:
            raise InvalidParameterException(
                f"Invalid value '{s.get('value')}' for cluster setting {s.get('name')}. "
                f"Valid values are enabled, disabled and enhanced.")
        merged[s["name"]] = s["value"]
    return [{"name": k, "value": v} for k, v in merged.items()]


def _configuration(config: dict | None) -> dict | None:
    exec_cfg = (config or {}).get("executeCommandConfiguration") or {}
    if exec_cfg.get("logging") == "OVERRIDE" and not exec_cfg.get("logConfiguration"):
        raise InvalidParameterException(
            "executeCommandConfiguration.logConfiguration is required when logging is "
            "OVERRIDE.")
    return config


def _capacity_providers(providers: list[str], strategy: list[dict]) -> None:
    for p in providers:
        if p not in CAPACITY_PROVIDERS:
            raise InvalidParameterException(
                "The specified capacity provider does not exist. Specify a valid name or ARN "
                "and try again.")
    for item in strategy:
        if item.get("capacityProvider") not in providers:
            raise InvalidParameterException(
                "The specified capacity provider strategy cannot contain a capacity provider "
                "that is not associated with the cluster. Associate the capacity provider with "
                "the cluster or specify a valid capacity provider and try again.")
    if sum(1 for item in strategy if item.get("base")) > 1:
        raise InvalidParameterException(
            "Only one capacity provider in a capacity provider strategy can have a base "
            "defined.")


def _strategy_items(strategy: list[dict]) -> list[dict]:
    return [{"capacityProvider": i["capacityProvider"], "weight": i.get("weight", 0),
             "base": i.get("base", 0)} for i in strategy]


class ClusterOperations:
    @acts_on(cluster_resource)
    def create_cluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        name = params.get("clusterName") or names.DEFAULT_CLUSTER
        clusters.validate_name(name)
        existing = clusters.get(ctx.db, ctx.account_id, ctx.region, name)
        if existing is not None and existing["status"] == "ACTIVE":
            return {"cluster": clusters.view(ctx.db, existing, clusters.ALL_INCLUDES)}
        providers = params.get("capacityProviders") or []
        strategy = params.get("defaultCapacityProviderStrategy") or []
        _capacity_providers(providers, strategy)
        doc: dict[str, Any] = {
            "settings": _settings(params.get("settings"), clusters.DEFAULT_SETTINGS),
            "capacityProviders": providers,
            "defaultCapacityProviderStrategy": _strategy_items(strategy),
        }
        if _configuration(params.get("configuration")):
            doc["configuration"] = params["configuration"]
        if params.get("serviceConnectDefaults"):
            doc["serviceConnectDefaults"] = params["serviceConnectDefaults"]
        row = clusters.create(ctx.db, ctx.account_id, ctx.region, name, datetime.now(UTC), doc)
        clusters.store_tags(ctx.db, clusters.arn(row), params.get("tags"))
        return {"cluster": clusters.view(ctx.db, row, clusters.ALL_INCLUDES)}

    @acts_on(_cluster_arns)
    def describe_clusters(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        refs = params.get("clusters") or [names.DEFAULT_CLUSTER]
        if len(refs) > 100:
            raise InvalidParameterException("clusters can have at most 100 items.")
        include = params.get("include") or []
        found, failures = [], []
        for ref in refs:
            name = clusters.name_of(ctx.account_id, ctx.region, ref)
            row = clusters.get(ctx.db, ctx.account_id, ctx.region, name) if name else None
            if row is None:
                failures.append({"arn": _failure_arn(ctx, ref, name), "reason": "MISSING"})
            else:
                found.append(clusters.view(ctx.db, row, include))
        return {"clusters": found, "failures": failures}

    def list_clusters(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        limit = paging.max_results(params)
        after = (paging.cursor(params, after=str) or {"after": ""})["after"]
        rows = clusters.page(ctx.db, ctx.account_id, ctx.region, after=after,
                             limit=limit + 1)
        out: dict[str, Any] = {"clusterArns": [clusters.arn(r) for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = pagination.encode({"after": rows[limit - 1]["name"]})
        return out

    @acts_on(cluster_resource)
    def update_cluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params["cluster"],
                               create_default=False)
        doc = dict(row["doc"])
        doc["settings"] = _settings(params.get("settings"), doc.get("settings", []))
        if params.get("configuration") is not None:
            doc["configuration"] = _configuration(params["configuration"])
        if params.get("serviceConnectDefaults") is not None:
            doc["serviceConnectDefaults"] = params["serviceConnectDefaults"]
        row = clusters.update(ctx.db, row, doc=doc)
        return {"cluster": clusters.view(ctx.db, row, clusters.ALL_INCLUDES)}

    @acts_on(cluster_resource)
    def update_cluster_settings(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params["cluster"],
                               create_default=False)
        doc = {**row["doc"], "settings": _settings(params["settings"],
                                                   row["doc"].get("settings", []))}
        row = clusters.update(ctx.db, row, doc=doc)
        return {"cluster": clusters.view(ctx.db, row, clusters.ALL_INCLUDES)}

    @acts_on(cluster_resource)
    def put_cluster_capacity_providers(self, ctx: RequestContext, params: dict[str, Any]
                                       ) -> dict:
        row = clusters.resolve(ctx.db, ctx.account_id, ctx.region, params["cluster"],
                               create_default=False)
        providers = params["capacityProviders"]
        strategy = params["defaultCapacityProviderStrategy"]
        _capacity_providers(providers, strategy)
        doc = {**row["doc"], "capacityProviders": providers,
               "defaultCapacityProviderStrategy": _strategy_items(strategy)}
        row = clusters.update(ctx.db, row, doc=doc)
        return {"cluster": clusters.view(ctx.db, row, clusters.ALL_INCLUDES)}

    @acts_on(cluster_resource)
    def delete_cluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        db, account, region = ctx.db, ctx.account_id, ctx.region
        row = clusters.resolve(db, account, region, params["cluster"], create_default=False)
        name = row["name"]
        if clusters._active_services(db, account, region, name):
            raise ClusterContainsServicesException(
                "The Cluster cannot be deleted while Services are active.")
        if clusters.active_task_count(db, account, region, name):
            raise ClusterContainsTasksException(
                "The Cluster cannot be deleted while Tasks are active.")
        if any(not instances.is_local(i) for i in instances.rows(db, account, region, name)):
            raise ClusterContainsContainerInstancesException(
                "The Cluster cannot be deleted while Container Instances are active or "
                "draining.")
        instances.forget_cluster(db, account, region, name)  # the implicit local member
        arn = clusters.arn(row)
        tag_store.remove(db, arn, list(tag_store.get(db, arn)))
        row = clusters.update(db, row, status="INACTIVE")
        return {"cluster": clusters.view(db, row, clusters.ALL_INCLUDES)}


def _failure_arn(ctx: RequestContext, ref: str, name: str | None) -> str:
    if name is None or ref.startswith("arn:"):
        return ref
    return names.cluster_arn(ctx.region, ctx.account_id, name)
