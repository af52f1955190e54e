"""The AWS request pipeline, once for every service:

    route ─> authenticate (SigV4) ─> operation ─> parse ─> validate ─> authorize
          ─> provider method in one transaction ─> serialize
    any AwsError ─> the protocol's error format; anything else ─> InternalFailure (logged)

Runs synchronously in a worker thread (the ASGI app hands it over), so database work and
hashing never block the event loop.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime

from botocore import xform_name

from corral.aws import models, router, sigv4, validate
from corral.aws.context import Principal, RequestContext
from corral.aws.errors import AwsError, InternalFailure, NotImplementedOperation
from corral.aws.protocols import HttpRequest, HttpResponse
from corral.aws.provider import Provider, resources_of
from corral.config import Settings
from corral.iam.authorize import Authorizer
from corral.iam.credentials import Credentials
from corral.store import Store

log = logging.getLogger("corral.gateway")

# Read-only operations take a read transaction (no write lock) unless the provider marks them
# `@writes`; everything else writes.
_READ_ONLY = re.compile(r"^(Describe|List|Get|BatchGet|BatchCheck|Filter)")


class Gateway:
    def __init__(self, settings: Settings, store: Store, credentials: Credentials,
                 authorizer: Authorizer, providers: dict[str, Provider]):
        self.settings = settings
        self.store = store
        self.credentials = credentials
        self.authorizer = authorizer
        self.providers = providers

    def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        signing_name = router.scope_service(request)
        service = models.by_signing_name().get(signing_name) if signing_name else None
        service = service or router.guess_service(request) or models.service("ecr")
        protocol = router.pick_protocol(service, request)
        query_protocol = protocol.name == "query"
        try:
            info = sigv4.parse(request)
            if info is None and _unsigned(service, protocol, request):
                principal = Principal(self.settings.account_id, "anonymous", "anonymous", "",
                                      "Anonymous")
                region = self.settings.region
            else:
                if info is None:
                    raise sigv4.AuthFailure("missing", "Missing Authentication Token")
                if info.service != service.signing_name:
                    raise sigv4.AuthFailure(
                        "signature", f"Credential should be scoped to correct service: "
                        f"'{service.signing_name}'. Corral serves: "
                        + ", ".join(sorted(models.by_signing_name())) + "."
                    )
                principal = self.credentials.authenticate(request, info, datetime.now(UTC))
                region = info.region
            op = protocol.operation(service, request)
            provider = self.providers.get(service.name)
            method = getattr(provider, xform_name(op.name), None) if provider else None
            params = protocol.parse(op, request)
            found = validate.violations(op.input_shape, params) if op.input_shape else []
            if found:
                raise provider.validation_error(found) if provider \
                    else validate.validation_error(service, found)
            if method is None:
                raise NotImplementedOperation(service.model.service_id, op.name)
            ctx = RequestContext(request_id, service.name, op.name, region, principal,
                                 self.settings.public_endpoint, extras={
                                     "protocol": protocol.name, "params": params,
                                     "source_ip": request.client,
                                     "secure": request.secure})
            action = service.iam_action(op.name)
            write = getattr(method, "writes", False) or not _READ_ONLY.match(op.name)
            with self.store.transaction(write=write) as db:
                ctx.db = db
                self.authorizer.authorize(ctx, action, resources_of(method, ctx, params))
                result = method(ctx, params)
                response = protocol.serialize(op, result or {}, request_id)
            log.debug("%s %s.%s 200 %s", request_id, service.name, op.name, principal.arn)
            return response
        except sigv4.AuthFailure as e:
            err = sigv4.auth_error(e.kind, e.message, query_protocol=query_protocol)
            return self._error(protocol, service, err, request_id)
        except AwsError as e:
            return self._error(protocol, service, e, request_id)
        except Exception:
            log.exception("%s internal error in %s", request_id, service.name)
            err = InternalFailure("We encountered an internal error. Please try again.")
            return protocol.error(service, err, request_id)

    @staticmethod
    def _error(protocol, service, err: AwsError, request_id: str) -> HttpResponse:
        log.info("%s %s error %s %s", request_id, service.name, err.status, err.code)
        return protocol.error(service, err, request_id)


def _unsigned(service, protocol, request: HttpRequest) -> bool:
    """Operations the model marks ``smithy.api#noAuth`` (STS AssumeRoleWithWebIdentity) take
    unsigned requests; they act as an anonymous principal and check their own credentials."""
    try:
        op = protocol.operation(service, request)
    except AwsError:
        return False
    return "smithy.api#noAuth" in (op.auth or []) or op.auth_type == "none"
