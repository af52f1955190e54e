"""Validate parsed input against an operation's input shape.

Checks what the model declares: required members, enums, string length, list and map sizes,
numeric ranges and patterns. Violations are collected like AWS's validator does and reported
as one message: ``2 validation errors detected: Value 'x' at 'a' failed to satisfy
constraint: Member must …; …``. A service may render them its own way (ECR answers
``InvalidParameterException``), see :func:`validation_error`.

Which error code a service answers is derived once from its model (:func:`error_code`):
query-protocol and query-compatible services (IAM, STS, ELBv2, CloudWatch) say
``ValidationError``; a json service that models ``InvalidParameterException`` (ECR, ECS, Logs)
says that; the others (Inspector2) say ``ValidationException``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from botocore.model import Shape

from corral.aws.errors import AwsError

if TYPE_CHECKING:
    from corral.aws.models import ServiceSpec


@dataclass(frozen=True)
class Violation:
    path: str
    value: Any
    constraint: str  # "Member must …"


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern | None:
    try:
        # Model patterns are Java regexes: \w, \d, \s and \b match ASCII only there.
        return re.compile(pattern, re.ASCII)
    except re.error:  # a Java-only construct (\p{…}); the model's other constraints still apply
        return None


def _show(value: Any) -> str:
    text = _text(value)
    return text if len(text) <= 256 else text[:253] + "..."


def _text(value: Any) -> str:
    """The value as AWS's (Java) validator prints it: ``[a, b]``, ``{k=v}``, ``true``."""
    if isinstance(value, (bytes, bytearray)):
        return "<binary>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_text, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(k)}={_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def violations(shape: Shape, value: Any, path: str = "") -> list[Violation]:
    out: list[Violation] = []
    _check(shape, value, path, out)
    return out


def _check(shape: Shape, value: Any, path: str, out: list[Violation]) -> None:
    md = shape.metadata
    t = shape.type_name
    if t == "structure":
        for name in md.get("required", ()):
            if value.get(name) is None:
                out.append(Violation(_join(path, name), None, "Member must not be null"))
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], _join(path, name), out)
        return
    if t in ("list", "map"):
        _check_size(len(value), md, path, value, out, "length")
        if t == "list":
            for i, item in enumerate(value):
                _check(shape.member, item, f"{path}.{i + 1}.member", out)
        else:
            for k, v in value.items():
                _check(shape.key, k, f"{path}.key", out)
                _check(shape.value, v, f"{path}.{k}", out)
        return
    if t == "string":
        if "enum" in md and value not in md["enum"]:
            allowed = ", ".join(md["enum"])
            out.append(Violation(path, value, f"Member must satisfy enum value set: [{allowed}]"))
            return
        _check_size(len(value), md, path, value, out, "length")
        rx = _pattern(md["pattern"]) if "pattern" in md else None
        if rx is not None and not rx.fullmatch(value):
            out.append(Violation(
                path, value, f"Member must satisfy regular expression pattern: {md['pattern']}"
            ))
        return
    if t == "blob":
        _check_size(len(value), md, path, value, out, "length")
        return
    if t in ("integer", "long", "short", "byte", "float", "double"):
        if "min" in md and value < md["min"]:
            out.append(Violation(path, value, f"Member must have value greater than or equal to {md['min']}"))
        if "max" in md and value > md["max"]:
            out.append(Violation(path, value, f"Member must have value less than or equal to {md['max']}"))


def _check_size(n: int, md: dict, path: str, value: Any, out: list[Violation], what: str) -> None:
    if "min" in md and n < md["min"]:
        out.append(Violation(path, value, f"Member must have {what} greater than or equal to {md['min']}"))
    elif "max" in md and n > md["max"]:
        out.append(Violation(path, value, f"Member must have {what} less than or equal to {md['max']}"))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def coral_message(found: list[Violation]) -> str:
    n = len(found)
    head = f"{n} validation error{'s' if n > 1 else ''} detected: "
    parts = []
    for v in found:
        shown = "null" if v.value is None else f"'{_show(v.value)}'"
        parts.append(f"Value {shown} at '{v.path}' failed to satisfy constraint: {v.constraint}")
    return head + "; ".join(parts)


def invalid_parameter_message(found: list[Violation]) -> str:
    """ECR's wording for the first violation: ``Invalid parameter at 'repositoryName' failed
    to satisfy constraint: 'must satisfy regular expression '…''`` (public AWS error reports)."""
    v = found[0]
    constraint = v.constraint.removeprefix("Member ")
    prefix = "must satisfy regular expression pattern: "
    if constraint.startswith(prefix):
        constraint = f"must satisfy regular expression '{constraint.removeprefix(prefix)}'"
    return f"Invalid parameter at '{v.path}' failed to satisfy constraint: '{constraint}'"


@cache
def error_code(spec: ServiceSpec) -> str:
    """The code ``spec``'s service answers for input that breaks its model's constraints."""
    if "query" in spec.protocols or "awsQueryCompatible" in spec.model.metadata:
        return "ValidationError"
    modeled = {e.name for op in spec.operation_names for e in spec.operation(op).error_shapes}
    return "InvalidParameterException" if "InvalidParameterException" in modeled \
        else "ValidationException"


def validation_error(spec: ServiceSpec, found: list[Violation]) -> AwsError:
    return AwsError(coral_message(found), code=error_code(spec), status=400)
