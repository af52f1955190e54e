"""AWS managed policies that container users rely on, with their published action lists.

They live in code, not in the store: every account sees the same documents under
``arn:aws:iam::aws:policy/<path><name>``, attachable but not editable (IAM answers
``AccessDenied``/``InvalidInput`` for writes to them). ``ReadOnlyAccess`` is trimmed to the
services Corral serves (the real document lists every AWS service's read actions; the entries
for ecr/ecs/iam/logs/cloudwatch/inspector2/sts are the real ones). ``AmazonECS_FullAccess`` keeps
the statements about the services Corral serves plus its PassRole and service-linked-role
statements, with their conditions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

CREATED = datetime(2015, 2, 6, 18, 39, 46, tzinfo=UTC)


@dataclass(frozen=True)
class ManagedPolicy:
    name: str
    path: str
    description: str
    document: dict
    version: str = "v1"

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::aws:policy{self.path}{self.name}"

    @property
    def text(self) -> str:
        return json.dumps(self.document, indent=4)

    @property
    def policy_id(self) -> str:
        return "ANPA" + hashlib.sha256(self.name.encode()).hexdigest()[:17].upper()


def _allow(actions: list[str], resource: str = "*", **extra) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


def _doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


_ECR_READ = [
    "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
    "ecr:GetRepositoryPolicy", "ecr:DescribeRepositories", "ecr:ListImages", "ecr:DescribeImages",
    "ecr:BatchGetImage", "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview",
    "ecr:ListTagsForResource", "ecr:DescribeImageScanFindings",
]

POLICIES: tuple[ManagedPolicy, ...] = (
    ManagedPolicy("AdministratorAccess", "/",
                  "Provides full access to AWS services and resources.",
                  _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})),
    ManagedPolicy("ReadOnlyAccess", "/", "Provides read-only access to AWS services and resources.",
                  _doc(_allow([
                      "cloudwatch:BatchGet*", "cloudwatch:Describe*", "cloudwatch:GenerateQuery",
                      "cloudwatch:Get*", "cloudwatch:List*",
                      "ecr:BatchCheck*", "ecr:BatchGet*", "ecr:Describe*", "ecr:Get*", "ecr:List*",
                      "ecs:Describe*", "ecs:List*",
                      "iam:Generate*", "iam:Get*", "iam:List*", "iam:Simulate*",
                      "inspector2:BatchGet*", "inspector2:Describe*", "inspector2:Get*",
                      "inspector2:List*", "inspector2:Search*",
                      "logs:Describe*", "logs:FilterLogEvents", "logs:Get*",
                      "logs:ListTagsForResource", "logs:ListTagsLogGroup", "logs:StartLiveTail",
                      "logs:StartQuery", "logs:StopLiveTail", "logs:StopQuery",
                      "logs:TestMetricFilter",
                      "sts:GetCallerIdentity",
                  ]))),
    ManagedPolicy("AmazonEC2ContainerRegistryReadOnly", "/",
                  "Provides read-only access to Amazon EC2 Container Registry repositories.",
                  _doc(_allow(_ECR_READ))),
    ManagedPolicy("AmazonEC2ContainerRegistryPowerUser", "/",
                  "Provides full access to Amazon EC2 Container Registry repositories, but does "
                  "not allow repository deletion or policy changes.",
                  _doc(_allow(_ECR_READ + ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                           "ecr:CompleteLayerUpload", "ecr:PutImage"]))),
    ManagedPolicy("AmazonEC2ContainerRegistryFullAccess", "/",
                  "Provides administrative access to Amazon ECR resources",
                  _doc(_allow(["ecr:*", "cloudtrail:LookupEvents"]),
                       _allow(["iam:CreateServiceLinkedRole"], Condition={"StringEquals": {
                           "iam:AWSServiceName": ["replication.ecr.amazonaws.com"]}}))),
    ManagedPolicy("AmazonECSTaskExecutionRolePolicy", "/service-role/",
                  "Provides access to other AWS service resources that are required to run "
                  "Amazon ECS tasks",
                  _doc(_allow(["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                               "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
                               "logs:CreateLogStream", "logs:PutLogEvents"]))),
    ManagedPolicy("AmazonECS_FullAccess", "/",
                  "Provides administrative access to Amazon ECS resources and enables ECS "
                  "features through access to other AWS service resources.",
                  _doc(
                      _allow(["application-autoscaling:*", "cloudwatch:DeleteAlarms",
                              "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricStatistics",
                              "cloudwatch:PutMetricAlarm", "ecs:*", "elasticloadbalancing:*",
                              "iam:ListAttachedRolePolicies", "iam:ListInstanceProfiles",
                              "iam:ListRoles", "logs:CreateLogGroup", "logs:DescribeLogGroups",
                              "logs:FilterLogEvents", "servicediscovery:*", "sns:ListTopics",
                              "ssm:GetParameter", "ssm:GetParameters", "tag:GetResources"],
                             Sid="ECSIntegrationsManagementPolicy"),
                      _allow(["iam:PassRole"], Sid="ECSTaskExecutionPassRolePolicy",
                             Condition={"StringLike": {
                                 "iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
                      _allow(["iam:PassRole"], Sid="ECSInstancePassRolePolicy",
                             Resource="arn:aws:iam::*:role/ecsInstanceRole*",
                             Condition={"StringLike": {"iam:PassedToService": [
                                 "ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}),
                      _allow(["iam:PassRole"], Sid="ECSAutoScalingPassRolePolicy",
                             Resource="arn:aws:iam::*:role/ecsAutoscaleRole*",
                             Condition={"StringLike": {"iam:PassedToService": [
                                 "application-autoscaling.amazonaws.com"]}}),
                      _allow(["iam:CreateServiceLinkedRole"], Sid="ServiceLinkedRoleCreation",
                             Condition={"StringLike": {"iam:AWSServiceName": [
                                 "ecs.amazonaws.com", "autoscaling.amazonaws.com",
                                 "ecs.application-autoscaling.amazonaws.com"]}}),
                  )),
)
BY_ARN: dict[str, ManagedPolicy] = {p.arn: p for p in POLICIES}


def get(arn: str) -> ManagedPolicy | None:
    return BY_ARN.get(arn)
