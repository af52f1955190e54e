"""Load balancer operations (a mixin of ElbProvider): Create/Describe/DeleteLoadBalancer(s),
Describe/ModifyLoadBalancerAttributes, DescribeAccountLimits.

Corral serves application load balancers: a load balancer is a name, a DNS name that resolves
to this machine (``names.dns_name``) and the listeners that are served on this machine's ports.
CreateLoadBalancer stores ``State.Code provisioning``; the data plane marks it ``active`` once
its listeners are bound. Subnets and security groups are accepted and echoed (Corral has no
VPCs); without them a load balancer shows two subnets of the region's first two zones.

CreateLoadBalancer is idempotent as on AWS: the same name with the same settings answers the
existing load balancer; different settings are DuplicateLoadBalancerName.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.aws import arns, shapes
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.elb import attributes, lookups, names, records, tag_ops
from corral.elb.errors import (
    DuplicateLoadBalancerName,
    InvalidConfigurationRequest,
    LoadBalancerNotFound,
    OperationNotPermitted,
    TooManyLoadBalancers,
    ValidationError,
)
from corral.elb.validation import check_name
from corral.store.db import emit
from corral.store.schema import elb_load_balancers

MAX_LOAD_BALANCERS = 50  # AWS's default quota per region
HOSTED_ZONE = "Z35SXDOTRQ7X7K"  # ALB's canonical hosted zone (us-east-1), echoed everywhere
# What must match for a CreateLoadBalancer of an existing name to be a repeat of it.
_SAME = ("Scheme", "Type", "IpAddressType")
LIMITS = {"application-load-balancers": 50, "target-groups": 3000,
          "targets-per-application-load-balancer": 1000,
          "listeners-per-application-load-balancer": 50,
          "rules-per-application-load-balancer": 100,
          "target-groups-per-application-load-balancer": 100,
          "condition-values-per-alb-rule": 5, "condition-wildcards-per-alb-rule": 5,
          "target-groups-per-action-on-application-load-balancer": 5}


def _lb_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    if params.get("LoadBalancerArn"):
        return [params["LoadBalancerArn"]]
    if params.get("Name"):
        return [arns.build(names.SERVICE, ctx.region, ctx.account_id,
                           f"loadbalancer/app/{params['Name']}/*")]
    return list(params.get("LoadBalancerArns") or ["*"])


def _zones(ctx: RequestContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    lookups.exclusive(params, "Subnets", "SubnetMappings")
    subnets = params.get("Subnets") or [m["SubnetId"] for m in params.get("SubnetMappings") or []]
    if subnets and len(set(subnets)) < 2:
        raise ValidationError("At least two subnets in two different Availability Zones must "
                              "be specified")
    if not subnets:
        zones = [names.zone(ctx.region, i) for i in range(2)]
        subnets = [names.default_subnet(ctx.account_id, ctx.region, z) for z in zones]
    return [{"ZoneName": names.zone(ctx.region, i), "SubnetId": s, "LoadBalancerAddresses": []}
            for i, s in enumerate(dict.fromkeys(subnets))]


def _new_doc(ctx: RequestContext, params: dict[str, Any], now: datetime) -> dict[str, Any]:
    ident = names.new_id()
    arn = names.load_balancer_arn(ctx.region, ctx.account_id, params["Name"], ident)
    return {
        "LoadBalancerArn": arn,
        "DNSName": names.dns_name(params["Name"], ident, ctx.region),
        "CanonicalHostedZoneId": HOSTED_ZONE,
        "CreatedTime": shapes.format_timestamp(now, "iso8601"),
        "LoadBalancerName": params["Name"],
        "Scheme": params.get("Scheme") or "internet-facing",
        "VpcId": names.default_vpc(ctx.account_id, ctx.region),
        "State": {"Code": "provisioning"},
        "Type": "application",
        "AvailabilityZones": _zones(ctx, params),
        "SecurityGroups": params.get("SecurityGroups")
        or [names.default_security_group(ctx.account_id, ctx.region)],
        "IpAddressType": params.get("IpAddressType") or "ipv4",
        records.PRIVATE: {"attributes": attributes.defaults("load balancer"),
                          "tags": tag_ops.checked(params.get("Tags"))},
    }


class LoadBalancerOperations:
    @acts_on(_lb_arns)
    def create_load_balancer(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        kind = params.get("Type") or "application"
        if kind != "application":
            raise InvalidConfigurationRequest(
                f"Corral serves application load balancers only; Type '{kind}' is not "
                "supported")
        check_name(params["Name"], "load balancer")
        now = datetime.now(UTC)
        doc = _new_doc(ctx, params, now)
        existing = records.named(ctx.db, elb_load_balancers, ctx.account_id, ctx.region,
                                 params["Name"])
        if existing is not None:
            if any(existing.doc[k] != doc[k] for k in _SAME):
                raise DuplicateLoadBalancerName(
                    f"A load balancer with the same name '{params['Name']}' exists, but with "
                    "different settings")
            return {"LoadBalancers": [records.public(existing.doc)]}
        if len(records.all_in(ctx.db, elb_load_balancers, ctx.account_id, ctx.region)) >= \
                MAX_LOAD_BALANCERS:
            raise TooManyLoadBalancers("The maximum number of load balancers has been reached")
        ctx.db.execute(elb_load_balancers.insert().values(
            arn=doc["LoadBalancerArn"], account_id=ctx.account_id, region=ctx.region,
            name=params["Name"], created_at=now, doc=doc))
        emit(ctx.db, "elb.changed", arn=doc["LoadBalancerArn"])
        return {"LoadBalancers": [records.public(doc)]}

    @acts_on(_lb_arns)
    def describe_load_balancers(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        lookups.exclusive(params, "LoadBalancerArns", "Names")
        if params.get("Names"):
            rows = lookups.by_names(ctx, elb_load_balancers, params["Names"],
                                    LoadBalancerNotFound, "Load balancers")
        elif params.get("LoadBalancerArns"):
            rows = lookups.find_all(ctx, params["LoadBalancerArns"], "loadbalancer")
        else:
            rows = records.all_in(ctx.db, elb_load_balancers, ctx.account_id, ctx.region)
        return lookups.page([records.public(r.doc) for r in rows], params, "LoadBalancers")

    @acts_on(_lb_arns)
    def delete_load_balancer(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        """Deleting a load balancer that is not there succeeds (AWS's documented rule)."""
        arn = lookups.check_arn(params["LoadBalancerArn"], "loadbalancer")
        row = records.get(ctx.db, elb_load_balancers, arn, ctx.account_id, ctx.region)
        if row is None:
            return {}
        if records.private(row.doc)["attributes"]["deletion_protection.enabled"] == "true":
            raise OperationNotPermitted(f"Load balancer '{arn}' cannot be deleted because "
                                        "deletion protection is enabled")
        records.delete_load_balancer(ctx.db, arn)
        emit(ctx.db, "elb.changed", arn=arn)
        return {}

    # --- attributes ---------------------------------------------------------------------

    @acts_on(_lb_arns)
    def describe_load_balancer_attributes(self, ctx: RequestContext,
                                          params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["LoadBalancerArn"], "loadbalancer")
        return {"Attributes": attributes.as_list(records.private(row.doc)["attributes"])}

    @acts_on(_lb_arns)
    def modify_load_balancer_attributes(self, ctx: RequestContext,
                                        params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["LoadBalancerArn"], "loadbalancer")
        doc = row.doc
        private = records.private(doc)
        private["attributes"] = attributes.merged("load balancer", private["attributes"],
                                                  params["Attributes"])
        records.put_doc(ctx.db, elb_load_balancers, row.arn, doc)
        emit(ctx.db, "elb.changed", arn=row.arn)
        return {"Attributes": attributes.as_list(private["attributes"])}

    def describe_account_limits(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        limits = [{"Name": k, "Max": str(v)} for k, v in LIMITS.items()]
        return lookups.page(limits, params, "Limits")
