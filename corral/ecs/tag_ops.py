"""ECS Tag operations (a mixin of EcsProvider)."""

from __future__ import annotations


class TagOperations:
    pass
