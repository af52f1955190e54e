"""ECS error codes (one class per AWS code). ECS puts the message in ``message``; semantic
validation of task definitions and tasks answers ``ClientException`` with AWS's texts."""

from __future__ import annotations

from corral.aws.errors import AwsError, error_class


class EcsError(AwsError):
    status = 400


ClientException = error_class("ClientException", base=EcsError)
InvalidParameterException = error_class("InvalidParameterException", base=EcsError)
ServerException = error_class("ServerException", 500, base=EcsError)
ResourceNotFoundException = error_class("ResourceNotFoundException", base=EcsError)
ResourceInUseException = error_class("ResourceInUseException", base=EcsError)
UnsupportedFeatureException = error_class("UnsupportedFeatureException", base=EcsError)
LimitExceededException = error_class("LimitExceededException", base=EcsError)
ClusterContainsContainerInstancesException = error_class(
    "ClusterContainsContainerInstancesException", base=EcsError)
ClusterContainsServicesException = error_class("ClusterContainsServicesException", base=EcsError)
ClusterContainsTasksException = error_class("ClusterContainsTasksException", base=EcsError)
ClusterContainsCapacityProviderException = error_class(
    "ClusterContainsCapacityProviderException", base=EcsError)


class ClusterNotFoundException(EcsError):
    code = "ClusterNotFoundException"

    def __init__(self, message: str = "Cluster not found."):
        super().__init__(message)
TargetNotFoundException = error_class("TargetNotFoundException", base=EcsError)
AttributeLimitExceededException = error_class("AttributeLimitExceededException", base=EcsError)
# Services (CreateService / UpdateService / DeleteService and the service-deployment reads).
ServiceNotFoundException = error_class("ServiceNotFoundException", base=EcsError)
ServiceNotActiveException = error_class("ServiceNotActiveException", base=EcsError)
PlatformUnknownException = error_class("PlatformUnknownException", base=EcsError)
PlatformTaskDefinitionIncompatibilityException = error_class(
    "PlatformTaskDefinitionIncompatibilityException", base=EcsError)
NamespaceNotFoundException = error_class("NamespaceNotFoundException", base=EcsError)
