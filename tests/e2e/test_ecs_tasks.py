"""ECS tasks that really run, end to end with the real aws CLI and boto3: images pushed to
Corral, task definitions registered, tasks run on crun, published ports curled, health checks,
OOM kills, stop reasons, dependsOn, sidecar volumes, and restarts of Corral itself (adoption,
kill -9 while a task exits). Reference: shared/reference/ecs-semantics.md §1, §2, §5."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.runtime import imagebuild

INDEX = b"<h1>hello from corral</h1>\n"


def _need_root() -> None:
    import os

    if os.geteuid() != 0:
        pytest.fail("ECS task tests run containers: run them as root (CI does)")


@pytest.fixture(scope="module")
def app_image(server):
    """busybox with a page to serve: ``<endpoint host>/e2e/app:v1``."""
    _need_root()
    ecr = server.client("ecr")
    image = imagebuild.Image([imagebuild.busybox_layer({"/www/index.html": INDEX})],
                             imagebuild.config(cmd=["httpd", "-f", "-p", "8080", "-h", "/www"]))
    imagebuild.push(ecr, "e2e/app", "v1", image)
    uri = ecr.describe_repositories(repositoryNames=["e2e/app"])["repositories"][0][
        "repositoryUri"]
    return f"{uri}:v1"


@pytest.fixture
def ecs(server):
    return server.client("ecs")


def register(server, family: str, containers: list[dict], **extra) -> str:
    """Register with the real aws CLI; the new task definition's ARN."""
    doc = {"family": family, "containerDefinitions": containers, **extra}
    out = server.aws("ecs", "register-task-definition", "--cli-input-json", json.dumps(doc))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["taskDefinition"]["taskDefinitionArn"]


def run(server, task_def: str, *args: str) -> dict:
    out = server.aws("ecs", "run-task", "--task-definition", task_def, *args)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["failures"] == [], body
    return body["tasks"][0]


def wait(server, waiter: str, task_arn: str) -> None:
    out = server.aws("ecs", "wait", waiter, "--tasks", task_arn)
    assert out.returncode == 0, (out.stderr, describe(server, task_arn))


def describe(server, task_arn: str) -> dict:
    out = server.aws("ecs", "describe-tasks", "--tasks", task_arn)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["tasks"][0]


def until(predicate, timeout: float = 30, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not true within {timeout}s: {predicate}")


def stop(ecs, task_arn: str) -> dict:
    ecs.stop_task(task=task_arn)
    return until(lambda: (t := ecs.describe_tasks(tasks=[task_arn])["tasks"][0])
                 ["lastStatus"] == "STOPPED" and t, 60)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


def web(image: str, **extra) -> dict:
    return {"name": "web", "image": image, "memory": 64, "stopTimeout": 2,
            "portMappings": [{"containerPort": 8080}], **extra}


# --- running and reaching a task -------------------------------------------------------------

def test_bridge_task_runs_and_its_dynamic_port_answers_on_the_host(server, ecs, app_image):
    td = register(server, "e2e-web", [web(app_image)])
    task = run(server, td)
    assert task["lastStatus"] == "PENDING" and task["desiredStatus"] == "RUNNING"
    assert task["group"] == "family:e2e-web" and task["launchType"] == "EC2"
    wait(server, "tasks-running", task["taskArn"])
    got = describe(server, task["taskArn"])
    container = got["containers"][0]
    binding = container["networkBindings"][0]
    assert binding["containerPort"] == 8080 and binding["protocol"] == "tcp"
    assert 1024 < binding["hostPort"] <= 65535
    assert fetch(f"http://127.0.0.1:{binding['hostPort']}/index.html") == INDEX
    assert container["imageDigest"].startswith("sha256:")
    assert container["runtimeId"].startswith(got["taskArn"].rsplit("/", 1)[1])
    assert got["createdAt"] <= got["pullStartedAt"] <= got["pullStoppedAt"] <= got["startedAt"]
    stopped = stop(ecs, task["taskArn"])
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "Task stopped by user"
    assert stopped["containers"][0]["lastStatus"] == "STOPPED"
    assert stopped["startedAt"] <= stopped["stoppingAt"] <= stopped["stoppedAt"]
    assert stopped["version"] > task["version"]


def test_awsvpc_task_gets_a_private_address_that_answers(server, ecs, app_image):
    td = register(server, "e2e-vpc", [web(app_image)], networkMode="awsvpc",
                  requiresCompatibilities=["FARGATE"], cpu="256", memory="512")
    task = run(server, td, "--launch-type", "FARGATE", "--network-configuration",
               "awsvpcConfiguration={subnets=[subnet-12345678],assignPublicIp=DISABLED}")
    assert task["lastStatus"] == "PROVISIONING"
    wait(server, "tasks-running", task["taskArn"])
    got = describe(server, task["taskArn"])
    eni = got["attachments"][0]
    assert eni["type"] == "ElasticNetworkInterface" and eni["status"] == "ATTACHED"
    details = {d["name"]: d["value"] for d in eni["details"]}
    ip = details["privateIPv4Address"]
    assert got["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] == ip
    assert fetch(f"http://{ip}:8080/index.html") == INDEX
    assert got["platformVersion"] and got["cpu"] == "256" and got["memory"] == "512"
    task_cgroup = f"/sys/fs/cgroup/memory/corral/{got['taskArn'].rsplit('/', 1)[1]}"
    with open(f"{task_cgroup}/memory.limit_in_bytes") as f:  # task-level memory, enforced
        assert int(f.read()) == 512 * 1024 * 1024
    stopped = stop(ecs, task["taskArn"])
    assert stopped["attachments"][0]["status"] == "DELETED"


def test_stop_with_a_reason(server, ecs, app_image):
    td = register(server, "e2e-reason", [web(app_image)])
    task = run(server, td)
    wait(server, "tasks-running", task["taskArn"])
    out = server.aws("ecs", "stop-task", "--task", task["taskArn"], "--reason", "maintenance")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["task"]["desiredStatus"] == "STOPPED"
    wait(server, "tasks-stopped", task["taskArn"])
    assert describe(server, task["taskArn"])["stoppedReason"] == "maintenance"


# --- exits, health and limits ---------------------------------------------------------------

def test_an_essential_exit_stops_the_task_with_its_exit_code(server, ecs, app_image):
    td = register(server, "e2e-exit", [{"name": "job", "image": app_image, "memory": 32,
                                        "command": ["sh", "-c", "echo working; exit 7"]}])
    task = run(server, td)
    wait(server, "tasks-stopped", task["taskArn"])
    got = describe(server, task["taskArn"])
    assert got["stopCode"] == "EssentialContainerExited"
    assert got["stoppedReason"] == "Essential container in task exited"
    assert got["containers"][0]["exitCode"] == 7
    assert got["executionStoppedAt"] <= got["stoppedAt"]
    out = subprocess.run([sys.executable, "-m", "corral.cli", "tasks", "logs", task["taskArn"],
                          "--endpoint", server.endpoint], capture_output=True, text=True,
                         timeout=30)
    assert "job | working" in out.stdout, out


def test_a_container_past_its_memory_limit_is_oom_killed(server, ecs, app_image):
    hog = "x=$(head -c 120000000 /dev/zero | tr '\\0' a); echo survived"
    td = register(server, "e2e-oom", [{"name": "hog", "image": app_image, "memory": 16,
                                       "command": ["sh", "-c", hog]}])
    task = run(server, td)
    wait(server, "tasks-stopped", task["taskArn"])
    container = describe(server, task["taskArn"])["containers"][0]
    assert container["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert container["exitCode"] == 137


def test_a_failing_health_check_turns_the_container_unhealthy(server, ecs, app_image):
    script = "touch /tmp/ok; httpd -p 8080 -h /www; sleep 7; rm /tmp/ok; sleep 600"
    td = register(server, "e2e-health", [{
        "name": "web", "image": app_image, "memory": 32, "stopTimeout": 2,
        "command": ["sh", "-c", script],
        "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ok"], "interval": 5,
                        "timeout": 2, "retries": 1}}])
    task = run(server, td)
    wait(server, "tasks-running", task["taskArn"])
    until(lambda: describe(server, task["taskArn"])["healthStatus"] == "HEALTHY", 20)
    got = until(lambda: (t := describe(server, task["taskArn"]))["healthStatus"] == "UNHEALTHY"
                and t, 30)
    assert got["containers"][0]["healthStatus"] == "UNHEALTHY"
    assert got["lastStatus"] == "RUNNING"  # a standalone task keeps running (§2.2)
    stop(ecs, task["taskArn"])


# --- ordering and volumes --------------------------------------------------------------------

def test_depends_on_success_and_a_sidecar_reading_the_app_volume(server, ecs, app_image):
    td = register(server, "e2e-sidecar", [
        {"name": "init", "image": app_image, "memory": 16, "essential": False,
         "command": ["sh", "-c", "echo seeded > /data/seed"],
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"}]},
        {"name": "app", "image": app_image, "memory": 16, "stopTimeout": 2,
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
         "command": ["sh", "-c", "cat /data/seed > /data/app.log; echo app-line >> /data/app.log;"
                                 " sleep 600"],
         "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"}]},
        {"name": "sidecar", "image": app_image, "memory": 16, "essential": False,
         "stopTimeout": 2, "volumesFrom": [{"sourceContainer": "app", "readOnly": True}],
         "dependsOn": [{"containerName": "app", "condition": "START"}],
         "command": ["sh", "-c", "while ! grep -q app-line /data/app.log; do sleep 0.2; done;"
                                 " cat /data/app.log; sleep 600"]},
    ], volumes=[{"name": "shared"}])
    task = run(server, td)
    wait(server, "tasks-running", task["taskArn"])
    out = until(lambda: (r := subprocess.run(
        [sys.executable, "-m", "corral.cli", "tasks", "logs", task["taskArn"], "--container",
         "sidecar", "--endpoint", server.endpoint], capture_output=True, text=True,
        timeout=30)).stdout.count("sidecar |") >= 2 and r.stdout, 20)
    assert "sidecar | seeded" in out and "sidecar | app-line" in out
    got = describe(server, task["taskArn"])
    init = next(c for c in got["containers"] if c["name"] == "init")
    assert init["lastStatus"] == "STOPPED" and init["exitCode"] == 0
    stop(ecs, task["taskArn"])


# --- bad input ends in AWS's shapes ----------------------------------------------------------

def test_a_missing_image_ends_with_cannot_pull(server, ecs):
    _need_root()
    uri = f"127.0.0.1:{server.port}/e2e/nope:v9"
    td = register(server, "e2e-nopull", [{"name": "app", "image": uri, "memory": 16}])
    task = run(server, td)
    wait(server, "tasks-stopped", task["taskArn"])
    got = describe(server, task["taskArn"])
    assert got["stopCode"] == "TaskFailedToStart"
    assert got["stoppedReason"].startswith("CannotPullContainerError: ")
    assert got["containers"][0]["reason"] == got["stoppedReason"]


def test_a_command_that_does_not_exist_ends_with_cannot_start(server, ecs, app_image):
    td = register(server, "e2e-nocmd", [{"name": "app", "image": app_image, "memory": 16,
                                         "command": ["/no/such/binary"]}])
    task = run(server, td)
    wait(server, "tasks-stopped", task["taskArn"])
    got = describe(server, task["taskArn"])
    assert got["stopCode"] == "TaskFailedToStart", got
    assert got["stoppedReason"].startswith(("CannotStartContainerError: ",
                                            "CannotCreateContainerError: ")), got
    assert "/no/such/binary" in got["stoppedReason"]


def test_an_unsatisfiable_memory_request_is_a_failure_not_an_overcommit(server, ecs, app_image):
    td = register(server, "e2e-huge", [{"name": "app", "image": app_image,
                                        "memory": 64 * 1024 * 1024}])
    out = ecs.run_task(taskDefinition=td)
    assert out["tasks"] == []
    assert out["failures"][0]["reason"] == "RESOURCE:MEMORY"
    assert ":container-instance/default/" in out["failures"][0]["arn"]


# --- Corral restarts -------------------------------------------------------------------------

def _push_to(srv) -> str:
    ecr = srv.client("ecr")
    image = imagebuild.Image([imagebuild.busybox_layer()], imagebuild.config(cmd=["sh"]))
    imagebuild.push(ecr, "e2e/box", "v1", image)
    return f"127.0.0.1:{srv.port}/e2e/box:v1"


def test_restarting_corral_adopts_a_running_task(fresh_server):
    _need_root()
    srv = fresh_server.start()
    image = _push_to(srv)
    td = register(srv, "e2e-adopt", [{"name": "app", "image": image, "memory": 16,
                                      "stopTimeout": 1, "command": ["sleep", "600"]}])
    task = run(srv, td)
    wait(srv, "tasks-running", task["taskArn"])
    runtime_id = describe(srv, task["taskArn"])["containers"][0]["runtimeId"]
    srv.stop()  # SIGTERM: tasks keep running
    srv.start()
    got = describe(srv, task["taskArn"])
    assert got["lastStatus"] == "RUNNING"
    assert got["containers"][0]["runtimeId"] == runtime_id
    ecs = srv.client("ecs")
    stopped = stop(ecs, task["taskArn"])
    assert stopped["containers"][0]["exitCode"] in (137, 143)


def test_kill_9_while_a_task_exits_keeps_its_exit_code(fresh_server):
    _need_root()
    srv = fresh_server.start()
    image = _push_to(srv)
    td = register(srv, "e2e-kill9", [{"name": "app", "image": image, "memory": 16,
                                      "command": ["sh", "-c", "sleep 3; exit 42"]}])
    task = run(srv, td)
    until(lambda: describe(srv, task["taskArn"])["lastStatus"] == "RUNNING", 30, 0.1)
    srv.stop(signal.SIGKILL)
    time.sleep(4)  # the container exits while nobody but its supervisor watches
    srv.start()
    wait(srv, "tasks-stopped", task["taskArn"])
    got = describe(srv, task["taskArn"])
    assert got["containers"][0]["exitCode"] == 42
    assert got["stopCode"] == "EssentialContainerExited"


def test_corral_down_leaves_tasks_running_unless_told_to_stop_them(fresh_server):
    _need_root()
    srv = fresh_server.start()
    image = _push_to(srv)
    td = register(srv, "e2e-down", [{"name": "app", "image": image, "memory": 16,
                                     "stopTimeout": 1, "command": ["sleep", "600"]}])
    task = run(srv, td)
    wait(srv, "tasks-running", task["taskArn"])

    def down(*flags: str) -> None:
        out = subprocess.run([sys.executable, "-m", "corral.cli", "down", *flags, "--endpoint",
                              srv.endpoint], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out
        srv.proc.wait(timeout=30)

    down()
    srv.start()
    assert describe(srv, task["taskArn"])["lastStatus"] == "RUNNING"
    down("--stop-tasks")
    srv.start()
    got = describe(srv, task["taskArn"])
    assert got["lastStatus"] == "STOPPED" and got["stopCode"] == "UserInitiated"
    assert got["stoppedReason"] == "Task stopped by user"


def test_host_and_none_network_modes(server, ecs, app_image):
    from tests.server import free_port

    port = free_port()
    td = register(server, "e2e-host", [web(app_image, command=[
        "httpd", "-f", "-p", str(port), "-h", "/www"], portMappings=[
        {"containerPort": port}])], networkMode="host")
    task = run(server, td)
    wait(server, "tasks-running", task["taskArn"])
    binding = describe(server, task["taskArn"])["containers"][0]["networkBindings"][0]
    assert binding["hostPort"] == binding["containerPort"] == port
    assert fetch(f"http://127.0.0.1:{port}/index.html") == INDEX
    stop(ecs, task["taskArn"])

    td = register(server, "e2e-none", [{"name": "app", "image": app_image, "memory": 16,
                                        "command": ["sh", "-c", "ls /sys/class/net; exit 0"]}],
                  networkMode="none")
    task = run(server, td)
    wait(server, "tasks-stopped", task["taskArn"])
    out = server.admin("ecs/task-logs", {"task": task["taskArn"]})
    assert [line["text"] for line in out["lines"]] == ["lo"]
