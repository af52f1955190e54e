"""ELBv2 error codes: one class per AWS code, statuses as the model's error shapes declare them
(every one a 400 sender fault). Input that breaks a rule answers ``ValidationError`` (the query
protocol's code, also what the wire layer answers for the model's own constraints)."""

from __future__ import annotations

from corral.aws.errors import AwsError, error_class


class ElbError(AwsError):
    status = 400


ValidationError = error_class("ValidationError", base=ElbError)
DuplicateLoadBalancerName = error_class("DuplicateLoadBalancerName", base=ElbError)
DuplicateTargetGroupName = error_class("DuplicateTargetGroupName", base=ElbError)
DuplicateListener = error_class("DuplicateListener", base=ElbError)
DuplicateTagKeys = error_class("DuplicateTagKeys", base=ElbError)
LoadBalancerNotFound = error_class("LoadBalancerNotFound", base=ElbError)
ListenerNotFound = error_class("ListenerNotFound", base=ElbError)
RuleNotFound = error_class("RuleNotFound", base=ElbError)
TargetGroupNotFound = error_class("TargetGroupNotFound", base=ElbError)
PriorityInUse = error_class("PriorityInUse", base=ElbError)
InvalidConfigurationRequest = error_class("InvalidConfigurationRequest", base=ElbError)
InvalidLoadBalancerAction = error_class("InvalidLoadBalancerAction", base=ElbError)
InvalidTarget = error_class("InvalidTarget", base=ElbError)
InvalidScheme = error_class("InvalidScheme", base=ElbError)
OperationNotPermitted = error_class("OperationNotPermitted", base=ElbError)
ResourceInUse = error_class("ResourceInUse", base=ElbError)
TargetGroupAssociationLimit = error_class("TargetGroupAssociationLimit", base=ElbError)
UnsupportedProtocol = error_class("UnsupportedProtocol", base=ElbError)
TooManyActions = error_class("TooManyActions", base=ElbError)
TooManyListeners = error_class("TooManyListeners", base=ElbError)
TooManyLoadBalancers = error_class("TooManyLoadBalancers", base=ElbError)
TooManyRules = error_class("TooManyRules", base=ElbError)
TooManyTags = error_class("TooManyTags", base=ElbError)
TooManyTargetGroups = error_class("TooManyTargetGroups", base=ElbError)
TooManyTargets = error_class("TooManyTargets", base=ElbError)
