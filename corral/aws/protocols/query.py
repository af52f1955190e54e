"""AWS Query: form-encoded ``Action=…&Version=…`` requests, XML responses (IAM, STS).

Request members are flattened keys: ``Tags.member.1.Key``, ``Attributes.entry.1.key``,
``Sub.Member``; ``flattened`` lists drop ``.member``. Responses wrap the result in
``<{Op}Response><{Op}Result>`` with ``ResponseMetadata/RequestId``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from corral.aws import shapes
from corral.aws.errors import AwsError, InvalidAction, MissingAction, ValidationError
from corral.aws.models import ServiceSpec
from corral.aws.protocols.base import HttpRequest, HttpResponse


class QueryProtocol:
    name = "query"

    def _form(self, request: HttpRequest) -> dict[str, str]:
        cached = getattr(request, "_form", None)
        if cached is None:
            pairs = request.query_params
            if request.body:
                try:
                    text = request.body.decode()
                except UnicodeDecodeError:
                    raise ValidationError("The request body is not valid UTF-8") from None
                pairs += parse_qsl(text, keep_blank_values=True)
            cached = dict(pairs)
            request._form = cached  # type: ignore[attr-defined]
        return cached

    def operation(self, service: ServiceSpec, request: HttpRequest) -> OperationModel:
        form = self._form(request)
        action = form.get("Action")
        if not action:
            raise MissingAction("Missing Action")
        op = service.operation(action)
        if op is None:
            version = form.get("Version", service.model.api_version)
            raise InvalidAction(f"Could not find operation {action} for version {version}")
        return op

    def parse(self, op: OperationModel, request: HttpRequest) -> dict[str, Any]:
        if op.input_shape is None:
            return {}
        return _parse_struct(op.input_shape, self._form(request), "")

    def serialize(self, op: OperationModel, result: dict[str, Any], request_id: str) -> HttpResponse:
        ns = op.service_model.metadata.get("xmlNamespace", "")
        inner = ""
        if op.output_shape is not None:
            wrapper = op.output_shape.serialization.get("resultWrapper", f"{op.name}Result")
            inner = f"<{wrapper}>{_xml_members(op.output_shape, result)}</{wrapper}>"
        body = (
            f'<{op.name}Response xmlns="{ns}">{inner}'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            f"</{op.name}Response>"
        )
        return HttpResponse(200, _headers(request_id), body.encode())

    def error(self, service: ServiceSpec, err: AwsError, request_id: str) -> HttpResponse:
        ns = service.model.metadata.get("xmlNamespace", "")
        fault = "Sender" if err.sender_fault else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{ns}"><Error><Type>{fault}</Type>'
            f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return HttpResponse(err.status, _headers(request_id), body.encode())


def _headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}


# --- request side -------------------------------------------------------------------------


def _parse_struct(shape: Shape, form: dict[str, str], prefix: str) -> dict[str, Any]:
    out = {}
    for name, member in shape.members.items():
        key = prefix + member.serialization.get("name", name)
        value = _parse_value(member, form, key)
        if value is not None:
            out[name] = value
    return out


def _parse_value(shape: Shape, form: dict[str, str], key: str) -> Any:
    t = shape.type_name
    if t == "structure":
        if not any(k.startswith(key + ".") for k in form):
            return None
        return _parse_struct(shape, form, key + ".")
    if t == "list":
        base = _list_base(shape, key)
        if form.get(key) == "" and not any(k.startswith(key + ".") for k in form):
            return []  # botocore sends "Name=" for an empty list
        items, i = [], 1
        while True:
            v = _parse_value(shape.member, form, f"{base}.{i}")
            if v is None:
                break
            items.append(v)
            i += 1
        return items if items else None
    if t == "map":
        flat = shape.serialization.get("flattened")
        base = key if flat else f"{key}.entry"
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        out, i = {}, 1
        while f"{base}.{i}.{kname}" in form:
            out[form[f"{base}.{i}.{kname}"]] = _parse_value(shape.value, form, f"{base}.{i}.{vname}")
            i += 1
        return out or None
    raw = form.get(key)
    if raw is None:
        return None
    return _scalar(shape, raw, key)


def _list_base(shape: Shape, key: str) -> str:
    """Where a list's items live: ``Key.member.N``; flattened, ``Key.N`` — or, when the member
    has a name, that name in place of the key's last part (``Sub.Key`` → ``Sub.Item.N``), as
    botocore sends them."""
    name = shape.member.serialization.get("name")
    if not shape.serialization.get("flattened"):
        return f"{key}.{name or 'member'}"
    return f"{key.rpartition('.')[0]}.{name}".lstrip(".") if name else key


def _scalar(shape: Shape, raw: str, key: str) -> Any:
    t = shape.type_name
    try:
        if t in ("integer", "long", "short", "byte"):
            return int(raw)
        if t in ("float", "double"):
            return float(raw)
        if t == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if t == "timestamp":
            return shapes.parse_timestamp(raw, shape, key)
        if t == "blob":
            return shapes.decode(shape, raw, path=key)
    except (ValueError, AwsError):
        raise ValidationError(
            f"Value '{raw}' at '{key}' failed to satisfy constraint: Member must be a valid {t}"
        ) from None
    return raw


# --- response side ------------------------------------------------------------------------


def _xml_members(shape: Shape, value: dict[str, Any]) -> str:
    parts = []
    for name, member in shape.members.items():
        v = value.get(name)
        if v is None:
            continue
        parts.append(_xml(member, v, member.serialization.get("name", name)))
    return "".join(parts)


def _xml(shape: Shape, value: Any, tag: str) -> str:
    t = shape.type_name
    if t == "structure":
        return f"<{tag}>{_xml_members(shape, value)}</{tag}>"
    if t == "list":
        mtag = shape.member.serialization.get("name")
        if shape.serialization.get("flattened"):  # items repeat in place, named after the member
            return "".join(_xml(shape.member, v, mtag or tag) for v in value)
        return f"<{tag}>{''.join(_xml(shape.member, v, mtag or 'member') for v in value)}</{tag}>"
    if t == "map":
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        pairs = [f"<{kname}>{escape(str(k))}</{kname}>{_xml(shape.value, v, vname)}"
                 for k, v in value.items()]
        if shape.serialization.get("flattened"):  # each pair is its own <tag>, no <entry>
            return "".join(f"<{tag}>{p}</{tag}>" for p in pairs)
        return f"<{tag}>{''.join(f'<entry>{p}</entry>' for p in pairs)}</{tag}>"
    if t == "boolean":
        text = "true" if value else "false"
    elif t == "timestamp" and isinstance(value, datetime):
        text = shapes.format_timestamp(value, shape.serialization.get("timestampFormat", "iso8601"))
    elif t == "blob":
        text = shapes.encode(shape, value, ts_format="iso8601")
    else:
        text = str(value)
    return f"<{tag}>{escape(str(text))}</{tag}>"
