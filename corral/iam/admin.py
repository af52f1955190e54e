"""Corral's own IAM actions and the container-credentials endpoint.

- ``iam/vend-credentials`` ``{"roleArn", "consumer", "sourceArn"?}``: credentials of a role for a
  named consumer, as ECS gives a task (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` +
  ``AWS_CONTAINER_AUTHORIZATION_TOKEN``); for tests, demos and workloads run outside ECS.
- ``iam/revoke-credentials`` ``{"consumer"}``.
- ``GET /_corral/credentials/<id>`` with ``Authorization: <token>``: the container-credentials
  protocol botocore's ContainerProvider speaks (reference §10).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from corral.admin import AdminApi
from corral.aws.context import RequestContext
from corral.aws.errors import ValidationException
from corral.iam.vending import CredentialVendor


def register(admin: AdminApi, vendor: CredentialVendor) -> None:
    @admin.action("iam/vend-credentials")
    def vend(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        role, consumer = body.get("roleArn"), body.get("consumer")
        if not isinstance(role, str) or not isinstance(consumer, str) or not consumer:
            raise ValidationException("'roleArn' and 'consumer' must be non-empty strings")
        out = vendor.vend(role, consumer, source_account=ctx.account_id,
                          source_arn=body.get("sourceArn"), db=ctx.db)
        return {"credentialsUri": out["uri"], "authorizationToken": out["token"],
                "expiration": out["expiration"].isoformat()}

    @admin.action("iam/revoke-credentials", transaction=False)
    def revoke(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        consumer = body.get("consumer")
        if not isinstance(consumer, str) or not consumer:
            raise ValidationException("'consumer' must be a non-empty string")
        return {"revoked": vendor.revoke(consumer)}


def credentials_endpoint(vendor: CredentialVendor):
    async def endpoint(request: Request) -> JSONResponse:
        token = request.headers.get("authorization")
        found = await run_in_threadpool(vendor.fetch, request.path_params["id"], token)
        if found is None:
            return JSONResponse({"code": "AccessDenied", "message": "Unknown credentials id or "
                                 "authorization token", "HTTPErrorCode": 403}, status_code=403)
        return JSONResponse(found)
    return endpoint
