"""The CloudWatch Logs API provider: one class composed of operation groups, one module each.

    group_ops        Create/Delete/DescribeLogGroups, Put/DeleteRetentionPolicy,
                     PutLogGroupDeletionProtection
    stream_ops       Create/Delete/DescribeLogStreams
    event_ops        PutLogEvents, GetLogEvents
    tag_ops          TagLogGroup/UntagLogGroup/ListTagsLogGroup, Tag/UntagResource,
                     ListTagsForResource
    filter_meta_ops  Put/Describe/DeleteMetricFilter, Put/Describe/DeleteSubscriptionFilter
    filter_ops       FilterLogEvents
    query_ops        StartQuery, GetQueryResults, StopQuery, DescribeQueries

Every operation runs in the gateway's one transaction (``ctx.db``) and declares the ARNs it
acts on for IAM: the log group in its ``:*`` form (``…:log-group:<name>:*``), the stream for
PutLogEvents / GetLogEvents, the group ARN as given for the tagging APIs, ``log-group:*`` for
DescribeLogGroups (corral.logs.names).
"""

from __future__ import annotations

from corral.aws.provider import Provider
from corral.config import Settings
from corral.logs.event_ops import EventOperations
from corral.logs.filter_meta_ops import FilterMetaOperations
from corral.logs.filter_ops import FilterOperations
from corral.logs.group_ops import GroupOperations
from corral.logs.query_ops import QueryOperations
from corral.logs.stream_ops import StreamOperations
from corral.logs.tag_ops import TagOperations


class LogsProvider(GroupOperations, StreamOperations, EventOperations, TagOperations,
                   FilterMetaOperations, FilterOperations, QueryOperations, Provider):
    service = "logs"

    def __init__(self, settings: Settings):
        self.settings = settings
