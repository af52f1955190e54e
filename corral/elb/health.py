"""Target health checks: a pure state machine and the asyncio checker that feeds it.

State machine (reference §8.1/§8.2, ALB target-group-health-checks):

    registered ──> initial / Elb.RegistrationInProgress
                     │ first check starts
                     v
                   initial / Elb.InitialHealthChecking ──1 pass──> healthy
                     │ UnhealthyThresholdCount failures in a row     │ UnhealthyThresholdCount
                     v                                               │ failures in a row
                   unhealthy / <reason of the last failure>  <───────┘
                     │ HealthyThresholdCount passes in a row
                     └──────────────────────────────────────────────> healthy

"A newly registered target must pass one check to become healthy"; afterwards both thresholds
count consecutive results (AWS's docs say "exceed"; the contract fixes "reach", as the console
behaves). A failure's reason is the check's own: ``Target.ResponseCodeMismatch`` (with the code
received), ``Target.Timeout``, ``Target.FailedHealthChecks`` (no connection).

:func:`step` is pure; :func:`check` performs one HTTP GET; the balancer schedules checks every
``HealthCheckIntervalSeconds`` per target and writes only transitions to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace

import h11

REGISTRATION = ("Elb.RegistrationInProgress", "Target registration is in progress")
INITIAL_CHECKING = ("Elb.InitialHealthChecking", "Initial health checks in progress")
TIMEOUT = ("Target.Timeout", "Request timed out")
FAILED = ("Target.FailedHealthChecks", "Health checks failed")
MISMATCH = "Target.ResponseCodeMismatch"


@dataclass(frozen=True)
class Settings:
    """A target group's health-check settings (the TargetGroup doc's names, AWS defaults)."""

    path: str = "/"
    port: str = "traffic-port"
    interval: float = 30
    timeout: float = 5
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"
    enabled: bool = True

    @classmethod
    def from_doc(cls, doc: dict) -> Settings:
        return cls(path=doc.get("HealthCheckPath") or "/",
                   port=str(doc.get("HealthCheckPort") or "traffic-port"),
                   interval=float(doc.get("HealthCheckIntervalSeconds", 30)),
                   timeout=float(doc.get("HealthCheckTimeoutSeconds", 5)),
                   healthy_threshold=int(doc.get("HealthyThresholdCount", 5)),
                   unhealthy_threshold=int(doc.get("UnhealthyThresholdCount", 2)),
                   matcher=(doc.get("Matcher") or {}).get("HttpCode") or "200",
                   enabled=doc.get("HealthCheckEnabled", True) is not False)

    def check_port(self, traffic_port: int) -> int:
        return traffic_port if self.port == "traffic-port" else int(self.port)


@dataclass(frozen=True)
class Result:
    """One check's outcome; a failure carries its (reason, description)."""

    ok: bool
    reason: str | None = None
    description: str | None = None


PASS = Result(True)


@dataclass(frozen=True)
class Health:
    state: str  # initial | healthy | unhealthy
    reason: str | None
    description: str | None
    passes: int = 0  # consecutive
    failures: int = 0  # consecutive

    @property
    def shown(self) -> tuple[str, str | None, str | None]:
        """What DescribeTargetHealth shows; a change of it is a transition to write."""
        return self.state, self.reason, self.description


def registered() -> Health:
    return Health("initial", *REGISTRATION)


def adopt(state: str, reason: str | None, description: str | None) -> Health:
    """The machine resumed from a stored state (a restart, or the API changed the target)."""
    return Health(state, reason, description)


def started(h: Health) -> Health:
    """The first check of a registered target has begun."""
    if h.state == "initial" and h.reason == REGISTRATION[0]:
        return replace(h, reason=INITIAL_CHECKING[0], description=INITIAL_CHECKING[1])
    return h


def step(h: Health, result: Result, s: Settings) -> Health:
    """The state after one more check result. Rules, first match wins:
    1. initial + pass            -> healthy (one check suffices for a new target);
    2. healthy/initial + failure -> unhealthy once failures reach the unhealthy threshold,
                                    else unchanged apart from the count;
    3. unhealthy + failure       -> unhealthy, with the latest failure's reason;
    4. unhealthy + pass          -> healthy once passes reach the healthy threshold;
    5. healthy + pass            -> healthy."""
    h = started(h)
    if result.ok:
        passes = h.passes + 1
        if h.state == "initial" or (h.state == "unhealthy" and passes >= s.healthy_threshold):
            return Health("healthy", None, None, 0, 0)
        return replace(h, passes=passes, failures=0)
    failures = h.failures + 1
    if h.state == "unhealthy" or failures >= s.unhealthy_threshold:
        return Health("unhealthy", result.reason, result.description, 0, failures)
    return replace(h, passes=0, failures=failures)


# --- matcher --------------------------------------------------------------------------------

def code_matches(matcher: str, code: int) -> bool:
    """Matcher.HttpCode: "200", "200,202" or "200-299" (lists and ranges may mix)."""
    for part in matcher.split(","):
        low, _, high = part.strip().partition("-")
        if low and int(low) <= code <= int(high or low):
            return True
    return False


def mismatch(code: int) -> Result:
    return Result(False, MISMATCH, f"Health checks failed with these codes: [{code}]")


# --- the checker ----------------------------------------------------------------------------

async def check(host: str, port: int, s: Settings) -> Result:
    """One health check: ``GET <path>`` with ELB's User-Agent, the whole exchange up to the
    status line bounded by the timeout."""
    try:
        async with asyncio.timeout(s.timeout):  # not wait_for (proxy.next_event says why)
            return await _get_status(host, port, s)
    except TimeoutError:
        return Result(False, *TIMEOUT)
    except (OSError, h11.ProtocolError, EOFError):
        return Result(False, *FAILED)


async def _get_status(host: str, port: int, s: Settings) -> Result:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        conn = h11.Connection(h11.CLIENT)
        writer.write(conn.send(h11.Request(method="GET", target=s.path, headers=[
            ("Host", f"{host}:{port}"), ("User-Agent", "ELB-HealthChecker/2.0"),
            ("Connection", "close")])) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    raise EOFError("connection closed before a response")
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                return PASS if code_matches(s.matcher, event.status_code) else mismatch(
                    event.status_code)
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # a reset on close changes nothing about the result
            await writer.wait_closed()
