"""Which registry and repository an ECR request names: shared by every ECR operation module
for ``@acts_on`` (the ARNs authorization checks) and for lookups, by the registry endpoint
(its ``Host`` header) and by image pulls (an image URI's host).

Registry host names, one grammar for all of them:

    <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn][:port]   AWS's own form
    <account>.dkr.ecr.<region>.localhost[:port]                     Corral's (*.localhost
                                                                    resolves to loopback)
"""

from __future__ import annotations

import re
from typing import Any

from corral.aws import arns
from corral.aws.context import RequestContext

_REGISTRY_HOST = re.compile(
    r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|localhost)"
    r"(?::\d+)?$")


def registry_of_host(host: str) -> tuple[str, str] | None:
    """(account, region) that a registry host name names, or None for any other host
    (``localhost:4566``, ``docker.io``, …)."""
    m = _REGISTRY_HOST.match(host.lower())
    return (m.group(1), m.group(2)) if m else None


def registry_id(ctx: RequestContext, params: dict[str, Any]) -> str:
    """``registryId`` when given, else the caller's account (ECR's default registry)."""
    return params.get("registryId") or ctx.account_id


def repository_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [arns.ecr_repository(ctx.region, registry_id(ctx, params), params["repositoryName"])]
