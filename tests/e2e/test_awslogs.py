"""The awslogs log driver end to end (issue 12): real containers on crun ship their output to
CloudWatch Logs, read back with boto3's GetLogEvents and `corral tasks logs`; multi-line
joining; a missing group, create-group, an execution role without logs permissions (the
failures as AWS shows them, reference §7); and lines written while Corral is down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from tests.e2e.test_ecs_tasks import _need_root, describe, register, run, until, wait
from tests.runtime import imagebuild

ACCOUNT, REGION = "000000000000", "us-east-1"
HIT = b"""#!/bin/sh
echo "GET /hit?$QUERY_STRING" >&2
printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
"""
SERVE = ("mkdir -p /w/cgi-bin && cp /app/hit /w/cgi-bin/hit && chmod +x /w/cgi-bin/hit && "
         "exec httpd -f -p 8080 -h /w")
JAVA = ("2024-05-01 10:00:00,123 ERROR [main] App - request failed\n"
        "java.lang.IllegalStateException: boom\n"
        "\tat com.example.App.handle(App.java:42)\n"
        "\tat com.example.App.main(App.java:10)\n"
        "2024-05-01 10:00:01,000 INFO [main] App - recovered\n")
ECS_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="module")
def image(server) -> str:
    """busybox with the CGI script that logs one line per request."""
    _need_root()
    img = imagebuild.Image([imagebuild.busybox_layer({"/app/hit": HIT})],
                           imagebuild.config(cmd=["sh", "-c", SERVE]))
    imagebuild.push(server.client("ecr"), "e2e/awslogs", "v1", img)
    return f"127.0.0.1:{server.port}/e2e/awslogs:v1"


def _group() -> str:
    return f"/ecs/e2e-{uuid.uuid4().hex[:8]}"


def _container(image: str, group: str, **options: str) -> dict:
    return {"name": "web", "image": image, "memory": 64, "stopTimeout": 2,
            "portMappings": [{"containerPort": 8080}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-region": REGION,
                "awslogs-stream-prefix": "prefix", **options}}}


def _messages(logs, group: str, stream: str) -> list[str]:
    """Every event of the stream, oldest first, following GetLogEvents' forward token."""
    out, token = [], None
    while True:
        kw = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, **kw)
        out += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            return out
        token = page["nextForwardToken"]


def _wait_for(logs, group: str, stream: str, expected: list[str], timeout: float = 20) -> None:
    """The stream holds exactly ``expected`` within ``timeout`` (what it held, if not)."""
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        got = _messages(logs, group, stream)
        if got == expected:
            return
        time.sleep(0.5)
    assert got == expected


def _task_id(task: dict) -> str:
    return task["taskArn"].rsplit("/", 1)[1]


def _stopped_reason(server, task: dict) -> dict:
    wait(server, "tasks-stopped", task["taskArn"])
    return describe(server, task["taskArn"])


def _role(server, name: str, *logs_actions: str) -> str:
    """A role ECS tasks can assume, allowed to pull images and ``logs_actions``."""
    iam = server.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=ECS_TRUST)["Role"]["Arn"]
    _allow(server, name, *logs_actions)
    return arn


def _allow(server, name: str, *logs_actions: str) -> None:
    statements = [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]
    if logs_actions:
        statements.append({"Effect": "Allow", "Action": list(logs_actions),
                           "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/*"})
    server.client("iam").put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))


def test_requests_are_shipped_to_the_prefixed_stream_in_order(server, image):
    logs = server.client("logs")
    group = _group()
    logs.create_log_group(logGroupName=group)
    task = run(server, register(server, "e2e-awslogs", [_container(image, group)]))
    wait(server, "tasks-running", task["taskArn"])
    stream = f"prefix/web/{_task_id(task)}"
    port = describe(server, task["taskArn"])["containers"][0]["networkBindings"][0]["hostPort"]
    for n in range(1, 6):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cgi-bin/hit?n={n}", timeout=5):
            pass
    expected = [f"GET /hit?n={n}" for n in range(1, 6)]
    _wait_for(logs, group, stream, expected)
    [described] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert described["logStreamName"] == stream  # storedBytes: always 0 for streams (AWS)
    assert described["firstEventTimestamp"] <= described["lastEventTimestamp"]
    out = subprocess.run([sys.executable, "-m", "corral.cli", "tasks", "logs", task["taskArn"],
                          "--endpoint", server.endpoint], capture_output=True, text=True,
                         timeout=30)
    assert f"CloudWatch Logs, log group {group}, stream {stream}" in out.stderr, out
    assert [ln for ln in out.stdout.splitlines()] == [f"web | {m}" for m in expected], out
    server.client("ecs").stop_task(task=task["taskArn"])
    wait(server, "tasks-stopped", task["taskArn"])


def test_stack_traces_are_joined_by_the_datetime_format(server, image):
    logs = server.client("logs")
    group = _group()
    logs.create_log_group(logGroupName=group)
    job = _container(image, group, **{"awslogs-datetime-format": "%Y-%m-%d %H:%M:%S"})
    job["command"] = ["sh", "-c", f"printf '{JAVA}'"]
    task = run(server, register(server, "e2e-awslogs-ml", [job]))
    wait(server, "tasks-stopped", task["taskArn"])
    lines = JAVA.splitlines(keepends=True)
    assert _messages(logs, group, f"prefix/web/{_task_id(task)}") == [
        "".join(lines[:4]), lines[4]]


def test_a_missing_group_without_create_group_fails_the_task_as_aws_does(server, image):
    task = run(server, register(server, "e2e-awslogs-missing", [_container(image, _group())]))
    got = _stopped_reason(server, task)
    reason = ("CannotStartContainerError: Error response from daemon: failed to initialize "
              "logging driver: failed to create Cloudwatch log stream: "
              "ResourceNotFoundException: The specified log group does not exist.")
    assert (got["stopCode"], got["stoppedReason"]) == ("TaskFailedToStart", reason)
    assert got["containers"][0]["reason"] == reason


def test_create_group_true_creates_the_group_and_stream(server, image):
    logs = server.client("logs")
    group = _group()
    job = _container(image, group, **{"awslogs-create-group": "true"})
    job["command"] = ["sh", "-c", "echo created"]
    task = run(server, register(server, "e2e-awslogs-create", [job]))
    wait(server, "tasks-stopped", task["taskArn"])
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["logGroupName"] == group
    assert _messages(logs, group, f"prefix/web/{_task_id(task)}") == ["created"]


def test_an_execution_role_without_logs_permissions_fails_as_aws_shows_it(server, image):
    logs = server.client("logs")
    name = f"exec-nologs-{uuid.uuid4().hex[:8]}"
    role = _role(server, name)  # image pulls only
    group = _group()
    logs.create_log_group(logGroupName=group)
    task = run(server, register(server, "e2e-awslogs-denied", [_container(image, group)],
                                executionRoleArn=role))
    got = _stopped_reason(server, task)
    task_id = _task_id(task)
    assert got["stoppedReason"].startswith(
        "CannotStartContainerError: Error response from daemon: failed to initialize logging "
        "driver: failed to create Cloudwatch log stream: AccessDeniedException: User: "
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{task_id} is not authorized to perform: "
        f"logs:CreateLogStream on resource: arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
        f":log-stream:prefix/web/{task_id}"), got["stoppedReason"]
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []


@pytest.mark.parametrize(("options", "expected"), [
    ({"mode": "blocking"}, range(1, 41)),  # lines wait on disk: none lost
    ({"mode": "non-blocking", "max-buffer-size": "200"}, range(35, 41)),  # 6 × (7 + 26) bytes
], ids=["blocking", "non-blocking"])
def test_a_denied_delivery_is_retried_and_logged(server, image, options, expected):
    name = f"exec-noput-{uuid.uuid4().hex[:8]}"
    role = _role(server, name, "logs:CreateLogStream")
    group = _group()
    server.client("logs").create_log_group(logGroupName=group)
    writer = _container(image, group, **options)
    writer["command"] = ["sh", "-c", "for i in $(seq 1 40); do echo line $i; done; "
                                     "exec sleep 3600"]
    task = run(server, register(server, "e2e-awslogs-noput", [writer], executionRoleArn=role))
    wait(server, "tasks-running", task["taskArn"])
    task_id = _task_id(task)
    until(lambda: f"awslogs {task_id}/web: PutLogEvents failed: AccessDeniedException: User: "
                  f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{task_id} is not authorized to "
                  "perform: logs:PutLogEvents" in server.log.read_text(), 20, 0.5)
    _allow(server, name, "logs:CreateLogStream", "logs:PutLogEvents")
    _wait_for(server.client("logs"), group, f"prefix/web/{task_id}",
              [f"line {i}" for i in expected])
    if options["mode"] == "non-blocking":
        assert f"awslogs {task_id}/web: non-blocking mode has dropped 34 lines" in \
            server.log.read_text()
    server.client("ecs").stop_task(task=task["taskArn"])
    wait(server, "tasks-stopped", task["taskArn"])


def test_lines_written_while_corral_is_down_are_shipped_after_restart(fresh_server):
    _need_root()
    srv = fresh_server.start()
    img = imagebuild.Image([imagebuild.busybox_layer()], imagebuild.config(cmd=["sh"]))
    imagebuild.push(srv.client("ecr"), "e2e/writer", "v1", img)
    logs, group, total = srv.client("logs"), _group(), 300
    logs.create_log_group(logGroupName=group)
    writer = _container(f"127.0.0.1:{srv.port}/e2e/writer:v1", group, mode="blocking")
    writer["command"] = ["sh", "-c", f"for i in $(seq 1 {total}); do echo line $i; "
                                     "usleep 30000; done"]
    del writer["portMappings"]
    task = run(srv, register(srv, "e2e-awslogs-restart", [writer]))
    stream = f"prefix/web/{_task_id(task)}"
    until(lambda: len(_messages(logs, group, stream)) >= 10, 30, 0.3)
    srv.stop()  # the task keeps writing: its supervisor holds the log file
    time.sleep(4)
    srv.start()
    wait(srv, "tasks-stopped", task["taskArn"])
    assert _messages(logs, group, stream) == [f"line {i}" for i in range(1, total + 1)]
