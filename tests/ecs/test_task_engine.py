"""The task engine's pure step (corral.ecs.task_engine) and health rules (corral.ecs.health),
as tables. Reference: shared/reference/ecs-semantics.md §1.4–1.6 (stop codes, reasons,
essential containers), §2 (health, dependsOn, timeouts, restart policy)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corral.ecs import health
from corral.ecs.task_engine import PRIVATE, fail_to_start, plan
from corral.runtime.driver import ContainerState

T0 = 1_000_000.0


def _doc(*containers: dict, awsvpc: bool = False) -> dict:
    defs = [{"essential": True, **c} for c in containers]
    return {
        "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/default/abc",
        "desiredStatus": "RUNNING", "lastStatus": "PROVISIONING" if awsvpc else "PENDING",
        "version": 1, "attachments": [{"id": "a"}] if awsvpc else [],
        "containers": [{"name": c["name"], "lastStatus": "PENDING"} for c in defs],
        PRIVATE: {"td": {"containerDefinitions": defs},
                  "containers": {c["name"]: {"runtimeId": f"rt-{c['name']}", "known": "NONE"}
                                 for c in defs}},
    }


def _ready(doc: dict) -> dict:
    doc[PRIVATE].update(sandbox=True, pulled=True)
    return doc


def _set(doc: dict, name: str, **facts) -> dict:
    doc[PRIVATE]["containers"][name].update(facts)
    return doc


def _exited(code: int, *, oom: bool = False) -> ContainerState:
    return ContainerState("exited", exit_code=code, oom_killed=oom,
                          started_at=datetime.fromtimestamp(T0, UTC),
                          finished_at=datetime.fromtimestamp(T0 + 5, UTC))


def _kinds(p) -> list[tuple[str, str | None]]:
    return [(a.kind, a.container) for a in p.actions]


# --- start-up --------------------------------------------------------------------------------

def test_a_new_task_first_gets_its_sandbox_then_its_images():
    p = plan(_doc({"name": "app"}, awsvpc=True), {}, T0)
    assert _kinds(p) == [("sandbox", None)] and p.doc["lastStatus"] == "PROVISIONING"
    doc = p.doc
    doc[PRIVATE]["sandbox"] = True
    p = plan(doc, {}, T0)
    assert _kinds(p) == [("pull", None)] and p.doc["lastStatus"] == "PENDING"


@pytest.mark.parametrize("condition,dep_facts,starts", [
    ("START", {"known": "NONE"}, False),
    ("START", {"known": "RUNNING", "startedAt": T0}, True),
    ("COMPLETE", {"known": "RUNNING", "startedAt": T0}, False),
    ("COMPLETE", {"known": "STOPPED", "startedAt": T0, "exitCode": 1}, True),
    ("SUCCESS", {"known": "STOPPED", "startedAt": T0, "exitCode": 0}, True),
    ("HEALTHY", {"known": "RUNNING", "startedAt": T0, "health": {"status": "UNKNOWN",
                                                                 "nextAt": T0 + 99}}, False),
    ("HEALTHY", {"known": "RUNNING", "startedAt": T0, "health": {"status": "HEALTHY",
                                                                 "nextAt": T0 + 99}}, True),
], ids=["start-waits", "start-running", "complete-waits", "complete-any-exit", "success-0",
        "healthy-waits", "healthy-ok"])
def test_depends_on_conditions(condition, dep_facts, starts):
    doc = _ready(_doc({"name": "init", "essential": False},
                      {"name": "app", "dependsOn": [{"containerName": "init",
                                                     "condition": condition}]}))
    _set(doc, "init", **dep_facts)
    observed = {"rt-init": ContainerState("running")} if dep_facts["known"] == "RUNNING" else {}
    p = plan(doc, observed, T0 + 1)
    assert (("start", "app") in _kinds(p)) is starts


@pytest.mark.parametrize("condition,dep_facts,reason_start", [
    ("SUCCESS", {"known": "STOPPED", "startedAt": T0, "exitCode": 2},
     "DependencyError: failed to resolve container ordering dependency [init] for target "
     "[app] as dependency did not exit successfully."),
    ("HEALTHY", {"known": "STOPPED", "startedAt": T0, "exitCode": 0},
     "DependencyError: failed to resolve container ordering dependency [init] for target "
     "[app] as dependency did not reach HEALTHY."),
], ids=["success-nonzero", "healthy-never"])
def test_a_dependency_that_can_never_hold_stops_the_task(condition, dep_facts, reason_start):
    doc = _ready(_doc({"name": "init", "essential": False},
                      {"name": "app", "dependsOn": [{"containerName": "init",
                                                     "condition": condition}]}))
    _set(doc, "init", **dep_facts)
    p = plan(doc, {}, T0 + 1)
    app = p.doc[PRIVATE]["containers"]["app"]
    assert app["known"] == "STOPPED" and app["reason"] == reason_start
    p = plan(p.doc, {}, T0 + 2)  # next step: the essential container never ran
    assert p.doc["desiredStatus"] == "STOPPED"
    assert p.doc["stopCode"] == "TaskFailedToStart" and p.doc["stoppedReason"] == reason_start


def test_start_timeout_counts_from_the_dependency_start():
    doc = _ready(_doc({"name": "init", "essential": False},
                      {"name": "app", "startTimeout": 10,
                       "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}))
    _set(doc, "init", known="RUNNING", startedAt=T0)
    observed = {"rt-init": ContainerState("running")}
    assert plan(doc, observed, T0 + 9).doc[PRIVATE]["containers"]["app"]["known"] == "NONE"
    late = plan(doc, observed, T0 + 11).doc[PRIVATE]["containers"]["app"]
    assert late["known"] == "STOPPED" and late["reason"].startswith("DependencyTimeoutError")


def test_the_task_runs_once_every_container_started():
    doc = _ready(_doc({"name": "app"}, {"name": "side", "essential": False}))
    _set(doc, "app", known="RUNNING", startedAt=T0)
    running = ContainerState("running")
    assert plan(doc, {"rt-app": running}, T0 + 1).doc["lastStatus"] == "PENDING"
    _set(doc, "side", known="RUNNING", startedAt=T0)
    p = plan(doc, {"rt-app": running, "rt-side": running}, T0 + 1)
    assert p.doc["lastStatus"] == "RUNNING" and p.doc["startedAt"] == T0 + 1 and p.changed
    assert [c["lastStatus"] for c in p.doc["containers"]] == ["RUNNING", "RUNNING"]


# --- stopping --------------------------------------------------------------------------------

@pytest.mark.parametrize("state,exit_code,reason", [
    (_exited(0), 0, None),
    (_exited(3), 3, None),
    (_exited(137, oom=True), 137, "OutOfMemoryError: Container killed due to memory usage"),
], ids=["exit-0", "exit-3", "oom"])
def test_an_essential_exit_stops_the_task(state, exit_code, reason):
    doc = _ready(_doc({"name": "app"}))
    doc["lastStatus"] = "RUNNING"
    _set(doc, "app", known="RUNNING", startedAt=T0)
    p = plan(doc, {"rt-app": state}, T0 + 6)
    assert p.doc["desiredStatus"] == "STOPPED"
    assert p.doc["stopCode"] == "EssentialContainerExited"
    assert p.doc["stoppedReason"] == "Essential container in task exited"
    assert p.doc["executionStoppedAt"] == T0 + 5
    container = p.doc["containers"][0]
    assert container["exitCode"] == exit_code and container.get("reason") == reason
    assert _kinds(p) == [("cleanup", None)]


def test_a_non_essential_exit_leaves_the_task_running():
    doc = _ready(_doc({"name": "app"}, {"name": "job", "essential": False}))
    doc["lastStatus"] = "RUNNING"
    _set(doc, "app", known="RUNNING", startedAt=T0)
    _set(doc, "job", known="RUNNING", startedAt=T0)
    p = plan(doc, {"rt-app": ContainerState("running"), "rt-job": _exited(1)}, T0 + 6)
    assert p.doc["desiredStatus"] == "RUNNING" and p.doc["lastStatus"] == "RUNNING"
    assert p.doc["containers"][1]["lastStatus"] == "STOPPED"


def test_a_pull_failure_stops_the_task_with_its_reason():
    doc = _doc({"name": "app"})
    doc[PRIVATE]["sandbox"] = True
    reason = "CannotPullContainerError: pull image manifest has been retried 1 time(s): x"
    fail_to_start(doc, reason, T0, container="app")
    p = plan(doc, {}, T0 + 1)
    assert p.doc["stopCode"] == "TaskFailedToStart" and p.doc["stoppedReason"] == reason
    assert p.doc["containers"][0]["reason"] == reason


def test_shutdown_runs_in_reverse_dependency_order_then_kills_after_stop_timeout():
    doc = _ready(_doc({"name": "db"}, {"name": "app", "stopTimeout": 2, "dependsOn": [
        {"containerName": "db", "condition": "START"}]}))
    doc.update(lastStatus="RUNNING", desiredStatus="STOPPED", stopCode="UserInitiated",
               stoppedReason="Task stopped by user")
    for name in ("db", "app"):
        _set(doc, name, known="RUNNING", startedAt=T0)
    running = {"rt-db": ContainerState("running"), "rt-app": ContainerState("running")}
    p = plan(doc, running, T0 + 10)
    assert _kinds(p) == [("signal", "app")] and p.actions[0].signal == "SIGTERM"
    assert p.doc["lastStatus"] == "STOPPING"
    p = plan(p.doc, running, T0 + 11)
    assert _kinds(p) == []  # within app's stopTimeout
    p = plan(p.doc, running, T0 + 12)
    assert _kinds(p) == [("signal", "app")] and p.actions[0].signal == "SIGKILL"
    p = plan(p.doc, {**running, "rt-app": _exited(137)}, T0 + 13)
    assert _kinds(p) == [("signal", "db")]  # only now that its dependent stopped
    p = plan(p.doc, {"rt-db": _exited(143)}, T0 + 14)
    assert _kinds(p) == [("cleanup", None)]
    doc = p.doc
    doc[PRIVATE]["cleaned"] = True
    p = plan(doc, {}, T0 + 15)
    assert p.doc["lastStatus"] == "STOPPED" and p.doc["stoppedAt"] == T0 + 15
    assert p.doc["stoppedReason"] == "Task stopped by user"


def test_a_task_behind_a_load_balancer_is_deactivating_until_its_targets_drained():
    doc = _ready(_doc({"name": "app"}, awsvpc=True))
    doc.update(lastStatus="RUNNING", desiredStatus="STOPPED", stopCode="ServiceSchedulerInitiated")
    _set(doc, "app", known="RUNNING", startedAt=T0)
    doc[PRIVATE]["lb"] = {"registered": [["arn:tg", "10.220.0.5", 8080]]}
    running = {"rt-app": ContainerState("running")}
    p = plan(doc, running, T0 + 10)
    assert _kinds(p) == [] and p.doc["lastStatus"] == "DEACTIVATING"  # in-flight requests finish
    p.doc[PRIVATE]["lb"]["released"] = True  # the scheduler: every target group says unused
    p = plan(p.doc, running, T0 + 20)
    assert _kinds(p) == [("signal", "app")] and p.doc["lastStatus"] == "STOPPING"


def test_a_vanished_container_is_reported():
    doc = _ready(_doc({"name": "app"}))
    _set(doc, "app", known="RUNNING", startedAt=T0)
    p = plan(doc, {"rt-app": None}, T0 + 1)
    assert p.doc["containers"][0]["reason"].startswith("ContainerVanishedError")


def test_restart_policy_restarts_in_place_after_the_attempt_period():
    doc = _ready(_doc({"name": "app", "restartPolicy": {"enabled": True,
                                                        "restartAttemptPeriod": 60,
                                                        "ignoredExitCodes": [0]}}))
    doc["lastStatus"] = "RUNNING"
    _set(doc, "app", known="RUNNING", startedAt=T0)
    p = plan(doc, {"rt-app": _exited(1)}, T0 + 61)
    assert _kinds(p) == [("restart", "app")] and p.doc["desiredStatus"] == "RUNNING"
    early = plan(doc, {"rt-app": _exited(1)}, T0 + 30)  # ran too briefly: the task stops
    assert early.doc["desiredStatus"] == "STOPPED"
    ignored = plan(doc, {"rt-app": _exited(0)}, T0 + 61)
    assert ignored.doc["stopCode"] == "EssentialContainerExited"


# --- health ----------------------------------------------------------------------------------

CHECK = {"command": ["CMD-SHELL", "exit 0"], "interval": 5, "retries": 3, "startPeriod": 10}


@pytest.mark.parametrize("results,status", [
    ([(12, 1), (17, 1)], "UNKNOWN"),
    ([(12, 1), (17, 1), (22, 1)], "UNHEALTHY"),
    ([(6, 1), (7, 1), (8, 1), (9, 1)], "UNKNOWN"),  # inside the start period: not counted
    ([(6, 0), (7, 1), (8, 1), (9, 1)], "UNHEALTHY"),  # after a success they count
    ([(12, 1), (17, 1), (22, 0)], "HEALTHY"),
    ([(12, 1), (17, -1), (22, -1)], "UNHEALTHY"),  # timeouts are failures
], ids=["two-failures", "three-failures", "start-period", "after-first-success", "recovers",
        "timeouts"])
def test_health_check_rules(results, status):
    state = health.initial(T0, CHECK)
    assert state["nextAt"] == T0 + 5
    for at, code in results:
        state = health.record(state, CHECK, exit_code=code, output="out", now=T0 + at,
                              started_at=T0)
    assert state["status"] == status


@pytest.mark.parametrize("containers,status", [
    ([(True, True, "HEALTHY"), (True, True, "HEALTHY")], "HEALTHY"),
    ([(True, True, "HEALTHY"), (True, True, "UNHEALTHY")], "UNHEALTHY"),
    ([(True, True, "HEALTHY"), (True, True, "UNKNOWN")], "UNKNOWN"),
    ([(True, True, "HEALTHY"), (False, True, "UNHEALTHY")], "HEALTHY"),
    ([(False, True, "HEALTHY")], "UNKNOWN"),
    ([(True, False, "UNKNOWN")], "UNKNOWN"),
    ([(True, True, "HEALTHY"), (True, False, "UNKNOWN")], "HEALTHY"),
], ids=["all-healthy", "essential-unhealthy", "essential-unknown", "non-essential-ignored",
        "only-non-essential-checks", "no-checks", "unchecked-essential-ignored"])
def test_task_health_aggregation(containers, status):
    assert health.task_health(containers) == status


@pytest.mark.parametrize("command,argv", [
    (["CMD", "wget", "-q", "localhost"], ["wget", "-q", "localhost"]),
    (["CMD-SHELL", "wget -q localhost || exit 1"], ["/bin/sh", "-c",
                                                     "wget -q localhost || exit 1"]),
    (["NONE"], None),
    (["true"], ["true"]),
], ids=["cmd", "cmd-shell", "none", "bare"])
def test_health_check_command_forms(command, argv):
    assert health.argv({"command": command}) == argv


def test_due_health_checks_are_planned_and_shown():
    doc = _ready(_doc({"name": "app", "healthCheck": CHECK}))
    doc["lastStatus"] = "RUNNING"
    _set(doc, "app", known="RUNNING", startedAt=T0)
    running = {"rt-app": ContainerState("running")}
    assert _kinds(plan(doc, running, T0 + 1)) == []
    p = plan(doc, running, T0 + 5)
    assert _kinds(p) == [("health", "app")]
    assert p.doc["containers"][0]["healthStatus"] == "UNKNOWN"
    assert p.doc["healthStatus"] == "UNKNOWN"
