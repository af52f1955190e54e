"""Container health checks and the task's aggregate health (pure).

Docker's rules as ECS uses them (reference §2.1–2.2): the first check runs ``interval`` seconds
after the container starts; a check that exits 0 within ``timeout`` passes; ``retries``
consecutive failures make the container UNHEALTHY; failures inside ``startPeriod`` do not count
until the first success; ``starting`` (no verdict yet) is reported as UNKNOWN.
"""

from __future__ import annotations

from typing import Any

DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
OUTPUT_LIMIT = 1024


def settings(check: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **{k: v for k, v in check.items() if v is not None}}


def argv(check: dict[str, Any]) -> list[str] | None:
    """The command a check runs: ``CMD`` args directly, ``CMD-SHELL`` through /bin/sh -c;
    a bare list is taken as CMD (2023 DG); ``NONE`` disables the check."""
    command = list(check.get("command") or [])
    if not command or command[0] == "NONE":
        return None
    if command[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(command[1:])]
    return command[1:] if command[0] == "CMD" else command


def initial(started_at: float, check: dict[str, Any]) -> dict[str, Any]:
    s = settings(check)
    return {"status": "UNKNOWN", "failures": 0, "passed": False, "output": "",
            "since": started_at, "nextAt": started_at + s["interval"], "exitCode": None}


def record(state: dict[str, Any], check: dict[str, Any], *, exit_code: int, output: str,
           now: float, started_at: float) -> dict[str, Any]:
    """The health state after one check ran at ``now`` (exit_code -1: it timed out)."""
    s = settings(check)
    out = dict(state, output=output[:OUTPUT_LIMIT], exitCode=exit_code,
               nextAt=now + s["interval"])
    if exit_code == 0:
        out.update(failures=0, passed=True)
        status = "HEALTHY"
    elif now < started_at + s["startPeriod"] and not state.get("passed"):
        status = state["status"]  # grace: failures in the start period do not count
    else:
        out["failures"] = state.get("failures", 0) + 1
        status = "UNHEALTHY" if out["failures"] >= s["retries"] else state["status"]
    if status != state["status"]:
        out["since"] = now
    out["status"] = status
    return out


def task_health(containers: list[tuple[bool, bool, str]]) -> str:
    """Aggregate of (essential, has health check, status) per container: any essential
    UNHEALTHY ⇒ UNHEALTHY; else any essential with a check UNKNOWN ⇒ UNKNOWN; else HEALTHY —
    but UNKNOWN when no essential container has a check at all."""
    checked = [status for essential, has_check, status in containers if essential and has_check]
    if not checked:
        return "UNKNOWN"
    if "UNHEALTHY" in checked:
        return "UNHEALTHY"
    return "UNKNOWN" if "UNKNOWN" in checked else "HEALTHY"
