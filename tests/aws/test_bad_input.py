"""Bad input gets the AWS error code and a 4xx — never a 500 or a traceback."""

from __future__ import annotations

import cbor2
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.aws.test_authentication import send, signed_request

ECR = "AmazonEC2ContainerRegistry_V20150921."

# (id, target operation, raw JSON body, expected status, expected __type, message fragment)
JSON_CASES = [
    ("malformed-json", "DescribeRepositories", b'{"maxResults": ', 400,
     "SerializationException", "not valid JSON"),
    ("json-array-body", "DescribeRepositories", b"[1,2]", 400, "SerializationException", ""),
    ("unknown-operation", "MakeCoffee", b"{}", 400, "UnknownOperationException", "MakeCoffee"),
    ("missing-required-member", "CreateRepository", b"{}", 400, "InvalidParameterException",
     "'repositoryName'"),
    ("wrong-type-string-for-int", "DescribeRepositories", b'{"maxResults": "ten"}', 400,
     "SerializationException", "maxResults"),
    ("wrong-type-int-for-string", "CreateRepository", b'{"repositoryName": 42}', 400,
     "SerializationException", "repositoryName"),
    ("wrong-type-list-for-struct", "CreateRepository",
     b'{"repositoryName": "ab", "imageScanningConfiguration": []}', 400,
     "SerializationException", "imageScanningConfiguration"),
    ("out-of-range-high", "DescribeRepositories", b'{"maxResults": 1001}', 400,
     "InvalidParameterException", "less than or equal to 1000"),
    ("out-of-range-low", "DescribeRepositories", b'{"maxResults": 0}', 400,
     "InvalidParameterException", "greater than or equal to 1"),
    ("enum-miss", "CreateRepository", b'{"repositoryName": "ab", "imageTagMutability": "SOMETIMES"}',
     400, "InvalidParameterException", "enum value set"),
    ("pattern-miss", "DescribeRepositories", b'{"registryId": "12"}', 400,
     "InvalidParameterException", "regular expression"),
    ("list-too-long", "DescribeRepositories",
     b'{"repositoryNames": [' + b",".join(b'"r%d"' % i for i in range(101)) + b"]}", 400,
     "InvalidParameterException", "length less than or equal to 100"),
    ("not-utf8", "DescribeRepositories", b'{"registryId": "\xff\xfe"}', 400,
     "SerializationException", ""),
]


@pytest.mark.parametrize("case", JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json_protocol_bad_input(server, case):
    _, op, body, status, code, fragment = case
    r = send(signed_request(server, body=body, target=ECR + op))
    assert r.status_code == status, r.text
    assert r.json()["__type"] == code
    assert fragment in r.json()["message"]


QUERY_CASES = [
    ("missing-action", "Version=2011-06-15", "MissingAction"),
    ("unknown-action", "Action=Teleport&Version=2011-06-15", "InvalidAction"),
    ("bad-integer", "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=soon",
     "ValidationError"),
]


@pytest.mark.parametrize("case", QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_query_protocol_bad_input(server, case):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    _, body, code = case
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body.encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials("test", "test"), "sts", "us-east-1").add_auth(req)
    r = send(req)
    assert r.status_code == 400, r.text
    assert f"<Code>{code}</Code>" in r.text
    assert r.text.startswith("<ErrorResponse")


def test_cbor_protocol_bad_body(server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST",
                     url=server.endpoint + "/service/GraniteServiceVersion20100801/operation/ListMetrics",
                     data=b"\xff\x00garbage", headers={"Content-Type": "application/cbor",
                                                       "smithy-protocol": "rpc-v2-cbor"})
    SigV4Auth(Credentials("test", "test"), "monitoring", "us-east-1").add_auth(req)
    r = send(req)
    assert r.status_code == 400
    assert cbor2.loads(r.content)["__type"] == "SerializationException"


def test_rest_json_unknown_route(server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=server.endpoint + "/no/such/route", data=b"{}",
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("test", "test"), "inspector2", "us-east-1").add_auth(req)
    r = send(req)
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "UnknownOperationException"


# --- fuzz: garbage bodies and headers never crash the server ---------------------------------

TARGETS = [ECR + op for op in ("CreateRepository", "DescribeRepositories", "TagResource",
                               "DeleteRepository", "ListTagsForResource", "Nope")]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
members = st.sampled_from(["repositoryName", "registryId", "maxResults", "nextToken", "tags",
                           "resourceArn", "tagKeys", "force", "repositoryNames",
                           "imageScanningConfiguration", "encryptionConfiguration"])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(TARGETS),
       doc=st.dictionaries(members, json_values, max_size=5) | st.binary(max_size=64))
def test_fuzzed_signed_bodies_get_4xx_or_success(server, target, doc):
    import json

    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    r = send(signed_request(server, body=body, target=target))
    assert r.status_code < 500 or r.status_code == 501, r.text
    if r.status_code >= 400:
        assert "__type" in r.json()


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(headers=st.dictionaries(
    st.sampled_from(["Authorization", "X-Amz-Date", "X-Amz-Target", "Content-Type",
                     "X-Amz-Security-Token", "smithy-protocol", "X-Amz-Content-Sha256"]),
    # requests itself refuses values with leading or trailing whitespace
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(str.strip),
    max_size=5),
    path=st.sampled_from(["/", "/service/x/operation/y", "/findings/list", "/v3/x"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_fuzzed_unsigned_headers_get_4xx(server, headers, path, method):
    r = requests.request(method, server.endpoint + path, headers=headers, data=b"{}", timeout=10)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)


def test_server_is_still_healthy_after_the_fuzz(server):
    assert server.health()["status"] == "running"
    assert server.client("sts").get_caller_identity()["Account"] == "000000000000"
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
