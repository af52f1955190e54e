"""ECS list paging, once for every List* operation: ``maxResults`` (1–100; botocore's model
does not bound it, ECS does) and opaque ``nextToken`` cursors (corral.aws.pagination)."""

from __future__ import annotations

from typing import Any

from corral.aws import pagination
from corral.ecs.errors import InvalidParameterException


def max_results(params: dict[str, Any], default: int = 100) -> int:
    limit = params.get("maxResults")
    if limit is None:
        return default
    if not 1 <= limit <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    return limit


def cursor(params: dict[str, Any], **expected: type) -> dict[str, Any] | None:
    """The decoded ``nextToken`` (None without one); a token that is not ours is an
    InvalidParameterException."""
    try:
        return pagination.decode(params.get("nextToken"), **expected)
    except ValueError:
        raise InvalidParameterException("Invalid nextToken.") from None


def offset_page(items: list[Any], params: dict[str, Any], key: str, *,
                default: int = 100) -> dict[str, Any]:
    """One page of a list built in memory (a cluster's tasks, services, instances), the
    cursor an offset: ``{key: [...], "nextToken"?: …}``."""
    limit = max_results(params, default)
    start = (cursor(params, offset=int) or {"offset": 0})["offset"]
    out: dict[str, Any] = {key: items[start:start + limit]}
    if start + limit < len(items):
        out["nextToken"] = pagination.encode({"offset": start + limit})
    return out
