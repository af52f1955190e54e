"""An Application Load Balancer carrying real traffic, driven by the real ``aws`` CLI and boto3
against ``corral up`` (issue 11: "curl through it; kill a task's process and watch the target go
unhealthy"). Backends are stdlib HTTP servers on loopback registered as ``ip`` targets."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.elb.backends import Backend
from tests.server import free_port


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def backends():
    started = [Backend("one").start(), Backend("two").start()]
    yield started
    for backend in started:
        backend.stop()


@pytest.fixture
def alb(server, backends):
    """LB + target group (5 s checks, 2 failures to unhealthy) + an HTTP listener on a free
    port with a fixed-response rule for /ping; both backends registered."""
    elb = server.client("elbv2")
    port = free_port()
    lb = elb.create_load_balancer(Name="e2e-web")["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="e2e-web", Protocol="HTTP", Port=80, TargetType="ip", VpcId=lb["VpcId"],
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]
    elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )["Listeners"][0]
    elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=10,
                    Conditions=[{"Field": "path-pattern", "Values": ["/ping"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "200", "ContentType": "text/plain",
                        "MessageBody": "pong"}}])
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[
        {"Id": "127.0.0.1", "Port": b.port} for b in backends])
    yield {"lb": lb, "tg": tg, "port": port, "elb": elb}
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def health_of(elb, tg_arn: str) -> dict[int, dict]:
    out = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return {d["Target"]["Port"]: d["TargetHealth"] for d in out}


def test_alb_serves_both_targets_and_routes_around_a_dead_one(server, alb, backends):
    lb, tg, port, elb = alb["lb"], alb["tg"], alb["port"], alb["elb"]
    assert lb["State"]["Code"] == "provisioning"
    out = server.aws("elbv2", "wait", "load-balancer-available",
                     "--load-balancer-arns", lb["LoadBalancerArn"])
    assert out.returncode == 0, out.stderr
    out = server.aws("elbv2", "wait", "target-in-service",
                     "--target-group-arn", tg["TargetGroupArn"])
    assert out.returncode == 0, out.stderr

    url = f"http://127.0.0.1:{port}"
    seen = [json.loads(fetch(f"{url}/hello")[1])["backend"] for _ in range(6)]
    assert sorted(seen) == ["one"] * 3 + ["two"] * 3
    assert fetch(f"{url}/ping") == (200, b"pong")
    # curl resolves the DNS name to loopback itself (*.localhost, RFC 6761)
    assert lb["DNSName"].endswith(".us-east-1.elb.localhost")
    out = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{lb['DNSName']}:{port}/"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["backend"] in ("one", "two")

    backends[0].stop()  # the "process" dies: connections refused from now on
    dead = wait_for(lambda: (h := health_of(elb, tg["TargetGroupArn"])[backends[0].port])
                    ["State"] == "unhealthy" and h, 30, "the dead target to turn unhealthy")
    assert dead == {"State": "unhealthy", "Reason": "Target.FailedHealthChecks",
                    "Description": "Health checks failed"}
    assert health_of(elb, tg["TargetGroupArn"])[backends[1].port] == {"State": "healthy"}
    assert {json.loads(fetch(url)[1])["backend"] for _ in range(6)} == {"two"}


def test_deregistered_target_finishes_in_flight_requests_and_leaves(server, alb, backends):
    tg, port, elb = alb["tg"], alb["port"], alb["elb"]
    wait_for(lambda: all(h["State"] == "healthy"
                         for h in health_of(elb, tg["TargetGroupArn"]).values()), 30,
             "both targets healthy")
    slow: dict = {}
    thread = threading.Thread(target=lambda: slow.update(
        result=fetch(f"http://127.0.0.1:{port}/slow?s=2")))
    thread.start()
    wait_for(lambda: backends[0].in_flight + backends[1].in_flight, 10, "the slow request")
    busy = 0 if backends[0].in_flight else 1
    elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"],
                           Targets=[{"Id": "127.0.0.1", "Port": backends[busy].port}])
    out = server.aws("elbv2", "wait", "target-deregistered", "--target-group-arn",
                     tg["TargetGroupArn"], "--targets",
                     f"Id=127.0.0.1,Port={backends[busy].port}")
    assert out.returncode == 0, out.stderr
    others = {json.loads(fetch(f"http://127.0.0.1:{port}/")[1])["backend"] for _ in range(4)}
    assert others == {backends[1 - busy].name}
    thread.join(10)
    status, body = slow["result"]
    assert status == 200 and json.loads(body)["backend"] == backends[busy].name
