"""Opaque ``nextToken`` values: a base64 JSON cursor, checked on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def encode(cursor: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode()


def _is(value: Any, kind: type) -> bool:
    """``value`` is a ``kind``; an int is a 64-bit one (not a bool), as every cursor int is
    an id or offset a database column must hold (a larger one is a database error)."""
    if kind is int:
        return type(value) is int and -(2 ** 63) <= value < 2 ** 63
    return isinstance(value, kind)


def decode(token: str | None, **expected: type) -> dict[str, Any] | None:
    """The cursor in ``token`` (None when no token); ValueError when it is not ours."""
    if not token:
        return None
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("invalid token") from None
    if not isinstance(cursor, dict) or any(
        not _is(cursor.get(k), t) for k, t in expected.items()
    ):
        raise ValueError("invalid token")
    return cursor
