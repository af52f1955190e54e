"""OIDC providers and AssumeRoleWithWebIdentity: a local identity provider signs RS256 tokens;
STS verifies them against its published keys and evaluates the role's trust policy with the
token's ``sub``/``aud`` (reference §11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

ACCOUNT = "000000000000"


class Idp:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:8]
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.endswith("/.well-known/openid-configuration"):
                    body = {"issuer": idp.url, "jwks_uri": f"{idp.url}/keys"}
                elif self.path.endswith("/keys"):
                    body = idp.jwks
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/idp"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, sub="system:serviceaccount:ns:app", aud="sts.amazonaws.com", ttl=600,
              key=None) -> str:
        now = int(time.time())
        return jwt.encode({"iss": self.url, "sub": sub, "aud": aud, "iat": now, "exp": now + ttl},
                          key or self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="module")
def idp():
    p = Idp()
    yield p
    p.server.shutdown()


@pytest.fixture
def role(server, idp):
    iam = server.client("iam")
    try:
        arn = iam.create_open_id_connect_provider(Url=idp.url, ClientIDList=["sts.amazonaws.com"],
                                                  ThumbprintList=["a" * 40])[
            "OpenIDConnectProviderArn"]
    except ClientError:
        arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{idp.url.split('://')[1]}"
    issuer = idp.url.split("://", 1)[1]
    name = "web-" + uuid.uuid4().hex[:8]
    created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{issuer}:sub": "system:serviceaccount:ns:app",
                                           f"{issuer}:aud": "sts.amazonaws.com"}}}]}))["Role"]
    iam.attach_role_policy(RoleName=name,
                           PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
    return created


def test_oidc_provider_api(server, idp, role):
    iam = server.client("iam")
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{idp.url.split('://')[1]}"
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["ClientIDList"] == ["sts.amazonaws.com"]
    assert {"Arn": arn} in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]


def test_assume_role_with_web_identity(server, idp, role):
    sts = server.client("sts")
    out = sts.assume_role_with_web_identity(RoleArn=role["Arn"], RoleSessionName="pod",
                                            WebIdentityToken=idp.token())
    assert out["SubjectFromWebIdentityToken"] == "system:serviceaccount:ns:app"
    assert out["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/pod")
    c = out["Credentials"]
    ecr = server.client("ecr", key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                        token=c["SessionToken"])
    ecr.describe_repositories()


BAD_TOKENS = [
    ("wrong_subject", dict(sub="system:serviceaccount:ns:other"), "AccessDenied"),
    ("wrong_audience", dict(aud="someone-else"), "InvalidIdentityToken"),
    ("expired", dict(ttl=-60), "ExpiredTokenException"),
    ("forged_signature", dict(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
     "InvalidIdentityToken"),
]


@pytest.mark.parametrize("case", BAD_TOKENS, ids=[c[0] for c in BAD_TOKENS])
def test_bad_web_identity_tokens_are_refused(server, idp, role, case):
    _, kwargs, code = case
    with pytest.raises(ClientError) as e:
        server.client("sts").assume_role_with_web_identity(
            RoleArn=role["Arn"], RoleSessionName="pod", WebIdentityToken=idp.token(**kwargs))
    assert e.value.response["Error"]["Code"] == code


def test_aws_cli_with_web_identity_token_file(server, idp, role, tmp_path):
    """botocore's provider chain: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, no keys."""
    token_file = tmp_path / "token"
    token_file.write_text(idp.token())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file), "AWS_ROLE_ARN": role["Arn"],
                "AWS_ROLE_SESSION_NAME": "cli", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": server.endpoint, "AWS_MAX_ATTEMPTS": "1",
                "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")})
    aws = Path(sys.executable).with_name("aws")
    out = subprocess.run([str(aws) if aws.exists() else "aws", "sts", "get-caller-identity",
                          "--output", "json"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/cli")
