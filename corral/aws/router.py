"""Which service and which protocol a request is for, all on one port.

The service comes from the SigV4 credential scope (``…/<region>/<service>/aws4_request``);
an unsigned request is placed by its protocol markers so its error can be rendered the way
that client expects. The protocol is picked among the service's model protocols by marker:
``smithy-protocol: rpc-v2-cbor`` → CBOR, ``X-Amz-Target`` → JSON, a form body or ``Action=``
→ query, otherwise REST-JSON.
"""

from __future__ import annotations

import re

from corral.aws import models
from corral.aws.models import ServiceSpec
from corral.aws.protocols import PROTOCOLS, HttpRequest, Protocol

_SCOPE = re.compile(r"Credential=[^/\s]*/\d{8}/[^/\s]+/([^/\s]+)/")
_QUERY_SCOPE = re.compile(r"(?:^|&)X-Amz-Credential=[^&/]*(?:/|%2F)\d{8}(?:/|%2F)[^&/%]+(?:/|%2F)([^&/%]+)")


def scope_service(request: HttpRequest) -> str | None:
    auth = request.header("authorization") or ""
    m = _SCOPE.search(auth) or _QUERY_SCOPE.search(request.query)
    return m.group(1) if m else None


def guess_service(request: HttpRequest) -> ServiceSpec | None:
    """Place a request by its markers alone (used when the scope does not name a service)."""
    target = request.header("x-amz-target")
    if target:
        return models.by_target_prefix().get(target.rpartition(".")[0])
    if request.header("smithy-protocol"):
        parts = request.path.strip("/").split("/")
        if len(parts) > 1:
            return models.by_target_prefix().get(parts[1])
    if _is_form(request) or "Action=" in request.query:
        return models.service("sts")
    return None


def pick_protocol(service: ServiceSpec, request: HttpRequest) -> Protocol:
    names = service.protocols
    if "smithy-rpc-v2-cbor" in names and request.header("smithy-protocol") == "rpc-v2-cbor":
        return PROTOCOLS["smithy-rpc-v2-cbor"]
    if "json" in names and request.header("x-amz-target"):
        return PROTOCOLS["json"]
    if "query" in names and (_is_form(request) or "Action=" in request.query):
        return PROTOCOLS["query"]
    if "rest-json" in names:
        return PROTOCOLS["rest-json"]
    return PROTOCOLS[names[0]]


def _is_form(request: HttpRequest) -> bool:
    return (request.header("content-type") or "").startswith("application/x-www-form-urlencoded")
