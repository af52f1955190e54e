"""corral.ecs.load_balancing.sync against a real store and the real ELBv2 operations (no
server, no containers): registration once a task runs, draining and release, health for the
planner, retries, and that a pass which changes nothing writes nothing."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import pytest
from botocore import xform_name

from corral.aws.context import Principal, RequestContext
from corral.config import Settings
from corral.ecs import load_balancing, tasks
from corral.ecs.service_planner import TargetHealth
from corral.elb import targets as elb_targets
from corral.elb.provider import ElbProvider
from corral.store.db import Store

ACCOUNT, REGION = "000000000000", "us-east-1"
SERVICE = {"serviceName": "web"}
T0 = time.time()


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def elb(store, tmp_path):
    provider = ElbProvider(Settings(data_dir=tmp_path))

    def call(op: str, **params):
        ctx = RequestContext("r", "elbv2", op, REGION, Principal(
            ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "test"), "http://localhost")
        with store.transaction() as db:
            ctx.db = db
            return getattr(provider, xform_name(op))(ctx, params)
    return call


@pytest.fixture
def tg(elb) -> str:
    """An ip target group a listener forwards to; deregistration delay 60 s."""
    lb = elb("CreateLoadBalancer", Name="web")["LoadBalancers"][0]["LoadBalancerArn"]
    arn = elb("CreateTargetGroup", Name="web", Protocol="HTTP", Port=8080, TargetType="ip",
              VpcId="vpc-1")["TargetGroups"][0]["TargetGroupArn"]
    elb("ModifyTargetGroupAttributes", TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "60"}])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    elb("CreateListener", LoadBalancerArn=lb, Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
    return arn


def service(tg: str) -> dict:
    return {**SERVICE, "loadBalancers": [
        {"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}]}


def add_task(store, task_id: str, ip: str | None = "10.220.0.7", last: str = "RUNNING") -> None:
    details = [{"name": "privateIPv4Address", "value": ip}] if ip else []
    doc = {"taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/default/{task_id}",
           "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1",
           "startedBy": "ecs-svc/1", "desiredStatus": "RUNNING", "lastStatus": last,
           "launchType": "EC2", "createdAt": T0, "version": 1,
           "attachments": [{"id": "a", "details": details}],
           "containers": [{"name": "web"}], "x-corral": {"service": "web"}}
    with store.transaction() as db:
        tasks.insert(db, ACCOUNT, REGION, "default", task_id, doc)


def sync(store, svc: dict, now: float = T0) -> tuple[dict, list[str], list[str]]:
    """One pass; also the topics the pass emitted (what wakes the scheduler again)."""
    with store.transaction() as db:
        rows = tasks.query(db, ACCOUNT, REGION, "default", service="web")
        health, messages = load_balancing.sync(db, svc, rows, now)
        topics = [topic for topic, _ in db.info.get("events", [])]
    return health, messages, topics


def task(store, task_id: str) -> tasks.TaskRow:
    with store.transaction(write=False) as db:
        return tasks.get(db, ACCOUNT, REGION, task_id)


def target_state(store, tg: str, now: float = T0) -> dict:
    with store.transaction(write=False) as db:
        [d] = elb_targets.health(db, tg, [{"Id": "10.220.0.7", "Port": 8080}],
                                 datetime.fromtimestamp(now, UTC))
    return d["TargetHealth"]


def set_health(store, tg: str, state: str, reason=None, description=None) -> None:
    with store.transaction() as db:
        elb_targets.set_state(db, tg, "10.220.0.7", 8080, state, reason, description,
                              datetime.now(UTC))


def stop(store, task_id: str) -> None:
    row = task(store, task_id)
    row.doc["desiredStatus"] = "STOPPED"
    with store.transaction() as db:
        tasks.save(db, row)


def test_a_running_task_is_registered_once_and_counts_once_its_target_is_healthy(store, tg):
    add_task(store, "t1")
    health, messages, topics = sync(store, service(tg))
    assert messages == [f"(service web) registered 1 targets in (target-group {tg})"]
    assert health["t1"].state == "initial" and "ecs.task.changed" in topics
    assert target_state(store, tg)["State"] == "initial"
    assert task(store, "t1").private["lb"]["registered"] == [[tg, "10.220.0.7", 8080]]

    health, messages, topics = sync(store, service(tg))
    assert (messages, topics) == ([], [])  # nothing changed: nothing written or woken
    set_health(store, tg, "healthy")
    assert sync(store, service(tg))[0]["t1"] == TargetHealth("healthy")
    set_health(store, tg, "unhealthy", "Target.ResponseCodeMismatch",
               "Health checks failed with these codes: [500]")
    assert sync(store, service(tg))[0]["t1"] == TargetHealth(
        "unhealthy", tg, 8080, "Health checks failed with these codes: [500]")


def test_a_stopping_task_drains_for_the_delay_then_is_released(store, tg):
    add_task(store, "t1")
    sync(store, service(tg))
    stop(store, "t1")
    health, messages, _ = sync(store, service(tg))
    assert messages == [f"(service web) deregistered 1 targets in (target-group {tg})"]
    assert "t1" not in health and target_state(store, tg)["State"] == "draining"
    record = task(store, "t1").private["lb"]
    assert record["deregisteredAt"] and not record.get("released")

    _, messages, topics = sync(store, service(tg), T0 + 30)
    assert (messages, topics) == ([], [])  # draining: no write per pass
    assert not task(store, "t1").private["lb"].get("released")
    sync(store, service(tg), T0 + 61)  # the 60 s delay has passed
    assert task(store, "t1").private["lb"]["released"] is True


def test_a_task_whose_address_is_not_known_yet_is_registered_later(store, tg):
    add_task(store, "t1", ip=None)
    health, messages, topics = sync(store, service(tg))
    assert health["t1"].state == "initial" and messages == [] and topics == []
    assert "lb" not in task(store, "t1").private
    row = task(store, "t1")
    row.doc["attachments"][0]["details"] = [{"name": "privateIPv4Address",
                                             "value": "10.220.0.7"}]
    with store.transaction() as db:
        tasks.save(db, row)
    _, messages, _ = sync(store, service(tg))
    assert messages == [f"(service web) registered 1 targets in (target-group {tg})"]


def test_a_failed_registration_is_said_once_and_the_task_is_not_healthy(store, tg, elb):
    missing = tg.rsplit("/", 2)[0] + "/gone/0123456789abcdef"
    svc = service(tg)
    svc["loadBalancers"].append({"targetGroupArn": missing, "containerName": "web",
                                 "containerPort": 8080})
    add_task(store, "t1")
    health, messages, _ = sync(store, svc)
    assert messages[0].startswith(f"(service web) failed to register targets in (target-group "
                                  f"{missing}) with (error ")
    set_health(store, tg, "healthy")
    health, messages, _ = sync(store, svc)
    assert messages == [] and health["t1"].state == "initial"  # one group never took it


def test_a_task_stopped_before_it_ran_is_released_at_once(store, tg):
    add_task(store, "t1", last="PENDING")
    assert sync(store, service(tg))[1] == []
    stop(store, "t1")
    assert sync(store, service(tg))[1] == [] and "lb" not in task(store, "t1").private
