"""Convert between wire values and Python values, shape by shape.

Used by every document protocol (JSON, REST-JSON bodies, CBOR). ``decode`` turns what the
client sent into typed Python values (datetime, bytes, int, …) and raises
``SerializationException`` when a value cannot be the member's type, as AWS does; ``encode``
produces exactly the output shape, dropping members the model does not have.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from typing import Any

from botocore.model import Shape

from corral.aws.errors import SerializationException

_INT_TYPES = ("integer", "long", "short", "byte")
_FLOAT_TYPES = ("float", "double")


def _type_error(shape: Shape, value: Any, path: str) -> SerializationException:
    kind = type(value).__name__
    return SerializationException(
        f"Cannot deserialize {kind} value at '{path or 'body'}' as {shape.type_name}"
    )


def parse_timestamp(value: Any, shape: Shape, path: str = "") -> datetime:
    """Accept epoch seconds, ISO 8601 or RFC 822 (botocore sends each in some place)."""
    try:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            text = value.strip()
            try:
                return datetime.fromtimestamp(float(text), UTC)
            except ValueError:
                pass
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                dt = parsedate_to_datetime(text)
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError, TypeError):
        pass
    raise _type_error(shape, value, path)


def format_timestamp(value: datetime, fmt: str) -> Any:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if fmt == "unixtimestamp":
        return round(value.timestamp(), 3)
    if fmt == "rfc822":
        return format_datetime(value.astimezone(UTC), usegmt=True)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def decode(shape: Shape, value: Any, *, b64_blobs: bool = True, path: str = "") -> Any:
    """Wire value -> Python value of ``shape``'s type (recursively)."""
    if value is None:
        return None
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            raise _type_error(shape, value, path)
        out = {}
        for name, member in shape.members.items():
            wire_name = member.serialization.get("name", name)
            if wire_name in value and value[wire_name] is not None:
                sub = f"{path}.{name}" if path else name
                out[name] = decode(member, value[wire_name], b64_blobs=b64_blobs, path=sub)
        return out
    if t == "list":
        if not isinstance(value, list):
            raise _type_error(shape, value, path)
        return [
            _element(shape.member, v, b64_blobs, f"{path}.{i + 1}.member")
            for i, v in enumerate(value)
        ]
    if t == "map":
        if not isinstance(value, dict):
            raise _type_error(shape, value, path)
        return {
            decode(shape.key, k, b64_blobs=b64_blobs, path=path): _element(
                shape.value, v, b64_blobs, f"{path}.{k}"
            )
            for k, v in value.items()
        }
    if t == "string":
        if not isinstance(value, str):
            raise _type_error(shape, value, path)
        return value
    if t == "boolean":
        if not isinstance(value, bool):
            raise _type_error(shape, value, path)
        return value
    if t in _INT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise _type_error(shape, value, path)
        return value
    if t in _FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _type_error(shape, value, path)
        if isinstance(value, str):  # NaN / Infinity travel as strings
            if value not in ("NaN", "Infinity", "-Infinity"):
                raise _type_error(shape, value, path)
            return float(value)
        return float(value)
    if t == "timestamp":
        return parse_timestamp(value, shape, path)
    if t == "blob":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if b64_blobs and isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _type_error(shape, value, path) from None
        raise _type_error(shape, value, path)
    return value  # document types pass through


def _element(shape: Shape, value: Any, b64_blobs: bool, path: str) -> Any:
    """A list item or map value. Our models' collections are all dense, and a null in a dense
    one is malformed input (Smithy's ``MalformedListNullItem``/``MalformedMapNullValue``)."""
    if value is None:
        raise SerializationException(f"Null value at '{path}' is not allowed in a dense collection")
    return decode(shape, value, b64_blobs=b64_blobs, path=path)


def encode(shape: Shape, value: Any, *, ts_format: str, b64_blobs: bool = True) -> Any:
    """Python value -> wire value, emitting only members ``shape`` declares."""
    return None if value is None else encoder(shape, ts_format, b64_blobs)(value)


def _same(value: Any) -> Any:
    return value


@cache
def encoder(shape: Shape, ts_format: str, b64_blobs: bool) -> Callable[[Any], Any]:
    """A function encoding values of ``shape``, built once per shape (the hot path of every
    response). Child encoders resolve lazily, so recursive shapes terminate."""
    t = shape.type_name
    if t == "structure":
        members = [(name, m.serialization.get("name", name), m)
                   for name, m in shape.members.items() if not m.serialization.get("location")]
        fields: list = []

        def encode_structure(value: dict) -> dict:
            if not fields:
                for n, w, m in members:
                    f = encoder(m, ts_format, b64_blobs)
                    fields.append((n, w, None if f is _same else f))
            out = {}
            for n, w, f in fields:
                v = value.get(n)
                if v is not None:
                    out[w] = v if f is None else f(v)
            return out

        return encode_structure
    if t in ("list", "map"):
        inner = shape.member if t == "list" else shape.value
        child: list = []

        def encode_collection(value):
            if not child:
                child.append(encoder(inner, ts_format, b64_blobs))
            f = child[0]
            if t == "list":
                return list(value) if f is _same else [f(v) for v in value]
            return dict(value) if f is _same else {k: f(v) for k, v in value.items()}

        return encode_collection
    if t == "timestamp":
        if ts_format == "datetime":  # binary protocols carry the datetime itself
            return _same
        fmt = shape.serialization.get("timestampFormat", ts_format)
        return lambda v: format_timestamp(v, fmt) if isinstance(v, datetime) else v
    if t == "blob":
        def encode_blob(value):
            data = value.encode() if isinstance(value, str) else bytes(value)
            return base64.b64encode(data).decode() if b64_blobs else data

        return encode_blob
    # Text protocols spell non-finite numbers as strings; binary ones (CBOR) carry IEEE floats.
    if t in _FLOAT_TYPES and b64_blobs:
        return _encode_float
    return _same


def _encode_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
