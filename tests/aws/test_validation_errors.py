"""Input that breaks a model constraint gets each service's own validation error, in its
protocol's envelope, from a live server — one case per served service and protocol.

botocore serializes the request (its own client-side validation off, as a client with
``parameter_validation=False`` sends it), SigV4 signs it for the service, and both the raw
envelope and what botocore's parser reads are checked.
"""

from __future__ import annotations

import cbor2
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, prepare_request_dict
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from corral.aws import models

ROLE_POLICY = '{"Version":"2012-10-17","Statement":[]}'
ROLE_ARN = "arn:aws:iam::000000000000:role/r"

# (service, protocol, operation, params, the member breaking a constraint, expected code)
CASES = [
    ("ecr", "json", "DescribeRepositories", {"maxResults": 0}, "maxResults",
     "InvalidParameterException"),
    ("ecs", "json", "DescribeTaskDefinition", {}, "taskDefinition", "InvalidParameterException"),
    ("logs", "json", "CreateLogGroup", {"logGroupName": "bad name!"}, "logGroupName",
     "InvalidParameterException"),
    ("inspector2", "rest-json", "ListFindings", {"maxResults": 0}, "maxResults",
     "ValidationException"),
    ("iam", "query", "CreateRole", {"RoleName": "rôle", "AssumeRolePolicyDocument": ROLE_POLICY},
     "RoleName", "ValidationError"),
    ("sts", "query", "AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1",
                                    "DurationSeconds": 899}, "DurationSeconds", "ValidationError"),
    ("elbv2", "query", "DescribeLoadBalancers", {"PageSize": 0}, "PageSize", "ValidationError"),
    *[("cloudwatch", p, "DescribeAlarms", {"MaxRecords": 0}, "MaxRecords", "ValidationError")
      for p in ("smithy-rpc-v2-cbor", "json", "query")],
]


def _request(server, service: str, protocol: str, op_name: str, params: dict) -> requests.Response:
    spec = models.service(service)
    op = spec.model.operation_model(op_name)
    request_dict = create_serializer(protocol, include_validation=False).serialize_to_request(params, op)
    prepare_request_dict(request_dict, server.endpoint)
    req = AWSRequest(method=request_dict["method"], url=request_dict["url"],
                     data=request_dict["body"], headers=dict(request_dict["headers"]))
    SigV4Auth(Credentials("test", "test"), spec.signing_name, "us-east-1").add_auth(req)
    prepared = req.prepare()
    return requests.request(prepared.method, prepared.url, data=prepared.body,
                            headers=dict(prepared.headers), timeout=10)


def _envelope_code(protocol: str, r: requests.Response) -> str:
    """The code as it stands on the wire, before any client reads it."""
    if protocol == "query":
        assert r.text.startswith("<ErrorResponse"), r.text
        return r.text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    if protocol == "rest-json":
        return r.headers["x-amzn-errortype"].split(":", 1)[0]
    body = cbor2.loads(r.content) if protocol == "smithy-rpc-v2-cbor" else r.json()
    return body["__type"].rsplit("#", 1)[-1]


@pytest.mark.parametrize("service,protocol,op_name,params,member,code", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_validation_error_code_and_envelope(server, service, protocol, op_name, params, member,
                                            code):
    r = _request(server, service, protocol, op_name, params)
    assert r.status_code == 400, r.text
    assert _envelope_code(protocol, r) == code
    op = models.service(service).model.operation_model(op_name)
    parsed = create_parser(protocol).parse(
        {"status_code": r.status_code, "headers": r.headers, "body": r.content}, op.output_shape)
    assert parsed["Error"]["Code"] == code
    assert f"at '{member}' failed to satisfy constraint" in parsed["Error"]["Message"]
    if protocol != "query" and "awsQueryCompatible" in models.service(service).model.metadata:
        assert r.headers["x-amzn-query-error"] == f"{code};Sender"
