"""Which registry and repository an ECR request names: shared by every ECR operation module
for ``@acts_on`` (the ARNs authorization checks) and for lookups."""

from __future__ import annotations

from typing import Any

from corral.aws import arns
from corral.aws.context import RequestContext


def registry_id(ctx: RequestContext, params: dict[str, Any]) -> str:
    """``registryId`` when given, else the caller's account (ECR's default registry)."""
    return params.get("registryId") or ctx.account_id


def repository_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [arns.ecr_repository(ctx.region, registry_id(ctx, params), params["repositoryName"])]
