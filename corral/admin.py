"""Corral's own operations (no AWS equivalent): ``POST /_corral/api/<action>``.

The ``corral`` CLI reaches them like an AWS API: JSON bodies, SigV4-signed with the caller's
credentials (credential scope service ``corral``), authenticated by the same code as every AWS
request. Only an account's root may call them, and only for its own account and region.

    @admin.action("lifecycle/run")
    def run(ctx: RequestContext, body: dict) -> dict: ...
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from corral.aws import sigv4
from corral.aws.context import RequestContext
from corral.aws.errors import AccessDeniedException, AwsError, ValidationException
from corral.aws.protocols import HttpRequest, HttpResponse
from corral.iam.credentials import Credentials
from corral.store import Store

log = logging.getLogger("corral.admin")
SIGNING_NAME = "corral"

Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]


class AdminApi:
    def __init__(self, store: Store, credentials: Credentials, endpoint: str):
        self.store = store
        self.credentials = credentials
        self.endpoint = endpoint
        self.actions: dict[str, Handler] = {}
        self._own_transactions: set[str] = set()

    def action(self, name: str, *, transaction: bool = True):
        """Register a handler; it runs inside one write transaction (``ctx.db``), or — with
        ``transaction=False``, for work that takes many transactions of its own (lifecycle
        runs, garbage collection) — with ``ctx.db`` None."""

        def register(fn: Handler) -> Handler:
            self.actions[name] = fn
            if not transaction:
                self._own_transactions.add(name)
            return fn

        return register

    def handle(self, name: str, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        try:
            info = sigv4.parse(request)
            if info is None:
                raise sigv4.AuthFailure("missing", "Missing Authentication Token")
            if info.service != SIGNING_NAME:
                raise sigv4.AuthFailure("signature", "Credential should be scoped to correct "
                                        f"service: '{SIGNING_NAME}'.")
            principal = self.credentials.authenticate(request, info, datetime.now(UTC))
            if principal.type != "Account":
                raise AccessDeniedException(f"Only an account's root may call corral:{name}")
            handler = self.actions.get(name)
            if handler is None:
                raise ValidationException(f"Unknown Corral action {name!r}; known: "
                                          + ", ".join(sorted(self.actions)))
            try:
                body = orjson.loads(request.body or b"{}")
            except orjson.JSONDecodeError:
                raise ValidationException("The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ValidationException("The request body must be a JSON object")
            ctx = RequestContext(request_id, "corral", name, info.region, principal, self.endpoint)
            if name in self._own_transactions:
                result = handler(ctx, body)
            else:
                with self.store.transaction() as db:
                    ctx.db = db
                    result = handler(ctx, body)
            return _json(200, result, request_id)
        except sigv4.AuthFailure as e:
            err = sigv4.auth_error(e.kind, e.message, query_protocol=False)
            return _json(err.status, {"__type": err.code, "message": err.message}, request_id)
        except AwsError as e:
            return _json(e.status, {"__type": e.code, "message": e.message}, request_id)
        except Exception:
            log.exception("%s corral:%s failed", request_id, name)
            return _json(500, {"__type": "InternalFailure", "message": "internal error"},
                         request_id)


def _json(status: int, body: dict, request_id: str) -> HttpResponse:
    return HttpResponse(status, {"Content-Type": "application/json",
                                 "x-amzn-RequestId": request_id}, orjson.dumps(body, default=str))
