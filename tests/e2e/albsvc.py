"""An ECS service behind an Application Load Balancer, built with the real ``aws`` CLI, and a
load generator that drives traffic through the listener — shared by tests/e2e/test_alb_services.py
and bench/rolling_update.py.

The web task: awsvpc, busybox ``httpd`` on 8080 serving ``/rev`` (the revision), ``/id`` (the
task's address) and ``/cgi-bin/slow`` (answers after 4 s); the shell stays the container's main
process, so killing ``httpd`` leaves the task RUNNING but deaf — only the load balancer's health
check notices.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field

from tests.runtime import imagebuild
from tests.server import free_port

SLOW_SECONDS = 4
START = (
    "mkdir -p /www/cgi-bin && echo $REV > /www/rev && "
    "ip -o -4 addr show dev eth0 | sed -E 's/.* inet ([0-9.]+).*/\\1/' > /www/id && "
    "printf '#!/bin/sh\\nsleep %s\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nslow %s\\\\n\"\\n' "
    f"{SLOW_SECONDS} $REV > /www/cgi-bin/slow && chmod 755 /www/cgi-bin/slow && "
    "httpd -f -p 8080 -h /www; sleep 3600"
)


def aws_json(server, *args: str) -> dict:
    out = server.aws(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}


def push_image(server, repo: str = "e2e/alb-web") -> str:
    image = imagebuild.Image([imagebuild.busybox_layer({"/www/index.html": b"web\n"})],
                             imagebuild.config(cmd=["sh"]))
    imagebuild.push(server.client("ecr"), repo, "v1", image)
    return f"127.0.0.1:{server.port}/{repo}:v1"


def register_revision(server, family: str, image: str, rev: str) -> str:
    doc = {"family": family, "networkMode": "awsvpc", "containerDefinitions": [{
        "name": "web", "image": image, "memory": 32, "stopTimeout": 2,
        "linuxParameters": {"initProcessEnabled": True},
        "environment": [{"name": "REV", "value": rev}],
        "command": ["sh", "-c", START], "portMappings": [{"containerPort": 8080}]}]}
    out = aws_json(server, "ecs", "register-task-definition", "--cli-input-json",
                   json.dumps(doc))
    return out["taskDefinition"]["taskDefinitionArn"]


@dataclass
class Alb:
    lb: str
    tg: str
    listener: str
    rules: list[str]
    port: int
    dns: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def create_alb(server, name: str, *, drain: int = 5) -> Alb:
    """LB, an ip target group on 8080 (checks of /rev every 5 s, 2 to turn healthy or
    unhealthy), a listener on a free port forwarding to it, and two rules: ``/cgi-bin/*``
    forwards, ``/lb-ping`` answers itself."""
    lb = aws_json(server, "elbv2", "create-load-balancer", "--name", name)["LoadBalancers"][0]
    tg = aws_json(server, "elbv2", "create-target-group", "--name", name, "--protocol", "HTTP",
                  "--port", "8080", "--target-type", "ip", "--vpc-id", lb["VpcId"],
                  "--health-check-path", "/rev", "--health-check-interval-seconds", "5",
                  "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2",
                  "--unhealthy-threshold-count", "2")["TargetGroups"][0]["TargetGroupArn"]
    aws_json(server, "elbv2", "modify-target-group-attributes", "--target-group-arn", tg,
             "--attributes", f"Key=deregistration_delay.timeout_seconds,Value={drain}")
    port = free_port()
    listener = aws_json(server, "elbv2", "create-listener", "--load-balancer-arn",
                        lb["LoadBalancerArn"], "--protocol", "HTTP", "--port", str(port),
                        "--default-actions", f"Type=forward,TargetGroupArn={tg}"
                        )["Listeners"][0]["ListenerArn"]
    rules = [aws_json(server, "elbv2", "create-rule", "--listener-arn", listener, "--priority",
                      str(priority), "--conditions", json.dumps(conditions), "--actions",
                      json.dumps(actions))["Rules"][0]["RuleArn"]
             for priority, conditions, actions in (
                 (10, [{"Field": "path-pattern", "Values": ["/cgi-bin/*"]}],
                  [{"Type": "forward", "TargetGroupArn": tg}]),
                 (20, [{"Field": "path-pattern", "Values": ["/lb-ping"]}],
                  [{"Type": "fixed-response", "FixedResponseConfig": {
                      "StatusCode": "200", "ContentType": "text/plain",
                      "MessageBody": "pong"}}]))]
    out = server.aws("elbv2", "wait", "load-balancer-available", "--load-balancer-arns",
                     lb["LoadBalancerArn"])
    assert out.returncode == 0, out.stderr
    return Alb(lb["LoadBalancerArn"], tg, listener, rules, port, lb["DNSName"])


def create_service(server, name: str, alb: Alb, td: str, count: int) -> dict:
    return aws_json(server, "ecs", "create-service", "--service-name", name,
                    "--task-definition", td, "--desired-count", str(count),
                    "--load-balancers",
                    f"targetGroupArn={alb.tg},containerName=web,containerPort=8080",
                    "--network-configuration",
                    "awsvpcConfiguration={subnets=[subnet-12345678]}")["service"]


def delete_all(server, service: str, alb: Alb) -> None:
    """The service (forced, its tasks drained and stopped), then the load balancer's parts."""
    server.aws("ecs", "delete-service", "--service", service, "--force")
    server.aws("ecs", "wait", "services-inactive", "--services", service, timeout=600)
    for rule in alb.rules:
        server.aws("elbv2", "delete-rule", "--rule-arn", rule)
    server.aws("elbv2", "delete-listener", "--listener-arn", alb.listener)
    server.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", alb.lb)
    server.aws("elbv2", "delete-target-group", "--target-group-arn", alb.tg)


def get(url: str, path: str, timeout: float = 10) -> tuple[int, str]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode().strip()
    finally:
        conn.close()


@dataclass
class Load:
    """``threads`` keep-alive clients, each paced to ``rate`` requests/s, GET ``path`` through
    the listener until stopped. Every answer is recorded as (time, status, body); a connection
    error as status 0 (and the client reconnects)."""

    url: str
    threads: int = 4
    rate: float = 60.0
    path: str = "/rev"
    answers: list[tuple[float, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(self.threads)]

    def start(self) -> Load:
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> Load:
        self._stop.set()
        for w in self._workers:
            w.join(15)
        return self

    def _run(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        period, due = 1 / self.rate, time.monotonic()
        while not self._stop.is_set():
            try:
                conn.request("GET", self.path)
                r = conn.getresponse()
                answer = (time.time(), r.status, r.read().decode().strip())
            except (OSError, http.client.HTTPException) as e:
                answer = (time.time(), 0, f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            with self._lock:
                self.answers.append(answer)
            due += period
            time.sleep(max(0.0, due - time.monotonic()))
        conn.close()

    @property
    def failed(self) -> list[tuple[float, int, str]]:
        return [a for a in self.answers if not 200 <= a[1] < 300]
