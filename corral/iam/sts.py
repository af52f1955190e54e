"""STS API (query protocol)."""

from __future__ import annotations

from corral.aws.context import RequestContext
from corral.aws.provider import Provider


class StsProvider(Provider):
    service = "sts"

    def get_caller_identity(self, ctx: RequestContext, params: dict) -> dict:
        p = ctx.principal
        return {"UserId": p.user_id, "Account": p.account_id, "Arn": p.arn}
