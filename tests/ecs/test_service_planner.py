"""The service scheduler's pure planner (corral.ecs.service_planner): the rolling-update math
of the ECS Developer Guide's worked examples (reference §3.3), deployments and events (§3.5,
§3.7), the circuit breaker (§3.6), throttling (§3.2), and properties of every plan: the healthy
floor and the ceiling hold, and a rollout converges."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.ecs.service_planner import TargetHealth, TaskInfo, bounds, breaker_threshold, plan
from corral.ecs.services import BREAKER, PRIVATE

T0 = 1_000_000.0
OLD, NEW = "ecs-svc/1111111111111111111", "ecs-svc/2222222222222222222"


def ids():
    counter = itertools.count()
    return lambda: f"{next(counter):032x}"


def deployment(did: str, status: str, rollout: str, desired: int = 0) -> dict:
    return {"id": did, "status": status, "taskDefinition": f"td:{did[-1]}",
            "desiredCount": desired, "runningCount": 0, "pendingCount": 0, "failedTasks": 0,
            "rolloutState": rollout, BREAKER: {"failures": 0, "seen": []}}


def service(desired: int, *, max_pct: int = 200, min_pct: int = 100, breaker: dict | None = None,
            deployments: list[dict] | None = None, status: str = "ACTIVE") -> dict:
    config = {"maximumPercent": max_pct, "minimumHealthyPercent": min_pct}
    if breaker is not None:
        config["deploymentCircuitBreaker"] = breaker
    return {"serviceName": "web", "status": status, "desiredCount": desired,
            "deploymentConfiguration": config, "taskDefinition": "td:2",
            "deployments": deployments or [deployment(NEW, "PRIMARY", "IN_PROGRESS")],
            "events": [], PRIVATE: {"history": [], "throttle": {"failures": 0, "until": 0}}}


def rolling(desired: int, **kw) -> dict:
    """A service mid-update: NEW is PRIMARY, OLD (COMPLETED) still has the tasks."""
    return service(desired, deployments=[deployment(NEW, "PRIMARY", "IN_PROGRESS"),
                                         deployment(OLD, "ACTIVE", "COMPLETED", desired)], **kw)


def healthy(n: int, dep: str = OLD, start: int = 0) -> list[TaskInfo]:
    return [TaskInfo(f"{dep[-1]}{i:031x}", dep, "RUNNING", "RUNNING", "HEALTHY", True,
                     T0 - 100, T0 - 100) for i in range(start, start + n)]


def messages(p) -> list[str]:
    return [e["message"] for e in reversed(p.doc["events"])]


# --- the documented worked examples (DG deployment-type-ecs) ---------------------------------

@pytest.mark.parametrize("desired,max_pct,min_pct,ceiling,floor", [
    (4, 200, 50, 8, 2),   # min 50 %: ceil(2) = 2, two old tasks may stop first
    (2, 200, 75, 4, 2),   # min 75 %: ceil(1.5) = 2, no task may be stopped
    (4, 200, 100, 8, 4),  # max 200 %: floor(8) = 8, four new may start first
    (3, 125, 100, 3, 3),  # max 125 %: floor(3.75) = 3, no task may be started
], ids=["desired4-min50", "desired2-min75", "desired4-max200", "desired3-max125"])
def test_bounds_round_as_the_developer_guide_says(desired, max_pct, min_pct, ceiling, floor):
    assert bounds(desired, {"maximumPercent": max_pct, "minimumHealthyPercent": min_pct}) == \
        (ceiling, floor)


def test_desired4_min50_two_old_tasks_may_stop_before_new_ones_start():
    p = plan(rolling(4, max_pct=100, min_pct=50), healthy(4), now=T0, new_id=ids())
    assert len(p.stop) == 2 and p.start == []
    assert all(r == f"Scaling activity initiated by (deployment {OLD})" for _, r in p.stop)


def test_desired2_min75_no_task_may_be_stopped():
    p = plan(rolling(2, max_pct=100, min_pct=75), healthy(2), now=T0, new_id=ids())
    assert p.stop == [] and p.start == []
    assert messages(p)[-1] == (
        "(service web) was unable to stop or start tasks during a deployment because of the "
        "service deployment configuration. Update the minimumHealthyPercent or maximumPercent "
        "value and try again.")


def test_desired4_max200_four_new_tasks_start_before_old_ones_stop():
    p = plan(rolling(4), healthy(4), now=T0, new_id=ids())
    assert len(p.start) == 4 and p.stop == []
    assert all(d == NEW for d, _ in p.start)
    assert messages(p) == ["(service web) has started 4 tasks: " + " ".join(
        f"(task {t})" for _, t in p.start) + "."]


def test_desired3_max125_no_task_may_be_started():
    p = plan(rolling(3, max_pct=125), healthy(3), now=T0, new_id=ids())
    assert p.start == [] and p.stop == []


def test_old_tasks_stop_once_new_ones_are_healthy_and_the_old_deployment_goes_inactive():
    tasks = healthy(2) + healthy(2, NEW)
    p = plan(rolling(2), tasks, now=T0, new_id=ids())
    assert sorted(t for t, _ in p.stop) == sorted(t.task_id for t in healthy(2))
    stopped = [replace(t, last_status="STOPPED", desired_status="STOPPED",
                       stop_code="ServiceSchedulerInitiated") for t in healthy(2)]
    p = plan(p.doc, stopped + healthy(2, NEW), now=T0 + 1, new_id=ids())
    assert [d["id"] for d in p.doc["deployments"]] == [NEW]
    assert p.doc["deployments"][0]["rolloutState"] == "COMPLETED"
    assert p.doc["deployments"][0]["rolloutStateReason"] == f"ECS deployment {NEW} completed."
    assert messages(p)[-2:] == [f"(service web) (deployment {NEW}) deployment completed.",
                                "(service web) has reached a steady state."]
    again = plan(p.doc, stopped + healthy(2, NEW), now=T0 + 2, new_id=ids())
    assert len(again.doc["events"]) == len(p.doc["events"])  # steady: nothing new to say


def test_a_task_without_health_checks_counts_healthy_40_seconds_after_running():
    fresh = [replace(t, checked=False, health="UNKNOWN", started_at=T0 - 39)
             for t in healthy(2, NEW)]
    p = plan(rolling(2), healthy(2) + fresh, now=T0, new_id=ids())
    assert p.stop == []
    p = plan(rolling(2), healthy(2) + fresh, now=T0 + 1, new_id=ids())
    assert len(p.stop) == 2


TG = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"


def behind_lb(tasks: list[TaskInfo], state: str, reason: str = "") -> list[TaskInfo]:
    return [replace(t, checked=False, health="UNKNOWN", lb=TargetHealth(state, TG, 8080, reason))
            for t in tasks]


def test_behind_a_load_balancer_new_tasks_count_once_their_targets_are_healthy():
    """Reference §3.4: with a load balancer and no container health check, the target group's
    health check decides — not the 40-second rule."""
    waiting = behind_lb(healthy(2, NEW), "initial")
    assert plan(rolling(2), healthy(2) + waiting, now=T0 + 3600, new_id=ids()).stop == []
    ready = behind_lb(healthy(2, NEW), "healthy")
    p = plan(rolling(2), healthy(2) + ready, now=T0, new_id=ids())
    assert sorted(t for t, _ in p.stop) == sorted(t.task_id for t in healthy(2))


def test_a_container_health_check_must_pass_too_behind_a_load_balancer():
    tasks = [replace(t, health="UNKNOWN", lb=TargetHealth("healthy", TG, 8080))
             for t in healthy(2, NEW)]
    assert plan(rolling(2), healthy(2) + tasks, now=T0, new_id=ids()).stop == []


def test_a_task_failing_elb_health_checks_is_replaced_after_the_grace_period():
    sick = behind_lb(healthy(1, NEW, 1), "unhealthy",
                     "Health checks failed with these codes: [500]")
    tasks = behind_lb(healthy(1, NEW), "healthy") + sick
    doc = service(2)
    doc["healthCheckGracePeriodSeconds"] = 200  # the tasks started 100 s ago
    assert plan(doc, tasks, now=T0, new_id=ids()).stop == []
    p = plan(service(2), tasks, now=T0, new_id=ids())
    assert p.stop == [(sick[0].task_id, f"Task failed ELB health checks in (target-group {TG})")]
    assert messages(p) == [
        f"(service web) (task {sick[0].task_id}) (port 8080) is unhealthy in (target-group {TG}) "
        "due to (reason Health checks failed with these codes: [500]).",
        f"(service web) has started 1 tasks: (task {p.start[0][1]}). Amazon ECS replaced 1 "
        "tasks due to an unhealthy status."]


def test_elb_health_check_failures_count_toward_the_breaker():
    sick = behind_lb(healthy(3, NEW), "unhealthy", "Request timed out")
    p = plan(service(3, breaker={"enable": True, "rollback": False}), sick, now=T0,
             new_id=ids())
    assert p.doc["deployments"][0]["failedTasks"] == 3
    assert p.doc["deployments"][0]["rolloutState"] == "FAILED"


# --- replacement, scaling, draining ----------------------------------------------------------

def test_a_stopped_task_is_replaced_and_an_unhealthy_one_replaced_with_aws_texts():
    tasks = healthy(1, NEW) + [replace(healthy(1, NEW, 1)[0], health="UNHEALTHY")]
    p = plan(service(2), tasks, now=T0, new_id=ids())
    assert p.stop == [(tasks[1].task_id, "Task failed container health checks")]
    assert len(p.start) == 1
    assert messages(p) == [
        f"(service web) (task {tasks[1].task_id}) failed container health checks.",
        f"(service web) has started 1 tasks: (task {p.start[0][1]}). Amazon ECS replaced 1 "
        "tasks due to an unhealthy status."]


def test_scale_in_stops_the_surplus_pending_first():
    tasks = healthy(3, NEW) + [TaskInfo("p" * 32, NEW, "PENDING", "RUNNING", "UNKNOWN", True, T0)]
    p = plan(service(2), tasks, now=T0, new_id=ids())
    assert [t for t, _ in p.stop][0] == "p" * 32 and len(p.stop) == 2


def test_draining_stops_everything_then_the_service_is_inactive():
    p = plan(service(2, status="DRAINING"), healthy(2, NEW), now=T0, new_id=ids())
    assert len(p.stop) == 2 and p.doc["status"] == "DRAINING"
    done = [replace(t, last_status="STOPPED", desired_status="STOPPED")
            for t in healthy(2, NEW)]
    assert plan(p.doc, done, now=T0 + 1, new_id=ids()).doc["status"] == "INACTIVE"


def test_daemon_defaults_stop_first_then_start():
    svc = rolling(1, max_pct=100, min_pct=0)
    p = plan(svc, healthy(1), now=T0, new_id=ids())
    assert len(p.stop) == 1 and p.start == []  # ceiling 1 is full until the old one STOPPED
    stopped = [replace(healthy(1)[0], last_status="STOPPED", desired_status="STOPPED")]
    assert len(plan(p.doc, stopped, now=T0 + 1, new_id=ids()).start) == 1


# --- circuit breaker and throttling ----------------------------------------------------------

@pytest.mark.parametrize("desired,threshold", [(1, 3), (25, 13), (400, 200), (800, 200)],
                         ids=["1", "25", "400", "800"])
def test_breaker_threshold_formula(desired, threshold):
    assert breaker_threshold(desired) == threshold


def _failed(n: int, dep: str = NEW) -> list[TaskInfo]:
    return [TaskInfo(f"f{i:031x}", dep, "STOPPED", "STOPPED", "UNKNOWN", True, T0 + i,
                     stop_code="TaskFailedToStart") for i in range(n)]


def test_the_breaker_trips_and_rolls_back_to_the_last_completed_deployment():
    svc = rolling(1, breaker={"enable": True, "rollback": True})
    retrying = TaskInfo("r" * 32, NEW, "PENDING", "RUNNING", "UNKNOWN", True, T0 + 9)
    p = plan(svc, healthy(1) + _failed(3) + [retrying], now=T0 + 10, new_id=ids())
    assert ("r" * 32, f"Scaling activity initiated by (deployment {NEW})") in p.stop
    first, second = p.doc["deployments"]
    assert (first["id"], first["status"], first["rolloutState"]) == (OLD, "PRIMARY",
                                                                     "IN_PROGRESS")
    assert first["rolloutStateReason"] == \
        f"ECS deployment circuit breaker: rolling back to deploymentId {OLD}."
    assert (second["id"], second["status"], second["rolloutState"]) == (NEW, "ACTIVE", "FAILED")
    assert second["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert p.doc["taskDefinition"] == "td:1"
    assert messages(p)[:2] == [f"(service web) (deployment {NEW}) deployment failed: tasks "
                               "failed to start.",
                               f"(service web) rolling back to deployment {OLD}."]


def test_without_rollback_a_failed_deployment_launches_nothing():
    svc = service(1, breaker={"enable": True, "rollback": False})
    p = plan(svc, _failed(3), now=T0 + 10, new_id=ids())
    assert p.doc["deployments"][0]["rolloutState"] == "FAILED" and p.start == []


def test_failed_health_checks_count_toward_the_breaker():
    svc = service(1, breaker={"enable": True, "rollback": True})
    sick = [replace(t, health="UNHEALTHY") for t in healthy(1, NEW)]
    p = plan(svc, sick, now=T0, new_id=ids())
    assert p.doc["deployments"][0]["failedTasks"] == 1


def test_tasks_that_never_run_throttle_new_starts():
    p = plan(service(1), _failed(1), now=T0 + 1, new_id=ids())
    assert p.start == []  # 5 s back-off after the first failure
    assert messages(p)[-1] == "(service web) is unable to consistently start tasks successfully."
    p = plan(p.doc, _failed(1), now=T0 + 7, new_id=ids())
    assert len(p.start) == 1


# --- properties ------------------------------------------------------------------------------

@st.composite
def worlds(draw):
    desired = draw(st.integers(0, 8))
    max_pct = draw(st.sampled_from([100, 125, 150, 200]))
    min_pct = draw(st.sampled_from([0, 50, 75, 100])) if max_pct > 100 else \
        draw(st.sampled_from([0, 50]))
    old = draw(st.integers(0, 8))
    new = draw(st.integers(0, 4))
    return desired, max_pct, min_pct, old, new


def _simulate(svc: dict, tasks: list[TaskInfo], now: float, steps: int):
    """Apply plans: started tasks run healthy the next step, stopped ones are gone."""
    new_id = ids()
    for step in range(steps):
        p = plan(svc, tasks, now=now + step, new_id=new_id)
        yield svc, tasks, p
        stopping = {t for t, _ in p.stop}
        tasks = [t for t in tasks if t.task_id not in stopping and not t.done]
        tasks = [replace(t, last_status="RUNNING", health="HEALTHY", started_at=now + step)
                 if t.pending else t for t in tasks]
        tasks += [TaskInfo(tid, did, "PENDING", "RUNNING", "UNKNOWN", True, now + step)
                  for did, tid in p.start]
        svc = p.doc


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_floor_and_ceiling_hold_and_the_rollout_converges(world):
    desired, max_pct, min_pct, old, new = world
    svc = rolling(desired, max_pct=max_pct, min_pct=min_pct)
    tasks = healthy(old) + healthy(new, NEW, 100)
    ceiling, floor = bounds(desired, svc["deploymentConfiguration"])
    last = None
    for _svc, before, p in _simulate(svc, tasks, T0, 30):
        stopping = {t for t, _ in p.stop}
        healthy_before = sum(t.healthy(T0) for t in before)
        healthy_after = sum(t.healthy(T0) for t in before if t.task_id not in stopping)
        assert healthy_after >= min(floor, healthy_before)  # stops never break the floor
        alive_before = sum(not t.done for t in before)
        assert alive_before + len(p.start) <= max(ceiling, alive_before)  # nor starts the roof
        last = p
    if ceiling > desired or floor < desired or old == 0:  # a configuration that can move
        assert [d["id"] for d in last.doc["deployments"]] == [NEW]
        assert last.doc["runningCount"] == desired
