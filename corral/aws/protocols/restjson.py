"""REST-JSON: the operation is the HTTP method plus the path template (Inspector2).

Members bind to the URI (``{label}``, greedy ``{label+}``), the query string, headers, or
the JSON body (or a ``payload`` member that is the whole body).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel, Shape

from corral.aws import shapes
from corral.aws.errors import AwsError, SerializationException, UnknownOperationException
from corral.aws.models import ServiceSpec
from corral.aws.protocols.base import HttpRequest, HttpResponse
from corral.aws.protocols.json import dumps, parse_json_body

_LABEL = re.compile(r"\{([^}]+?)(\+)?\}")


@cache
def _route(op: OperationModel) -> tuple[str, re.Pattern, dict[str, str]]:
    """(method, path regex, required query literals) from the operation's requestUri."""
    path, _, literal_q = op.http.get("requestUri", "/").partition("?")
    rx, pos = "", 0
    for m in _LABEL.finditer(path):
        rx += re.escape(path[pos:m.start()])
        rx += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    rx += re.escape(path[pos:])
    literals = dict(p.partition("=")[::2] for p in literal_q.split("&") if p)
    return op.http.get("method", "POST"), re.compile(rx + "/?$"), literals


@cache
def _routes(service: ServiceSpec) -> list[OperationModel]:
    """Operations, most specific path first (longer literal text beats labels)."""
    ops = [service.operation(n) for n in service.operation_names]
    return sorted(ops, key=lambda op: len(_LABEL.sub("", op.http.get("requestUri", ""))),
                  reverse=True)


class RestJsonProtocol:
    name = "rest-json"

    def operation(self, service: ServiceSpec, request: HttpRequest) -> OperationModel:
        path = request.path.split("?", 1)[0]
        query = dict(request.query_params)
        for op in _routes(service):
            method, rx, literals = _route(op)
            if method == request.method and rx.match(path) and all(
                k in query and (not v or query[k] == v) for k, v in literals.items()
            ):
                return op
        raise UnknownOperationException(f"No operation at {request.method} {path}")

    def parse(self, op: OperationModel, request: HttpRequest) -> dict[str, Any]:
        shape = op.input_shape
        if shape is None:
            return {}
        payload = shape.serialization.get("payload")
        out: dict[str, Any] = {}
        if payload:
            member = shape.members[payload]
            if member.type_name in ("blob", "string"):
                out[payload] = request.body if member.type_name == "blob" else request.body.decode()
            elif request.body.strip():
                out[payload] = parse_json_body(member, request.body)
        else:
            body_members = [n for n, m in shape.members.items() if not m.serialization.get("location")]
            if body_members:
                out.update(parse_json_body(shape, request.body))
        path = request.path.split("?", 1)[0]
        match = _route(op)[1].match(path)
        labels = match.groupdict() if match else {}
        query = request.query_params
        for name, member in shape.members.items():
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "uri" and wire in labels:
                out[name] = _from_text(member, unquote(labels[wire]), name)
            elif loc == "querystring":
                values = [v for k, v in query if k == wire]
                if values:
                    if member.type_name == "list":
                        out[name] = [_from_text(member.member, v, name) for v in values]
                    else:
                        out[name] = _from_text(member, values[0], name)
            elif loc == "header" and request.header(wire) is not None:
                out[name] = _from_text(member, request.header(wire), name)
        return out

    def serialize(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
        status = op.http.get("responseCode", 200)
        shape = op.output_shape
        if shape is None:
            return HttpResponse(status, headers, b"{}")
        for name, member in shape.members.items():
            if member.serialization.get("location") == "header" and result.get(name) is not None:
                headers[member.serialization.get("name", name)] = _to_text(member, result[name])
        payload = shape.serialization.get("payload")
        if payload:
            value = result.get(payload)
            member = shape.members[payload]
            if member.type_name == "blob":
                return HttpResponse(status, headers, bytes(value or b""))
            body = shapes.encode(member, value or {}, ts_format="unixtimestamp")
        else:
            body = shapes.encode(shape, result, ts_format="unixtimestamp")
        return HttpResponse(status, headers, dumps(body))

    def error(self, service: ServiceSpec, err: AwsError, request_id: str) -> HttpResponse:
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": err.code,
        }
        return HttpResponse(err.status, headers, dumps({"message": err.message}))


def _to_text(shape: Shape, value: Any) -> str:
    """A header value as clients parse it: timestamps as HTTP dates (the REST default, or the
    member's ``timestampFormat``), booleans lower-case, lists comma-joined."""
    t = shape.type_name
    if t == "timestamp" and isinstance(value, datetime):
        return str(shapes.format_timestamp(value, shape.serialization.get("timestampFormat", "rfc822")))
    if t == "boolean":
        return "true" if value else "false"
    if t == "list":
        return ",".join(_to_text(shape.member, v) for v in value)
    return str(value)


def _from_text(shape: Shape, text: str, name: str) -> Any:
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(text)
        if t in ("float", "double"):
            return float(text)
        if t == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if t == "timestamp":
            return shapes.parse_timestamp(text, shape, name)
    except ValueError:
        raise SerializationException(f"Cannot read '{text}' at '{name}' as {t}") from None
    return text

