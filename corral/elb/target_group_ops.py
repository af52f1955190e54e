"""Target group operations (a mixin of ElbProvider): Create/Describe/Modify/DeleteTargetGroup,
Describe/ModifyTargetGroupAttributes.

Target groups of application load balancers: target type ``ip`` or ``instance`` (the
default), Protocol HTTP, health checks over HTTP with ALB's defaults (reference §8.1: 30 s
interval, 5 s timeout, 5 healthy, 2 unhealthy, path ``/``, matcher ``200``). The ranges the
model states are checked by the wire layer; the rules between fields are checked here. A
group's ``LoadBalancerArns`` is computed at describe time from the forward actions that name
it. CreateTargetGroup is idempotent for the same name and settings, as on AWS.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.aws import arns
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.elb import attributes, lookups, names, records, tag_ops, targets
from corral.elb import validation as check
from corral.elb.errors import (
    DuplicateTargetGroupName,
    InvalidConfigurationRequest,
    ResourceInUse,
    TargetGroupNotFound,
    TooManyTargetGroups,
    ValidationError,
)
from corral.store.db import emit
from corral.store.schema import elb_target_groups

MAX_TARGET_GROUPS = 3000
HEALTH_DEFAULTS: dict[str, Any] = {
    "HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port",
    "HealthCheckEnabled": True, "HealthCheckIntervalSeconds": 30,
    "HealthCheckTimeoutSeconds": 5, "HealthyThresholdCount": 5, "UnhealthyThresholdCount": 2,
    "HealthCheckPath": "/", "Matcher": {"HttpCode": "200"},
}
_SAME = ("Protocol", "Port", "VpcId", "TargetType", *HEALTH_DEFAULTS)  # idempotent repeat


def _tg_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    if params.get("TargetGroupArn"):
        return [params["TargetGroupArn"]]
    if params.get("Name"):
        return [arns.build(names.SERVICE, ctx.region, ctx.account_id,
                           f"targetgroup/{params['Name']}/*")]
    return list(params.get("TargetGroupArns") or ["*"])


def _check_kind(params: dict[str, Any]) -> None:
    kind = params.get("TargetType") or "instance"
    if kind not in ("ip", "instance"):
        raise InvalidConfigurationRequest(
            f"Corral's target groups take 'ip' and 'instance' targets; target type '{kind}' "
            "is not supported")
    if params.get("Protocol") is None or params.get("Port") is None:
        raise ValidationError(f"A protocol and a port must be specified for target groups "
                              f"with target type '{kind}'")
    _check_protocol(params.get("Protocol"), "Protocol")
    if (params.get("ProtocolVersion") or "HTTP1") != "HTTP1":
        raise InvalidConfigurationRequest(
            f"Protocol version '{params['ProtocolVersion']}' is not supported by Corral yet; "
            "use HTTP1")


def _check_protocol(protocol: str | None, field: str) -> None:
    if protocol in (None, "HTTP"):
        return
    if protocol == "HTTPS":
        raise InvalidConfigurationRequest(f"{field} HTTPS is not supported by Corral yet; "
                                          "use HTTP")
    raise ValidationError(f"{field} '{protocol}' is not valid for a target group of an "
                          "application load balancer: use HTTP")


def _health(doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``doc``'s health-check settings with those ``params`` gives applied and checked."""
    out = dict(doc)
    for key in HEALTH_DEFAULTS:
        if params.get(key) is not None:
            out[key] = params[key]
    _check_protocol(out["HealthCheckProtocol"], "Health check protocol")
    if not out["HealthCheckEnabled"]:
        raise ValidationError("Health checks cannot be disabled for target groups with target "
                              f"type '{out['TargetType']}'")
    out["HealthCheckPort"] = check.check_health_port(out["HealthCheckPort"])
    out["HealthCheckPath"] = check.check_health_path(out["HealthCheckPath"])
    out["Matcher"] = check.check_matcher(params.get("Matcher") or out["Matcher"])
    check.check_timing(out)
    return out


def _new_doc(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Name"]
    doc = {
        "TargetGroupArn": names.target_group_arn(ctx.region, ctx.account_id, name,
                                                 names.new_id()),
        "TargetGroupName": name, "Protocol": params["Protocol"], "Port": params["Port"],
        "VpcId": params.get("VpcId") or names.default_vpc(ctx.account_id, ctx.region),
        **HEALTH_DEFAULTS, "TargetType": params.get("TargetType") or "instance",
        "ProtocolVersion": "HTTP1", "IpAddressType": params.get("IpAddressType") or "ipv4",
    }
    doc = _health(doc, params)
    doc[records.PRIVATE] = {"attributes": attributes.defaults("target group"),
                            "tags": tag_ops.checked(params.get("Tags"))}
    return doc


def view(doc: dict[str, Any], refs: dict[str, set[str]]) -> dict[str, Any]:
    out = records.public(doc)
    out["LoadBalancerArns"] = sorted(refs.get(doc["TargetGroupArn"], ()))
    return out


class TargetGroupOperations:
    @acts_on(_tg_arns)
    def create_target_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        check.check_name(params["Name"], "target group")
        _check_kind(params)
        doc = _new_doc(ctx, params)
        existing = records.named(ctx.db, elb_target_groups, ctx.account_id, ctx.region,
                                 params["Name"])
        refs = records.references(ctx.db, ctx.account_id, ctx.region)
        if existing is not None:
            if any(existing.doc[k] != doc[k] for k in _SAME):
                raise DuplicateTargetGroupName(
                    f"A target group with the same name '{params['Name']}' exists, but with "
                    "different settings")
            return {"TargetGroups": [view(existing.doc, refs)]}
        if len(records.all_in(ctx.db, elb_target_groups, ctx.account_id, ctx.region)) >= \
                MAX_TARGET_GROUPS:
            raise TooManyTargetGroups("The maximum number of target groups has been reached")
        ctx.db.execute(elb_target_groups.insert().values(
            arn=doc["TargetGroupArn"], account_id=ctx.account_id, region=ctx.region,
            name=params["Name"], created_at=datetime.now(UTC), doc=doc))
        emit(ctx.db, "elb.changed", arn=doc["TargetGroupArn"])
        return {"TargetGroups": [view(doc, refs)]}

    @acts_on(_tg_arns)
    def describe_target_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        lookups.exclusive(params, "LoadBalancerArn", "TargetGroupArns", "Names")
        refs = records.references(ctx.db, ctx.account_id, ctx.region)
        if params.get("Names"):
            rows = lookups.by_names(ctx, elb_target_groups, params["Names"],
                                    TargetGroupNotFound, "Target groups")
        elif params.get("TargetGroupArns"):
            rows = lookups.find_all(ctx, params["TargetGroupArns"], "targetgroup")
        else:
            rows = records.all_in(ctx.db, elb_target_groups, ctx.account_id, ctx.region)
        if params.get("LoadBalancerArn"):
            lb = params["LoadBalancerArn"]
            lookups.find(ctx, lb, "loadbalancer")
            rows = [r for r in rows if lb in refs.get(r.arn, ())]
        return lookups.page([view(r.doc, refs) for r in rows], params, "TargetGroups")

    @acts_on(_tg_arns)
    def modify_target_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["TargetGroupArn"], "targetgroup")
        doc = _health(row.doc, params)
        records.put_doc(ctx.db, elb_target_groups, row.arn, doc)
        emit(ctx.db, "elb.changed", arn=row.arn)
        refs = records.references(ctx.db, ctx.account_id, ctx.region)
        return {"TargetGroups": [view(doc, refs)]}

    @acts_on(_tg_arns)
    def delete_target_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        """A group a listener or rule forwards to cannot go (ResourceInUse); one that is not
        there is already deleted (success, as AWS answers)."""
        arn = lookups.check_arn(params["TargetGroupArn"], "targetgroup")
        if records.get(ctx.db, elb_target_groups, arn, ctx.account_id, ctx.region) is None:
            return {}
        if records.references(ctx.db, ctx.account_id, ctx.region).get(arn):
            raise ResourceInUse(f"Target group '{arn}' is currently in use by a listener or a "
                                "rule")
        targets.remove_all(ctx.db, arn)
        records.delete_target_group(ctx.db, arn)
        emit(ctx.db, "elb.changed", arn=arn)
        return {}

    # --- attributes ---------------------------------------------------------------------

    @acts_on(_tg_arns)
    def describe_target_group_attributes(self, ctx: RequestContext,
                                         params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["TargetGroupArn"], "targetgroup")
        return {"Attributes": attributes.as_list(records.private(row.doc)["attributes"])}

    @acts_on(_tg_arns)
    def modify_target_group_attributes(self, ctx: RequestContext,
                                       params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["TargetGroupArn"], "targetgroup")
        doc = row.doc
        private = records.private(doc)
        private["attributes"] = attributes.merged("target group", private["attributes"],
                                                  params["Attributes"])
        records.put_doc(ctx.db, elb_target_groups, row.arn, doc)
        emit(ctx.db, "elb.changed", arn=row.arn)
        return {"Attributes": attributes.as_list(private["attributes"])}
