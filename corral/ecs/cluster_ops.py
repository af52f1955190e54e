"""ECS Cluster operations (a mixin of EcsProvider)."""

from __future__ import annotations


class ClusterOperations:
    pass
