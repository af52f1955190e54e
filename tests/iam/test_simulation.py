"""SimulatePrincipalPolicy / SimulateCustomPolicy answer what enforcement decides."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_simulate_principal_policy_matches_enforcement(server):
    iam = server.client("iam")
    name = "sim-" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(
        {"Sid": "Read", "Effect": "Allow", "Action": "ecr:Describe*", "Resource": "*"},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"}))
    iam.attach_user_policy(UserName=name,
                           PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    out = iam.simulate_principal_policy(
        PolicySourceArn=user_arn,
        ActionNames=["ecr:DescribeRepositories", "ecr:DeleteRepository", "ecr:CreateRepository",
                     "ecr:BatchGetImage"])["EvaluationResults"]
    by_action = {r["EvalActionName"]: r for r in out}
    assert by_action["ecr:DescribeRepositories"]["EvalDecision"] == "allowed"
    sources = {(m["SourcePolicyId"], m["SourcePolicyType"])
               for m in by_action["ecr:DescribeRepositories"]["MatchedStatements"]}
    assert sources == {("p", "user"), ("AmazonEC2ContainerRegistryReadOnly", "aws-managed")}
    assert by_action["ecr:DeleteRepository"]["EvalDecision"] == "explicitDeny"
    assert by_action["ecr:CreateRepository"]["EvalDecision"] == "implicitDeny"
    assert by_action["ecr:BatchGetImage"]["EvalDecision"] == "allowed"
    # and enforcement agrees
    key = iam.create_access_key(UserName=name)["AccessKey"]
    ecr = server.client("ecr", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    ecr.describe_repositories()
    for call in (lambda: ecr.create_repository(repositoryName=f"{name}/x"),
                 lambda: ecr.delete_repository(repositoryName=f"{name}/x")):
        with pytest.raises(ClientError):
            call()


def test_simulate_custom_policy_with_context_and_resource_policy(server):
    iam = server.client("iam")
    policy = doc({"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*",
                  "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    results = iam.simulate_custom_policy(
        PolicyInputList=[policy], ActionNames=["ecr:BatchGetImage"],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["10.1.1.1"],
                         "ContextKeyType": "ip"}])["EvaluationResults"]
    assert results[0]["EvalDecision"] == "allowed"
    results = iam.simulate_custom_policy(
        PolicyInputList=[policy], ActionNames=["ecr:BatchGetImage"],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["192.168.1.1"],
                         "ContextKeyType": "ip"}])["EvaluationResults"]
    assert results[0]["EvalDecision"] == "implicitDeny"
    repo = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/x"
    results = iam.simulate_custom_policy(
        PolicyInputList=[doc({"Effect": "Allow", "Action": "ecr:ListImages", "Resource": "*"})],
        ActionNames=["ecr:BatchGetImage"], ResourceArns=[repo],
        CallerArn=f"arn:aws:iam::{ACCOUNT}:user/bob",
        ResourcePolicy=json.dumps({"Version": "2008-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"},
            "Action": "ecr:BatchGetImage"}]}))["EvaluationResults"]
    assert results[0]["EvalDecision"] == "allowed"
    assert results[0]["MatchedStatements"][0]["SourcePolicyType"] == "resource"
    with pytest.raises(ClientError) as e:
        iam.simulate_custom_policy(PolicyInputList=["{bad"], ActionNames=["ecr:ListImages"])
    assert e.value.response["Error"]["Code"] == "MalformedPolicyDocument"


def test_simulate_role_with_boundary(server):
    iam = server.client("iam")
    name = "simr-" + uuid.uuid4().hex[:8]
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
         "Action": "sts:AssumeRole"}),
        PermissionsBoundary="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")["Role"]
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    out = iam.simulate_principal_policy(PolicySourceArn=role["Arn"],
                                        ActionNames=["ecr:ListImages", "ecr:PutImage"])
    decisions = {r["EvalActionName"]: r for r in out["EvaluationResults"]}
    assert decisions["ecr:ListImages"]["EvalDecision"] == "allowed"
    assert decisions["ecr:PutImage"]["EvalDecision"] == "implicitDeny"
    assert decisions["ecr:PutImage"]["PermissionsBoundaryDecisionDetail"] == {
        "AllowedByPermissionsBoundary": False}
