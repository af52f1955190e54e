"""The ECS API provider: one class composed of operation groups, one module each.

    taskdef_ops    Register/Describe/List/Deregister/DeleteTaskDefinition(s), families
    cluster_ops    Create/Describe/List/Update/DeleteCluster, settings, capacity providers
    instance_ops   the local machine as a container instance: List/DescribeContainerInstances
    task_ops       RunTask, StartTask, StopTask, DescribeTasks, ListTasks
    service_ops    Create/Update/Delete/Describe/ListService(s), service deployments, revisions
    tag_ops        TagResource, UntagResource, ListTagsForResource for every ECS resource
"""

from __future__ import annotations

from corral.aws.provider import Provider
from corral.config import Settings
from corral.ecs.cluster_ops import ClusterOperations
from corral.ecs.instance_ops import InstanceOperations
from corral.ecs.service_ops import ServiceOperations
from corral.ecs.tag_ops import TagOperations
from corral.ecs.task_ops import TaskOperations
from corral.ecs.taskdef_ops import TaskDefinitionOperations


class EcsProvider(TaskDefinitionOperations, ClusterOperations, InstanceOperations,
                  TaskOperations, ServiceOperations, TagOperations, Provider):
    service = "ecs"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.authorizer = None  # set by the app: PassRole checks and image pulls
