"""iam:PassRole checks and role credentials vended to one consumer, served through the
container-credentials protocol botocore's ContainerProvider speaks (reference §10, §13)."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ContainerProvider, Credentials
from botocore.exceptions import CredentialRetrievalError

from corral.aws.context import Principal, RequestContext
from corral.aws.errors import AccessDeniedException
from corral.config import Settings
from corral.iam.credentials import Credentials as CorralCredentials
from corral.iam.credentials import root_principal
from corral.iam.enforce import PolicyAuthorizer
from corral.iam.provider import IamProvider
from corral.iam.vending import check_pass_role
from corral.store import Store

ACCOUNT = "000000000000"


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def admin(server, action: str, body: dict) -> requests.Response:
    req = AWSRequest(method="POST", url=f"{server.endpoint}/_corral/api/{action}",
                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("test", "test"), "corral", "us-east-1").add_auth(req)
    p = req.prepare()
    return requests.post(p.url, data=p.body, headers=dict(p.headers), timeout=30)


def task_role(server, *, service="ecs-tasks.amazonaws.com") -> dict:
    iam = server.client("iam")
    role = iam.create_role(RoleName="task-" + uuid.uuid4().hex[:8], AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}))["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"],
                           PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
    return role


def provider(uri: str, token: str) -> ContainerProvider:
    return ContainerProvider(environ={"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
                                      "AWS_CONTAINER_AUTHORIZATION_TOKEN": token})


def test_vended_credentials_reach_botocore_container_provider(server):
    role = task_role(server)
    consumer = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/default/{uuid.uuid4().hex}"
    out = admin(server, "iam/vend-credentials", {"roleArn": role["Arn"], "consumer": consumer})
    assert out.status_code == 200, out.text
    vended = out.json()
    uri = vended["credentialsUri"].replace("localhost", "127.0.0.1")
    creds = provider(uri, vended["authorizationToken"]).load()
    assert creds.method == "container-role"
    frozen = creds.get_frozen_credentials()
    ident = server.client("sts", key=frozen.access_key, secret=frozen.secret_key,
                          token=frozen.token).get_caller_identity()
    session = consumer.rsplit("/", 1)[-1]
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/{session}"
    ecr = server.client("ecr", key=frozen.access_key, secret=frozen.secret_key,
                        token=frozen.token)
    ecr.describe_repositories()
    # only the consumer's token gets the role's credentials
    with pytest.raises(CredentialRetrievalError):
        provider(uri, "not-the-token").load()
    assert admin(server, "iam/revoke-credentials", {"consumer": consumer}).json() == {"revoked": 1}
    with pytest.raises(CredentialRetrievalError):
        provider(uri, vended["authorizationToken"]).load()


def test_vending_requires_the_role_to_trust_the_service(server):
    role = task_role(server, service="lambda.amazonaws.com")
    out = admin(server, "iam/vend-credentials", {"roleArn": role["Arn"], "consumer": "task/x"})
    assert out.status_code == 400
    assert out.json()["__type"] == "AccessDeniedException"


@pytest.fixture
def iam_state(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    iam = IamProvider(CorralCredentials(store, Settings()))
    root = RequestContext("r", "iam", "Setup", "us-east-1", root_principal(ACCOUNT, "test"),
                          "http://localhost")
    with store.transaction() as db:
        root.db = db
        user = iam.create_user(root, {"UserName": "deployer"})["User"]
        iam.put_user_policy(root, {"UserName": "deployer", "PolicyName": "pass",
                                   "PolicyDocument": doc({
                                       "Effect": "Allow", "Action": "iam:PassRole",
                                       "Resource": f"arn:aws:iam::{ACCOUNT}:role/app-*",
                                       "Condition": {"StringEquals": {
                                           "iam:PassedToService": "ecs-tasks.amazonaws.com"}}})})
    principal = Principal(ACCOUNT, user["Arn"], user["UserId"], "AKIAEXAMPLE", "User")
    yield store, RequestContext("r", "ecs", "RunTask", "us-east-1", principal, "http://localhost",
                                extras={"protocol": "json"})
    store.close()


PASS_ROLE = [
    ("allowed_role_and_service", f"arn:aws:iam::{ACCOUNT}:role/app-web", "ecs-tasks.amazonaws.com",
     True),
    ("other_service", f"arn:aws:iam::{ACCOUNT}:role/app-web", "lambda.amazonaws.com", False),
    ("role_outside_the_pattern", f"arn:aws:iam::{ACCOUNT}:role/admin", "ecs-tasks.amazonaws.com",
     False),
    ("role_of_another_account", "arn:aws:iam::111111111111:role/app-web",
     "ecs-tasks.amazonaws.com", False),
]


@pytest.mark.parametrize("case", PASS_ROLE, ids=[c[0] for c in PASS_ROLE])
def test_check_pass_role(iam_state, case):
    store, ctx = iam_state
    _, role, service, allowed = case
    authorizer = PolicyAuthorizer(store)
    if allowed:
        check_pass_role(authorizer, ctx, role, service)
        return
    with pytest.raises(AccessDeniedException) as e:
        check_pass_role(authorizer, ctx, role, service)
    assert e.value.message.startswith(
        f"User: arn:aws:iam::{ACCOUNT}:user/deployer is not authorized to perform: iam:PassRole "
        f"on resource: {role}")
    assert "context_keys" not in ctx.extras
