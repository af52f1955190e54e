"""Task definitions and ECS tags through a real Corral server, with boto3 and the aws CLI.

Each test works in families of its own (a unique prefix), so the shared server's other
contents never matter.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"


@pytest.fixture
def ecs(server):
    return server.client("ecs")


@pytest.fixture
def fam():
    """A family-name factory unique to the test: fam("web") -> "t<hex>-web"."""
    prefix = "t" + uuid.uuid4().hex[:10]
    return lambda name="web": f"{prefix}-{name}"


def container(**fields) -> dict:
    return {"name": "app", "image": "busybox", "memory": 64, **fields}


def register(ecs, family: str, **extra) -> dict:
    extra.setdefault("containerDefinitions", [container()])
    return ecs.register_task_definition(family=family, **extra)["taskDefinition"]


def error_of(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    e = err.value.response["Error"]
    return e["Code"], e["Message"]


def test_register_returns_full_shape_with_defaults(ecs, fam):
    td = register(ecs, fam(), containerDefinitions=[container(
        image=f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/web:1",
        portMappings=[{"containerPort": 80}])])
    assert td["taskDefinitionArn"] == (
        f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{fam()}:1")
    assert (td["family"], td["revision"], td["status"]) == (fam(), 1, "ACTIVE")
    assert td["networkMode"] == "bridge"
    assert td["compatibilities"] == ["EC2"]
    assert isinstance(td["registeredAt"], datetime)
    assert td["registeredBy"] == f"arn:aws:iam::{ACCOUNT}:root"
    c = td["containerDefinitions"][0]
    assert (c["essential"], c["cpu"], c["environment"], c["mountPoints"],
            c["volumesFrom"]) == (True, 0, [], [], [])
    assert c["portMappings"] == [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]
    assert {"name": "com.amazonaws.ecs.capability.ecr-auth"} in td["requiresAttributes"]


def test_fargate_definition_normalizes_size_and_is_fargate_compatible(ecs, fam):
    td = register(ecs, fam(), requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                  cpu="0.5 vCPU", memory="1 GB",
                  containerDefinitions=[container(portMappings=[{"containerPort": 8080}])])
    assert (td["cpu"], td["memory"]) == ("512", "1024")
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert td["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 8080
    assert {"name": "ecs.capability.task-eni"} in td["requiresAttributes"]


def test_every_request_field_round_trips(ecs, fam):
    role = f"arn:aws:iam::{ACCOUNT}:role/app"
    spec = dict(
        taskRoleArn=role, executionRoleArn=role, networkMode="awsvpc", cpu="256",
        memory="512", pidMode="task", ipcMode="none",
        volumes=[{"name": "data", "dockerVolumeConfiguration": {"scope": "task"}}],
        placementConstraints=[{"type": "memberOf",
                               "expression": "attribute:ecs.os-type == linux"}],
        runtimePlatform={"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        enableFaultInjection=False,
        containerDefinitions=[container(
            command=["sleep", "60"], entryPoint=["/bin/sh", "-c"],
            environment=[{"name": "A", "value": "1"}], workingDirectory="/tmp", user="1000",
            readonlyRootFilesystem=True, stopTimeout=10, startTimeout=5,
            mountPoints=[{"sourceVolume": "data", "containerPath": "/data",
                          "readOnly": False}],
            ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            linuxParameters={"initProcessEnabled": True},
            dockerLabels={"team": "a"},
            restartPolicy={"enabled": True, "ignoredExitCodes": [0],
                           "restartAttemptPeriod": 60},
            healthCheck={"command": ["CMD-SHELL", "true"], "interval": 10})])
    td = register(ecs, fam(), **spec)
    got = ecs.describe_task_definition(taskDefinition=fam())["taskDefinition"]
    for key, value in spec.items():
        if key not in ("containerDefinitions",):
            assert got[key] == value, key
    c, want = got["containerDefinitions"][0], spec["containerDefinitions"][0]
    for key, value in want.items():
        if key != "healthCheck":
            assert c[key] == value, key
    assert c["healthCheck"] == {"command": ["CMD-SHELL", "true"], "interval": 10,
                                "timeout": 5, "retries": 3}
    assert got == td


def test_revisions_increase_also_after_deregister_and_delete(ecs, fam):
    assert [register(ecs, fam())["revision"] for _ in range(3)] == [1, 2, 3]
    ecs.deregister_task_definition(taskDefinition=f"{fam()}:3")
    ecs.delete_task_definitions(taskDefinitions=[f"{fam()}:3"])
    assert register(ecs, fam())["revision"] == 4


def test_describe_forms_and_latest_active(ecs, fam):
    register(ecs, fam())
    second = register(ecs, fam())
    assert ecs.describe_task_definition(taskDefinition=fam())["taskDefinition"] == second
    arn = second["taskDefinitionArn"]
    assert ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["revision"] == 2
    first = ecs.describe_task_definition(taskDefinition=f"{fam()}:1")["taskDefinition"]
    assert first["revision"] == 1
    ecs.deregister_task_definition(taskDefinition=f"{fam()}:2")
    latest = ecs.describe_task_definition(taskDefinition=fam())["taskDefinition"]
    assert latest["revision"] == 1


@pytest.mark.parametrize("ref", ["nope-family", "nope-family:1",
                                 f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/nope:7"])
def test_describe_unknown_is_client_exception(ecs, ref):
    assert error_of(ecs.describe_task_definition, taskDefinition=ref) == (
        "ClientException", "Unable to describe task definition.")


def test_describe_bad_revision_number(ecs, fam):
    assert error_of(ecs.describe_task_definition, taskDefinition=f"{fam()}:latest") == (
        "ClientException", "Invalid revision number. Number: latest")


def test_invalid_definition_answers_client_exception(ecs, fam):
    assert error_of(ecs.register_task_definition, family="bad family",
                    containerDefinitions=[container()]) == (
        "ClientException", "Family contains invalid characters.")
    assert error_of(ecs.register_task_definition, family=fam(),
                    requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                    memory="4096", containerDefinitions=[container()]) == (
        "ClientException", "No Fargate configuration exists for given values: 256 CPU, 4096 "
        "memory. See the Amazon ECS documentation for the valid values.")
    # nothing was stored for the refused request
    assert ecs.list_task_definitions(familyPrefix=fam())["taskDefinitionArns"] == []


def test_deregister_makes_inactive_but_describable(ecs, fam):
    register(ecs, fam())
    td = ecs.deregister_task_definition(taskDefinition=f"{fam()}:1")["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert isinstance(td["deregisteredAt"], datetime)
    again = ecs.describe_task_definition(taskDefinition=f"{fam()}:1")["taskDefinition"]
    assert again["status"] == "INACTIVE"
    assert error_of(ecs.describe_task_definition, taskDefinition=fam()) == (
        "ClientException", "Unable to describe task definition.")
    assert error_of(ecs.deregister_task_definition, taskDefinition=f"{fam()}:1") == (
        "ClientException", "The specified task definition is already inactive.")
    assert error_of(ecs.deregister_task_definition, taskDefinition=f"{fam()}:9")[0] == (
        "ClientException")


def test_delete_only_inactive_with_failures(ecs, fam):
    register(ecs, fam())
    register(ecs, fam())
    ecs.deregister_task_definition(taskDefinition=f"{fam()}:1")
    arn = lambda r: f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{fam()}:{r}"  # noqa: E731
    out = ecs.delete_task_definitions(taskDefinitions=[f"{fam()}:1", f"{fam()}:2",
                                                       f"{fam()}:5"])
    assert [(t["revision"], t["status"]) for t in out["taskDefinitions"]] == [
        (1, "DELETE_IN_PROGRESS")]
    assert isinstance(out["taskDefinitions"][0]["deleteRequestedAt"], datetime)
    assert {f["arn"]: f["reason"] for f in out["failures"]} == {
        arn(2): "The specified task definition is still in ACTIVE status. Please deregister "
                "the target and try again.",
        arn(5): "The specified task definition does not exist. Specify a valid account, "
                "family, revision and try again."}
    for status in ("ACTIVE", "INACTIVE"):
        listed = ecs.list_task_definitions(familyPrefix=fam(), status=status)
        assert arn(1) not in listed["taskDefinitionArns"]
    deleting = ecs.list_task_definitions(familyPrefix=fam(), status="DELETE_IN_PROGRESS")
    assert deleting["taskDefinitionArns"] == [arn(1)]
    assert error_of(ecs.describe_task_definition, taskDefinition=f"{fam()}:1")[1] == (
        "Unable to describe task definition.")


def test_list_filters_sort_and_paging(ecs, fam):
    for name in ("b", "a"):
        for _ in range(3):
            register(ecs, fam(name))
    ecs.deregister_task_definition(taskDefinition=f"{fam('a')}:2")
    short = lambda arns: [a.rsplit("/", 1)[1].removeprefix(fam("")) for a in arns]  # noqa: E731
    mine = lambda arns: [a for a in arns if f"/{fam('')}" in a]  # noqa: E731

    def all_pages(**kw) -> list[str]:
        out, token = [], None
        while True:
            page = ecs.list_task_definitions(maxResults=2, **kw,
                                             **({"nextToken": token} if token else {}))
            assert len(page["taskDefinitionArns"]) <= 2
            out += page["taskDefinitionArns"]
            token = page.get("nextToken")
            if not token:
                return out

    assert short(all_pages(familyPrefix=fam("a"))) == ["a:1", "a:3"]
    assert short(mine(all_pages())) == ["a:1", "a:3", "b:1", "b:2", "b:3"]
    assert short(mine(all_pages(sort="DESC"))) == ["b:3", "b:2", "b:1", "a:3", "a:1"]
    assert short(all_pages(familyPrefix=fam("a"), status="INACTIVE")) == ["a:2"]
    # familyPrefix is the full family name for ListTaskDefinitions [BC]
    assert ecs.list_task_definitions(familyPrefix=fam("")[:-1])["taskDefinitionArns"] == []


def test_list_families_by_status_and_prefix(ecs, fam):
    register(ecs, fam("live"))
    register(ecs, fam("gone"))
    ecs.deregister_task_definition(taskDefinition=f"{fam('gone')}:1")
    register(ecs, fam("deleted"))
    ecs.deregister_task_definition(taskDefinition=f"{fam('deleted')}:1")
    ecs.delete_task_definitions(taskDefinitions=[f"{fam('deleted')}:1"])
    prefix = fam("")

    def families(**kw) -> list[str]:
        out, token = [], None
        while True:
            page = ecs.list_task_definition_families(familyPrefix=prefix, maxResults=1, **kw,
                                                     **({"nextToken": token} if token else {}))
            out += page["families"]
            token = page.get("nextToken")
            if not token:
                return out

    assert families() == [fam("gone"), fam("live")]
    assert families(status="ALL") == [fam("gone"), fam("live")]
    assert families(status="ACTIVE") == [fam("live")]
    assert families(status="INACTIVE") == [fam("gone")]


def test_max_results_range_and_bad_token(ecs):
    assert error_of(ecs.list_task_definitions, maxResults=101)[0] == (
        "InvalidParameterException")
    assert error_of(ecs.list_task_definitions, nextToken="garbage")[0] == (
        "InvalidParameterException")


def test_tags_on_register_describe_and_tag_operations(ecs, fam):
    td = register(ecs, fam(), tags=[{"key": "team", "value": "a"}])
    arn = td["taskDefinitionArn"]
    out = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert out["tags"] == [{"key": "team", "value": "a"}]
    assert "tags" not in ecs.describe_task_definition(taskDefinition=arn)
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "dev"},
                                            {"key": "team", "value": "b"}])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "env", "value": "dev"}, {"key": "team", "value": "b"}]
    ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "env", "value": "dev"}]


def test_tag_rules(ecs, fam):
    arn = register(ecs, fam())["taskDefinitionArn"]
    code, msg = error_of(ecs.tag_resource, resourceArn=arn,
                         tags=[{"key": "aws:owner", "value": "x"}])
    assert code == "InvalidParameterException" and "reserved" in msg
    too_many = [{"key": f"k{i}", "value": "v"} for i in range(40)]
    ecs.tag_resource(resourceArn=arn, tags=too_many)
    code, msg = error_of(ecs.tag_resource, resourceArn=arn,
                         tags=[{"key": f"x{i}", "value": "v"} for i in range(11)])
    assert code == "InvalidParameterException" and "at most 50" in msg
    code, _ = error_of(ecs.tag_resource, resourceArn=arn,
                       tags=[{"key": "k" * 129, "value": "v"}])
    assert code == "InvalidParameterException"
    assert len(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == 40


def test_tags_of_unknown_resources(ecs, fam):
    missing = [f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{fam()}:1",
               f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{fam()}",
               f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{fam()}/0123456789abcdef0123456789abcdef",
               f"arn:aws:ecs:us-east-1:{ACCOUNT}:container-instance/{fam()}/"
               f"0123456789abcdef0123456789abcdef",
               f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/x:1"]
    for arn in missing:
        assert error_of(ecs.list_tags_for_resource, resourceArn=arn)[0] == (
            "ResourceNotFoundException"), arn
    assert error_of(ecs.tag_resource, resourceArn="not-an-arn",
                    tags=[{"key": "a", "value": "b"}])[0] == "InvalidParameterException"


def test_register_with_the_aws_cli(server, fam):
    spec = {"family": fam("cli"), "networkMode": "awsvpc", "cpu": "1 vCPU", "memory": "2 GB",
            "requiresCompatibilities": ["FARGATE"],
            "containerDefinitions": [container(portMappings=[{"containerPort": 80}])],
            "tags": [{"key": "via", "value": "cli"}]}
    out = server.aws("ecs", "register-task-definition", "--cli-input-json", json.dumps(spec))
    assert out.returncode == 0, out.stderr
    td = json.loads(out.stdout)["taskDefinition"]
    assert (td["revision"], td["cpu"], td["memory"]) == (1, "1024", "2048")
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    out = server.aws("ecs", "describe-task-definition", "--task-definition", fam("cli"),
                     "--include", "TAGS")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tags"] == [{"key": "via", "value": "cli"}]
    bad = server.aws("ecs", "register-task-definition", "--family", fam("cli"),
                     "--container-definitions", json.dumps([{"name": "a", "image": "b"}]))
    assert bad.returncode != 0
    assert ("Invalid setting for container 'a'. At least one of 'memory' or "
            "'memoryReservation' must be specified.") in bad.stderr


# ── iam:PassRole (IAM User Guide id_roles_use_passrole; ECS task IAM roles) ─────────────────

def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _user_ecs(server, name: str, *extra: dict):
    """boto3 ECS client of a fresh IAM user allowed ecs:* plus ``extra`` statements."""
    iam = server.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=_policy(
        {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}, *extra))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return server.client("ecs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])


def _pass_role(role: str, service: str = "ecs-tasks.amazonaws.com") -> dict:
    return {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
            "Condition": {"StringEquals": {"iam:PassedToService": service}}}


PASS_ROLE_DENIED = [
    # (id, role field, statements beyond ecs:*)
    ("task_role_without_pass_role", "taskRoleArn", []),
    ("execution_role_without_pass_role", "executionRoleArn", []),
    ("pass_role_to_another_service", "taskRoleArn", ["lambda.amazonaws.com"]),
]


@pytest.mark.parametrize("case", PASS_ROLE_DENIED, ids=[c[0] for c in PASS_ROLE_DENIED])
def test_register_naming_a_role_needs_pass_role(server, fam, case):
    _, field, services = case
    role = f"arn:aws:iam::{ACCOUNT}:role/{fam('role')}"
    name = fam("user")
    user = _user_ecs(server, name, *[_pass_role(role, s) for s in services])
    code, message = error_of(register, user, fam(), **{field: role})
    assert code == "AccessDeniedException"
    assert message.startswith(
        f"User: arn:aws:iam::{ACCOUNT}:user/{name} is not authorized to perform: iam:PassRole "
        f"on resource: {role}")
    # nothing was stored: the family has no revision
    assert error_of(server.client("ecs").describe_task_definition,
                    taskDefinition=fam()) == ("ClientException", "Unable to describe task "
                                                                 "definition.")


def test_register_with_pass_role_allowed_stores_both_roles(server, fam):
    task_role = f"arn:aws:iam::{ACCOUNT}:role/{fam('task')}"
    exec_role = f"arn:aws:iam::{ACCOUNT}:role/{fam('exec')}"
    user = _user_ecs(server, fam("user"), _pass_role(task_role), _pass_role(exec_role))
    td = register(user, fam(), taskRoleArn=task_role, executionRoleArn=exec_role)
    assert (td["revision"], td["taskRoleArn"], td["executionRoleArn"]) == (
        1, task_role, exec_role)
    # a user allowed to pass only the task role is still refused the execution role
    only_task = _user_ecs(server, fam("user2"), _pass_role(task_role))
    code, message = error_of(register, only_task, fam(), taskRoleArn=task_role,
                             executionRoleArn=exec_role)
    assert code == "AccessDeniedException"
    assert f"iam:PassRole on resource: {exec_role}" in message
