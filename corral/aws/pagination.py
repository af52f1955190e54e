"""Opaque ``nextToken`` values: a base64 JSON cursor, checked on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def encode(cursor: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode()


def decode(token: str | None, **expected: type) -> dict[str, Any] | None:
    """The cursor in ``token`` (None when no token); ValueError when it is not ours."""
    if not token:
        return None
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("invalid token") from None
    if not isinstance(cursor, dict) or any(
        not isinstance(cursor.get(k), t) for k, t in expected.items()
    ):
        raise ValueError("invalid token")
    return cursor
