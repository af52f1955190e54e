"""PutLogEvents' documented rules, and the Logs API's answers to bad input, against the real
server [BC PutLogEvents]: every case answers the Logs error code with AWS's text, never a 500,
and a refused batch stores nothing.

The client skips botocore's own parameter validation, so the server's is what answers (the
aws CLI and SDKs without validation send such requests as they are).
"""

from __future__ import annotations

import time
import urllib.request

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from corral.logs import batch_rules
from tests.server import ROOT_KEY, ROOT_SECRET

GROUP, STREAM, RETAINED = "/rules/g", "s", "/rules/retained"
H, D = 3_600_000, 86_400_000
MB = 1_048_576


@pytest.fixture(scope="module")
def logs(server):
    client = boto3.client("logs", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
                          config=Config(parameter_validation=False,
                                        retries={"total_max_attempts": 1}))
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    client.create_log_group(logGroupName=RETAINED)
    client.put_retention_policy(logGroupName=RETAINED, retentionInDays=1)
    yield client
    client.delete_log_group(logGroupName=GROUP)
    client.delete_log_group(logGroupName=RETAINED)


def now_ms() -> int:
    return int(time.time() * 1000)


def ev(offset_ms: int = 0, message: str = "m") -> dict:
    return {"timestamp": now_ms() + offset_ms, "message": message}


def sized(total: int, count: int) -> list[dict]:
    """``count`` events whose PutLogEvents size (UTF-8 message + 26 each) is ``total``."""
    base, extra = divmod(total - 26 * count, count)
    t = now_ms()
    return [{"timestamp": t, "message": "x" * (base + (1 if i < extra else 0))}
            for i in range(count)]


def error_of(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    err = e.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def put(events, group=GROUP, stream=STREAM, **extra) -> dict:
    return {"logGroupName": group, "logStreamName": stream, "logEvents": events, **extra}


def stored(logs, group: str, stream: str) -> list[str]:
    """Every message of the stream, oldest first: forward pages until the token repeats."""
    out, token, messages = None, None, []
    while out is None or out["nextForwardToken"] != token:
        token = out["nextForwardToken"] if out else None
        out = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True,
                                  **({"nextToken": token} if token else {}))
        messages += [e["message"] for e in out["events"]]
    return messages


IPE = "InvalidParameterException"
VALIDATION = "1 validation error detected: "

# (id, operation, kwargs builder, code, message: exact, or a prefix when it ends with "…")
BAD_PUTS = [
    ("out_of_order", lambda: put([ev(5), ev(0)]), IPE, batch_rules.OUT_OF_ORDER),
    ("out_of_order_after_equal_stamps", lambda: put([ev(1), ev(1), ev(0)]), IPE,
     batch_rules.OUT_OF_ORDER),
    ("span_over_24h", lambda: put([ev(-D - 1), ev(0)]), IPE, batch_rules.SPAN),
    ("span_over_24h_ahead", lambda: put([ev(-D + H // 2), ev(H + 1)]), IPE, batch_rules.SPAN),
    ("more_than_10000_events", lambda: put([ev(0)] * 10_001), IPE,
     VALIDATION + "Value …"),
    ("batch_one_byte_over_1mb", lambda: put(sized(MB + 1, 16)), IPE,
     f"Upload too large: {MB + 1} bytes exceeds limit of {MB}"),
    ("batch_over_1mb_counting_26_per_event", lambda: put(sized(MB + 26, 10_000)), IPE,
     f"Upload too large: {MB + 26} bytes exceeds limit of {MB}"),
    ("multibyte_utf8_counts_bytes", lambda: put(
        [{"timestamp": now_ms(), "message": "é" * ((MB - 26) // 2 + 1)}]), IPE,
     f"Log event too large: {2 * ((MB - 26) // 2 + 1) + 26} bytes exceeds limit of {MB}"),
    ("one_event_over_1mb", lambda: put([ev(0, "x" * (MB - 25))]), IPE,
     f"Log event too large: {MB + 1} bytes exceeds limit of {MB}"),
    ("empty_batch", lambda: put([]), IPE,
     VALIDATION + "Value '[]' at 'logEvents' failed to satisfy constraint: Member must have "
     "length greater than or equal to 1"),
    ("empty_message", lambda: put([ev(0, "")]), IPE, VALIDATION + "Value '' at …"),
    ("negative_timestamp", lambda: put([{"timestamp": -1, "message": "m"}]), IPE,
     VALIDATION + "Value '-1' at …"),
    ("no_events_member", lambda: {"logGroupName": GROUP, "logStreamName": STREAM}, IPE,
     VALIDATION + "Value null at 'logEvents' failed to satisfy constraint: Member must not "
     "be null"),
    ("unknown_group", lambda: put([ev(0)], group="/rules/nope"), "ResourceNotFoundException",
     "The specified log group does not exist."),
    ("unknown_stream", lambda: put([ev(0)], stream="nope"), "ResourceNotFoundException",
     "The specified log stream does not exist."),
    ("group_name_pattern", lambda: put([ev(0)], group="bad name"), IPE,
     VALIDATION + "Value 'bad name' at 'logGroupName' failed to satisfy constraint: Member "
     "must satisfy regular expression pattern: …"),
    ("stream_name_with_colon", lambda: put([ev(0)], stream="a:b"), IPE, VALIDATION + "…"),
    ("group_name_too_long", lambda: put([ev(0)], group="g" * 513), IPE, VALIDATION + "…"),
]


@pytest.mark.parametrize("build,code,message", [c[1:] for c in BAD_PUTS],
                         ids=[c[0] for c in BAD_PUTS])
def test_bad_batches_are_refused_whole(logs, build, code, message):
    before = len(stored(logs, GROUP, STREAM))
    got = error_of(logs.put_log_events, **build())
    assert got[0] == code and got[2] == 400
    assert got[1].startswith(message[:-1]) if message.endswith("…") else got[1] == message
    assert len(stored(logs, GROUP, STREAM)) == before  # nothing half-written


# Other Logs operations: bounds and AWS's texts (id, operation, kwargs, code, message).
BAD_CALLS = [
    ("get_limit_0", "get_log_events", {"logGroupName": GROUP, "logStreamName": STREAM,
                                       "limit": 0}, IPE, VALIDATION + "Value '0' at 'limit' …"),
    ("get_limit_10001", "get_log_events", {"logGroupName": GROUP, "logStreamName": STREAM,
                                           "limit": 10_001}, IPE, VALIDATION + "…"),
    ("get_foreign_token", "get_log_events", {"logGroupName": GROUP, "logStreamName": STREAM,
                                             "nextToken": "f/" + "1" * 56 + "/s"}, IPE,
     "The specified nextToken is invalid."),
    ("get_garbage_token", "get_log_events", {"logGroupName": GROUP, "logStreamName": STREAM,
                                             "nextToken": "nope"}, IPE,
     "The specified nextToken is invalid."),
    ("get_name_and_identifier", "get_log_events", {
        "logGroupName": GROUP, "logGroupIdentifier": GROUP, "logStreamName": STREAM}, IPE,
     "LogGroup name and LogGroup ARN are mutually exclusive parameters."),
    ("get_unknown_stream", "get_log_events", {"logGroupName": GROUP, "logStreamName": "x"},
     "ResourceNotFoundException", "The specified log stream does not exist."),
    ("streams_limit_51", "describe_log_streams", {"logGroupName": GROUP, "limit": 51}, IPE,
     VALIDATION + "Value '51' at 'limit' …"),
    ("streams_prefix_with_last_event_time", "describe_log_streams", {
        "logGroupName": GROUP, "orderBy": "LastEventTime", "logStreamNamePrefix": "s"}, IPE,
     "Cannot order by LastEventTime with a logStreamNamePrefix."),
    ("streams_bad_order", "describe_log_streams", {"logGroupName": GROUP, "orderBy": "Size"},
     IPE, VALIDATION + "…"),
    ("streams_unknown_group", "describe_log_streams", {"logGroupName": "/rules/nope"},
     "ResourceNotFoundException", "The specified log group does not exist."),
    ("groups_prefix_and_pattern", "describe_log_groups", {
        "logGroupNamePrefix": "/a", "logGroupNamePattern": "a"}, IPE,
     "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."),
    ("groups_limit_0", "describe_log_groups", {"limit": 0}, IPE, VALIDATION + "…"),
    ("groups_bad_class", "create_log_group", {"logGroupName": "/rules/c",
                                              "logGroupClass": "COLD"}, IPE, VALIDATION + "…"),
    ("retention_2_days", "put_retention_policy", {"logGroupName": GROUP,
                                                  "retentionInDays": 2}, IPE,
     VALIDATION + "Value '2' at 'retentionInDays' failed to satisfy constraint: Member must "
     "satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, "
     "1096, 1827, 2192, 2557, 2922, 3288, 3653]"),
    ("group_exists", "create_log_group", {"logGroupName": GROUP},
     "ResourceAlreadyExistsException", "The specified log group already exists"),
    ("stream_exists", "create_log_stream", {"logGroupName": GROUP, "logStreamName": STREAM},
     "ResourceAlreadyExistsException", "The specified log stream already exists"),
    ("delete_unknown_group", "delete_log_group", {"logGroupName": "/rules/nope"},
     "ResourceNotFoundException", "The specified log group does not exist."),
    ("metric_filter_bad_pattern", "put_metric_filter", {
        "logGroupName": GROUP, "filterName": "f", "filterPattern": '{ $.a = }',
        "metricTransformations": [{"metricName": "m", "metricNamespace": "n",
                                   "metricValue": "1"}]}, IPE, "Invalid filter pattern…"),
    ("untag_unknown_arn", "untag_resource", {
        "resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:/rules/nope",
        "tagKeys": ["k"]}, "ResourceNotFoundException", "The specified log group does not "
     "exist."),
]


@pytest.mark.parametrize("op,kwargs,code,message", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_calls_answer_aws_errors(logs, op, kwargs, code, message):
    got = error_of(getattr(logs, op), **kwargs)
    assert got[0] == code and got[2] == 400
    assert got[1].startswith(message[:-1]) if message.endswith("…") else got[1] == message


# (id, event offsets from now in ms, retained group?, rejectedLogEventsInfo, kept indexes)
PARTLY_REJECTED = [
    ("too_old", [-15 * D, -15 * D + 1, 0], False, {"tooOldLogEventEndIndex": 2}, [2]),
    ("too_new", [0, 1, 2 * H + 60_000], False, {"tooNewLogEventStartIndex": 2}, [0, 1]),
    ("too_old_and_too_new", [-15 * D, 0, 3 * H], False,
     {"tooOldLogEventEndIndex": 1, "tooNewLogEventStartIndex": 2}, [1]),
    ("all_too_old", [-20 * D, -19 * D], False, {"tooOldLogEventEndIndex": 2}, []),
    ("expired_by_retention", [-2 * D, -D - 60_000, 0], True, {"expiredLogEventEndIndex": 2},
     [2]),
    # The 24-hour span counts the events kept, not those left out [BC PutLogEvents].
    ("span_ignores_rejected", [-15 * D, -H, 0], False, {"tooOldLogEventEndIndex": 1}, [1, 2]),
]


@pytest.mark.parametrize("offsets,retained,info,kept", [c[1:] for c in PARTLY_REJECTED],
                         ids=[c[0] for c in PARTLY_REJECTED])
def test_too_old_and_too_new_events_are_left_out_and_reported(logs, request, offsets,
                                                              retained, info, kept):
    group = RETAINED if retained else GROUP
    stream = request.node.callspec.id
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    t = now_ms()
    out = logs.put_log_events(**put([{"timestamp": t + o, "message": f"e{i}"}
                                     for i, o in enumerate(offsets)], group, stream))
    assert out.get("rejectedLogEventsInfo") == info
    assert len(out["nextSequenceToken"]) == 56
    assert stored(logs, group, stream) == [f"e{i}" for i in kept]


def test_exactly_1mb_and_exactly_24_hours_are_accepted(logs):
    logs.create_log_stream(logGroupName=GROUP, logStreamName="edges")
    logs.put_log_events(**put(sized(MB, 16), stream="edges"))
    logs.put_log_events(**put(sized(MB, 10_000), stream="edges"))
    t = now_ms()
    logs.put_log_events(**put([{"timestamp": t - D, "message": "a"},
                               {"timestamp": t, "message": "b"}], stream="edges"))
    messages = stored(logs, GROUP, "edges")
    assert len(messages) == 16 + 10_000 + 2
    assert (messages[0], messages[-1]) == ("a", "b")  # 24 h apart, both kept


def test_sequence_tokens_are_accepted_and_ignored(logs):
    logs.create_log_stream(logGroupName=GROUP, logStreamName="tokens")
    first = logs.put_log_events(**put([ev(0, "one")], stream="tokens"))
    logs.put_log_events(**put([ev(0, "two")], stream="tokens", sequenceToken="bogus"))
    logs.put_log_events(**put([ev(0, "three")], stream="tokens",
                              sequenceToken=first["nextSequenceToken"]))
    assert stored(logs, GROUP, "tokens") == ["one", "two", "three"]


def test_invalid_utf8_body_is_a_serialization_error_not_a_500(server, logs):
    body = (b'{"logGroupName":"/rules/g","logStreamName":"s","logEvents":'
            b'[{"timestamp":1,"message":"\xff\xfe"}]}')
    req = AWSRequest("POST", server.endpoint + "/", data=body, headers={
        "X-Amz-Target": "Logs_20140328.PutLogEvents",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "logs", "us-east-1").add_auth(req)
    prepared = req.prepare()
    http = urllib.request.Request(prepared.url, data=body, method="POST",
                                  headers=dict(prepared.headers))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(http, timeout=10)
    assert e.value.code == 400
    assert e.value.headers["x-amzn-ErrorType"] == "SerializationException"
