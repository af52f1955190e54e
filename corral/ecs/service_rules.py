"""What CreateService / UpdateService accept (pure: parameters and the task definition in,
AWS errors out).

Each check answers the exception and, where AWS's wording is known, AWS's message (marked
``# AWS text``); the rest name the field and the constraint in AWS's style. Corral's own
limits — the ECS rolling controller only, no service discovery, Service Connect, EBS volume
configurations or VPC Lattice — answer InvalidParameterException / UnsupportedFeatureException
saying so.
"""

from __future__ import annotations

import copy
import re

from corral.aws import arns
from corral.ecs import placement
from corral.ecs.errors import (
    InvalidParameterException,
    PlatformUnknownException,
    UnsupportedFeatureException,
)

_NAME = re.compile(r"^[a-zA-Z0-9\-_]{1,255}$")
MAX_LOAD_BALANCERS = 5  # target groups per service (reference §8.4)
MAX_GRACE = 2_147_483_647  # healthCheckGracePeriodSeconds (reference §3.4)
PLATFORM_VERSIONS = ("LATEST", "1.4.0", "1.3.0")
_UNSUPPORTED = (("serviceRegistries", "service discovery (serviceRegistries)"),
                ("serviceConnectConfiguration", "Service Connect"),
                ("volumeConfigurations", "volume configurations"),
                ("vpcLatticeConfigurations", "VPC Lattice"))


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidParameterException(
            "Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, "
            "hyphens, and underscores are allowed.")


def check_unsupported(params: dict) -> None:
    for key, what in _UNSUPPORTED:
        if params.get(key):
            raise UnsupportedFeatureException(f"Corral does not support {what} for services.")
    kind = (params.get("deploymentController") or {}).get("type", "ECS")
    if kind != "ECS":
        raise InvalidParameterException(
            f"Corral supports the ECS rolling update deployment controller, not {kind}.")


def desired_count(params: dict, daemon: bool) -> int:
    given = params.get("desiredCount")
    if daemon:
        if given is not None:
            raise InvalidParameterException(  # AWS text
                "The daemon scheduling strategy does not support a desired count for services.")
        return 1  # one task on each instance: Corral has one, this machine
    if given is None:
        raise InvalidParameterException(
            "desiredCount is required for services that use the REPLICA scheduling strategy.")
    if given < 0:
        raise InvalidParameterException("desiredCount must be greater than or equal to 0.")
    return given


def deployment_configuration(given: dict | None, current: dict | None, daemon: bool) -> dict:
    """``current`` (or the defaults: REPLICA 200/100, DAEMON 100/0) with ``given`` merged in,
    checked as ECS checks it (reference §3.3)."""
    default = {"maximumPercent": 100, "minimumHealthyPercent": 0} if daemon else \
        {"maximumPercent": 200, "minimumHealthyPercent": 100}
    out = copy.deepcopy(current) if current else {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False}, **default}
    out.update({k: v for k, v in (given or {}).items() if v is not None})
    low, high = out["minimumHealthyPercent"], out["maximumPercent"]
    if not 0 <= low <= 100:
        raise InvalidParameterException("minimumHealthyPercent must be between 0 and 100.")
    if high <= 0:
        raise InvalidParameterException("maximumPercent must be greater than 0.")
    if daemon and high > 100:
        raise InvalidParameterException(  # AWS text
            "The daemon scheduling strategy does not support values above 100 for "
            "maximumPercent on a deployment configuration. Change the maximumPercent value "
            "to 100, and try again")
    if high < low:
        raise InvalidParameterException(
            f"maximumPercent ({high}) must be greater than or equal to minimumHealthyPercent "
            f"({low}).")
    if out.get("strategy", "ROLLING") != "ROLLING":
        raise InvalidParameterException(
            f"Corral supports the ROLLING deployment strategy, not {out['strategy']}.")
    return out


def check_load_balancers(lbs: list[dict], td: dict) -> None:
    if len(lbs) > MAX_LOAD_BALANCERS:
        raise InvalidParameterException(
            f"A service can use at most {MAX_LOAD_BALANCERS} load balancers (target groups).")
    containers = {c["name"]: c for c in td["containerDefinitions"]}
    for lb in lbs:
        if not lb.get("targetGroupArn") and not lb.get("loadBalancerName"):
            raise InvalidParameterException(
                "A load balancer must name a targetGroupArn or a loadBalancerName.")
        if lb.get("targetGroupArn") and lb.get("loadBalancerName"):
            raise InvalidParameterException(
                "A load balancer takes either a targetGroupArn or a loadBalancerName, not "
                "both.")
        tg = arns.parse(lb.get("targetGroupArn") or "arn:a:elasticloadbalancing:::targetgroup")
        if tg is None or tg.service != "elasticloadbalancing" or \
                tg.resource_type != "targetgroup":
            raise InvalidParameterException(
                f"Invalid target group ARN: {lb['targetGroupArn']}.")
        name, port = lb.get("containerName"), lb.get("containerPort")
        if not name or port is None:
            raise InvalidParameterException(
                "A load balancer must name a containerName and a containerPort.")
        if name not in containers:
            raise InvalidParameterException(  # AWS text
                f"The container {name} does not exist in the task definition.")
        ports = {m.get("containerPort") for m in containers[name].get("portMappings") or []}
        if port not in ports:
            raise InvalidParameterException(  # AWS text
                f"The container {name} did not have a container port {port} defined.")


def check_grace(grace: int | None, lbs: list[dict]) -> None:
    if grace is None:
        return
    if not 0 <= grace <= MAX_GRACE:
        raise InvalidParameterException(
            f"healthCheckGracePeriodSeconds must be between 0 and {MAX_GRACE}.")
    if not lbs:
        raise InvalidParameterException(  # AWS text
            "Health check grace period is only valid for services configured to use load "
            "balancers")


def check_placement(td: dict, constraints: list[dict], strategies: list[dict],
                     daemon: bool) -> None:
    placement.validate_constraints([*(td.get("placementConstraints") or []), *constraints],
                                   where="CreateService")
    placement.validate_strategies(strategies)
    if daemon and strategies:
        raise InvalidParameterException(
            "Placement strategies are not supported with the DAEMON scheduling strategy.")


def platform_version(launch: str, version: str | None) -> str | None:
    """The service's platformVersion: FARGATE ⇒ given or LATEST; EC2 ⇒ none."""
    if launch != "FARGATE":
        if version:
            raise InvalidParameterException(  # AWS text
                "The platform version must be null when specifying an EC2 launch type.")
        return None
    version = version or "LATEST"
    if version not in PLATFORM_VERSIONS:
        raise PlatformUnknownException(
            f"The specified platform version {version} does not exist. Corral runs "
            f"{', '.join(PLATFORM_VERSIONS)}.")
    return version


def role_arn(account: str, role: str | None, lbs: list[dict], td: dict) -> str | None:
    if not role:
        return None
    if not lbs:
        raise InvalidParameterException(
            "A role can only be given to a service configured to use load balancers.")
    if (td.get("networkMode") or "bridge") == "awsvpc":
        raise InvalidParameterException(  # AWS text
            "You cannot specify an IAM role for services that require a service linked role.")
    if role.startswith("arn:"):
        return role
    return arns.build("iam", "", account, f"role/{role.lstrip('/')}")
