"""AWS JSON 1.0/1.1: POST /, operation in ``X-Amz-Target: <prefix>.<Operation>``."""

from __future__ import annotations

from typing import Any

import orjson
from botocore.model import OperationModel

from corral.aws import shapes
from corral.aws.errors import AwsError, SerializationException, UnknownOperationException
from corral.aws.models import ServiceSpec
from corral.aws.protocols.base import HttpRequest, HttpResponse, query_error_headers


class JsonProtocol:
    name = "json"

    def operation(self, service: ServiceSpec, request: HttpRequest) -> OperationModel:
        target = request.header("x-amz-target") or ""
        prefix, _, name = target.rpartition(".")
        op = service.operation(name) if prefix == service.target_prefix else None
        if op is None:
            raise UnknownOperationException(
                f"Operation {target or '(none)'} is not known to {service.model.service_id}"
            )
        return op

    def parse(self, op: OperationModel, request: HttpRequest) -> dict[str, Any]:
        return parse_json_body(op.input_shape, request.body)

    def serialize(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        body = {}
        if op.output_shape is not None:
            body = shapes.encode(op.output_shape, result, ts_format="unixtimestamp")
        return HttpResponse(200, self._headers(op.metadata, request_id), dumps(body))

    def error(self, service: ServiceSpec, err: AwsError, request_id: str) -> HttpResponse:
        body = {"__type": err.code, "message": err.message,
                **getattr(err, "fields", {})}  # members the error shape adds (queryCompileError)
        headers = self._headers(service.model.metadata, request_id)
        headers |= query_error_headers(service, err)
        headers["x-amzn-ErrorType"] = err.code
        return HttpResponse(err.status, headers, dumps(body))

    @staticmethod
    def _headers(metadata: dict, request_id: str) -> dict[str, str]:
        version = metadata.get("jsonVersion", "1.1")
        return {"Content-Type": f"application/x-amz-json-{version}", "x-amzn-RequestId": request_id}


def parse_json_body(shape, body: bytes) -> dict[str, Any]:
    if shape is None:
        return {}
    if not body.strip():
        return {}
    try:
        doc = orjson.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SerializationException("The request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise SerializationException("The request body must be a JSON object")
    return shapes.decode(shape, doc)


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON (orjson: the response body is the hot path of every list call)."""
    return orjson.dumps(doc)
