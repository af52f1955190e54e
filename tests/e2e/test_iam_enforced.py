"""IAM enforced end to end, with the real aws CLI, skopeo and boto3 (issue 6, "How it is
verified"): least privilege on one repository, explicit deny, a repository policy granting
another account's role pull access, session policies, permissions boundaries, expiry."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.ecr.push import push_image
from tests.registry import oci_images as oi
from tests.registry.conftest import Skopeo
from tests.server import OTHER_ACCOUNT, OTHER_KEY, OTHER_SECRET

ACCOUNT = "000000000000"
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def repo_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:ecr:us-east-1:{account}:repository/{name}"


def aws_cli(server, *args: str, key: str, secret: str, token: str | None = None):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    if token:
        env["AWS_SESSION_TOKEN"] = token
    aws = Path(sys.executable).with_name("aws")
    return subprocess.run([str(aws) if aws.exists() else "aws", "--endpoint-url", server.endpoint,
                           "--output", "json", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def skopeo_as(server, tmp_path: Path, key: str, secret: str, token: str | None = None) -> Skopeo:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: apt-get install skopeo (`make test` does it as "
                    "root; see Makefile APT_PACKAGES)")
    password = aws_cli(server, "ecr", "get-login-password", key=key, secret=secret, token=token)
    assert password.returncode == 0, password.stderr
    host = f"127.0.0.1:{server.port}"
    authfile = tmp_path / f"auth-{uuid.uuid4().hex[:6]}.json"
    r = subprocess.run(["skopeo", "login", "--authfile", str(authfile), "--tls-verify=false",
                        "--username", "AWS", "--password-stdin", host],
                       input=password.stdout, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return Skopeo(authfile, host)


def user_with_policy(iam, name: str, policy: str, **create) -> dict:
    iam.create_user(UserName=name, **create)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    return iam.create_access_key(UserName=name)["AccessKey"]


def denied(call, **kwargs) -> str:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    assert e.value.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied")
    return e.value.response["Error"]["Message"]


@pytest.fixture
def tag():
    return uuid.uuid4().hex[:8]


def test_least_privilege_user_reads_one_repository(server, tmp_path, tag):
    """Root creates a user with read-only on one repository (aws CLI): the user's keys describe
    and pull it (aws CLI, skopeo) and are denied everything else with AWS's message."""
    ecr = server.client("ecr")
    mine, other = f"lp/{tag}/mine", f"lp/{tag}/other"
    for name in (mine, other):
        ecr.create_repository(repositoryName=name)
    root_skopeo = skopeo_as(server, tmp_path, "test", "test")
    root_skopeo.push(f"oci:{oi.write_oci_layout(tmp_path / 'src', oi.single(61))}:v1", mine, "v1")
    root = dict(key="test", secret="test")
    policy = tmp_path / "read-one-repo.json"
    policy.write_text(doc(
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Effect": "Allow", "Action": ["ecr:DescribeRepositories", "ecr:DescribeImages",
                                       "ecr:ListImages", *PULL], "Resource": repo_arn(mine)}))
    for args in (("iam", "create-user", "--user-name", f"reader-{tag}"),
                 ("iam", "put-user-policy", "--user-name", f"reader-{tag}", "--policy-name",
                  "ecr-read", "--policy-document", f"file://{policy}")):
        out = aws_cli(server, *args, **root)
        assert out.returncode == 0, out.stderr
    out = aws_cli(server, "iam", "create-access-key", "--user-name", f"reader-{tag}", **root)
    assert out.returncode == 0, out.stderr
    key = json.loads(out.stdout)["AccessKey"]
    creds = dict(key=key["AccessKeyId"], secret=key["SecretAccessKey"])

    out = aws_cli(server, "ecr", "describe-repositories", "--repository-names", mine, **creds)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["repositories"][0]["repositoryName"] == mine
    out = aws_cli(server, "ecr", "describe-images", "--repository-name", mine, **creds)
    assert out.returncode == 0, out.stderr

    skopeo = skopeo_as(server, tmp_path, **creds)
    skopeo.pull(mine, "v1", f"dir:{tmp_path / 'pulled'}")
    assert (tmp_path / "pulled" / "manifest.json").exists()

    out = aws_cli(server, "ecr", "describe-repositories", "--repository-names", other, **creds)
    assert out.returncode != 0
    assert (f"An error occurred (AccessDeniedException) when calling the DescribeRepositories "
            f"operation: User: arn:aws:iam::{ACCOUNT}:user/reader-{tag} is not authorized to "
            f"perform: ecr:DescribeRepositories on resource: {repo_arn(other)} because no "
            f"identity-based policy allows the ecr:DescribeRepositories action") in out.stderr
    out = aws_cli(server, "ecr", "create-repository", "--repository-name", f"lp/{tag}/new",
                  **creds)
    assert "AccessDeniedException" in out.stderr and "ecr:CreateRepository" in out.stderr
    out = aws_cli(server, "iam", "list-users", **creds)
    assert "An error occurred (AccessDenied) when calling the ListUsers operation: User: " \
           f"arn:aws:iam::{ACCOUNT}:user/reader-{tag} is not authorized to perform: " \
           "iam:ListUsers on resource: * because no identity-based policy allows the " \
           "iam:ListUsers action" in out.stderr
    # pulls from the other repository and pushes to its own are refused by the registry
    r = skopeo.run("copy", "--authfile", str(skopeo.authfile), "--src-tls-verify=false",
                   f"docker://{skopeo.host}/{other}:v1", f"dir:{tmp_path / 'x'}", check=False)
    assert r.returncode != 0 and "denied" in r.stderr.lower()
    r = skopeo.run("copy", "--authfile", str(skopeo.authfile), "--dest-tls-verify=false",
                   f"oci:{tmp_path / 'src'}:v1", f"docker://{skopeo.host}/{mine}:v2", check=False)
    assert r.returncode != 0 and "denied" in r.stderr.lower()


def test_explicit_deny_beats_allow(server, tag):
    iam = server.client("iam")
    key = user_with_policy(iam, f"denied-{tag}", doc(
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"}))
    ecr = server.client("ecr", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    ecr.create_repository(repositoryName=f"deny/{tag}")
    message = denied(ecr.delete_repository, repositoryName=f"deny/{tag}")
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/denied-{tag} is not authorized to "
                       f"perform: ecr:DeleteRepository on resource: {repo_arn(f'deny/{tag}')} "
                       "with an explicit deny in an identity-based policy")


def test_repository_policy_grants_another_accounts_role_pull(server, tmp_path, tag):
    ecr = server.client("ecr")
    name = f"shared/{tag}"
    ecr.create_repository(repositoryName=name)
    pushed = push_image(ecr, name, "v1")
    # account B: a role its root may assume, allowed to pull A's repository
    other_iam = server.client("iam", key=OTHER_KEY, secret=OTHER_SECRET)
    role = other_iam.create_role(RoleName=f"puller-{tag}", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": OTHER_ACCOUNT}, "Action": "sts:AssumeRole"}
    ))["Role"]
    other_iam.put_role_policy(RoleName=role["RoleName"], PolicyName="pull", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Effect": "Allow", "Action": [*PULL, "ecr:DescribeImages"], "Resource": repo_arn(name)}))
    creds = server.client("sts", key=OTHER_KEY, secret=OTHER_SECRET).assume_role(
        RoleArn=role["Arn"], RoleSessionName="pull")["Credentials"]
    b_ecr = server.client("ecr", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                          token=creds["SessionToken"])
    message = denied(b_ecr.batch_get_image, registryId=ACCOUNT, repositoryName=name,
                     imageIds=[{"imageTag": "v1"}])
    assert message.endswith("because no resource-based policy allows the ecr:BatchGetImage action")
    assert "assumed-role/puller-" in message
    ecr.set_repository_policy(repositoryName=name, policyText=json.dumps({
        "Version": "2008-10-17", "Statement": [{
            "Sid": "CrossAccountPull", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, "Action": PULL}]}))
    assert json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])[
        "Statement"][0]["Sid"] == "CrossAccountPull"
    got = b_ecr.batch_get_image(registryId=ACCOUNT, repositoryName=name,
                                imageIds=[{"imageTag": "v1"}])["images"]
    assert got[0]["imageId"]["imageDigest"] == pushed.digest
    # the repository policy does not reach actions it does not grant
    denied(b_ecr.describe_images, registryId=ACCOUNT, repositoryName=name)
    # and skopeo pulls through the registry as that role
    sk = skopeo_as(server, tmp_path, creds["AccessKeyId"], creds["SecretAccessKey"],
                   creds["SessionToken"])
    sk.pull(name, "v1", f"dir:{tmp_path / 'b'}")
    assert (tmp_path / "b" / "manifest.json").exists()
    ecr.delete_repository_policy(repositoryName=name)
    denied(b_ecr.batch_get_image, registryId=ACCOUNT, repositoryName=name,
           imageIds=[{"imageTag": "v1"}])


def test_session_policy_narrows_an_assumed_role(server, tag):
    iam = server.client("iam")
    role = iam.create_role(RoleName=f"wide-{tag}", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}))["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"],
                           PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser")
    sts = server.client("sts")
    wide = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="wide")["Credentials"]
    narrow = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="narrow", Policy=doc(
        {"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": "*"}))["Credentials"]

    def client(c):
        return server.client("ecr", key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                             token=c["SessionToken"])

    client(wide).get_authorization_token()
    client(narrow).describe_repositories()
    message = denied(client(narrow).get_authorization_token)
    assert message == (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/wide-{tag}/narrow is not "
                       "authorized to perform: ecr:GetAuthorizationToken on resource: * because "
                       "no session policy allows the ecr:GetAuthorizationToken action")
    ident = server.client("sts", key=narrow["AccessKeyId"], secret=narrow["SecretAccessKey"],
                          token=narrow["SessionToken"]).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/wide-{tag}/narrow"


def test_permissions_boundary_caps_a_user(server, tag):
    iam = server.client("iam")
    key = user_with_policy(
        iam, f"capped-{tag}", doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        PermissionsBoundary="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
    ecr = server.client("ecr", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    ecr.describe_repositories()
    message = denied(ecr.create_repository, repositoryName=f"capped/{tag}")
    assert message.endswith("because no permissions boundary allows the ecr:CreateRepository "
                            "action")
    iam.delete_user_permissions_boundary(UserName=f"capped-{tag}")
    ecr.create_repository(repositoryName=f"capped/{tag}")


def test_assume_role_requires_trust_and_external_id(server, tag):
    iam = server.client("iam")
    role = iam.create_role(RoleName=f"ext-{tag}", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:ExternalId": "secret-42"}}}))["Role"]
    sts = server.client("sts")
    message = denied(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1")
    assert "sts:AssumeRole" in message
    out = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", ExternalId="secret-42",
                          DurationSeconds=900, SourceIdentity="alice")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ext-{tag}/s1"
    assert out["SourceIdentity"] == "alice"
    expires = out["Credentials"]["Expiration"]
    assert timedelta(seconds=850) < expires - datetime.now(UTC) <= timedelta(seconds=900)
    # a user with no sts:AssumeRole permission cannot use a trust policy naming the account
    key = user_with_policy(iam, f"nobody-{tag}", doc(
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}))
    user_sts = server.client("sts", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    denied(user_sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1",
           ExternalId="secret-42")
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", ExternalId="secret-42",
                        DurationSeconds=7200)
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_expired_temporary_credentials_are_refused(server, tag):
    iam = server.client("iam")
    role = iam.create_role(RoleName=f"short-{tag}", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}))["Role"]
    creds = server.client("sts").assume_role(RoleArn=role["Arn"],
                                             RoleSessionName="s1")["Credentials"]
    session = server.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    # let the clock run out: the credentials' expiry moves into the past (before first use)
    db = sqlite3.connect(server.data_dir / "state.db")
    past = (datetime.now(UTC) - timedelta(minutes=1)).timestamp()
    db.execute("UPDATE access_keys SET expires_at = ? WHERE access_key_id IN (?, ?)",
               (past, creds["AccessKeyId"], session["AccessKeyId"]))
    db.commit()
    db.close()
    for c in (creds, session):
        sts = server.client("sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                            token=c["SessionToken"])
        with pytest.raises(ClientError) as e:
            sts.get_caller_identity()
        assert e.value.response["Error"]["Code"] == "ExpiredToken"


def test_request_context_keys_resource_tags_request_tags_and_source_ip(server, tag):
    """aws:ResourceTag / ecr:ResourceTag from the repository's tags, aws:RequestTag and
    aws:TagKeys from the request's tags, aws:SourceIp from the peer address."""
    iam, ecr = server.client("iam"), server.client("ecr")
    red, blue = f"abac/{tag}/red", f"abac/{tag}/blue"
    ecr.create_repository(repositoryName=red, tags=[{"Key": "team", "Value": "red"}])
    ecr.create_repository(repositoryName=blue, tags=[{"Key": "team", "Value": "blue"}])
    key = user_with_policy(iam, f"abac-{tag}", doc(
        {"Effect": "Allow", "Action": "ecr:DescribeImages", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/Team": "red"}}},
        {"Effect": "Allow", "Action": "ecr:ListImages", "Resource": "*",
         "Condition": {"StringEquals": {"ecr:ResourceTag/team": "blue"}}},
        {"Effect": "Allow", "Action": ["ecr:CreateRepository", "ecr:TagResource"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/team": "red"},
                                        "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}},
        {"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
        {"Effect": "Deny", "Action": "ecr:GetAuthorizationToken", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}))
    user = server.client("ecr", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    user.describe_images(repositoryName=red)
    denied(user.describe_images, repositoryName=blue)
    user.list_images(repositoryName=blue)
    denied(user.list_images, repositoryName=red)
    user.create_repository(repositoryName=f"abac/{tag}/new",
                           tags=[{"Key": "team", "Value": "red"}])
    denied(user.create_repository, repositoryName=f"abac/{tag}/new2",
           tags=[{"Key": "team", "Value": "blue"}])
    denied(user.create_repository, repositoryName=f"abac/{tag}/new3",
           tags=[{"Key": "team", "Value": "red"}, {"Key": "owner", "Value": "me"}])
    user.describe_repositories()
    message = denied(user.get_authorization_token)
    assert message.endswith("with an explicit deny in an identity-based policy")


def test_session_tags_become_principal_tags_and_policy_variables(server, tag):
    """AssumeRole with Tags needs sts:TagSession in the trust policy; the session's tags are
    aws:PrincipalTag/<k> and resolve ${aws:PrincipalTag/<k>} in the role's policies."""
    iam, ecr = server.client("iam"), server.client("ecr")
    for team in ("red", "blue"):
        ecr.create_repository(repositoryName=f"{team}-{tag}/app")
    trust = {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
    role = iam.create_role(RoleName=f"teams-{tag}", AssumeRolePolicyDocument=doc(trust))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="own-team", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "ecr:DescribeImages",
         "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/${{aws:PrincipalTag/team}}-*"}))
    sts = server.client("sts")
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="red",
                        Tags=[{"Key": "team", "Value": "red"}])
    assert "sts:TagSession" in e.value.response["Error"]["Message"]
    iam.update_assume_role_policy(RoleName=role["RoleName"], PolicyDocument=doc(
        {**trust, "Action": ["sts:AssumeRole", "sts:TagSession"]}))
    c = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="red",
                        Tags=[{"Key": "team", "Value": "red"}])["Credentials"]
    session = server.client("ecr", key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                            token=c["SessionToken"])
    session.describe_images(repositoryName=f"red-{tag}/app")
    denied(session.describe_images, repositoryName=f"blue-{tag}/app")


def test_registry_token_ends_with_its_temporary_credentials(fresh_server, tmp_path, tag):
    """A registry password obtained with temporary credentials stops working when they
    expire (ECR: the token's validity is capped by the credentials')."""
    server = fresh_server.start()
    iam, ecr = server.client("iam"), server.client("ecr")
    ecr.create_repository(repositoryName=f"tmp/{tag}")
    push_image(ecr, f"tmp/{tag}", "v1")
    role = iam.create_role(RoleName=f"reg-{tag}", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}))["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"],
                           PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
    c = server.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="reg")["Credentials"]
    token = server.client("ecr", key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                          token=c["SessionToken"]).get_authorization_token()[
        "authorizationData"][0]["authorizationToken"]
    from tests.registry.v2 import V2

    v2 = V2(server.endpoint, token)
    assert v2.get(f"/v2/tmp/{tag}/manifests/v1").status_code == 200
    server.stop()
    db = sqlite3.connect(server.data_dir / "state.db")
    db.execute("UPDATE access_keys SET expires_at = ? WHERE access_key_id = ?",
               ((datetime.now(UTC) - timedelta(minutes=1)).timestamp(), c["AccessKeyId"]))
    db.commit()
    db.close()
    server.start()
    r = V2(server.endpoint, token).get(f"/v2/tmp/{tag}/manifests/v1")
    assert r.status_code == 403
    assert r.json()["errors"][0]["code"] == "DENIED"


def test_session_policy_arns_narrow_an_assumed_role(server, tag):
    iam = server.client("iam")
    role = iam.create_role(RoleName=f"arns-{tag}", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}))["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"],
                           PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    c = server.client("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="ro",
        PolicyArns=[{"arn": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"}]
    )["Credentials"]
    ecr = server.client("ecr", key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                        token=c["SessionToken"])
    ecr.describe_repositories()
    assert denied(ecr.create_repository, repositoryName=f"arns/{tag}").endswith(
        "because no session policy allows the ecr:CreateRepository action")


def test_create_repository_with_tags_also_needs_tag_resource(server, tag):
    """Dependent action (SAR): CreateRepository with tags is also authorized as
    ecr:TagResource."""
    key = user_with_policy(server.client("iam"), f"notag-{tag}", doc(
        {"Effect": "Allow", "Action": "ecr:CreateRepository", "Resource": "*"}))
    ecr = server.client("ecr", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    ecr.create_repository(repositoryName=f"notag/{tag}/a")
    message = denied(ecr.create_repository, repositoryName=f"notag/{tag}/b",
                     tags=[{"Key": "k", "Value": "v"}])
    assert "ecr:TagResource" in message
