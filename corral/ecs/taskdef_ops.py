"""ECS TaskDefinition operations (a mixin of EcsProvider)."""

from __future__ import annotations


class TaskDefinitionOperations:
    pass
