"""Which registry and repository an ECR request names: shared by every ECR operation module
for ``@acts_on`` (the ARNs authorization checks) and for lookups, by the registry endpoint
(its ``Host`` header) and by image pulls (an image URI's host).

Registry host names, one grammar for all of them:

    <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn][:port]   AWS's own form
    <account>.dkr.ecr.<region>.localhost[:port]                     Corral's (*.localhost
                                                                    resolves to loopback)

``registry_host`` is the other direction, the one place that decides which host a registry is
advertised as (repositoryUri, proxyEndpoint, the registry's auth realm, the image references a
Docker daemon pulls, the TLS names and /etc/hosts lines ``corral up`` prints).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from corral.aws import arns
from corral.aws.context import RequestContext

if TYPE_CHECKING:  # config imports this module (it validates registry hosts with it)
    from corral.config import Settings

_REGISTRY_HOST = re.compile(
    r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|localhost)"
    r"(?::\d+)?$")
_AWS_DOMAIN = re.compile(r"^\d{12}\.dkr\.(ecr(?:-fips)?)\.[a-z0-9-]+\.(amazonaws\.com(?:\.cn)?)$")


def registry_of_host(host: str) -> tuple[str, str] | None:
    """(account, region) that a registry host name names, or None for any other host
    (``localhost:4566``, ``docker.io``, …)."""
    m = _REGISTRY_HOST.match(host.lower())
    return (m.group(1), m.group(2)) if m else None


def registry_host(settings: Settings, account: str, region: str) -> str:
    """``host[:port]`` clients are told for the registry of ``account`` in ``region``.

    Rules, first match wins:
    1. the default account and region: the advertised host (``settings.public_netloc``: the
       configured registry host, else the bind host);
    2. the advertised host is ECR-shaped on AWS's domain
       (``<acct>.dkr.ecr.<region>.amazonaws.com``): the same shape with this account and
       region, and the advertised port (none on 443), so the ECR credential helper accepts it;
    3. else ``<account>.dkr.ecr.<region>.localhost:<served port>`` (``*.localhost`` is
       loopback, RFC 6761), mirroring ECR's per-registry hosts.
    """
    if (account, region) == (settings.account_id, settings.region):
        return settings.public_netloc
    aws = _aws_shaped(settings)
    if aws is not None:
        host = f"{account}.dkr.{aws.group(1)}.{region}.{aws.group(2)}"
        port = settings.public_port
        return f"{host}:{port}" if port else host
    return f"{account}.dkr.ecr.{region}.localhost:{settings.served_port}"


def aws_ecr_domain(settings: Settings) -> str | None:
    """``amazonaws.com`` (or ``amazonaws.com.cn``) when the advertised registry host is
    ECR-shaped on AWS's domain (rule 2 of ``registry_host``), else None."""
    aws = _aws_shaped(settings)
    return aws.group(2) if aws else None


def _aws_shaped(settings: Settings) -> re.Match | None:
    return _AWS_DOMAIN.match(settings.advertised_host) if settings.registry_host else None


def registry_id(ctx: RequestContext, params: dict[str, Any]) -> str:
    """``registryId`` when given, else the caller's account (ECR's default registry)."""
    return params.get("registryId") or ctx.account_id


def repository_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [arns.ecr_repository(ctx.region, registry_id(ctx, params), params["repositoryName"])]
