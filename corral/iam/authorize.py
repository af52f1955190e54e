"""The authorization hook every operation passes through.

The gateway calls ``authorize(ctx, action, resources)`` with the operation's IAM action
(``ecr:CreateRepository``) and the ARNs it acts on, before the operation runs. Corral's
authorizer is ``corral.iam.enforce.PolicyAuthorizer`` (IAM policy evaluation);
``OwnAccountAuthorizer`` remains as the minimal one (own account only) for embedding and tests.
"""

from __future__ import annotations

from typing import Protocol

from corral.aws import arns
from corral.aws.context import RequestContext
from corral.aws.errors import AccessDenied, AccessDeniedException, AwsError


class Authorizer(Protocol):
    def authorize(self, ctx: RequestContext, action: str, resources: list[str]) -> None:
        """Return if allowed; raise the protocol's access-denied error otherwise."""


def access_denied(ctx: RequestContext, action: str, resource: str, why: str,
                  *, query_protocol: bool) -> AwsError:
    cls = AccessDenied if query_protocol else AccessDeniedException
    return cls(
        f"User: {ctx.principal.arn} is not authorized to perform: {action} on resource: "
        f"{resource} {why}"
    )


class OwnAccountAuthorizer:
    def authorize(self, ctx: RequestContext, action: str, resources: list[str]) -> None:
        for resource in resources:
            arn = arns.parse(resource)
            if arn is not None and arn.account and arn.account != ctx.account_id:
                raise access_denied(
                    ctx, action, resource,
                    f"because no resource-based policy allows the {action} action",
                    query_protocol=ctx.extras.get("protocol") == "query",
                )
