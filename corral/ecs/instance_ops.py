"""ECS Instance operations (a mixin of EcsProvider)."""

from __future__ import annotations


class InstanceOperations:
    pass
