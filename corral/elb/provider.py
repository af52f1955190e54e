"""The ELBv2 API provider (application load balancers): one class composed of operation
groups, one module each.

    lb_ops            Create/Describe/DeleteLoadBalancer(s), load balancer attributes,
                      DescribeAccountLimits
    listener_ops      Create/Describe/Modify/DeleteListener (HTTP, on this machine's ports)
    rule_ops          Create/Describe/Modify/DeleteRule, SetRulePriorities
    target_group_ops  Create/Describe/Modify/DeleteTargetGroup, target group attributes
    target_ops        Register/DeregisterTargets, DescribeTargetHealth
    tag_ops           AddTags, RemoveTags, DescribeTags

State is in the store (``corral.elb.records``); every write emits ``elb.changed`` so the data
plane (``corral.elb`` controller) reconciles its listeners once the transaction commits.
"""

from __future__ import annotations

from corral.aws.provider import Provider
from corral.config import Settings
from corral.elb.lb_ops import LoadBalancerOperations
from corral.elb.listener_ops import ListenerOperations
from corral.elb.rule_ops import RuleOperations
from corral.elb.tag_ops import TagOperations
from corral.elb.target_group_ops import TargetGroupOperations
from corral.elb.target_ops import TargetOperations


class ElbProvider(LoadBalancerOperations, ListenerOperations, RuleOperations,
                  TargetGroupOperations, TargetOperations, TagOperations, Provider):
    service = "elbv2"

    def __init__(self, settings: Settings):
        self.settings = settings
