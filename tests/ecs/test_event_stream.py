"""The ECS event stream: task and service changes as the EventBridge events AWS sends
(reference ecs-semantics.md §3.6 deployment events, §3.7 ECS Service Action names, §11 the ECS
Task State Change example), the ring buffer behind ``ecs/events``, the emits in ``tasks`` and
``services`` (published only after the commit), and ``corral events`` against a real server
running a task whose image does not exist."""

from __future__ import annotations

import copy
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from corral.ecs import event_stream as es
from corral.ecs import services, tasks
from corral.ecs.cli import event_line
from corral.events import EventBus
from corral.store.db import Store

ACCOUNT, REGION = "000000000000", "us-east-1"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/default"
TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/default/0f2c3b1a9d8e4f7a8b6c5d4e3f2a1b0c"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/default/web"
T0 = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z


def ids():
    n = itertools.count(1)
    return lambda: f"id-{next(n)}"


def task_doc(**over) -> dict:
    """A stored Task document (epoch timestamps, Corral's private part) like the agent's."""
    doc = {
        "taskArn": TASK_ARN, "clusterArn": CLUSTER_ARN, "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED", "launchType": "EC2", "group": "service:web",
        "startedBy": "ecs-svc/2770844949256052681", "cpu": "0", "memory": "64",
        "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:2",
        "createdAt": T0, "pullStartedAt": T0 + 1, "pullStoppedAt": T0 + 2,
        "startedAt": T0 + 3, "stoppingAt": T0 + 10, "stoppedAt": T0 + 12.5,
        "executionStoppedAt": T0 + 12, "stopCode": "UserInitiated",
        "stoppedReason": "Task stopped by user", "version": 9, "healthStatus": "UNKNOWN",
        "containers": [{"name": "web", "lastStatus": "STOPPED", "exitCode": 0,
                        "runtimeId": "0f2c3b1a9d8e4f7a8b6c5d4e3f2a1b0c-2171104572"}],
        "x-corral": {"instance": "i-1", "td": {"containerDefinitions": []}},
    }
    return doc | over


def service_doc(events=(), deployments=None) -> dict:
    return {
        "serviceArn": SERVICE_ARN, "serviceName": "web", "clusterArn": CLUSTER_ARN,
        "status": "ACTIVE", "desiredCount": 1, "createdAt": T0,
        "events": [{"id": i, "createdAt": at, "message": f"(service web) {m}"}
                   for i, at, m in events],
        "deployments": deployments or [deployment("ecs-svc/1", "PRIMARY", "IN_PROGRESS")],
        "x-corral": {"history": []},
    }


def deployment(dep_id: str, status: str, rollout: str, reason: str | None = None,
               at: float = T0) -> dict:
    return {"id": dep_id, "status": status, "rolloutState": rollout, "updatedAt": at,
            "rolloutStateReason": reason or f"ECS deployment {dep_id} in progress."}


# --- ECS Task State Change (§11) ----------------------------------------------------------

def test_task_state_change_envelope_is_eventbridges_shape():
    public = tasks.view(tasks.TaskRow(ACCOUNT, REGION, "x", "default", 9, task_doc()))
    got = es.task_event(ACCOUNT, REGION, public, T0 + 13, ids())
    assert {k: v for k, v in got.items() if k != "detail"} == {
        "version": "0", "id": "id-1", "detail-type": "ECS Task State Change",
        "source": "aws.ecs", "account": ACCOUNT, "time": "2023-11-14T22:13:32Z",
        "region": REGION, "resources": [TASK_ARN]}
    detail = got["detail"]
    assert "x-corral" not in detail
    assert detail["updatedAt"] == detail["stoppedAt"] == "2023-11-14T22:13:32.750Z"  # §11
    assert detail["createdAt"] == "2023-11-14T22:13:20.250Z"
    assert detail["executionStoppedAt"] == "2023-11-14T22:13:32.250Z"
    assert detail["containers"] == public["containers"]
    assert (detail["lastStatus"], detail["version"]) == ("STOPPED", 9)
    json.dumps(got)  # plain JSON all the way down


def test_a_running_task_is_updated_when_the_change_was_saved():
    doc = task_doc(lastStatus="RUNNING", desiredStatus="RUNNING")
    for key in ("stoppingAt", "stoppedAt", "executionStoppedAt", "stopCode", "stoppedReason"):
        doc.pop(key)
    got = es.task_event(ACCOUNT, REGION, doc, T0 + 5, ids())
    assert got["detail"]["updatedAt"] == "2023-11-14T22:13:25.250Z"
    assert got["time"] == "2023-11-14T22:13:25Z"


# --- ECS Service Action (§3.7) ------------------------------------------------------------

ACTIONS = [
    ("steady", "has reached a steady state.", ("INFO", "SERVICE_STEADY_STATE")),
    ("start-impaired", "is unable to consistently start tasks successfully.",
     ("WARN", "SERVICE_TASK_START_IMPAIRED")),
    ("no-instances", "was unable to place a task because no container instance met all of its "
     "requirements. Reason: No Container Instances were found in your cluster.",
     ("ERROR", "SERVICE_TASK_PLACEMENT_FAILURE")),
    ("throttled", "operations are being throttled. Will try again later.",
     ("ERROR", "ECS_OPERATION_THROTTLED")),
]
NOT_ACTIONS = [
    ("started", "has started 1 tasks: (task abc)."),
    ("stopped", "has stopped 1 running tasks: (task abc)."),
    ("deployment-completed", "(deployment ecs-svc/1) deployment completed."),
    ("health", "(task abc) failed container health checks."),
]


@pytest.mark.parametrize("message,expected", [a[1:] for a in ACTIONS],
                         ids=[a[0] for a in ACTIONS])
def test_service_messages_that_are_service_actions(message, expected):
    assert es.service_action(f"(service web) {message}") == expected


@pytest.mark.parametrize("message", [a[1] for a in NOT_ACTIONS], ids=[a[0] for a in NOT_ACTIONS])
def test_service_messages_eventbridge_does_not_send(message):
    """Reported to EventBridge as task state changes (or deployment changes) instead."""
    assert es.service_action(f"(service web) {message}") is None


def test_service_action_envelope_and_placement_reasons():
    old = service_doc()
    new = service_doc(events=[
        ("e2", T0 + 2, "was unable to place a task because no container instance met all of "
                       "its requirements. The closest matching (container-instance i-1) has "
                       "insufficient memory available. For more information, see …"),
        ("e1", T0 + 1, "has started 1 tasks: (task abc)."),
    ])
    payload = {"account": ACCOUNT, "region": REGION, "service": SERVICE_ARN,
               "cluster": CLUSTER_ARN, "at": T0 + 3, **es.service_changes(old, new)}
    [got] = es.service_events(payload, ids())
    assert got["detail-type"] == "ECS Service Action" and got["resources"] == [SERVICE_ARN]
    assert got["time"] == "2023-11-14T22:13:22Z"
    assert got["detail"] == {"eventType": "ERROR", "eventName": "SERVICE_TASK_PLACEMENT_FAILURE",
                             "clusterArn": CLUSTER_ARN, "createdAt": "2023-11-14T22:13:22.250Z",
                             "reasons": ["RESOURCE:MEMORY"]}


# --- ECS Deployment State Change (§3.6) ---------------------------------------------------

def test_only_what_changed_since_the_stored_version_is_announced():
    old = service_doc(events=[("e1", T0, "has started 1 tasks: (task a).")])
    assert es.service_changes(old, copy.deepcopy(old)) == {}
    new = service_doc(events=[("e3", T0 + 2, "has reached a steady state."),
                              ("e2", T0 + 1, "(deployment ecs-svc/1) deployment completed."),
                              ("e1", T0, "has started 1 tasks: (task a).")],
                      deployments=[deployment("ecs-svc/1", "PRIMARY", "COMPLETED",
                                              "ECS deployment ecs-svc/1 completed.", T0 + 1)])
    changes = es.service_changes(old, new)
    assert [e["id"] for e in changes["events"]] == ["e2", "e3"]  # oldest first
    assert changes["deployments"] == [{"id": "ecs-svc/1", "rolloutState": "COMPLETED",
                                       "rolloutStateReason": "ECS deployment ecs-svc/1 completed.",
                                       "updatedAt": T0 + 1}]
    payload = {"account": ACCOUNT, "region": REGION, "service": SERVICE_ARN,
               "cluster": CLUSTER_ARN, "at": T0 + 3, **changes}
    got = es.service_events(payload, ids())
    assert [(e["detail-type"], e["detail"]["eventName"]) for e in got] == [
        ("ECS Deployment State Change", "SERVICE_DEPLOYMENT_COMPLETED"),
        ("ECS Service Action", "SERVICE_STEADY_STATE")]
    assert got[0]["detail"] == {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
                                "deploymentId": "ecs-svc/1",
                                "updatedAt": "2023-11-14T22:13:21.250Z",
                                "reason": "ECS deployment ecs-svc/1 completed."}


def test_circuit_breaker_rollback_reads_failed_then_in_progress():
    """§3.6: the new deployment FAILED (ERROR), then the rollback to the COMPLETED one."""
    old = service_doc(deployments=[deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS"),
                                   deployment("ecs-svc/1", "ACTIVE", "COMPLETED")])
    new = service_doc(deployments=[
        deployment("ecs-svc/1", "PRIMARY", "IN_PROGRESS",
                   "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1."),
        deployment("ecs-svc/2", "ACTIVE", "FAILED",
                   "ECS deployment circuit breaker: tasks failed to start.")])
    payload = {"account": ACCOUNT, "region": REGION, "service": SERVICE_ARN,
               "cluster": CLUSTER_ARN, "at": T0, **es.service_changes(old, new)}
    got = [e["detail"] for e in es.service_events(payload, ids())]
    assert [(d["eventType"], d["eventName"], d["deploymentId"]) for d in got] == [
        ("ERROR", "SERVICE_DEPLOYMENT_FAILED", "ecs-svc/2"),
        ("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS", "ecs-svc/1")]
    assert got[0]["reason"] == "ECS deployment circuit breaker: tasks failed to start."


def test_a_new_deployment_is_in_progress():
    old = service_doc(deployments=[deployment("ecs-svc/1", "PRIMARY", "COMPLETED")])
    new = service_doc(deployments=[deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS"),
                                   deployment("ecs-svc/1", "ACTIVE", "COMPLETED")])
    assert [d["id"] for d in es.service_changes(old, new)["deployments"]] == ["ecs-svc/2"]


# --- the ring buffer ----------------------------------------------------------------------

def event(account=ACCOUNT, region=REGION, n=0) -> dict:
    return es.envelope("ECS Service Action", account, region, SERVICE_ARN, T0, {"n": n}, "x")


def test_since_is_scoped_to_account_and_region_and_moves_on():
    stream = es.EventStream()
    stream.add(event(n=1))
    stream.add(event(account="111111111111", n=2))
    stream.add(event(region="eu-west-1", n=3))
    stream.add(event(n=4))
    got, nxt = stream.since(0, ACCOUNT, REGION)
    assert [e["detail"]["n"] for e in got] == [1, 4] and nxt == 4
    assert stream.since(nxt, ACCOUNT, REGION) == ([], 4)
    assert [e["detail"]["n"] for e in stream.since(0, "111111111111", REGION)[0]] == [2]


def test_since_with_a_limit_resumes_after_the_last_one_returned():
    stream = es.EventStream()
    for n in range(1, 6):
        stream.add(event(n=n))
    got, nxt = stream.since(0, ACCOUNT, REGION, limit=2)
    assert [e["detail"]["n"] for e in got] == [1, 2] and nxt == 2
    got, nxt = stream.since(nxt, ACCOUNT, REGION, limit=10)
    assert [e["detail"]["n"] for e in got] == [3, 4, 5] and nxt == 5


def test_the_ring_keeps_the_newest_and_a_seq_from_before_a_restart_reads_it_whole():
    stream = es.EventStream(capacity=3)
    for n in range(1, 6):
        stream.add(event(n=n))
    assert [e["detail"]["n"] for e in stream.since(0, ACCOUNT, REGION)[0]] == [3, 4, 5]
    assert [e["detail"]["n"] for e in stream.since(99, ACCOUNT, REGION)[0]] == [3, 4, 5]


def test_concurrent_publishers_get_unique_increasing_sequence_numbers():
    stream = es.EventStream()
    seqs: list[list[int]] = [[] for _ in range(8)]

    def publish(mine: list[int]) -> None:
        for n in range(500):
            mine.append(stream.add(event(n=n)))

    threads = [threading.Thread(target=publish, args=(s,)) for s in seqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [n for s in seqs for n in s]
    assert sorted(every) == list(range(1, 4001))
    assert all(s == sorted(s) for s in seqs)
    assert len(stream.since(0, ACCOUNT, REGION)[0]) == 4000


def test_human_lines():
    task = es.task_event(ACCOUNT, REGION, tasks.view(tasks.TaskRow(
        ACCOUNT, REGION, "x", "default", 9, task_doc())), T0, ids())
    assert event_line(task) == ("2023-11-14T22:13:32Z ECS Task State Change "
                                "task/default/0f2c3b1a9d8e4f7a8b6c5d4e3f2a1b0c: STOPPED/STOPPED"
                                " | Task stopped by user")
    dep = es.envelope("ECS Deployment State Change", ACCOUNT, REGION, SERVICE_ARN, T0,
                      {"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED",
                       "deploymentId": "ecs-svc/2", "reason": "ECS deployment circuit "
                       "breaker: tasks failed to start."}, "x")
    assert event_line(dep) == ("2023-11-14T22:13:20Z ECS Deployment State Change "
                               "service/default/web: ERROR SERVICE_DEPLOYMENT_FAILED | "
                               "ECS deployment circuit breaker: tasks failed to start.")


# --- the emits: published after the commit, never on rollback -----------------------------

@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/corral.db")
    s.migrate()
    s.events = EventBus()
    yield s
    s.close()


def test_task_changes_are_published_after_commit_and_not_on_rollback(store):
    stream = es.EventStream()
    stream.subscribe(store.events)
    doc = task_doc(lastStatus="PENDING", desiredStatus="RUNNING", version=1)
    for key in ("stoppingAt", "stoppedAt", "executionStoppedAt", "stopCode", "stoppedReason"):
        doc.pop(key)
    with store.transaction() as db:
        tasks.insert(db, ACCOUNT, REGION, "default", "t1", doc)
        assert stream.since(0, ACCOUNT, REGION)[0] == []  # not before the commit
    with store.transaction() as db:
        row = tasks.get(db, ACCOUNT, REGION, "t1")
        row.doc["lastStatus"] = "RUNNING"
        tasks.save(db, row)
        row.doc["lastStatus"] = "STOPPING"  # changed after save: the event keeps RUNNING
        tasks.save(db, row, bump=False)  # bookkeeping: no event
    with pytest.raises(RuntimeError), store.transaction() as db:
        row = tasks.get(db, ACCOUNT, REGION, "t1")
        row.doc["lastStatus"] = "STOPPED"
        tasks.save(db, row)
        raise RuntimeError("rolled back")
    got = [e["detail"] for e in stream.since(0, ACCOUNT, REGION)[0]]
    assert [(d["lastStatus"], d["version"]) for d in got] == [("PENDING", 1), ("RUNNING", 2)]
    assert all("x-corral" not in d for d in got)


def test_service_saves_publish_what_changed(store):
    stream = es.EventStream()
    stream.subscribe(store.events)
    doc = service_doc()
    with store.transaction() as db:
        services.insert(db, ACCOUNT, REGION, "default", doc)
    created, seq = stream.since(0, ACCOUNT, REGION)
    assert [e["detail"]["eventName"] for e in created] == ["SERVICE_DEPLOYMENT_IN_PROGRESS"]
    with store.transaction() as db:
        services.save(db, services.get(db, ACCOUNT, REGION, "default", "web"))  # no change
    assert stream.since(seq, ACCOUNT, REGION)[0] == []
    with store.transaction() as db:
        row = services.get(db, ACCOUNT, REGION, "default", "web")
        row.doc["deployments"][0].update(rolloutState="COMPLETED", updatedAt=T0 + 5,
                                         rolloutStateReason="ECS deployment ecs-svc/1 completed.")
        services.add_event(row.doc, "(service web) has reached a steady state.", T0 + 5, "e9")
        services.save(db, row)
    got = stream.since(seq, ACCOUNT, REGION)[0]
    assert [e["detail"]["eventName"] for e in got] == ["SERVICE_DEPLOYMENT_COMPLETED",
                                                        "SERVICE_STEADY_STATE"]


# --- through a real server ------------------------------------------------------------------

def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test runs an ECS task (it fails to pull, but the agent needs root "
                    "for the runtime): run it as root (CI does)")


def _corral(server, *args: str, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "corral.cli", *args, "--endpoint", server.endpoint]
    if kw.pop("background", False):
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def test_a_task_that_cannot_pull_is_seen_pending_then_stopped(server):
    _need_root()
    uri = f"127.0.0.1:{server.port}/events/nope:v1"
    out = server.aws("ecs", "register-task-definition", "--family", "events-nopull",
                     "--container-definitions",
                     json.dumps([{"name": "app", "image": uri, "memory": 16}]))
    assert out.returncode == 0, out.stderr
    out = server.aws("ecs", "run-task", "--task-definition", "events-nopull")
    assert out.returncode == 0, out.stderr
    arn = json.loads(out.stdout)["tasks"][0]["taskArn"]

    def mine() -> list[dict]:
        return [e for e in server.admin("ecs/events", {"after": 0})["events"]
                if e["resources"] == [arn]]

    deadline = time.monotonic() + 60
    while not any(e["detail"]["lastStatus"] == "STOPPED" for e in mine()):
        assert time.monotonic() < deadline, f"no STOPPED event for {arn}: {mine()}"
        time.sleep(0.3)
    seen = mine()
    assert all(e["detail-type"] == "ECS Task State Change" and e["source"] == "aws.ecs"
               for e in seen)
    statuses = [e["detail"]["lastStatus"] for e in seen]
    assert statuses[0] == "PENDING" and statuses[-1] == "STOPPED", statuses
    versions = [e["detail"]["version"] for e in seen]
    assert versions == sorted(set(versions)), versions  # each change once, in order
    last = seen[-1]["detail"]
    assert last["stopCode"] == "TaskFailedToStart"
    assert last["stoppedReason"].startswith("CannotPullContainerError: ")
    assert last["updatedAt"] == last["stoppedAt"]

    cli = _corral(server, "events", "--json")
    assert cli.returncode == 0, cli.stderr
    printed = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [e["id"] for e in printed if e["resources"] == [arn]] == [e["id"] for e in seen]
    human = _corral(server, "events")
    assert f"{arn.split(':', 5)[-1]}: STOPPED/STOPPED | CannotPullContainerError" in human.stdout


def test_follow_prints_as_it_goes_and_ctrl_c_quits_cleanly(server):
    proc = _corral(server, "events", "--follow", "--json", background=True)
    try:
        time.sleep(1.5)  # it is polling
        assert proc.poll() is None, proc.communicate()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert all(json.loads(line)["source"] == "aws.ecs" for line in out.splitlines())


def test_ecs_events_rejects_a_bad_after(server):
    from corral.client import CorralError

    with pytest.raises(CorralError, match="after must be a non-negative integer"):
        server.admin("ecs/events", {"after": "yesterday"})
