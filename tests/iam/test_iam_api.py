"""The IAM API with boto3 against a real server: users, groups, roles, managed and inline
policies, versions, attachments, access keys, pagination, AWS's error codes."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

READ_ECR = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:Describe*", "Resource": "*"}]})
TRUST_ECS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
     "Action": "sts:AssumeRole"}]})


@pytest.fixture
def iam(server):
    return server.client("iam")


@pytest.fixture
def name():
    return "n" + uuid.uuid4().hex[:10]


def error_of(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as e:
        call(*args, **kwargs)
    err = e.value.response["Error"]
    return err["Code"], err["Message"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_user_lifecycle_and_errors(iam, name):
    user = iam.create_user(UserName=name, Path="/team/", Tags=[{"Key": "k", "Value": "v"}])["User"]
    assert user["Arn"] == f"arn:aws:iam::000000000000:user/team/{name}"
    assert user["UserId"].startswith("AIDA") and len(user["UserId"]) == 21
    assert iam.get_user(UserName=name)["User"]["Tags"] == [{"Key": "k", "Value": "v"}]
    assert error_of(iam.create_user, UserName=name) == (
        "EntityAlreadyExists", f"User with name {name} already exists.", 409)
    iam.delete_user(UserName=name)
    assert error_of(iam.get_user, UserName=name) == (
        "NoSuchEntity", f"The user with name {name} cannot be found.", 404)


def test_list_users_paginates_with_marker(iam, name):
    for i in range(5):
        iam.create_user(UserName=f"{name}-{i}", Path=f"/{name}/")
    page = iam.list_users(PathPrefix=f"/{name}/", MaxItems=2)
    assert page["IsTruncated"] and len(page["Users"]) == 2
    seen = [u["UserName"] for u in page["Users"]]
    while page["IsTruncated"]:
        page = iam.list_users(PathPrefix=f"/{name}/", MaxItems=2, Marker=page["Marker"])
        seen += [u["UserName"] for u in page["Users"]]
    assert seen == [f"{name}-{i}" for i in range(5)]
    paginated = iam.get_paginator("list_users").paginate(PathPrefix=f"/{name}/",
                                                         PaginationConfig={"PageSize": 3})
    assert sum(len(p["Users"]) for p in paginated) == 5


def test_groups_membership_and_delete_conflict(iam, name):
    iam.create_user(UserName=name)
    iam.create_group(GroupName=name)
    iam.add_user_to_group(GroupName=name, UserName=name)
    got = iam.get_group(GroupName=name)
    assert [u["UserName"] for u in got["Users"]] == [name]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]] == [name]
    code, message, status = error_of(iam.delete_group, GroupName=name)
    assert (code, status) == ("DeleteConflict", 409)
    iam.remove_user_from_group(GroupName=name, UserName=name)
    iam.delete_group(GroupName=name)
    iam.delete_user(UserName=name)


def test_role_with_trust_policy(iam, name):
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ECS,
                           MaxSessionDuration=7200, Description="task role")["Role"]
    assert role["Arn"] == f"arn:aws:iam::000000000000:role/{name}"
    assert role["RoleId"].startswith("AROA")
    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == json.loads(TRUST_ECS)
    assert got["MaxSessionDuration"] == 7200
    code, message, _ = error_of(iam.create_role, RoleName=name + "x",
                                AssumeRolePolicyDocument=READ_ECR)
    assert code == "MalformedPolicyDocument"
    iam.delete_role(RoleName=name)


def test_managed_policy_versions(iam, name):
    arn = iam.create_policy(PolicyName=name, PolicyDocument=READ_ECR)["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::000000000000:policy/{name}"
    for _ in range(4):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=READ_ECR)
    code, message, status = error_of(iam.create_policy_version, PolicyArn=arn,
                                     PolicyDocument=READ_ECR)
    assert (code, status) == ("LimitExceeded", 409)
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v3")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v3")["PolicyVersion"]
    assert version["Document"] == json.loads(READ_ECR) and version["IsDefaultVersion"]
    assert error_of(iam.delete_policy_version, PolicyArn=arn, VersionId="v3")[0] == "DeleteConflict"
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 4
    assert error_of(iam.create_policy, PolicyName=name, PolicyDocument=READ_ECR)[0] == (
        "EntityAlreadyExists")
    iam.delete_policy(PolicyArn=arn)


def test_attach_detach_and_list_scopes(iam, name):
    iam.create_user(UserName=name)
    aws = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
    iam.attach_user_policy(UserName=name, PolicyArn=aws)
    attached = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
    assert attached == [{"PolicyName": "AmazonEC2ContainerRegistryReadOnly", "PolicyArn": aws}]
    names = {p["PolicyName"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert {"AdministratorAccess", "ReadOnlyAccess", "AmazonEC2ContainerRegistryReadOnly",
            "AmazonEC2ContainerRegistryPowerUser", "AmazonECS_FullAccess",
            "AmazonECSTaskExecutionRolePolicy"} <= names
    assert all(not p["Arn"].startswith("arn:aws:iam::aws:")
               for p in iam.list_policies(Scope="Local")["Policies"])
    doc = iam.get_policy_version(PolicyArn=aws, VersionId="v1")["PolicyVersion"]["Document"]
    assert "ecr:BatchGetImage" in doc["Statement"][0]["Action"]
    code, _, status = error_of(iam.attach_user_policy, UserName=name,
                               PolicyArn="arn:aws:iam::000000000000:policy/nope")
    assert (code, status) == ("NoSuchEntity", 404)
    iam.detach_user_policy(UserName=name, PolicyArn=aws)
    assert iam.list_attached_user_policies(UserName=name)["AttachedPolicies"] == []


def test_inline_policies(iam, name):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ECS)
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=READ_ECR)
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["read"]
    assert iam.get_role_policy(RoleName=name, PolicyName="read")["PolicyDocument"] == json.loads(
        READ_ECR)
    assert error_of(iam.delete_role, RoleName=name)[0] == "DeleteConflict"
    iam.delete_role_policy(RoleName=name, PolicyName="read")
    assert error_of(iam.get_role_policy, RoleName=name, PolicyName="read") == (
        "NoSuchEntity", "The role policy with name read cannot be found.", 404)


def test_access_keys(iam, server, name):
    iam.create_user(UserName=name)
    k1 = iam.create_access_key(UserName=name)["AccessKey"]
    iam.create_access_key(UserName=name)
    assert error_of(iam.create_access_key, UserName=name) == (
        "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
    sts = server.client("sts", key=k1["AccessKeyId"], secret=k1["SecretAccessKey"])
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
    last = iam.get_access_key_last_used(AccessKeyId=k1["AccessKeyId"])
    assert last["UserName"] == name and last["AccessKeyLastUsed"]["ServiceName"] == "sts"
    iam.update_access_key(UserName=name, AccessKeyId=k1["AccessKeyId"], Status="Inactive")
    assert error_of(sts.get_caller_identity)[0] == "InvalidClientTokenId"
    iam.update_access_key(UserName=name, AccessKeyId=k1["AccessKeyId"], Status="Active")
    assert sts.get_caller_identity()["Account"] == "000000000000"
    iam.delete_access_key(UserName=name, AccessKeyId=k1["AccessKeyId"])
    assert error_of(sts.get_caller_identity)[0] == "InvalidClientTokenId"
    assert len(iam.list_access_keys(UserName=name)["AccessKeyMetadata"]) == 1
    assert error_of(iam.delete_user, UserName=name)[0] == "DeleteConflict"


BAD_POLICIES = [
    ("malformed_json", "{not json", "MalformedPolicyDocument", "Syntax errors in policy."),
    ("unknown_version", json.dumps({"Version": "2099-01-01", "Statement": []}),
     "MalformedPolicyDocument", "The policy failed legacy parsing"),
    ("bad_arn", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "repo/x"}]}),
     "MalformedPolicyDocument", 'Resource repo/x must be in ARN format or "*".'),
    ("invalid_operator", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*",
         "Condition": {"StringEqualsSometimes": {"aws:username": "a"}}}]}),
     "MalformedPolicyDocument", "Invalid Condition type : StringEqualsSometimes"),
    ("oversized", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": [f"ecr:Action{i:05d}" for i in range(400)],
         "Resource": "*"}]}), "LimitExceeded", "Cannot exceed quota for PolicySize: 6144"),
]


@pytest.mark.parametrize("case", BAD_POLICIES, ids=[c[0] for c in BAD_POLICIES])
def test_bad_policy_input_is_refused_and_nothing_stored(iam, name, case):
    """IAM answers MalformedPolicyDocument with the reason (an oversized document: IAM's
    LimitExceeded naming the PolicySize quota) and stores nothing."""
    _, document, code, message = case
    assert error_of(iam.create_policy, PolicyName=name, PolicyDocument=document)[:2] == (
        code, message)
    assert name not in {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]}
    iam.create_user(UserName=name)
    assert error_of(iam.put_user_policy, UserName=name, PolicyName="p",
                    PolicyDocument=document)[0] in (code, "LimitExceeded")
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == []


def test_permissions_boundary_api(iam, name):
    aws = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
    iam.create_user(UserName=name, PermissionsBoundary=aws)
    assert iam.get_user(UserName=name)["User"]["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": aws}
    iam.delete_user_permissions_boundary(UserName=name)
    assert "PermissionsBoundary" not in iam.get_user(UserName=name)["User"]


def test_get_account_authorization_details(iam, name):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=READ_ECR)
    aws = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam.attach_user_policy(UserName=name, PolicyArn=aws)
    out = iam.get_account_authorization_details(Filter=["User", "AWSManagedPolicy"])
    user = next(u for u in out["UserDetailList"] if u["UserName"] == name)
    assert user["UserPolicyList"] == [{"PolicyName": "inline",
                                       "PolicyDocument": json.loads(READ_ECR)}]
    assert user["AttachedManagedPolicies"] == [{"PolicyName": "ReadOnlyAccess", "PolicyArn": aws}]
    assert aws in {p["Arn"] for p in out["Policies"]}
    assert out["RoleDetailList"] == []


def test_update_user_renames_and_keys_follow(iam, server, name):
    iam.create_user(UserName=name)
    iam.create_group(GroupName=name)
    iam.add_user_to_group(GroupName=name, UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=READ_ECR)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sts = server.client("sts", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
    iam.update_user(UserName=name, NewUserName=name + "-new", NewPath="/moved/")
    assert sts.get_caller_identity()["Arn"] == (
        f"arn:aws:iam::000000000000:user/moved/{name}-new")
    assert iam.list_user_policies(UserName=name + "-new")["PolicyNames"] == ["p"]
    assert [u["UserName"] for u in iam.get_group(GroupName=name)["Users"]] == [name + "-new"]
    server.client("ecr", key=key["AccessKeyId"],
                  secret=key["SecretAccessKey"]).describe_repositories()
    assert error_of(iam.get_user, UserName=name)[0] == "NoSuchEntity"


def test_list_entities_for_policy(iam, name):
    aws = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ECS)
    iam.attach_role_policy(RoleName=name, PolicyArn=aws)
    out = iam.list_entities_for_policy(PolicyArn=aws)
    assert {r["RoleName"] for r in out["PolicyRoles"]} >= {name}
    assert iam.get_policy(PolicyArn=aws)["Policy"]["AttachmentCount"] >= 1
