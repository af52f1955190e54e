"""SigV4 authentication on every request, end to end against a real server."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import boto3
import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from corral.aws.context import Principal
from corral.config import Settings
from corral.iam.credentials import Credentials
from corral.store import Store

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"


def signed_request(server, *, body=b"{}", target=ECR_TARGET, service="ecr", region="us-east-1",
                   key="test", secret="test", token=None, headers=None):
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **(headers or {})})
    botocore.auth.SigV4Auth(BotoCredentials(key, secret, token), service, region).add_auth(req)
    return req


def send(req) -> requests.Response:
    prepared = req.prepare()
    return requests.request(prepared.method, prepared.url, data=prepared.body,
                            headers=dict(prepared.headers), timeout=10)


def test_unsigned_request_is_missing_authentication_token(server):
    r = requests.post(server.endpoint + "/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": ECR_TARGET}, timeout=10)
    assert r.status_code == 403
    assert r.json()["__type"] == "MissingAuthenticationTokenException"


def test_signed_request_passes(server):
    r = send(signed_request(server))
    assert r.status_code == 200, r.text
    assert "repositories" in r.json()


@pytest.mark.parametrize("minutes,ok", [(-14, True), (-16, False), (14, True), (16, False)],
                         ids=["14min-old", "16min-old", "14min-ahead", "16min-ahead"])
def test_stale_or_future_x_amz_date(server, monkeypatch, minutes, ok):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    r = send(signed_request(server))
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403
        assert r.json()["__type"] == "InvalidSignatureException"
        assert "15 min." in r.json()["message"]
        word = "Signature expired" if minutes < 0 else "Signature not yet current"
        assert r.json()["message"].startswith(word)


def test_tampered_body_target_and_header_are_rejected(server):
    req = signed_request(server, body=b'{"maxResults": 5}')
    req.data = b'{"maxResults": 6}'
    req.headers["Content-Length"] = str(len(req.data))
    assert send(req).json()["__type"] == "InvalidSignatureException"
    req = signed_request(server)
    req.headers.replace_header("X-Amz-Target",
                               "AmazonEC2ContainerRegistry_V20150921.DeleteRepository")
    assert send(req).json()["__type"] == "InvalidSignatureException"


def test_malformed_authorization_is_incomplete_signature(server):
    r = requests.post(server.endpoint + "/", data=b"{}", timeout=10, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": ECR_TARGET,
        "X-Amz-Date": "20260101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecr/aws4_request"})
    assert r.status_code == 403
    assert r.json()["__type"] == "IncompleteSignatureException"


def test_scope_date_must_match_request_date(server):
    req = signed_request(server)
    auth = req.headers["Authorization"]
    day = req.headers["X-Amz-Date"][:8]
    other = (dt.datetime.strptime(day, "%Y%m%d") - dt.timedelta(days=1)).strftime("%Y%m%d")
    req.headers.replace_header("Authorization", auth.replace(f"/{day}/", f"/{other}/"))
    body = send(req).json()
    assert body["__type"] == "InvalidSignatureException"
    assert body["message"].startswith("Date in Credential scope does not match")


def test_invalid_region_in_scope(server):
    body = send(signed_request(server, region="moon-base-1x")).json()
    assert body["__type"] == "InvalidSignatureException"
    assert "valid region" in body["message"]


def test_presigned_url_is_accepted_and_expires(server):
    sts = server.client("sts")
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert "<Arn>arn:aws:iam::000000000000:root</Arn>" in r.text
    bad = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")[:len(url)]
    assert requests.get(bad, timeout=10).status_code == 403
    # Expired: signed 2 minutes ago for 60 seconds.
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    import unittest.mock as mock
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: old):
        expired = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    r = requests.get(expired, timeout=10)
    assert r.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"


def _session(server, duration: dt.timedelta) -> dict:
    store = Store(Settings(data_dir=server.data_dir).db_url)
    try:
        root = Principal("000000000000", "arn:aws:iam::000000000000:root", "000000000000", "test")
        return Credentials(store, Settings(data_dir=server.data_dir)).issue_session(root, duration)
    finally:
        store.close()


def test_temporary_credentials_need_their_session_token(server):
    creds = _session(server, dt.timedelta(hours=1))
    with_token = server.client("sts", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                               token=creds["SessionToken"])
    assert with_token.get_caller_identity()["Account"] == "000000000000"
    without = server.client("sts", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:
        without.get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"
    wrong = server.client("ecr", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                          token=creds["SessionToken"] + "x")
    with pytest.raises(ClientError) as exc:
        wrong.describe_repositories()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_expired_temporary_credentials_are_expired_token(server):
    creds = _session(server, dt.timedelta(seconds=-1))
    ecr = server.client("ecr", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                        token=creds["SessionToken"])
    with pytest.raises(ClientError) as exc:
        ecr.describe_repositories()
    assert exc.value.response["Error"]["Code"] == "ExpiredTokenException"


def test_long_term_key_with_a_session_token_is_rejected(server):
    ecr = server.client("ecr", token="not-a-session")
    with pytest.raises(ClientError) as exc:
        ecr.describe_repositories()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_open_mode_accepts_any_well_formed_signature(fresh_server):
    fresh_server.env["CORRAL_AUTH"] = "open"
    fresh_server.start()
    anyone = fresh_server.client("sts", key="AKIAWHATEVER", secret="whatever")
    assert anyone.get_caller_identity()["Arn"] == "arn:aws:iam::000000000000:root"
    # Known keys are still verified.
    wrong = fresh_server.client("sts", key="test", secret="not-test")
    with pytest.raises(ClientError) as exc:
        wrong.get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # Unsigned is still refused.
    r = requests.post(fresh_server.endpoint + "/", data="Action=GetCallerIdentity&Version=2011-06-15",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 403


def test_strict_mode_is_the_default(server):
    anyone = server.client("sts", key="AKIAWHATEVER", secret="whatever")
    with pytest.raises(ClientError) as exc:
        anyone.get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_boto3_session_default_chain_works(server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.session.Session().client("sts", region_name="us-east-1",
                                            endpoint_url=server.endpoint)
    assert client.get_caller_identity()["Account"] == "000000000000"
