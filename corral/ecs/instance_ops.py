"""ECS container-instance operations (a mixin of EcsProvider).

ListContainerInstances, DescribeContainerInstances, DeregisterContainerInstance,
UpdateContainerInstancesState, and the custom attributes of PutAttributes / DeleteAttributes /
ListAttributes (targetType ``container-instance``). The instance is this machine, registered in
every ACTIVE cluster (see :mod:`corral.ecs.instances` for that choice and the accounting).

- ``filter`` is a cluster query language expression (:mod:`corral.ecs.cluster_query`);
- DRAINING takes the instance out of placement; only ACTIVE and DRAINING may be set;
- deregistering an instance with tasks that are not STOPPED needs ``force``; the tasks keep
  running, as they do on ECS, and stop being counted against any instance that is listed;
- custom attributes: at most 10 per instance, names and values per AWS's character rules, and
  the agent's own attributes cannot be overwritten or deleted.
"""

from __future__ import annotations

import re
from typing import Any

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.ecs import cluster_query, clusters, instances, names
from corral.ecs.cluster_ops import cluster_resource
from corral.ecs.errors import (
    AttributeLimitExceededException,
    InvalidParameterException,
    TargetNotFoundException,
)
from corral.ecs.paging import offset_page

MAX_CUSTOM_ATTRIBUTES = 10
_ATTR_NAME = re.compile(r"^[a-zA-Z0-9_\-./\\]{1,128}$")
_ATTR_VALUE = re.compile(r"^[a-zA-Z0-9_\-.@/\\: ]{1,128}$")


class InstanceOperations:
    def _cluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return clusters.resolve(ctx.db, ctx.account_id, ctx.region, params.get("cluster"),
                                create_default=False)

    @acts_on(cluster_resource)
    def list_container_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = self._cluster(ctx, params)
        status = params.get("status")
        rows = instances.rows(ctx.db, ctx.account_id, ctx.region, cluster["name"],
                              statuses=(status,) if status else instances.LISTED)
        if params.get("filter"):
            rows = [r for r in rows if self._matches(ctx, r, params["filter"])]
        return offset_page([instances.arn(r) for r in rows], params, "containerInstanceArns")

    @staticmethod
    def _matches(ctx: RequestContext, row: dict[str, Any], expression: str) -> bool:
        tasks = instances.active_tasks(ctx.db, ctx.account_id, ctx.region, row["cluster"],
                                       row["instance_id"])
        try:
            return cluster_query.matches(expression, instances.facts(row, tasks))
        except ValueError as e:
            raise InvalidParameterException(f"Invalid filter '{expression}': {e}.") from None

    @acts_on(cluster_resource)
    def describe_container_instances(self, ctx: RequestContext, params: dict[str, Any]
                                     ) -> dict:
        cluster = self._cluster(ctx, params)
        with_tags = "TAGS" in (params.get("include") or [])
        found, failures = [], []
        for ref in params["containerInstances"]:
            row = instances.get(ctx.db, ctx.account_id, ctx.region, cluster["name"], ref)
            if row is None:
                failures.append({"arn": self._instance_arn(ctx, cluster, ref),
                                 "reason": "MISSING"})
                continue
            tags = clusters.tags_view(ctx.db, instances.arn(row)) if with_tags else None
            found.append(instances.view(ctx.db, row, tags=tags))
        return {"containerInstances": found, "failures": failures}

    @staticmethod
    def _instance_arn(ctx: RequestContext, cluster: dict[str, Any], ref: str) -> str:
        if ref.startswith("arn:"):
            return ref
        return names.container_instance_arn(ctx.region, ctx.account_id, cluster["name"], ref)

    @acts_on(cluster_resource)
    def deregister_container_instance(self, ctx: RequestContext, params: dict[str, Any]
                                      ) -> dict:
        cluster = self._cluster(ctx, params)
        row = self._instance(ctx, cluster, params["containerInstance"])
        active = instances.active_tasks(ctx.db, ctx.account_id, ctx.region, cluster["name"],
                                        row["instance_id"])
        if active and not params.get("force"):
            raise InvalidParameterException("Found running tasks on the instance.")
        if row["status"] != "INACTIVE":
            row = instances.update(ctx.db, row, status="INACTIVE")
        return {"containerInstance": instances.view(ctx.db, row)}

    def _instance(self, ctx: RequestContext, cluster: dict[str, Any], ref: str
                  ) -> dict[str, Any]:
        row = instances.get(ctx.db, ctx.account_id, ctx.region, cluster["name"], ref)
        if row is None:
            raise InvalidParameterException(
                f"Container instance {self._instance_arn(ctx, cluster, ref)} not found.")
        return row

    @acts_on(cluster_resource)
    def update_container_instances_state(self, ctx: RequestContext, params: dict[str, Any]
                                         ) -> dict:
        status = params["status"]
        if status not in ("ACTIVE", "DRAINING"):
            raise InvalidParameterException(
                "Container instances can only be updated to ACTIVE or DRAINING.")
        cluster = self._cluster(ctx, params)
        found, failures = [], []
        for ref in params["containerInstances"]:
            row = instances.get(ctx.db, ctx.account_id, ctx.region, cluster["name"], ref)
            if row is None or row["status"] == "INACTIVE":
                failures.append({"arn": self._instance_arn(ctx, cluster, ref),
                                 "reason": "MISSING" if row is None else "INACTIVE"})
                continue
            if row["status"] != status:
                row = instances.update(ctx.db, row, status=status)
            found.append(instances.view(ctx.db, row))
        return {"containerInstances": found, "failures": failures}

    # --- attributes ----------------------------------------------------------------------

    def _target(self, ctx: RequestContext, cluster: dict[str, Any], attr: dict[str, Any]
                ) -> dict[str, Any]:
        if attr.get("targetType", "container-instance") != "container-instance":
            raise InvalidParameterException("targetType must be container-instance.")
        target = attr.get("targetId")
        if not target:
            raise InvalidParameterException(
                f"Attribute {attr.get('name')} needs a targetId: the container instance's "
                f"ARN or id.")
        row = instances.get(ctx.db, ctx.account_id, ctx.region, cluster["name"], target)
        if row is None or row["status"] == "INACTIVE":
            raise TargetNotFoundException(f"Could not find {target}.")
        return row

    @staticmethod
    def _check_attribute(row: dict[str, Any], attr: dict[str, Any]) -> None:
        name, value = attr["name"], attr.get("value")
        if not _ATTR_NAME.match(name):
            raise InvalidParameterException(
                f"Invalid attribute name '{name}': up to 128 letters, numbers, hyphens, "
                f"underscores, forward slashes, back slashes or periods.")
        if value is not None and (not _ATTR_VALUE.match(value) or value != value.strip()):
            raise InvalidParameterException(
                f"Invalid value for attribute {name}: up to 128 letters, numbers, hyphens, "
                f"underscores, periods, at signs, slashes, colons or spaces, not starting or "
                f"ending with a space.")
        if any(a["name"] == name for a in row["doc"]["attributes"]):
            raise InvalidParameterException(
                f"Attribute {name} is set by the container agent and cannot be changed.")

    @staticmethod
    def _shown(row: dict[str, Any], attr: dict[str, Any]) -> dict[str, Any]:
        out = {"name": attr["name"], "targetType": "container-instance",
               "targetId": instances.arn(row)}
        if attr.get("value") is not None:
            out["value"] = attr["value"]
        return out

    @acts_on(cluster_resource)
    def put_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = self._cluster(ctx, params)
        rows: dict[str, dict[str, Any]] = {}  # instance id -> row with the new attributes
        for attr in params["attributes"]:
            found = self._target(ctx, cluster, attr)
            row = rows.get(found["instance_id"], found)
            self._check_attribute(row, attr)
            custom = {a["name"]: a for a in row["doc"].get("customAttributes", [])}
            custom[attr["name"]] = {"name": attr["name"]}
            if attr.get("value") is not None:
                custom[attr["name"]]["value"] = attr["value"]
            if len(custom) > MAX_CUSTOM_ATTRIBUTES:
                raise AttributeLimitExceededException(
                    f"You can apply up to {MAX_CUSTOM_ATTRIBUTES} custom attributes for each "
                    f"resource.")
            rows[row["instance_id"]] = {
                **row, "doc": {**row["doc"], "customAttributes": list(custom.values())}}
        for row in rows.values():
            instances.update(ctx.db, row, doc=row["doc"])
        return {"attributes": [self._shown(rows[names.last_part(a["targetId"])], a)
                               for a in params["attributes"]]}

    @acts_on(cluster_resource)
    def delete_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = self._cluster(ctx, params)
        shown = []
        for attr in params["attributes"]:
            row = self._target(ctx, cluster, attr)
            custom = row["doc"].get("customAttributes", [])
            if not any(a["name"] == attr["name"] for a in custom):
                raise TargetNotFoundException(
                    f"Could not find attribute {attr['name']} on {attr['targetId']}.")
            kept = [a for a in custom if a["name"] != attr["name"]]
            instances.update(ctx.db, row, doc={**row["doc"], "customAttributes": kept})
            shown.append(self._shown(row, attr))
        return {"attributes": shown}

    @acts_on(cluster_resource)
    def list_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        cluster = self._cluster(ctx, params)
        name, value = params.get("attributeName"), params.get("attributeValue")
        if value is not None and name is None:
            raise InvalidParameterException(
                "attributeValue can only be given together with attributeName.")
        found = []
        for row in instances.rows(ctx.db, ctx.account_id, ctx.region, cluster["name"]):
            for attr in instances.attributes(row):
                if (name is None or attr["name"] == name) and \
                        (value is None or attr.get("value") == value):
                    found.append(self._shown(row, attr))
        return offset_page(found, params, "attributes")
