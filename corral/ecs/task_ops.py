"""ECS Task operations (a mixin of EcsProvider)."""

from __future__ import annotations


class TaskOperations:
    pass
