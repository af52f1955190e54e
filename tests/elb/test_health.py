"""Target health (reference §8.1, §8.2): the pure state machine as a table of check sequences,
the matcher forms, the real checker against loopback servers, and the data plane's monitors."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from corral.elb import health, snapshot
from corral.elb.balancer import DataPlane
from corral.elb.health import PASS, Result, Settings
from corral.elb.loop import LoopThread
from tests.elb.backends import Backend
from tests.server import free_port

S = Settings(healthy_threshold=3, unhealthy_threshold=2)
F503 = health.mismatch(503)
TIMEOUT = Result(False, *health.TIMEOUT)
REFUSED = Result(False, *health.FAILED)


def run(results: list[Result], start: health.Health | None = None) -> list[tuple]:
    h = start or health.registered()
    states = []
    for result in results:
        h = health.step(h, result, S)
        states.append(h.shown)
    return states


HEALTHY = ("healthy", None, None)
INITIAL = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
UNHEALTHY_503 = ("unhealthy", "Target.ResponseCodeMismatch",
                 "Health checks failed with these codes: [503]")
UNHEALTHY_TIMEOUT = ("unhealthy", "Target.Timeout", "Request timed out")
UNHEALTHY_REFUSED = ("unhealthy", "Target.FailedHealthChecks", "Health checks failed")


@pytest.mark.parametrize("results,expected", [
    pytest.param([PASS], [HEALTHY], id="new-target-one-pass-is-healthy"),
    pytest.param([F503, PASS], [INITIAL, HEALTHY], id="initial-failure-then-pass"),
    pytest.param([F503, F503], [INITIAL, UNHEALTHY_503], id="initial-to-unhealthy-at-threshold"),
    pytest.param([PASS, F503, PASS, F503, F503], [HEALTHY, HEALTHY, HEALTHY, HEALTHY,
                                                  UNHEALTHY_503],
                 id="failures-must-be-consecutive"),
    pytest.param([PASS, TIMEOUT, TIMEOUT], [HEALTHY, HEALTHY, UNHEALTHY_TIMEOUT],
                 id="timeouts"),
    pytest.param([PASS, REFUSED, REFUSED], [HEALTHY, HEALTHY, UNHEALTHY_REFUSED],
                 id="connection-failures"),
    pytest.param([F503, F503, PASS, PASS, PASS], [INITIAL, UNHEALTHY_503, UNHEALTHY_503,
                                                  UNHEALTHY_503, HEALTHY],
                 id="back-to-healthy-after-healthy-threshold"),
    pytest.param([F503, F503, PASS, PASS, F503, PASS, PASS, PASS],
                 [INITIAL, UNHEALTHY_503, UNHEALTHY_503, UNHEALTHY_503, UNHEALTHY_503,
                  UNHEALTHY_503, UNHEALTHY_503, HEALTHY], id="passes-must-be-consecutive"),
    pytest.param([F503, F503, TIMEOUT], [INITIAL, UNHEALTHY_503, UNHEALTHY_TIMEOUT],
                 id="unhealthy-reason-follows-the-latest-failure"),
])
def test_state_machine(results, expected):
    assert run(results) == expected


def test_registered_target_starts_in_registration_then_initial_checking():
    h = health.registered()
    assert h.shown == ("initial", "Elb.RegistrationInProgress",
                       "Target registration is in progress")
    assert health.started(h).shown == INITIAL
    assert health.started(health.adopt(*HEALTHY)).shown == HEALTHY


def test_adopted_healthy_state_needs_the_unhealthy_threshold_to_fail():
    assert run([F503, F503], health.adopt(*HEALTHY)) == [HEALTHY, UNHEALTHY_503]


@pytest.mark.parametrize("matcher,code,ok", [
    ("200", 200, True), ("200", 201, False), ("200,202", 202, True), ("200,202", 201, False),
    ("200-299", 250, True), ("200-299", 300, False), ("200-204,301", 301, True),
    (" 200 , 404", 404, True),
])
def test_matcher_codes(matcher, code, ok):
    assert health.code_matches(matcher, code) is ok


def test_settings_from_a_target_group_doc():
    s = Settings.from_doc({"HealthCheckPath": "/hc", "HealthCheckPort": "8081",
                           "HealthCheckIntervalSeconds": 10, "HealthCheckTimeoutSeconds": 3,
                           "HealthyThresholdCount": 4, "UnhealthyThresholdCount": 3,
                           "Matcher": {"HttpCode": "200-299"}})
    assert (s.path, s.check_port(80), s.interval, s.timeout, s.healthy_threshold,
            s.unhealthy_threshold, s.matcher) == ("/hc", 8081, 10, 3, 4, 3, "200-299")
    assert Settings.from_doc({}).check_port(8080) == 8080  # traffic-port by default


# --- the real checker -----------------------------------------------------------------------

@pytest.fixture
def backend():
    b = Backend("hc").start()
    yield b
    b.stop()


def test_checker_pass_mismatch_refused(backend):
    assert asyncio.run(health.check("127.0.0.1", backend.port, Settings(path="/"))) == PASS
    assert asyncio.run(health.check("127.0.0.1", backend.port,
                                    Settings(path="/status/503"))) == F503
    assert asyncio.run(health.check("127.0.0.1", backend.port, Settings(
        path="/status/202", matcher="200-299"))) == PASS
    assert asyncio.run(health.check("127.0.0.1", free_port(), Settings())) == REFUSED


def test_checker_times_out_and_sends_elb_user_agent():
    seen: list[bytes] = []

    async def scenario() -> Result:
        async def slow(reader, writer):
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            await asyncio.sleep(5)
            writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await health.check("127.0.0.1", port, Settings(path="/hc", timeout=0.3))
        finally:
            server.close()
            await server.wait_closed()

    start = time.monotonic()
    assert asyncio.run(scenario()) == TIMEOUT
    assert time.monotonic() - start < 2
    assert seen[0].startswith(b"GET /hc HTTP/1.1\r\n")
    assert b"User-Agent: ELB-HealthChecker/2.0\r\n" in seen[0]


# --- monitors in the data plane (no store: transitions stay in memory) ----------------------

def test_data_plane_monitor_marks_targets_healthy_and_unhealthy(backend):
    tg = "arn:tg/monitor"
    dead = free_port()
    targets = tuple(snapshot.TargetSpec("127.0.0.1", port, "127.0.0.1", "initial",
                                        *health.REGISTRATION, None)
                    for port in (backend.port, dead))
    snap = snapshot.Snapshot((), {tg: snapshot.GroupSpec(
        tg, "round_robin", 0, Settings(interval=0.2, timeout=1, unhealthy_threshold=2),
        targets)}, ())
    thread = LoopThread().start()
    plane = DataPlane("127.0.0.1", None)
    try:
        thread.call(plane.apply(snap))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = {port: plane.health[(tg, "127.0.0.1", port)].shown
                      for port in (backend.port, dead)}
            if states[dead][0] == "unhealthy":
                break
            time.sleep(0.05)
        assert states == {backend.port: HEALTHY, dead: UNHEALTHY_REFUSED}
        members = plane.groups[tg].members
        assert members[("127.0.0.1", backend.port)].state == "healthy"
        assert members[("127.0.0.1", dead)].state == "unhealthy"
    finally:
        thread.call(plane.close())
        thread.stop()


# --- adopting stored states (the reconcile's snapshot against the monitors' transitions) ----

ADOPT_TG = "arn:tg/adopt"
QUIET = Settings(interval=3600, timeout=0.5, unhealthy_threshold=10)  # one check, then sleep


def _snap(port: int, state: tuple, updated_at: datetime | None = None) -> snapshot.Snapshot:
    target = snapshot.TargetSpec("127.0.0.1", port, "127.0.0.1", *state, None, updated_at)
    return snapshot.Snapshot((), {ADOPT_TG: snapshot.GroupSpec(
        ADOPT_TG, "round_robin", 0, QUIET, (target,))}, ())


def _in_plane(scenario) -> object:
    thread = LoopThread().start()
    plane = DataPlane("127.0.0.1", None)
    try:
        return thread.call(scenario(plane))
    finally:
        thread.call(plane.close())
        thread.stop()


def test_a_snapshot_read_before_our_transition_does_not_undo_it():
    """The reconcile read the row (healthy) before a monitor stored unhealthy; applied after,
    that stale row must not bring healthy back — a newer row (the API's) still wins."""
    port = free_port()
    read_at = datetime.now(UTC)
    key = (ADOPT_TG, "127.0.0.1", port)

    async def scenario(plane: DataPlane):
        stale = _snap(port, HEALTHY, read_at)
        await plane.apply(stale)
        member = plane.groups[ADOPT_TG].members[("127.0.0.1", port)]
        await plane._record(key, member, health.Health(*UNHEALTHY_503, 0, 2))
        await plane.apply(stale)
        after_stale = member.state, plane.health[key].shown
        await plane.apply(_snap(port, ("initial", *health.REGISTRATION),
                                datetime.now(UTC) + timedelta(seconds=1)))
        return after_stale, (member.state, plane.health[key].shown)

    after_stale, after_newer = _in_plane(scenario)
    assert after_stale == ("unhealthy", UNHEALTHY_503)
    assert after_newer == ("initial", ("initial", *health.REGISTRATION))


def test_a_target_re_registered_while_still_initial_leaves_draining():
    """Registered, deregistered and registered again before its first check: the stored
    state (initial / RegistrationInProgress) equals the machine's, but the member was draining
    and must take new requests again."""
    port = free_port()
    registered = ("initial", *health.REGISTRATION)
    draining = ("draining", "Target.DeregistrationInProgress",
                "Target deregistration is in progress")

    async def scenario(plane: DataPlane):
        await plane.apply(_snap(port, registered))
        member = plane.groups[ADOPT_TG].members[("127.0.0.1", port)]
        await plane.apply(_snap(port, draining))
        await plane.apply(_snap(port, registered))
        return member.state, plane.groups[ADOPT_TG].choose() is member

    assert _in_plane(scenario) == ("initial", True)
