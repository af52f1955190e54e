"""CloudWatch Logs (issue 12): the Logs API, its event store in the SQL store, retention.

    provider.py         LogsProvider: the operation mixins below, composed
    group_ops.py        Create/Delete/DescribeLogGroups, Put/DeleteRetentionPolicy
    stream_ops.py       Create/Delete/DescribeLogStreams
    event_ops.py        PutLogEvents, GetLogEvents (AWS's f/… and b/… tokens)
    tag_ops.py          TagLogGroup/UntagLogGroup/ListTagsLogGroup, Tag/UntagResource, List…
    filter_meta_ops.py  Put/Describe/DeleteMetricFilter, Put/Describe/DeleteSubscriptionFilter
    filter_ops.py       FilterLogEvents (the filter-pattern engineer's)
    query_ops.py        Logs Insights queries (the filter-pattern engineer's)
    store.py            the tables' API every Logs module (and the awslogs driver) uses
    retention.py        the controller that deletes expired events and purges deleted streams
    names.py, errors.py ARNs and group references; Logs error codes
"""
