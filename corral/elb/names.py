"""ELBv2 identifiers, ARNs and DNS names: built and recognised here only.

    load balancer  arn:aws:elasticloadbalancing:<region>:<acct>:loadbalancer/app/<name>/<id>
    listener       arn:…:listener/app/<lb name>/<lb id>/<id>
    rule           arn:…:listener-rule/app/<lb name>/<lb id>/<listener id>/<id>
    target group   arn:…:targetgroup/<name>/<id>

Every ``<id>`` is 16 lower-case hex digits. A load balancer's DNS name is
``<name>-<id>.<region>.elb.localhost``: ``*.localhost`` resolves to loopback (RFC 6761), and
its listeners are served on this machine's port of the same number.

Corral has no VPCs: the default VPC, subnets and security group a load balancer shows when the
caller names none are derived from the account and region, so they are stable across calls.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from corral.aws import arns

SERVICE = "elasticloadbalancing"
_HEX = r"[0-9a-f]{16}"
_NAME = r"[A-Za-z0-9-]{1,32}"
PATTERNS = {
    "loadbalancer": re.compile(rf"^loadbalancer/app/{_NAME}/{_HEX}$"),
    "listener": re.compile(rf"^listener/app/{_NAME}/{_HEX}/{_HEX}$"),
    "listener-rule": re.compile(rf"^listener-rule/app/{_NAME}/{_HEX}/{_HEX}/{_HEX}$"),
    "targetgroup": re.compile(rf"^targetgroup/{_NAME}/{_HEX}$"),
}
WHAT = {"loadbalancer": "load balancer", "listener": "listener", "listener-rule": "listener rule",
        "targetgroup": "target group"}


def new_id() -> str:
    return secrets.token_hex(8)


def load_balancer_arn(region: str, account: str, name: str, ident: str) -> str:
    return arns.build(SERVICE, region, account, f"loadbalancer/app/{name}/{ident}")


def listener_arn(lb_arn: str, ident: str) -> str:
    return lb_arn.replace(":loadbalancer/", ":listener/", 1) + "/" + ident


def rule_arn(listener: str, ident: str) -> str:
    return listener.replace(":listener/", ":listener-rule/", 1) + "/" + ident


def target_group_arn(region: str, account: str, name: str, ident: str) -> str:
    return arns.build(SERVICE, region, account, f"targetgroup/{name}/{ident}")


def lb_of(arn: str) -> str:
    """The load balancer ARN a listener or rule ARN belongs to."""
    kind = kind_of(arn)
    head, _, resource = arn.rpartition(":")
    parts = resource.split("/")
    keep = {"listener": 4, "listener-rule": 4}.get(kind or "", len(parts))
    return f"{head}:loadbalancer/" + "/".join(parts[1:keep])


def listener_of(rule: str) -> str:
    """The listener ARN a rule ARN belongs to."""
    head, _, resource = rule.rpartition(":")
    return f"{head}:listener/" + "/".join(resource.split("/")[1:5])


def kind_of(arn: str) -> str | None:
    """``loadbalancer`` | ``listener`` | ``listener-rule`` | ``targetgroup`` for a well-formed
    ELBv2 ARN, else None."""
    parsed = arns.parse(arn)
    if parsed is None or parsed.service != SERVICE:
        return None
    kind = parsed.resource_type
    pattern = PATTERNS.get(kind)
    return kind if pattern and pattern.match(parsed.resource) else None


def is_kind(arn: str, kind: str) -> bool:
    return kind_of(arn) == kind


def dns_name(name: str, ident: str, region: str) -> str:
    return f"{name.lower()}-{ident}.{region}.elb.localhost"


def _derived(prefix: str, *parts: str, digits: int = 17) -> str:
    return prefix + hashlib.sha256("/".join(parts).encode()).hexdigest()[:digits]


def default_vpc(account: str, region: str) -> str:
    return _derived("vpc-", account, region, "vpc")


def default_subnet(account: str, region: str, zone: str) -> str:
    return _derived("subnet-", account, region, zone)


def default_security_group(account: str, region: str) -> str:
    return _derived("sg-", account, region, "sg")


def zone(region: str, index: int) -> str:
    """The ``index``-th availability zone of a region: us-east-1a, us-east-1b, …"""
    return region + "abcdef"[index % 6]
