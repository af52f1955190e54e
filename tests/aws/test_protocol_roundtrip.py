"""The protocol layer against botocore's own serializers and parsers (DESIGN: real clients judge).

- requests: botocore serializes params the way a client sends them; our protocol must find the
  same operation and parse back exactly those params (and hand-made nulls in dense lists and
  maps are a SerializationException);
- responses: our protocol serializes a result; botocore's parser must read back exactly it, with
  no warning logged;
- errors: botocore must read our error responses as the right code, message and status;
- validation: each broken constraint yields AWS's exact message.

Greedy URI labels, header members and literal query routes have no operation in Inspector2, and
flattened or renamed query lists and maps none in IAM or STS, so two small models of our own
(``synth``: REST-JSON, ``synthq``: query) cover them through the same code paths.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import warnings
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import cbor2
import pytest
from botocore.awsrequest import HeadersDict, create_request_object, prepare_request_dict
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import create_parser
from botocore.response import StreamingBody
from botocore.serialize import create_serializer

from corral.aws import models, validate
from corral.aws.errors import AwsError, InternalFailure, SerializationException, error_class
from corral.aws.models import ServiceSpec
from corral.aws.protocols import PROTOCOLS, HttpRequest, HttpResponse

ENDPOINT = "http://localhost:4566"
REQUEST_ID = "c0ffee00-1234-4abc-8def-000000000001"
ACCOUNT = "123456789012"
T0 = datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)
T1 = datetime(2024, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))  # not UTC on purpose
T_MS = datetime(2024, 3, 1, 12, 0, 0, 125000, tzinfo=UTC)  # millisecond precision
REPO_ARN = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-role/deployer"
POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}'
UNICODE = "héllo wörld — 日本語 ✓ 🚀 & a=b+c%20"
DIGEST = "sha256:" + "ab" * 32
MANIFEST = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"note":"ünïcødé ✓"}}'

# --- a small REST-JSON model for what Inspector2 does not use ------------------------------

_NAME = {"shape": "Name", "location": "uri", "locationName": "Bucket"}
_KEY = {"shape": "Key", "location": "uri", "locationName": "Key"}
SYNTH_MODEL = {
    "version": "2.0",
    "metadata": {
        "apiVersion": "2024-01-01", "endpointPrefix": "synth", "protocol": "rest-json",
        "protocols": ["rest-json"], "serviceId": "Synth", "signatureVersion": "v4",
        "uid": "synth-2024-01-01",
    },
    "operations": {
        "GetObject": {
            "name": "GetObject", "http": {"method": "GET", "requestUri": "/buckets/{Bucket}/objects/{Key+}"},
            "input": {"shape": "GetObjectRequest"}, "output": {"shape": "GetObjectResponse"},
        },
        "PutObject": {
            "name": "PutObject",
            "http": {"method": "PUT", "requestUri": "/buckets/{Bucket}/objects/{Key+}", "responseCode": 201},
            "input": {"shape": "PutObjectRequest"}, "output": {"shape": "PutObjectResponse"},
        },
        "ListObjects": {
            "name": "ListObjects", "http": {"method": "GET", "requestUri": "/buckets/{Bucket}?list-type=2"},
            "input": {"shape": "BucketRequest"}, "output": {"shape": "PutObjectResponse"},
        },
        "GetBucket": {
            "name": "GetBucket", "http": {"method": "GET", "requestUri": "/buckets/{Bucket}"},
            "input": {"shape": "BucketRequest"}, "output": {"shape": "PutObjectResponse"},
        },
    },
    "shapes": {
        "GetObjectRequest": {"type": "structure", "required": ["Bucket", "Key"], "members": {
            "Bucket": _NAME,
            "Key": _KEY,
            "MaxItems": {"shape": "Count", "location": "querystring", "locationName": "max-items"},
            "Tags": {"shape": "Names", "location": "querystring", "locationName": "tag"},
            "Since": {"shape": "Time", "location": "querystring", "locationName": "since"},
            "Verbose": {"shape": "Flag", "location": "querystring", "locationName": "verbose"},
            "IfModifiedSince": {"shape": "Time", "location": "header", "locationName": "If-Modified-Since"},
            "Owner": {"shape": "Name", "location": "header", "locationName": "x-synth-owner"},
            "Retries": {"shape": "Count", "location": "header", "locationName": "x-synth-retries"},
        }},
        "GetObjectResponse": {"type": "structure", "payload": "Body", "members": {
            "Body": {"shape": "Data"},
            "LastModified": {"shape": "Time", "location": "header", "locationName": "Last-Modified"},
            "ETag": {"shape": "Name", "location": "header", "locationName": "ETag"},
            "Size": {"shape": "Count", "location": "header", "locationName": "x-synth-size"},
            "Archived": {"shape": "Flag", "location": "header", "locationName": "x-synth-archived"},
        }},
        "PutObjectRequest": {"type": "structure", "required": ["Bucket", "Key"], "payload": "Body", "members": {
            "Bucket": _NAME,
            "Key": _KEY,
            "Body": {"shape": "Data"},
            "ContentType": {"shape": "Name", "location": "header", "locationName": "Content-Type"},
        }},
        "PutObjectResponse": {"type": "structure", "members": {
            "ETag": {"shape": "Name", "location": "header", "locationName": "ETag"},
            "Created": {"shape": "Time"},
            "Keys": {"shape": "Names"},
        }},
        "BucketRequest": {"type": "structure", "required": ["Bucket"], "members": {"Bucket": _NAME}},
        "Name": {"type": "string"},
        "Key": {"type": "string", "min": 1},
        "Names": {"type": "list", "member": {"shape": "Name"}},
        "Count": {"type": "integer"},
        "Flag": {"type": "boolean"},
        "Time": {"type": "timestamp"},
        "Data": {"type": "blob"},
    },
}
SYNTH = ServiceSpec(
    name="synth", model=ServiceModel(SYNTH_MODEL, "synth"), signing_name="synth",
    iam_prefix="synth", protocols=("rest-json",), target_prefix=None,
)

# ... and a small query model for the XML/form features IAM and STS do not use (flattened
# lists and maps, renamed list members and map keys), as SQS and SNS do.
_ECHO_MEMBERS = {
    "FlatList": {"shape": "FlatNames"},
    "FlatMap": {"shape": "FlatMap"},
    "NamedList": {"shape": "NamedNames"},
    "Renamed": {"shape": "Text", "locationName": "renamed-member"},
    "Data": {"shape": "Data"},
    "When": {"shape": "Time"},
    "Ratio": {"shape": "Ratio"},
    "On": {"shape": "Flag"},
    "Nested": {"shape": "Nested"},
}
SYNTHQ_MODEL = {
    "version": "2.0",
    "metadata": {
        "apiVersion": "2024-01-01", "endpointPrefix": "synthq", "protocol": "query",
        "protocols": ["query"], "serviceId": "SynthQ", "signatureVersion": "v4",
        "uid": "synthq-2024-01-01", "xmlNamespace": "https://synthq.example.com/doc/2024-01-01/",
    },
    "operations": {"Echo": {
        "name": "Echo", "http": {"method": "POST", "requestUri": "/"},
        "input": {"shape": "EchoRequest"},
        "output": {"shape": "EchoResponse", "resultWrapper": "EchoResult"},
    }},
    "shapes": {
        "EchoRequest": {"type": "structure", "members": _ECHO_MEMBERS},
        "EchoResponse": {"type": "structure", "members": _ECHO_MEMBERS},
        "Nested": {"type": "structure", "members": {"Inner": {"shape": "FlatNames"},
                                                    "Pairs": {"shape": "FlatMap"}}},
        "FlatNames": {"type": "list", "member": {"shape": "Text", "locationName": "Item"},
                      "flattened": True},
        "FlatMap": {"type": "map", "key": {"shape": "Text", "locationName": "Name"},
                    "value": {"shape": "Text", "locationName": "Value"}, "flattened": True},
        "NamedNames": {"type": "list", "member": {"shape": "Text", "locationName": "Entry"}},
        "Text": {"type": "string"},
        "Data": {"type": "blob"},
        "Time": {"type": "timestamp"},
        "Ratio": {"type": "double"},
        "Flag": {"type": "boolean"},
    },
}
SYNTHQ = ServiceSpec(
    name="synthq", model=ServiceModel(SYNTHQ_MODEL, "synthq"), signing_name="synthq",
    iam_prefix="synthq", protocols=("query",), target_prefix=None,
)
_ECHO = {
    "FlatList": ["a", "b c", UNICODE], "FlatMap": {"k1": "v1", "k&2": "v=2"},
    "NamedList": ["x", "y"], "Renamed": "renamed", "Data": b"\x00\xff\x10", "When": T_MS,
    "Ratio": 0.1, "On": False, "Nested": {"Inner": ["i1", "i2"], "Pairs": {"p": "q"}},
}


def spec(service: str) -> ServiceSpec:
    return {"synth": SYNTH, "synthq": SYNTHQ}.get(service) or models.service(service)


def operation(service: str, name: str) -> OperationModel:
    op = spec(service).operation(name)
    assert op is not None, f"{service} has no operation {name}"
    return op


# --- helpers ---------------------------------------------------------------------------------


def normal(value: Any) -> Any:
    """Comparable form: datetimes as aware UTC (botocore takes naive as UTC), bytearrays as
    bytes, NaN as a marker."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"  # NaN != NaN
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def botocore_request(protocol: str, op: OperationModel, params: dict[str, Any],
                     precision: str = "default") -> HttpRequest:
    """The HTTP request a botocore client sends: serialize (with its param validation), then
    prepare it exactly as the endpoint does (query dicts and form bodies url-encoded)."""
    serializer = create_serializer(protocol, timestamp_precision=precision)
    request_dict = serializer.serialize_to_request(params, op)
    prepare_request_dict(request_dict, ENDPOINT)
    prepared = create_request_object(request_dict).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = [(k.lower(), v) for k, v in prepared.headers.items()]
    return HttpRequest(prepared.method, url.path, url.query, headers, bytes(body))


def botocore_parse(protocol: str, op: OperationModel, response: HttpResponse) -> dict[str, Any]:
    """What a botocore client reads: like its endpoint, a blob payload arrives as a stream."""
    body: Any = response.body
    streaming = response.status < 300 and op.has_streaming_output
    if streaming:
        body = StreamingBody(io.BytesIO(response.body), len(response.body))
    wire = {"status_code": response.status, "headers": HeadersDict(response.headers), "body": body}
    parsed = create_parser(protocol).parse(wire, op.output_shape)
    if streaming:
        payload = op.output_shape.serialization["payload"]
        parsed[payload] = parsed[payload].read()
    return parsed


# --- 1. requests: botocore serializes, we parse ------------------------------------------------


def req(service: str, protocol: str, op: str, params: dict[str, Any], id: str):
    return pytest.param(service, protocol, op, params, id=id)


REQUESTS = [
    # AWS JSON 1.1
    req("ecr", "json", "CreateRepository", {
        "repositoryName": "team/app-1", "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfiguration": {"encryptionType": "AES256"},
        "tags": [{"Key": "owner", "Value": UNICODE}, {"Key": "empty", "Value": ""}],
    }, id="ecr-CreateRepository-nested-bool-unicode"),
    req("ecr", "json", "BatchGetImage", {
        "registryId": ACCOUNT, "repositoryName": "team/app",
        "imageIds": [{"imageTag": "v1.2.3"}, {"imageDigest": DIGEST}],
        "acceptedMediaTypes": ["application/vnd.oci.image.manifest.v1+json"],
    }, id="ecr-BatchGetImage-list-of-structs"),
    req("ecr", "json", "PutImage", {
        "repositoryName": "team/app", "imageManifest": MANIFEST, "imageTag": "latest",
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
    }, id="ecr-PutImage-unicode-json-in-string"),
    req("ecr", "json", "UploadLayerPart", {
        "repositoryName": "team/app", "uploadId": "0c6e2a16-3b7f-4d2e-9a53-1f0f4b7c8d9e",
        "partFirstByte": 0, "partLastByte": 2**33, "layerPartBlob": bytes(range(256)) * 3,
    }, id="ecr-UploadLayerPart-blob-long"),
    req("ecr", "json", "UploadLayerPart", {
        "repositoryName": "team/app", "uploadId": "0c6e2a16-3b7f-4d2e-9a53-1f0f4b7c8d9e",
        "partFirstByte": 0, "partLastByte": 0, "layerPartBlob": b"",
    }, id="ecr-UploadLayerPart-empty-blob"),
    req("ecr", "json", "DescribeImages", {
        "repositoryName": "team/app", "filter": {"tagStatus": "TAGGED"},
        "maxResults": 1000,
    }, id="ecr-DescribeImages-filter-int"),
    req("ecs", "json", "RegisterTaskDefinition", {
        "family": "web", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "executionRoleArn": ROLE_ARN, "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{
            "name": "app", "image": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/team/app:1",
            "cpu": 128, "memory": 256, "essential": True,
            "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
            "environment": [{"name": "GREETING", "value": UNICODE}],
            "entryPoint": ["sh", "-c"], "command": [],
            "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                            "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0},
            "logConfiguration": {"logDriver": "awslogs",
                                 "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1"}},
            "dockerLabels": {"com.example.team": "platform", "empty": ""},
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
        }, {"name": "sidecar", "image": "busybox", "essential": False, "dependsOn": [
            {"containerName": "app", "condition": "HEALTHY"}]}],
        "tags": [{"key": "env", "value": "test"}],
    }, id="ecs-RegisterTaskDefinition-deep"),
    req("ecs", "json", "CreateService", {
        "cluster": "default", "serviceName": "web", "taskDefinition": "web:3", "desiredCount": 2,
        "launchType": "FARGATE", "enableExecuteCommand": False,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200, "minimumHealthyPercent": 100,
        },
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-1", "subnet-2"], "securityGroups": [], "assignPublicIp": "DISABLED"}},
    }, id="ecs-CreateService-bools-false"),
    req("logs", "json", "PutLogEvents", {
        "logGroupName": "/ecs/web", "logStreamName": "app/web/0123",
        "logEvents": [{"timestamp": 1709251198000, "message": UNICODE},
                      {"timestamp": 1709251198001, "message": 'line with "quotes"\n\ttab'}],
    }, id="logs-PutLogEvents-unicode-longs"),
    req("logs", "json", "FilterLogEvents", {
        "logGroupName": "/ecs/web", "logStreamNames": ["a", "b"], "startTime": 0,
        "endTime": 2**53, "filterPattern": "[ip, user, ...]", "limit": 50, "interleaved": True,
    }, id="logs-FilterLogEvents-big-long"),
    req("logs", "json", "PutRetentionPolicy", {"logGroupName": "/ecs/web", "retentionInDays": 14},
        id="logs-PutRetentionPolicy-int"),
    # REST-JSON (Inspector2): labels, query strings, JSON bodies
    req("inspector2", "rest-json", "ListTagsForResource", {"resourceArn": REPO_ARN},
        id="inspector2-ListTagsForResource-arn-label"),
    req("inspector2", "rest-json", "ListTagsForResource",
        {"resourceArn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/ünï cødé+%2F"},
        id="inspector2-ListTagsForResource-label-unicode-percent"),
    req("inspector2", "rest-json", "TagResource", {
        "resourceArn": REPO_ARN, "tags": {"team": "platform", "note": UNICODE, "empty": ""},
    }, id="inspector2-TagResource-label-and-map"),
    req("inspector2", "rest-json", "UntagResource", {"resourceArn": REPO_ARN, "tagKeys": ["team", "a:b/c"]},
        id="inspector2-UntagResource-querystring-list"),
    req("inspector2", "rest-json", "UntagResource", {"resourceArn": REPO_ARN, "tagKeys": ["team"]},
        id="inspector2-UntagResource-querystring-single"),
    req("inspector2", "rest-json", "GetEncryptionKey",
        {"scanType": "PACKAGE", "resourceType": "AWS_ECR_CONTAINER_IMAGE"},
        id="inspector2-GetEncryptionKey-querystring-GET"),
    req("inspector2", "rest-json", "ListCodeSecurityIntegrations", {"maxResults": 25, "nextToken": "a b/c+d=="},
        id="inspector2-ListCodeSecurityIntegrations-querystring-int"),
    req("inspector2", "rest-json", "ListFindings", {
        "maxResults": 100, "nextToken": "tok",
        "filterCriteria": {
            "severity": [{"comparison": "EQUALS", "value": "CRITICAL"}, {"comparison": "EQUALS", "value": "HIGH"}],
            "ecrImageRepositoryName": [{"comparison": "PREFIX", "value": "team/"}],
            "firstObservedAt": [{"startInclusive": T0, "endInclusive": T1}],
            "inspectorScore": [{"lowerInclusive": 7.5, "upperInclusive": 10}],
            "ecrImageTags": [{"comparison": "EQUALS", "value": UNICODE}],
        },
        "sortCriteria": {"field": "SEVERITY", "sortOrder": "DESC"},
    }, id="inspector2-ListFindings-filterCriteria-timestamps"),
    req("inspector2", "rest-json", "UpdateFilter", {
        "filterArn": f"arn:aws:inspector2:us-east-1:{ACCOUNT}:owner/{ACCOUNT}/filter/abc",
        "action": "SUPPRESS", "name": "suppress-low", "description": UNICODE, "reason": "noise",
        "filterCriteria": {"severity": [{"comparison": "EQUALS", "value": "LOW"}],
                           "fixAvailable": [{"comparison": "EQUALS", "value": "NO"}]},
    }, id="inspector2-UpdateFilter-nested"),
    req("inspector2", "rest-json", "ListCoverage", {}, id="inspector2-ListCoverage-empty-input"),
    # REST-JSON (synth): greedy labels, headers, typed query strings, literal query routes, payloads
    req("synth", "rest-json", "GetObject", {
        "Bucket": "b1", "Key": "photos/2024/ä b+c%.jpg", "MaxItems": 10, "Tags": ["x", "y z"],
        "Since": T0, "Verbose": False, "IfModifiedSince": T1, "Owner": "ops", "Retries": 3,
    }, id="synth-GetObject-greedy-label-headers-query"),
    req("synth", "rest-json", "GetObject", {"Bucket": "b1", "Key": "a/b/c/"},
        id="synth-GetObject-greedy-trailing-slash"),
    req("synth", "rest-json", "PutObject", {
        "Bucket": "b1", "Key": "k", "Body": b"\x00\xffbinary\r\n", "ContentType": "application/octet-stream",
    }, id="synth-PutObject-blob-payload"),
    req("synth", "rest-json", "ListObjects", {"Bucket": "b1"}, id="synth-ListObjects-literal-query-route"),
    req("synth", "rest-json", "GetBucket", {"Bucket": "b1"}, id="synth-GetBucket-without-literal-query"),
    # Smithy RPC v2 CBOR (CloudWatch)
    req("cloudwatch", "smithy-rpc-v2-cbor", "PutMetricData", {
        "Namespace": "Corral/Test", "StrictEntityValidation": True,
        "MetricData": [{
            "MetricName": "Latency", "Timestamp": T0, "Unit": "Milliseconds", "StorageResolution": 1,
            "Dimensions": [{"Name": "Service", "Value": "web"}, {"Name": "Region", "Value": UNICODE}],
            "Values": [1.5, 2.25, 0.1, 1e300], "Counts": [1.0, 2.0, 3.0, 4.0],
        }, {
            "MetricName": "Requests", "Value": 42.0, "Timestamp": T1, "Dimensions": [],
            "StatisticValues": {"SampleCount": 3.0, "Sum": 42.0, "Minimum": 1.0, "Maximum": 40.0},
        }],
        "EntityMetricData": [{
            "Entity": {"KeyAttributes": {"Type": "Service", "Name": "web"}, "Attributes": {}},
            "MetricData": [{"MetricName": "Errors", "Value": 0.0}],
        }],
    }, id="cloudwatch-cbor-PutMetricData"),
    req("cloudwatch", "smithy-rpc-v2-cbor", "GetMetricData", {
        "StartTime": T0, "EndTime": T1, "ScanBy": "TimestampAscending", "MaxDatapoints": 100800,
        "MetricDataQueries": [{
            "Id": "m1", "ReturnData": False, "Label": UNICODE,
            "MetricStat": {"Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
                                      "Dimensions": [{"Name": "ClusterName", "Value": "default"}]},
                           "Period": 60, "Stat": "p99", "Unit": "Percent"},
        }, {"Id": "e1", "Expression": "m1 * 2", "ReturnData": True}],
    }, id="cloudwatch-cbor-GetMetricData-datetimes"),
    req("cloudwatch", "smithy-rpc-v2-cbor", "GetMetricData",
        {"StartTime": datetime(2024, 1, 1), "EndTime": datetime(1970, 1, 1), "MetricDataQueries": []},
        id="cloudwatch-cbor-GetMetricData-naive-epoch-empty"),
    req("cloudwatch", "smithy-rpc-v2-cbor", "ListMetrics", {}, id="cloudwatch-cbor-ListMetrics-no-members"),
    # AWS JSON 1.0 (CloudWatch's second protocol)
    req("cloudwatch", "json", "PutMetricData", {
        "Namespace": "Corral/Test", "MetricData": [{
            "MetricName": "Latency", "Timestamp": T0, "Values": [1.5, 2.0], "Counts": [3.0, 1.0],
            "Dimensions": [{"Name": "Service", "Value": "web"}], "StorageResolution": 60,
        }],
    }, id="cloudwatch-json-PutMetricData"),
    req("cloudwatch", "json", "GetMetricData", {
        "StartTime": T0, "EndTime": T1, "MetricDataQueries": [{"Id": "e1", "Expression": "1", "ReturnData": False}],
    }, id="cloudwatch-json-GetMetricData"),
    # AWS Query (IAM, STS, CloudWatch's third protocol)
    req("cloudwatch", "query", "PutMetricData", {
        "Namespace": "Corral/Test", "MetricData": [{
            "MetricName": "Latency", "Timestamp": T_MS, "Unit": "Count", "StorageResolution": 1,
            "Dimensions": [{"Name": "Service", "Value": "web"}, {"Name": "Region", "Value": UNICODE}],
            "Values": [1.5, 2.0], "Counts": [3.0, 1.0],
        }],
        "EntityMetricData": [{"Entity": {"KeyAttributes": {"Type": "Service", "Name": "web"},
                                         "Attributes": {"a=b": "c&d"}},
                              "MetricData": [{"MetricName": "Errors", "Value": 1.0}]}],
        "StrictEntityValidation": False,
    }, id="cloudwatch-query-PutMetricData-lists-maps-ms"),
    req("cloudwatch", "query", "GetMetricData", {
        "StartTime": T0, "EndTime": T1, "MetricDataQueries": [
            {"Id": "m1", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization", "Dimensions": []},
                "Period": 300, "Stat": "Average"}}],
    }, id="cloudwatch-query-GetMetricData-empty-dimensions"),
    req("sts", "query", "AssumeRole", {
        "RoleArn": ROLE_ARN, "RoleSessionName": "corral-session@test", "DurationSeconds": 3600,
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
                       {"arn": f"arn:aws:iam::{ACCOUNT}:policy/team/limit"}],
        "Policy": POLICY,
        "Tags": [{"Key": "project", "Value": "corral"}, {"Key": "cost:center", "Value": "42"}],
        "TransitiveTagKeys": ["project"], "ExternalId": "ext-123",
    }, id="sts-AssumeRole-policyarns-tags"),
    req("sts", "query", "GetCallerIdentity", {}, id="sts-GetCallerIdentity-no-members"),
    req("iam", "query", "CreateRole", {
        "RoleName": "deployer", "Path": "/service-role/", "AssumeRolePolicyDocument": POLICY,
        "Description": "Déployeur (ñ)", "MaxSessionDuration": 7200,
        "Tags": [{"Key": "team", "Value": "platform"}, {"Key": "empty", "Value": ""}],
    }, id="iam-CreateRole-tags-latin1"),
    req("iam", "query", "CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": POLICY, "Tags": []},
        id="iam-CreateRole-empty-tags"),
    req("iam", "query", "PutRolePolicy", {
        "RoleName": "deployer", "PolicyName": "inline+policy=1",
        "PolicyDocument": '{\n  "Version": "2012-10-17",\n  "Statement": [{"Effect": "Deny", '
                          '"Action": "*", "Resource": "arn:aws:s3:::a&b?c=d#e"}]\n}',
    }, id="iam-PutRolePolicy-form-escaping"),
    req("iam", "query", "TagRole", {"RoleName": "deployer", "Tags": [{"Key": f"k{i}", "Value": str(i)}
                                                                     for i in range(12)]},
        id="iam-TagRole-12-members-ordering"),
    req("iam", "query", "ListRoles", {"PathPrefix": "/", "MaxItems": 1000, "Marker": "m+/="},
        id="iam-ListRoles-int-marker"),
    req("synthq", "query", "Echo", _ECHO, id="synthq-Echo-flattened-renamed"),
    req("synthq", "query", "Echo", {"FlatList": [], "NamedList": [], "Nested": {"Inner": []}},
        id="synthq-Echo-empty-lists"),
    # non-finite doubles travel as strings (JSON, query) or as CBOR floats
    *[req("cloudwatch", p, "PutMetricData", {"Namespace": "N", "MetricData": [
        {"MetricName": "m", "Values": [math.inf, -math.inf, math.nan], "Counts": [1.0, 1.0, 1.0]}]},
        id=f"cloudwatch-{p}-PutMetricData-non-finite") for p in ("smithy-rpc-v2-cbor", "json", "query")],
]


@pytest.mark.parametrize("service,protocol,op_name,params", REQUESTS)
def test_request_round_trip(service, protocol, op_name, params):
    op = operation(service, op_name)
    request = botocore_request(protocol, op, params)
    ours = PROTOCOLS[protocol]

    assert ours.operation(spec(service), request).name == op_name
    parsed = ours.parse(op, request)
    assert normal(parsed) == normal(params)
    # botocore validated min/max/required; our validator must agree the input is valid
    # (and apply the patterns and enums botocore skips without rejecting good values).
    found = validate.violations(op.input_shape, parsed) if op.input_shape else []
    assert found == [], validate.coral_message(found)


@pytest.mark.parametrize("service,protocol,op_name,params", [
    req("inspector2", "rest-json", "ListFindings",
        {"filterCriteria": {"updatedAt": [{"startInclusive": T_MS, "endInclusive": T0}]}}, id="rest-json"),
    req("cloudwatch", "json", "GetMetricData",
        {"StartTime": T_MS, "EndTime": T0, "MetricDataQueries": []}, id="json"),
    req("cloudwatch", "query", "GetMetricData",
        {"StartTime": T_MS, "EndTime": T0, "MetricDataQueries": []}, id="query"),
    req("synth", "rest-json", "GetObject", {"Bucket": "b", "Key": "k", "Since": T_MS}, id="querystring"),
])
def test_request_millisecond_timestamps(service, protocol, op_name, params):
    """Other SDKs (and botocore's millisecond option) send fractional epoch seconds."""
    op = operation(service, op_name)
    request = botocore_request(protocol, op, params, precision="millisecond")
    assert normal(PROTOCOLS[protocol].parse(op, request)) == normal(params)


def test_request_types_survive():
    """Equality alone would let 1 == 1.0 == True pass: check the parsed Python types."""
    op = operation("cloudwatch", "PutMetricData")
    params = {"Namespace": "N", "StrictEntityValidation": True, "MetricData": [
        {"MetricName": "m", "Value": 1, "StorageResolution": 1, "Timestamp": T0}]}
    for protocol in ("smithy-rpc-v2-cbor", "json", "query"):
        parsed = PROTOCOLS[protocol].parse(op, botocore_request(protocol, op, params))
        datum = parsed["MetricData"][0]
        assert type(parsed["StrictEntityValidation"]) is bool, protocol
        assert type(datum["Value"]) is float, protocol
        assert type(datum["StorageResolution"]) is int, protocol
        assert isinstance(datum["Timestamp"], datetime) and datum["Timestamp"].tzinfo, protocol


NULLS = [
    pytest.param("ecr", "json", "CreateRepository", {"repositoryName": "ab", "tags": [None]},
                 "tags.1.member", id="json-null-list-item"),
    pytest.param("ecs", "json", "RegisterTaskDefinition", {"family": "f", "containerDefinitions": [
        {"dockerLabels": {"k": None}}]}, "containerDefinitions.1.member.dockerLabels.k",
                 id="json-null-map-value"),
    pytest.param("cloudwatch", "smithy-rpc-v2-cbor", "PutMetricData",
                 {"Namespace": "N", "MetricData": [{"MetricName": "m", "Values": [1.0, None]}]},
                 "MetricData.1.member.Values.2.member", id="cbor-null-list-item"),
    pytest.param("cloudwatch", "smithy-rpc-v2-cbor", "PutMetricData",
                 {"Namespace": "N", "EntityMetricData": [{"Entity": {"Attributes": {"a": None}}}]},
                 "EntityMetricData.1.member.Entity.Attributes.a", id="cbor-null-map-value"),
]


@pytest.mark.parametrize("service,protocol,op_name,params,path", NULLS)
def test_null_in_dense_collection_is_malformed(service, protocol, op_name, params, path):
    """Hand-made bodies (botocore never sends these): a SerializationException, not a crash."""
    op = operation(service, op_name)
    if protocol == "json":
        target = f"{spec(service).target_prefix}.{op_name}"
        body, headers = json.dumps(params).encode(), [("x-amz-target", target)]
    else:
        body, headers = cbor2.dumps(params), [("smithy-protocol", "rpc-v2-cbor")]
    request = HttpRequest("POST", "/", "", headers, body)
    with pytest.raises(SerializationException, match=f"'{re.escape(path)}'"):
        PROTOCOLS[protocol].parse(op, request)


# --- 2. responses: we serialize, botocore parses ----------------------------------------------


def resp(service: str, protocol: str, op: str, result: dict[str, Any], id: str):
    return pytest.param(service, protocol, op, result, id=id)


_METRIC_DATA = {
    "MetricDataResults": [
        {"Id": "m1", "Label": UNICODE, "Timestamps": [T0, T1, T_MS], "Values": [1.5, 0.0, -2.25],
         "StatusCode": "Complete", "Messages": []},
        {"Id": "m2", "Label": "empty", "Timestamps": [], "Values": [], "StatusCode": "PartialData",
         "Messages": [{"Code": "ArithmeticError", "Value": "division by zero"}]},
    ],
    "Messages": [],
    "NextToken": "next/+=",
}
_ALARMS = {
    "MetricAlarms": [{
        "AlarmName": "cpu-high", "AlarmArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:cpu-high",
        "AlarmDescription": UNICODE, "ActionsEnabled": True, "OKActions": [],
        "AlarmActions": [f"arn:aws:sns:us-east-1:{ACCOUNT}:ops"], "StateValue": "ALARM",
        "StateReason": "Threshold crossed: 1 datapoint [95.0 (01/03/24 08:30:00)] > 90.5",
        "StateUpdatedTimestamp": T1, "AlarmConfigurationUpdatedTimestamp": T0,
        "MetricName": "CPUUtilization", "Namespace": "AWS/ECS", "Statistic": "Average",
        "Dimensions": [{"Name": "ClusterName", "Value": "default"}],
        "Period": 60, "Unit": "Percent", "EvaluationPeriods": 3, "DatapointsToAlarm": 2,
        "Threshold": 90.5, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }],
    "CompositeAlarms": [],
}
_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"

RESPONSES = [
    resp("ecr", "json", "DescribeRepositories", {"repositories": [{
        "repositoryArn": REPO_ARN, "registryId": ACCOUNT, "repositoryName": "team/app",
        "repositoryUri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/team/app", "createdAt": T_MS,
        "imageTagMutability": "MUTABLE", "imageScanningConfiguration": {"scanOnPush": False},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    }], "nextToken": "abc"}, id="ecr-DescribeRepositories-ms-timestamp-false"),
    resp("ecr", "json", "DescribeImages", {"imageDetails": [{
        "registryId": ACCOUNT, "repositoryName": "team/app", "imageDigest": DIGEST,
        "imageTags": ["latest", "v1"], "imageSizeInBytes": 5 * 10**9, "imagePushedAt": T0,
        "imageScanStatus": {"status": "COMPLETE", "description": UNICODE},
        "imageScanFindingsSummary": {"imageScanCompletedAt": T1, "vulnerabilitySourceUpdatedAt": T0,
                                     "findingSeverityCounts": {"HIGH": 2, "LOW": 0}},
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "lastRecordedPullTime": datetime(1970, 1, 1, tzinfo=UTC),
    }, {"registryId": ACCOUNT, "repositoryName": "team/app", "imageDigest": DIGEST, "imageTags": []}]},
        id="ecr-DescribeImages-maps-empty-list-epoch"),
    resp("ecr", "json", "GetAuthorizationToken", {"authorizationData": [{
        "authorizationToken": "QVdTOnNlY3JldA==", "expiresAt": T1,
        "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com",
    }]}, id="ecr-GetAuthorizationToken"),
    resp("ecr", "json", "BatchGetImage", {"images": [{
        "registryId": ACCOUNT, "repositoryName": "team/app",
        "imageId": {"imageDigest": DIGEST, "imageTag": "latest"}, "imageManifest": MANIFEST,
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
    }], "failures": [{"imageId": {"imageTag": "gone"}, "failureCode": "ImageTagDoesNotMatchDigest",
                      "failureReason": "Requested image not found"}]}, id="ecr-BatchGetImage-failures"),
    resp("ecr", "json", "DeleteLifecyclePolicy", {}, id="ecr-DeleteLifecyclePolicy-empty-result"),
    resp("ecs", "json", "DescribeServices", {"services": [{
        "serviceArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/default/web", "serviceName": "web",
        "status": "ACTIVE", "desiredCount": 2, "runningCount": 1, "pendingCount": 1,
        "launchType": "FARGATE", "taskDefinition": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:3",
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": False},
                                    "maximumPercent": 200, "minimumHealthyPercent": 100},
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "desiredCount": 2, "runningCount": 1,
                         "createdAt": T0, "updatedAt": T1, "rolloutState": "IN_PROGRESS",
                         "rolloutStateReason": UNICODE, "failedTasks": 0}],
        "events": [{"id": "e1", "createdAt": T_MS, "message": "(service web) has reached a steady state."}],
        "loadBalancers": [], "createdAt": T0, "enableExecuteCommand": False,
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": [],
                                                         "assignPublicIp": "ENABLED"}},
    }], "failures": []}, id="ecs-DescribeServices-nested"),
    resp("ecs", "json", "RegisterTaskDefinition", {"taskDefinition": {
        "taskDefinitionArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:3",
        "family": "web", "revision": 3, "status": "ACTIVE", "registeredAt": T0,
        "containerDefinitions": [{"name": "app", "image": "busybox", "essential": True,
                                  "command": ["sh", "-c", "echo 'hi' && sleep 3600"], "entryPoint": [],
                                  "environment": [{"name": "A", "value": UNICODE}],
                                  "dockerLabels": {"k": "v"},
                                  "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
        "compatibilities": ["EC2", "FARGATE"],
    }, "tags": [{"key": "env", "value": "test"}]}, id="ecs-RegisterTaskDefinition-nested-lists"),
    resp("logs", "json", "GetLogEvents", {
        "events": [{"timestamp": 1709251198000, "message": UNICODE, "ingestionTime": 1709251199000},
                   {"timestamp": 0, "message": "\x00control\x1f chars\n"}],
        "nextForwardToken": "f/123", "nextBackwardToken": "b/123",
    }, id="logs-GetLogEvents-unicode-control"),
    resp("logs", "json", "DescribeLogGroups", {"logGroups": [
        {"logGroupName": "/ecs/web", "creationTime": 1709251198000, "retentionInDays": 14,
         "storedBytes": 2**40, "arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/ecs/web:*"}]},
        id="logs-DescribeLogGroups-long"),
    *[resp("cloudwatch", p, "GetMetricData", _METRIC_DATA, id=f"cloudwatch-{p}-GetMetricData")
      for p in ("smithy-rpc-v2-cbor", "json", "query")],
    *[resp("cloudwatch", p, "DescribeAlarms", _ALARMS, id=f"cloudwatch-{p}-DescribeAlarms")
      for p in ("smithy-rpc-v2-cbor", "json", "query")],
    *[resp("cloudwatch", p, "GetMetricWidgetImage", {"MetricWidgetImage": _PNG},
           id=f"cloudwatch-{p}-GetMetricWidgetImage-blob") for p in ("smithy-rpc-v2-cbor", "json", "query")],
    *[resp("cloudwatch", p, "PutMetricData", {}, id=f"cloudwatch-{p}-PutMetricData-no-output")
      for p in ("smithy-rpc-v2-cbor", "json", "query")],
    resp("inspector2", "rest-json", "ListFindings", {"findings": [{
        "findingArn": f"arn:aws:inspector2:us-east-1:{ACCOUNT}:finding/abc", "awsAccountId": ACCOUNT,
        "type": "PACKAGE_VULNERABILITY", "description": UNICODE, "title": "CVE-2024-0001 - openssl",
        "remediation": {"recommendation": {"text": "Upgrade", "Url": "https://example.com/fix"}},
        "severity": "HIGH", "firstObservedAt": T0, "lastObservedAt": T1, "updatedAt": T_MS,
        "status": "ACTIVE", "inspectorScore": 7.5, "fixAvailable": "YES", "exploitAvailable": "NO",
        "resources": [{"type": "AWS_ECR_CONTAINER_IMAGE", "id": f"{REPO_ARN}/{DIGEST}", "partition": "aws",
                       "region": "us-east-1", "tags": {"team": "platform"},
                       "details": {"awsEcrContainerImage": {
                           "repositoryName": "team/app", "imageHash": DIGEST, "registry": ACCOUNT,
                           "imageTags": ["latest"], "pushedAt": T0, "platform": "linux/amd64"}}}],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": "CVE-2024-0001", "source": "NVD", "referenceUrls": [],
            "relatedVulnerabilities": [], "sourceUrl": "https://nvd.nist.gov/vuln/detail/CVE-2024-0001",
            "cvss": [{"baseScore": 7.5, "scoringVector": "CVSS:3.1/AV:N/AC:L", "source": "NVD",
                      "version": "3.1"}],
            "vulnerablePackages": [{"name": "openssl", "version": "3.0.1", "epoch": 0,
                                    "fixedInVersion": "3.0.2", "packageManager": "OS"}],
        },
    }], "nextToken": "n"}, id="inspector2-ListFindings-deep"),
    resp("inspector2", "rest-json", "ListTagsForResource", {"tags": {"team": "platform", "note": UNICODE}},
         id="inspector2-ListTagsForResource-map"),
    resp("inspector2", "rest-json", "ListTagsForResource", {"tags": {}},
         id="inspector2-ListTagsForResource-empty-map"),
    resp("inspector2", "rest-json", "UpdateFilter",
         {"arn": f"arn:aws:inspector2:us-east-1:{ACCOUNT}:owner/{ACCOUNT}/filter/abc"},
         id="inspector2-UpdateFilter"),
    resp("inspector2", "rest-json", "TagResource", {}, id="inspector2-TagResource-empty-output"),
    resp("synth", "rest-json", "GetObject", {
        "Body": _PNG, "LastModified": T0, "ETag": '"abc"', "Size": 15, "Archived": False,
    }, id="synth-GetObject-blob-payload-headers"),
    resp("synth", "rest-json", "PutObject", {"ETag": '"x"', "Created": T1, "Keys": ["a", "b"]},
         id="synth-PutObject-201-header-and-body"),
    resp("iam", "query", "GetRole", {"Role": {
        "Path": "/service-role/", "RoleName": "deployer", "RoleId": "AROAEXAMPLEID1234567",
        "Arn": ROLE_ARN, "CreateDate": T0, "AssumeRolePolicyDocument": POLICY,
        "Description": "<b>&amp; ünïcødé</b>", "MaxSessionDuration": 3600,
        "Tags": [{"Key": "team", "Value": "platform"}, {"Key": "empty", "Value": ""}],
        "RoleLastUsed": {"LastUsedDate": T1, "Region": "us-east-1"},
    }}, id="iam-GetRole-nested-escaping"),
    resp("iam", "query", "ListRoles", {"Roles": [], "IsTruncated": False},
         id="iam-ListRoles-empty"),
    resp("iam", "query", "ListRoles", {"Roles": [
        {"Path": "/", "RoleName": f"r{i}", "RoleId": f"AROAEXAMPLEID12345{i:02d}",
         "Arn": f"arn:aws:iam::{ACCOUNT}:role/r{i}", "CreateDate": T_MS, "MaxSessionDuration": 3600}
        for i in range(3)], "IsTruncated": True, "Marker": "m/+="}, id="iam-ListRoles-truncated"),
    resp("iam", "query", "GetAccountSummary", {"SummaryMap": {"Roles": 3, "Users": 0, "RolesQuota": 1000}},
         id="iam-GetAccountSummary-map"),
    resp("iam", "query", "GetRolePolicy", {"RoleName": "deployer", "PolicyName": "inline",
                                           "PolicyDocument": '{"a": "<&>\'\\""}'},
         id="iam-GetRolePolicy-xml-specials"),
    resp("iam", "query", "PutRolePolicy", {}, id="iam-PutRolePolicy-no-output"),
    resp("sts", "query", "AssumeRole", {
        "Credentials": {"AccessKeyId": "ASIAEXAMPLEKEY000001", "SecretAccessKey": "s3cr3t/+=",
                        "SessionToken": "FwoG" + "x" * 300, "Expiration": T1},
        "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLEID1234567:sess",
                            "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/sess"},
        "PackedPolicySize": 6, "SourceIdentity": "alice",
    }, id="sts-AssumeRole-credentials"),
    resp("synthq", "query", "Echo", _ECHO, id="synthq-Echo-flattened-renamed"),
    *[resp("cloudwatch", p, "GetMetricData", {"MetricDataResults": [
        {"Id": "m1", "Timestamps": [T0, T0, T0], "Values": [math.inf, -math.inf, math.nan]}]},
        id=f"cloudwatch-{p}-GetMetricData-non-finite") for p in ("smithy-rpc-v2-cbor", "query")],
    resp("sts", "query", "GetCallerIdentity",
         {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/alice"},
         id="sts-GetCallerIdentity"),
]


@pytest.mark.parametrize("service,protocol,op_name,result", RESPONSES)
def test_response_round_trip(service, protocol, op_name, result, caplog):
    op = operation(service, op_name)
    response = PROTOCOLS[protocol].serialize(op, result, REQUEST_ID)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.WARNING, logger="botocore"):
            parsed = botocore_parse(protocol, op, response)
    assert [r.getMessage() for r in caplog.records] == []

    metadata = parsed.pop("ResponseMetadata")
    assert metadata["HTTPStatusCode"] == op.http.get("responseCode", 200) == response.status
    if op.output_shape is not None:  # botocore's RPCv2 parser reads no metadata without one
        assert metadata["RequestId"] == REQUEST_ID
    assert normal(parsed) == normal(result)


def test_json_non_finite_doubles_are_strings():
    """AWS JSON spells them "NaN"/"Infinity"/"-Infinity" (botocore hands those strings through)."""
    op = operation("cloudwatch", "GetMetricData")
    result = {"MetricDataResults": [{"Id": "m1", "Values": [math.inf, -math.inf, math.nan]}]}
    body = PROTOCOLS["json"].serialize(op, result, REQUEST_ID).body
    assert b'"Values":["Infinity","-Infinity","NaN"]' in body


def test_rest_json_header_wire_format():
    """botocore reads almost any date or truth value; stricter SDKs (Go, Java) read header
    timestamps only as HTTP dates and booleans only as true/false."""
    op = operation("synth", "GetObject")
    result = {"Body": b"x", "LastModified": T1, "Archived": True, "Size": 0}
    headers = PROTOCOLS["rest-json"].serialize(op, result, REQUEST_ID).headers
    assert headers["Last-Modified"] == "Fri, 01 Mar 2024 06:30:00 GMT"
    assert headers["x-synth-archived"] == "true"
    assert headers["x-synth-size"] == "0"


# --- 3. errors: we render, botocore reads ------------------------------------------------------


def err(service: str, protocol: str, error: AwsError, code: str, id: str):
    return pytest.param(service, protocol, error, code, id=id)


_RepositoryNotFound = error_class("RepositoryNotFoundException")
_ResourceNotFound = error_class("ResourceNotFoundException", 404)
_NoSuchEntity = error_class("NoSuchEntity", 404)
_CwResourceNotFound = error_class("ResourceNotFound", 404)  # CloudWatch's query-compatible code

ERRORS = [
    err("ecr", "json", _RepositoryNotFound(
        f"The repository with name 'team/app' does not exist in the registry with id '{ACCOUNT}'"),
        "RepositoryNotFoundException", id="json-ecr-RepositoryNotFound"),
    err("ecs", "json", error_class("ClientException")(UNICODE), "ClientException", id="json-ecs-unicode"),
    err("logs", "json", _ResourceNotFound("The specified log group does not exist."),
        "ResourceNotFoundException", id="json-logs-ResourceNotFound"),
    err("ecr", "json", InternalFailure("We encountered an internal error."), "InternalFailure",
        id="json-InternalFailure-500"),
    err("inspector2", "rest-json", _ResourceNotFound("no such filter"), "ResourceNotFoundException",
        id="rest-json-ResourceNotFound-404"),
    err("inspector2", "rest-json", error_class("AccessDeniedException", 403)("denied: <&>"),
        "AccessDeniedException", id="rest-json-AccessDenied-403"),
    err("inspector2", "rest-json", error_class("ValidationException")(UNICODE), "ValidationException",
        id="rest-json-ValidationException-unicode"),
    err("iam", "query", _NoSuchEntity("The role with name <x&y> cannot be found."), "NoSuchEntity",
        id="query-iam-NoSuchEntity-escaping"),
    err("sts", "query", error_class("AccessDenied", 403)(f"User: {ROLE_ARN} is not authorized"),
        "AccessDenied", id="query-sts-AccessDenied-403"),
    err("iam", "query", InternalFailure("boom"), "InternalFailure", id="query-InternalFailure-500"),
    *[err("cloudwatch", p, _CwResourceNotFound("no alarm"), "ResourceNotFound",
          id=f"{p}-cloudwatch-ResourceNotFound") for p in ("smithy-rpc-v2-cbor", "json", "query")],
    *[err("cloudwatch", p, InternalFailure(UNICODE), "InternalFailure",
          id=f"{p}-cloudwatch-InternalFailure") for p in ("smithy-rpc-v2-cbor", "json", "query")],
]


@pytest.mark.parametrize("service,protocol,error,code", ERRORS)
def test_error_round_trip(service, protocol, error, code):
    response = PROTOCOLS[protocol].error(spec(service), error, REQUEST_ID)
    any_op = operation(service, spec(service).operation_names[0])  # errors parse shape-free
    parsed = botocore_parse(protocol, any_op, response)

    assert response.status == error.status
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == error.message
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == error.status
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    if protocol == "query" or "awsQueryCompatible" in spec(service).model.metadata:
        # Query clients (and query-compatible ones) also see who is at fault.
        assert parsed["Error"]["Type"] == ("Sender" if error.sender_fault else "Receiver")


# --- 4. validation: exact AWS messages for broken constraints ----------------------------------


def bad(service: str, op: str, params: dict[str, Any], message: str, id: str):
    return pytest.param(service, op, params, message, id=id)


_HEAD = "1 validation error detected: "
_LONG = "a" * 257
_ECR_REPO_PATTERN = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"

INVALID = [
    bad("ecr", "CreateRepository", {}, _HEAD + "Value null at 'repositoryName' failed to satisfy "
        "constraint: Member must not be null", id="missing-required"),
    bad("ecr", "CreateRepository", {"repositoryName": "x"}, _HEAD + "Value 'x' at 'repositoryName' "
        "failed to satisfy constraint: Member must have length greater than or equal to 2",
        id="string-too-short"),
    bad("ecr", "CreateRepository", {"repositoryName": _LONG}, _HEAD + f"Value '{'a' * 253}...' at "
        "'repositoryName' failed to satisfy constraint: Member must have length less than or equal to 256",
        id="string-too-long-value-truncated"),
    bad("ecr", "PutImage", {"repositoryName": "Bad_Name", "imageManifest": "{}"}, _HEAD +
        "Value 'Bad_Name' at 'repositoryName' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*",
        id="pattern-miss"),
    bad("ecr", "CreateRepository", {"repositoryName": "team/app", "imageTagMutability": "SOMETIMES"},
        _HEAD + "Value 'SOMETIMES' at 'imageTagMutability' failed to satisfy constraint: Member must "
        "satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]",
        id="enum-miss"),
    bad("ecr", "DescribeRepositories", {"maxResults": 0}, _HEAD + "Value '0' at 'maxResults' failed to "
        "satisfy constraint: Member must have value greater than or equal to 1", id="int-below-min"),
    bad("ecr", "DescribeRepositories", {"maxResults": 1001}, _HEAD + "Value '1001' at 'maxResults' "
        "failed to satisfy constraint: Member must have value less than or equal to 1000",
        id="int-above-max"),
    bad("logs", "PutLogEvents", {"logGroupName": "g", "logStreamName": "s", "logEvents": []}, _HEAD +
        "Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than "
        "or equal to 1", id="list-too-short"),
    bad("logs", "PutLogEvents", {"logGroupName": "g", "logStreamName": "s",
                                 "logEvents": [{"timestamp": -1, "message": "m"}, {"timestamp": 1}]},
        "2 validation errors detected: Value '-1' at 'logEvents.1.member.timestamp' failed to satisfy "
        "constraint: Member must have value greater than or equal to 0; Value null at "
        "'logEvents.2.member.message' failed to satisfy constraint: Member must not be null",
        id="nested-list-member-paths-two-errors"),
    bad("logs", "PutLogEvents", {"logGroupName": "bad group!", "logStreamName": "a:b",
                                 "logEvents": [{"timestamp": 0, "message": "m"}]},
        "2 validation errors detected: Value 'bad group!' at 'logGroupName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+; "
        "Value 'a:b' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [^:*]*", id="two-pattern-misses"),
    bad("iam", "CreateRole", {"RoleName": "rôle", "AssumeRolePolicyDocument": POLICY}, _HEAD +
        "Value 'rôle' at 'RoleName' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [\\w+=,.@-]+", id="pattern-java-w-is-ascii"),
    bad("inspector2", "UntagResource", {"resourceArn": REPO_ARN, "tagKeys": [f"k{i}" for i in range(51)]},
        _HEAD + f"Value '[{', '.join(f'k{i}' for i in range(51))}]' at 'tagKeys' failed to satisfy "
        "constraint: Member must have length less than or equal to 50", id="list-too-long-java-style-value"),
    bad("sts", "AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "DurationSeconds": 899},
        _HEAD + "Value '899' at 'DurationSeconds' failed to satisfy constraint: Member must have value "
        "greater than or equal to 900", id="sts-duration-below-min"),
    bad("inspector2", "TagResource", {"resourceArn": REPO_ARN, "tags": {"": "v"}}, _HEAD +
        "Value '' at 'tags.key' failed to satisfy constraint: Member must have length greater than or "
        "equal to 1", id="map-key-too-short"),
    bad("inspector2", "UntagResource", {"resourceArn": REPO_ARN, "tagKeys": ["aws:reserved"]}, _HEAD +
        "Value 'aws:reserved' at 'tagKeys.1.member' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: (?!aws:)[a-zA-Z+-=._:/]+", id="pattern-negative-lookahead"),
    bad("inspector2", "ListFindings", {"filterCriteria": {"severity": [{"comparison": "LIKE", "value": "x"}]}},
        _HEAD + "Value 'LIKE' at 'filterCriteria.severity.1.member.comparison' failed to satisfy "
        "constraint: Member must satisfy enum value set: [EQUALS, PREFIX, NOT_EQUALS]",
        id="nested-enum-path"),
    bad("ecr", "UploadLayerPart", {"repositoryName": "team/app", "uploadId": "0c6e2a16-3b7f-4d2e-9a53-1f0f4b7c8d9e",
                                   "partFirstByte": 0, "partLastByte": -1, "layerPartBlob": b""},
        _HEAD + "Value '-1' at 'partLastByte' failed to satisfy constraint: Member must have value "
        "greater than or equal to 0", id="long-below-min"),
]


@pytest.mark.parametrize("service,op_name,params,message", INVALID)
def test_validation_message(service, op_name, params, message):
    found = validate.violations(operation(service, op_name).input_shape, params)
    assert validate.coral_message(found) == message
