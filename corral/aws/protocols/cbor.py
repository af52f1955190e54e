"""Smithy RPC v2 CBOR: POST /service/<Service>/operation/<Operation>, CBOR bodies.

The service name in the path is the model's ``targetPrefix`` (what botocore sends).
Timestamps travel as CBOR tag 1 (epoch seconds), blobs as byte strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import cbor2
from botocore.model import OperationModel

from corral.aws import shapes
from corral.aws.errors import AwsError, SerializationException, UnknownOperationException
from corral.aws.models import ServiceSpec
from corral.aws.protocols.base import HttpRequest, HttpResponse, query_error_headers

CONTENT_TYPE = "application/cbor"


class CborProtocol:
    name = "smithy-rpc-v2-cbor"

    def operation(self, service: ServiceSpec, request: HttpRequest) -> OperationModel:
        parts = request.path.split("?", 1)[0].strip("/").split("/")
        ok = len(parts) == 4 and parts[0] == "service" and parts[2] == "operation"
        op = service.operation(parts[3]) if ok and parts[1] == service.target_prefix else None
        if op is None or request.method != "POST":
            raise UnknownOperationException(f"No operation at {request.method} {request.path}")
        return op

    def parse(self, op: OperationModel, request: HttpRequest) -> dict[str, Any]:
        if op.input_shape is None or not request.body:
            return {}
        try:
            doc = cbor2.loads(request.body)
        except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
            raise SerializationException("The request body is not valid CBOR") from None
        if not isinstance(doc, dict):
            raise SerializationException("The request body must be a CBOR map")
        return shapes.decode(op.input_shape, doc, b64_blobs=False)

    def serialize(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        body = {}
        if op.output_shape is not None:
            body = shapes.encode(op.output_shape, result, ts_format="datetime", b64_blobs=False)
        return HttpResponse(200, _headers(request_id), cbor2.dumps(_tag_times(body)))

    def error(self, service: ServiceSpec, err: AwsError, request_id: str) -> HttpResponse:
        headers = _headers(request_id) | query_error_headers(service, err)
        body = {"__type": err.code, "message": err.message}
        return HttpResponse(err.status, headers, cbor2.dumps(body))


def _headers(request_id: str) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        "smithy-protocol": "rpc-v2-cbor",
        "x-amzn-RequestId": request_id,
    }


def _tag_times(value: Any) -> Any:
    """Timestamps as CBOR tag 1 with epoch seconds (botocore decodes only that form)."""
    if isinstance(value, datetime):
        return cbor2.CBORTag(1, value.timestamp())
    if isinstance(value, dict):
        return {k: _tag_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag_times(v) for v in value]
    return value
