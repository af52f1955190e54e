"""The CloudWatch Logs API against the real server with boto3 and the aws CLI: groups,
streams, events, GetLogEvents' tokens, retention, tags, metric and subscription filters."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

ACCOUNT, REGION = "000000000000", "us-east-1"


@pytest.fixture(scope="module")
def logs(server):
    return server.client("logs")


@pytest.fixture
def group(logs):
    """A fresh log group of the test's own, deleted afterwards."""
    name = f"/api/{uuid.uuid4().hex[:12]}"
    logs.create_log_group(logGroupName=name)
    yield name
    with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
        logs.delete_log_group(logGroupName=name)  # the test may have deleted it


def now_ms() -> int:
    return int(time.time() * 1000)


def code_of(call, **kwargs) -> str:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]["Code"]


def put(logs, group: str, stream: str, messages: list[str], start: int | None = None) -> int:
    """One PutLogEvents of ``messages`` 1 ms apart; returns the first timestamp."""
    t = now_ms() - 60_000 if start is None else start
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": t + i, "message": m} for i, m in enumerate(messages)])
    return t


# --- groups ----------------------------------------------------------------------------------

def test_log_group_round_trip(logs, group):
    got = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert len(got) == 1
    g = got[0]
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    assert (g["logGroupName"], g["arn"], g["logGroupArn"]) == (group, arn + ":*", arn)
    assert (g["storedBytes"], g["metricFilterCount"], g["logGroupClass"]) == (0, 0, "STANDARD")
    assert "retentionInDays" not in g
    assert abs(g["creationTime"] - now_ms()) < 60_000
    assert code_of(logs.create_log_group, logGroupName=group) == "ResourceAlreadyExistsException"
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    assert code_of(logs.delete_log_group, logGroupName=group) == "ResourceNotFoundException"


def test_describe_log_groups_prefix_pattern_class_and_pages(logs):
    u = uuid.uuid4().hex[:8]
    base = f"/pages/{u}"
    made = [f"{base}/DataLogs{u}", f"{base}/GroupDataLogs{u}", f"{base}/datalogs{u}",
            f"{base}/other", f"{base}/zz"]
    for name in made:
        logs.create_log_group(logGroupName=name, logGroupClass="INFREQUENT_ACCESS"
                              if name.endswith("zz") else "STANDARD")
    try:
        pages = list(logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=base, PaginationConfig={"PageSize": 2}))
        assert [len(p["logGroups"]) for p in pages] == [2, 2, 1]
        names = [g["logGroupName"] for p in pages for g in p["logGroups"]]
        assert names == sorted(made)  # ASCII order: uppercase first
        # The pattern is a case-sensitive substring, and shows only three fields [BC].
        found = logs.describe_log_groups(logGroupNamePattern=f"DataLogs{u}")
        assert [g["logGroupName"] for g in found["logGroups"]] == made[:2]
        assert set(found["logGroups"][0]) == {"logGroupName", "arn", "creationTime"}
        cls = logs.describe_log_groups(logGroupNamePrefix=base,
                                       logGroupClass="INFREQUENT_ACCESS")["logGroups"]
        assert [g["logGroupName"] for g in cls] == [f"{base}/zz"]
        by_id = logs.describe_log_groups(logGroupIdentifiers=[
            made[3], f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{made[4]}"])["logGroups"]
        assert [g["logGroupName"] for g in by_id] == made[3:]
    finally:
        for name in made:
            logs.delete_log_group(logGroupName=name)


def test_the_aws_cli_creates_lists_and_reads_logs(server, group):
    assert server.aws("logs", "create-log-stream", "--log-group-name", group,
                      "--log-stream-name", "cli").returncode == 0
    t = now_ms()
    events = json.dumps([{"timestamp": t, "message": "hello from the CLI"}])
    put = server.aws("logs", "put-log-events", "--log-group-name", group, "--log-stream-name",
                     "cli", "--log-events", events)
    assert put.returncode == 0, put.stderr
    out = server.aws("logs", "get-log-events", "--log-group-name", group,
                     "--log-stream-name", "cli", "--start-from-head")
    assert out.returncode == 0, out.stderr
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == ["hello from the CLI"]
    listed = server.aws("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert [g["logGroupName"] for g in json.loads(listed.stdout)["logGroups"]] == [group]


# --- streams ---------------------------------------------------------------------------------

def test_log_streams_order_pages_and_timestamps(logs, group):
    base = now_ms() - 3_600_000
    # c has the latest events, a the earliest; b has none.
    for name, offset in (("b", None), ("c", 3000), ("a", 1000), ("ab", 2000)):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        if offset is not None:
            put(logs, group, name, ["x", "yy"], base + offset)
    by_name = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in by_name] == ["a", "ab", "b", "c"]
    a = by_name[0]
    assert (a["firstEventTimestamp"], a["lastEventTimestamp"]) == (base + 1000, base + 1001)
    assert abs(a["lastIngestionTime"] - now_ms()) < 60_000
    assert a["storedBytes"] == 0  # always 0 for streams since 2019 [BC LogStream]
    assert a["arn"].endswith(f"log-group:{group}:log-stream:a")
    assert "firstEventTimestamp" not in by_name[2]
    pages = list(logs.get_paginator("describe_log_streams").paginate(
        logGroupName=group, orderBy="LastEventTime", descending=True,
        PaginationConfig={"PageSize": 1}))
    assert [s["logStreamName"] for p in pages for s in p["logStreams"]] == ["c", "ab", "a", "b"]
    prefixed = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="a",
                                         descending=True)["logStreams"]
    assert [s["logStreamName"] for s in prefixed] == ["ab", "a"]
    # The group counts the UTF-8 bytes stored.
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0][
        "storedBytes"] == 9


def test_deleting_a_stream_removes_its_events_at_once(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    put(logs, group, "s", ["old-1", "old-2"])
    logs.delete_log_stream(logGroupName=group, logStreamName="s")
    assert code_of(logs.get_log_events, logGroupName=group,
                   logStreamName="s") == "ResourceNotFoundException"
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0][
        "storedBytes"] == 0
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    assert logs.get_log_events(logGroupName=group, logStreamName="s")["events"] == []


# --- GetLogEvents ----------------------------------------------------------------------------

def _messages(page: dict) -> list[str]:
    return [e["message"] for e in page["events"]]


def test_get_log_events_forward_to_the_end_returns_the_same_token(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    put(logs, group, "s", [f"m{i}" for i in range(10)])
    kw = {"logGroupName": group, "logStreamName": "s", "limit": 4}
    page = logs.get_log_events(startFromHead=True, **kw)
    seen = _messages(page)
    token = None
    while page["nextForwardToken"] != token:  # the loop AWS documents ends
        token = page["nextForwardToken"]
        assert token.startswith("f/") and len(token) == 2 + 56 + 2
        page = logs.get_log_events(startFromHead=True, nextToken=token, **kw)
        seen += _messages(page)
    assert seen == [f"m{i}" for i in range(10)]  # every event exactly once, in order
    assert page["events"] == [] and page["nextForwardToken"] == token
    # New events after the end: the same token now reads them.
    put(logs, group, "s", ["late"], now_ms())
    assert _messages(logs.get_log_events(startFromHead=True, nextToken=token, **kw)) == ["late"]


def test_get_log_events_from_the_end_and_backward(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    put(logs, group, "s", [f"m{i}" for i in range(10)])
    kw = {"logGroupName": group, "logStreamName": "s", "limit": 4}
    last = logs.get_log_events(**kw)  # startFromHead false: the newest page
    assert _messages(last) == ["m6", "m7", "m8", "m9"]
    back = logs.get_log_events(nextToken=last["nextBackwardToken"], **kw)
    assert _messages(back) == ["m2", "m3", "m4", "m5"]
    start = logs.get_log_events(nextToken=back["nextBackwardToken"], **kw)
    assert _messages(start) == ["m0", "m1"]
    token = start["nextBackwardToken"]
    head = logs.get_log_events(nextToken=token, **kw)
    assert head["events"] == [] and head["nextBackwardToken"] == token
    # From the head, forward again: m0 first.
    fwd = logs.get_log_events(nextToken=head["nextForwardToken"], **kw)
    assert _messages(fwd) == ["m0", "m1", "m2", "m3"]
    # And forward from the newest page's forward token: nothing new, the same token.
    end = logs.get_log_events(nextToken=last["nextForwardToken"], **kw)
    assert end["events"] == [] and end["nextForwardToken"] == last["nextForwardToken"]


def test_get_log_events_time_range_and_identifier(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = put(logs, group, "s", [f"m{i}" for i in range(10)])
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    page = logs.get_log_events(logGroupIdentifier=arn, logStreamName="s", startTime=t + 2,
                               endTime=t + 5, startFromHead=True)
    assert _messages(page) == ["m2", "m3", "m4"]  # startTime inclusive, endTime exclusive
    first = page["events"][0]
    assert first["timestamp"] == t + 2 and abs(first["ingestionTime"] - now_ms()) < 60_000
    empty = logs.get_log_events(logGroupName=group, logStreamName="s", startTime=t + 100)
    assert empty["events"] == [] and empty["nextForwardToken"].startswith("f/")


# --- retention -------------------------------------------------------------------------------

def test_put_and_delete_retention_policy(logs, group):
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    g = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert g["retentionInDays"] == 1
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms()
    out = logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": t - 2 * 86_400_000, "message": "expired"},
        {"timestamp": t, "message": "kept"}])
    assert out["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(
        logGroupNamePrefix=group)["logGroups"][0]
    out = logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": t - 2 * 86_400_000, "message": "accepted now"}])
    assert "rejectedLogEventsInfo" not in out
    assert code_of(logs.put_retention_policy, logGroupName="/api/none",
                   retentionInDays=7) == "ResourceNotFoundException"


# --- tags ------------------------------------------------------------------------------------

def test_tags_through_both_apis(logs):
    name = f"/tags/{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"
    logs.create_log_group(logGroupName=name, tags={"team": "a", "env": "dev"})
    try:
        assert logs.list_tags_log_group(logGroupName=name)["tags"] == {"team": "a",
                                                                        "env": "dev"}
        logs.tag_resource(resourceArn=arn, tags={"env": "prod", "cost": "1"})
        logs.untag_log_group(logGroupName=name, tags=["team"])
        assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "prod",
                                                                         "cost": "1"}
        logs.tag_log_group(logGroupName=name, tags={"team": "b"})
        logs.untag_resource(resourceArn=arn, tagKeys=["cost"])
        assert logs.list_tags_log_group(logGroupName=name)["tags"] == {"env": "prod",
                                                                        "team": "b"}
        too_many = {f"k{i}": "v" for i in range(49)}
        assert code_of(logs.tag_resource, resourceArn=arn,
                       tags=too_many) == "TooManyTagsException"
        assert code_of(logs.tag_resource, resourceArn=arn,
                       tags={"aws:x": "1"}) == "InvalidParameterException"
    finally:
        logs.delete_log_group(logGroupName=name)
    logs.create_log_group(logGroupName=name)  # a new group of the name has no tags
    try:
        assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    finally:
        logs.delete_log_group(logGroupName=name)


# --- metric and subscription filters ---------------------------------------------------------

def _metric(name: str, value: str = "1") -> list[dict]:
    return [{"metricName": name, "metricNamespace": "App", "metricValue": value}]


def test_metric_filters_stored_described_and_deleted(logs, group):
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR",
                           metricTransformations=_metric("Errors"))
    logs.put_metric_filter(logGroupName=group, filterName="latency",
                           filterPattern="[ip, user, status, latency]",
                           metricTransformations=_metric("Latency", "$latency"))
    got = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    assert [f["filterName"] for f in got] == ["errors", "latency"]
    assert got[0]["filterPattern"] == "ERROR" and got[0]["logGroupName"] == group
    assert got[0]["metricTransformations"] == _metric("Errors")
    first_created = got[0]["creationTime"]
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="?ERROR ?WARN",
                           metricTransformations=_metric("Errors"))
    again = logs.describe_metric_filters(logGroupName=group, filterNamePrefix="err")
    assert [(f["filterPattern"], f["creationTime"]) for f in again["metricFilters"]] == [
        ("?ERROR ?WARN", first_created)]
    by_metric = logs.describe_metric_filters(metricName="Latency", metricNamespace="App")
    assert [f["filterName"] for f in by_metric["metricFilters"]] == ["latency"]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0][
        "metricFilterCount"] == 2
    assert code_of(logs.put_metric_filter, logGroupName=group, filterName="bad",
                   filterPattern="[a, b]", metricTransformations=_metric("M", "$nope")
                   ) == "InvalidParameterException"
    logs.delete_metric_filter(logGroupName=group, filterName="errors")
    assert code_of(logs.delete_metric_filter, logGroupName=group,
                   filterName="errors") == "ResourceNotFoundException"
    assert [f["filterName"] for f in logs.describe_metric_filters(
        logGroupName=group)["metricFilters"]] == ["latency"]


def test_subscription_filters_at_most_two_per_group(logs, group):
    dest = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ship"
    for name in ("one", "two"):
        logs.put_subscription_filter(logGroupName=group, filterName=name, filterPattern="",
                                     destinationArn=dest)
    assert code_of(logs.put_subscription_filter, logGroupName=group, filterName="three",
                   filterPattern="", destinationArn=dest) == "LimitExceededException"
    logs.put_subscription_filter(logGroupName=group, filterName="two", filterPattern="ERROR",
                                 destinationArn=dest, distribution="Random")  # an update
    got = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    assert [(f["filterName"], f["filterPattern"], f["distribution"]) for f in got] == [
        ("one", "", "ByLogStream"), ("two", "ERROR", "Random")]
    assert got[0]["destinationArn"] == dest and got[0]["logGroupName"] == group
    logs.delete_subscription_filter(logGroupName=group, filterName="one")
    assert [f["filterName"] for f in logs.describe_subscription_filters(
        logGroupName=group, filterNamePrefix="t")["subscriptionFilters"]] == ["two"]


# --- authorization ---------------------------------------------------------------------------

def test_iam_resources_are_the_group_and_stream_arns(server, logs, group):
    """A policy on ``log-group:<name>:*`` (the form AWS documents for most actions) allows
    writing that group's streams and nothing else."""
    other = group + "-other"
    logs.create_log_group(logGroupName=other)
    iam = server.client("iam")
    user = f"logs-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    try:
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"}]}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        mine = server.client("logs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
        mine.create_log_stream(logGroupName=group, logStreamName="s")
        put(mine, group, "s", ["allowed"])
        assert code_of(mine.create_log_stream, logGroupName=other,
                       logStreamName="s") == "AccessDeniedException"
        assert code_of(mine.describe_log_groups) == "AccessDeniedException"
    finally:
        logs.delete_log_group(logGroupName=other)
        for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=k["AccessKeyId"])
        iam.delete_user_policy(UserName=user, PolicyName="p")
        iam.delete_user(UserName=user)
