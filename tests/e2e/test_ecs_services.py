"""ECS services end to end with the real aws CLI: the course's worked example (a service of 3
tasks updated to revision 2 with zero downtime), the circuit breaker rolling a broken revision
back, scaling, replacement of a killed task, DeleteService and a DAEMON service.
Reference: shared/reference/ecs-semantics.md §3."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_ecs_tasks import register, until
from tests.runtime import imagebuild

HEALTH = {"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/rev"],
          "interval": 5, "timeout": 2, "retries": 1}
VPC = "awsvpcConfiguration={subnets=[subnet-12345678]}"


@pytest.fixture(scope="module", autouse=True)
def no_services_left(server):
    """The module's services are deleted at its end, their tasks stopped."""
    yield
    ecs = server.client("ecs")
    for arn in ecs.list_services()["serviceArns"]:
        ecs.delete_service(service=arn, force=True)
    until(lambda: not ecs.list_tasks(desiredStatus="RUNNING")["taskArns"], 60)
    until(lambda: all(t["lastStatus"] == "STOPPED" for t in ecs.describe_tasks(
        tasks=arns)["tasks"]) if (arns := ecs.list_tasks(desiredStatus="STOPPED")["taskArns"])
        else True, 60)


@pytest.fixture(scope="module")
def web_image(server):
    if os.geteuid() != 0:
        pytest.fail("ECS service tests run containers: run them as root (CI does)")
    ecr = server.client("ecr")
    image = imagebuild.Image([imagebuild.busybox_layer({"/www/index.html": b"web\n"})],
                             imagebuild.config(cmd=["sh"]))
    imagebuild.push(ecr, "e2e/svc", "v1", image)
    return f"127.0.0.1:{server.port}/e2e/svc:v1"


def web_def(server, family: str, image: str, rev: str, health: dict = HEALTH) -> str:
    return register(server, family, [{
        "name": "web", "image": image, "memory": 32, "stopTimeout": 2,
        "linuxParameters": {"initProcessEnabled": True},
        "environment": [{"name": "REV", "value": rev}],
        "command": ["sh", "-c", "echo $REV > /www/rev; exec httpd -f -p 8080 -h /www"],
        "portMappings": [{"containerPort": 8080}], "healthCheck": health}],
        networkMode="awsvpc")


def aws_json(server, *args: str) -> dict:
    out = server.aws(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}


def service(ecs, name: str) -> dict:
    return ecs.describe_services(services=[name])["services"][0]


def task_list(ecs, name: str, desired: str = "RUNNING") -> list[dict]:
    arns = ecs.list_tasks(serviceName=name, desiredStatus=desired)["taskArns"]
    return ecs.describe_tasks(tasks=arns)["tasks"] if arns else []


def endpoint(task: dict) -> str:
    return task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]


def wait_stable(server, name: str) -> None:
    out = server.aws("ecs", "wait", "services-stable", "--services", name)
    assert out.returncode == 0, (out.stderr, service(server.client("ecs"), name))


def messages(ecs, name: str) -> list[str]:
    """The service's events, oldest first."""
    return [e["message"] for e in reversed(service(ecs, name)["events"])]


class Poller(threading.Thread):
    """A client of the service: every 100 ms it asks every task ECS shows RUNNING, healthy and
    desired RUNNING which revision it is, and records the answers and the failures."""

    def __init__(self, ecs, name: str):
        super().__init__(daemon=True)
        self.ecs, self.name = ecs, name
        self.rounds: list[list[str]] = []
        self.failures: list[tuple[str, str]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            answers = []
            for task in task_list(self.ecs, self.name):
                if task["lastStatus"] != "RUNNING" or task.get("healthStatus") != "HEALTHY":
                    continue
                try:
                    with urllib.request.urlopen(f"http://{endpoint(task)}:8080/rev",
                                                timeout=2) as r:
                        answers.append(r.read().decode().strip())
                except OSError as e:
                    # a task told to stop between our listing and our request is not a
                    # dropped request; any other failure is
                    again = self.ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0]
                    if again["desiredStatus"] == "RUNNING":
                        self.failures.append((task["taskArn"], str(e)))
            self.rounds.append(answers)
            time.sleep(0.1)


def test_rolling_update_to_revision_2_with_zero_downtime(server, web_image):
    ecs = server.client("ecs")
    rev1 = web_def(server, "web", web_image, "1")
    rev2 = web_def(server, "web", web_image, "2")
    created = aws_json(server, "ecs", "create-service", "--service-name", "web",
                       "--task-definition", rev1, "--desired-count", "3",
                       "--network-configuration", VPC)["service"]
    assert created["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    wait_stable(server, "web")
    first = service(ecs, "web")
    assert first["runningCount"] == 3 and len(first["deployments"]) == 1
    assert first["deployments"][0]["rolloutState"] == "COMPLETED"

    poller = Poller(ecs, "web")
    poller.start()
    until(lambda: poller.rounds and poller.rounds[-1] == ["1", "1", "1"], 20)
    updated = aws_json(server, "ecs", "update-service", "--service", "web",
                       "--task-definition", rev2)["service"]
    primary, active = updated["deployments"]
    assert primary["status"] == "PRIMARY" and primary["taskDefinition"] == rev2
    assert active["status"] == "ACTIVE" and active["rolloutState"] == "COMPLETED"
    wait_stable(server, "web")
    time.sleep(0.5)
    poller.stop_event.set()
    poller.join()

    assert poller.failures == []
    after_update = poller.rounds[next(i for i, r in enumerate(poller.rounds) if "2" in r):]
    assert all(len(r) >= 3 for r in after_update), "fewer than 3 healthy tasks answered"
    assert poller.rounds[-1] == ["2", "2", "2"]
    done = service(ecs, "web")
    assert done["taskDefinition"] == rev2 and len(done["deployments"]) == 1
    tasks = task_list(ecs, "web")
    assert {t["taskDefinitionArn"] for t in tasks} == {rev2} and len(tasks) == 3
    assert {t["startedBy"] for t in tasks} == {primary["id"]}
    assert {t["group"] for t in tasks} == {"service:web"}
    old = task_list(ecs, "web", "STOPPED")
    assert {t["stoppedReason"] for t in old if t["startedBy"] == active["id"]} == \
        {f"Scaling activity initiated by (deployment {active['id']})"}
    log = messages(ecs, "web")
    assert any(m.startswith("(service web) has started 3 tasks: (task ") for m in log)
    assert any(m.startswith("(service web) has stopped 1 running tasks: (task ")
               or m.startswith("(service web) has stopped 3 running tasks: (task ") for m in log)
    assert log[-2:] == [f"(service web) (deployment {primary['id']}) deployment completed.",
                        "(service web) has reached a steady state."]

    # a revision whose health check always fails: the breaker trips and rolls back
    broken = web_def(server, "web", web_image, "3",
                     dict(HEALTH, command=["CMD-SHELL", "exit 1"]))
    aws_json(server, "ecs", "update-service", "--service", "web", "--task-definition", broken,
             "--deployment-configuration",
             "deploymentCircuitBreaker={enable=true,rollback=true}")
    bad = service(ecs, "web")["deployments"][0]["id"]
    until(lambda: any("rolling back" in m for m in messages(ecs, "web")), 90, 1)
    wait_stable(server, "web")
    rolled = service(ecs, "web")
    assert rolled["taskDefinition"] == rev2
    assert rolled["deployments"][0]["id"] == primary["id"]
    log = messages(ecs, "web")
    assert f"(service web) (deployment {bad}) deployment failed: tasks failed to start." in log
    assert f"(service web) rolling back to deployment {primary['id']}." in log
    assert {t["taskDefinitionArn"] for t in task_list(ecs, "web")} == {rev2}
    deployments = ecs.list_service_deployments(service="web")["serviceDeployments"]
    assert len(deployments) >= 3


def test_scaling_and_replacing_a_killed_task(server, web_image):
    ecs = server.client("ecs")
    rev = web_def(server, "scale", web_image, "1")
    ecs.create_service(serviceName="scale", taskDefinition=rev, desiredCount=1,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    wait_stable(server, "scale")
    ecs.update_service(service="scale", desiredCount=3)
    wait_stable(server, "scale")
    assert len(task_list(ecs, "scale")) == 3
    ecs.update_service(service="scale", desiredCount=1)
    wait_stable(server, "scale")
    (task,) = task_list(ecs, "scale")

    victim = task["taskArn"].rsplit("/", 1)[1]
    for procs in Path("/sys/fs/cgroup/pids/corral", victim).glob("*/cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):  # PID 1 going takes the rest along
                os.kill(int(pid), signal.SIGKILL)
    gone = until(lambda: (t := ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0])
                 ["lastStatus"] == "STOPPED" and t, 30)
    assert gone["stoppedReason"] == "Essential container in task exited"
    until(lambda: [t for t in task_list(ecs, "scale") if t["taskArn"] != task["taskArn"]
                   and t["lastStatus"] == "RUNNING"], 30)

    out = server.aws("ecs", "delete-service", "--service", "scale")
    assert out.returncode != 0 and "scaled above 0" in out.stderr
    deleted = aws_json(server, "ecs", "delete-service", "--service", "scale", "--force")
    assert deleted["service"]["status"] == "DRAINING"
    out = server.aws("ecs", "wait", "services-inactive", "--services", "scale")
    assert out.returncode == 0, out.stderr
    assert task_list(ecs, "scale") == []


def test_a_daemon_service_runs_one_task_on_the_local_instance(server, web_image):
    ecs = server.client("ecs")
    rev = web_def(server, "daemon", web_image, "1")
    ecs.create_service(serviceName="daemon", taskDefinition=rev, schedulingStrategy="DAEMON",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    wait_stable(server, "daemon")
    got = service(ecs, "daemon")
    assert got["desiredCount"] == 1 and got["runningCount"] == 1
    assert got["deploymentConfiguration"]["maximumPercent"] == 100
    ecs.delete_service(service="daemon", force=True)
    until(lambda: service(ecs, "daemon")["status"] == "INACTIVE", 60)


def test_a_restart_mid_deployment_resumes_it_without_duplicate_tasks(fresh_server):
    if os.geteuid() != 0:
        pytest.fail("ECS service tests run containers: run them as root (CI does)")
    srv = fresh_server.start()
    ecs = srv.client("ecs")
    image = imagebuild.Image([imagebuild.busybox_layer({"/www/index.html": b"web\n"})],
                             imagebuild.config(cmd=["sh"]))
    imagebuild.push(srv.client("ecr"), "e2e/svc", "v1", image)
    uri = f"127.0.0.1:{srv.port}/e2e/svc:v1"
    rev1, rev2 = web_def(srv, "resume", uri, "1"), web_def(srv, "resume", uri, "2")
    ecs.create_service(serviceName="resume", taskDefinition=rev1, desiredCount=2,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    wait_stable(srv, "resume")
    ecs.update_service(service="resume", taskDefinition=rev2)
    new = service(ecs, "resume")["deployments"][0]["id"]
    until(lambda: any(t["startedBy"] == new for t in task_list(ecs, "resume")), 30, 0.1)
    srv.stop()  # mid-rollout: new tasks started, old ones still serving
    srv.start()
    wait_stable(srv, "resume")
    started = [t for t in task_list(ecs, "resume") + task_list(ecs, "resume", "STOPPED")
               if t["startedBy"] == new]
    assert len(started) == 2, started  # no task was started twice
    assert {t["taskDefinitionArn"] for t in task_list(ecs, "resume")} == {rev2}
    ecs.delete_service(service="resume", force=True)
    out = srv.aws("ecs", "wait", "services-inactive", "--services", "resume")
    assert out.returncode == 0, out.stderr
