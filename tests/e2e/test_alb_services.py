"""An ECS service behind an Application Load Balancer, end to end with the real aws CLI
(issue 11): an ALB with a listener and two rules in front of a 3-task service; curl through
it; slow requests in flight finish while their task drains; a task whose web server is killed
fails its ELB health checks and is replaced; a rolling update through the listener drops no
request. Reference: shared/reference/ecs-semantics.md §8."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e import albsvc
from tests.e2e.test_ecs_tasks import until


@pytest.fixture(scope="module")
def web(server):
    if os.geteuid() != 0:
        pytest.fail("ALB service tests run containers: run them as root (CI does)")
    if shutil.which("curl") is None:
        pytest.fail("the ALB tests curl through the listener: apt-get install curl")
    image = albsvc.push_image(server)
    alb = albsvc.create_alb(server, "e2e-alb-svc")
    revs = [albsvc.register_revision(server, "alb-web", image, rev) for rev in ("1", "2")]
    albsvc.create_service(server, "alb-web", alb, revs[0], 3)
    yield alb, revs
    albsvc.delete_all(server, "alb-web", alb)


def tasks(ecs) -> list[dict]:
    arns = ecs.list_tasks(serviceName="alb-web", desiredStatus="RUNNING")["taskArns"]
    return ecs.describe_tasks(tasks=arns)["tasks"] if arns else []


def ip(task: dict) -> str:
    return task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]


def health(server, alb) -> dict[str, dict]:
    out = albsvc.aws_json(server, "elbv2", "describe-target-health", "--target-group-arn",
                          alb.tg)
    return {d["Target"]["Id"]: d["TargetHealth"] for d in out["TargetHealthDescriptions"]}


def messages(ecs) -> list[str]:
    got = ecs.describe_services(services=["alb-web"])["services"][0]
    return [e["message"] for e in reversed(got["events"])]


def stable(server) -> None:
    out = server.aws("ecs", "wait", "services-stable", "--services", "alb-web")
    assert out.returncode == 0, out.stderr


def test_curl_through_the_listener_reaches_every_task(server, web):
    alb, _ = web
    ecs = server.client("ecs")
    stable(server)
    out = server.aws("elbv2", "wait", "target-in-service", "--target-group-arn", alb.tg)
    assert out.returncode == 0, out.stderr
    running = {ip(t) for t in tasks(ecs)}
    assert len(running) == 3
    states = health(server, alb)
    assert set(states) == running and all(s == {"State": "healthy"} for s in states.values())

    seen = set()
    for _ in range(9):  # through the DNS name, as a user would (curl resolves *.localhost)
        out = subprocess.run(["curl", "-sf", f"http://{alb.dns}:{alb.port}/id"],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        seen.add(out.stdout.strip())
    assert seen == running  # round robin over the three healthy targets
    assert albsvc.get(alb.url, "/lb-ping") == (200, "pong")  # the fixed-response rule
    assert albsvc.get(alb.url, "/rev") == (200, "1")
    assert any(m.startswith("(service alb-web) registered ") and m.endswith(
        f"targets in (target-group {alb.tg})") for m in messages(ecs))


def test_in_flight_slow_requests_finish_while_their_task_drains(server, web):
    alb, _ = web
    ecs = server.client("ecs")
    stable(server)
    results: list[tuple[int, str]] = []
    slow = [threading.Thread(target=lambda: results.append(
        albsvc.get(alb.url, "/cgi-bin/slow", timeout=30))) for _ in range(3)]
    for t in slow:
        t.start()
    albsvc.aws_json(server, "ecs", "update-service", "--service", "alb-web",
                    "--desired-count", "2")
    draining = until(lambda: [i for i, s in health(server, alb).items()
                              if s["State"] == "draining"], 10)
    assert health(server, alb)[draining[0]]["Reason"] == "Target.DeregistrationInProgress"
    held = [t for t in tasks(ecs) if t["desiredStatus"] == "STOPPED"] or \
        ecs.describe_tasks(tasks=ecs.list_tasks(serviceName="alb-web",
                                                desiredStatus="STOPPED")["taskArns"])["tasks"]
    assert any(t["lastStatus"] == "DEACTIVATING" for t in held)  # containers still serve
    for t in slow:
        t.join(30)
    assert results == [(200, "slow 1")] * 3  # none cut off by the deregistration
    stable(server)  # services-stable does not wait for the drained target to go
    until(lambda: len(tasks(ecs)) == 2 and draining[0] not in health(server, alb), 60)
    assert any(m == f"(service alb-web) deregistered 1 targets in (target-group {alb.tg})"
               for m in messages(ecs))
    albsvc.aws_json(server, "ecs", "update-service", "--service", "alb-web",
                    "--desired-count", "3")
    stable(server)
    until(lambda: len(tasks(ecs)) == 3, 60)


def test_a_task_failing_elb_health_checks_is_replaced(server, web):
    alb, _ = web
    ecs = server.client("ecs")
    stable(server)
    victim = tasks(ecs)[0]
    task_id = victim["taskArn"].rsplit("/", 1)[1]
    killed = 0
    for procs in Path("/sys/fs/cgroup/pids/corral", task_id).glob("*/cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "httpd":
                    os.kill(int(pid), signal.SIGKILL)  # the shell lives on: RUNNING, but deaf
                    killed += 1
    assert killed == 1
    # The target is unhealthy only until the scheduler's next pass (≤ 1 s) deregisters it, so
    # the proof is what ECS quotes: the target group's reason in the event and stoppedReason.
    gone = until(lambda: (t := ecs.describe_tasks(tasks=[victim["taskArn"]])["tasks"][0])
                 ["lastStatus"] == "STOPPED" and t, 90)
    assert gone["stoppedReason"] == f"Task failed ELB health checks in (target-group {alb.tg})"
    assert gone["stopCode"] == "ServiceSchedulerInitiated"
    assert f"(service alb-web) (task {task_id}) (port 8080) is unhealthy in (target-group " \
        f"{alb.tg}) due to (reason Health checks failed)." in messages(ecs)
    stable(server)
    until(lambda: len(tasks(ecs)) == 3 and ip(victim) not in health(server, alb), 90)


def test_a_rolling_update_through_the_listener_drops_no_request(server, web):
    alb, revs = web
    stable(server)
    load = albsvc.Load(alb.url, threads=4, rate=25).start()
    try:
        for rev in (revs[1], revs[0]):
            albsvc.aws_json(server, "ecs", "update-service", "--service", "alb-web",
                            "--task-definition", rev)
            stable(server)
    finally:
        load.stop()
    assert load.failed == [], load.failed[:5]
    bodies = [body for _, _, body in load.answers]
    assert "2" in bodies and bodies[-1] == "1"  # it really went to revision 2 and back
    assert len(load.answers) > 500
