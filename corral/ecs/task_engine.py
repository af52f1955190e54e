"""The task engine: one pure step of a task's state machine (like amazon-ecs-agent's
task_manager + dependency graph).

    plan(doc, observed, now) -> Plan(doc', actions)

``doc`` is the task document (``tasks.TaskRow.doc``); its private part keeps per-container
facts — ``known`` ∈ NONE | CREATED | RUNNING | STOPPED, runtime id, start/finish times, exit
code, the first error, health state. ``observed`` maps runtime ids to what the driver reports.
The step folds observations into the facts, decides the task's desired and last status, and
returns the actions the executor (``agent``) carries out: create the sandbox, pull images,
start a container, signal one, run a health check, restart one, clean everything up. The
executor records each action's outcome in the facts and the next step goes on from there, so
a crash between steps only repeats work that is idempotent.

Rules, first match wins where they overlap:
1. An essential container that stopped (or could not start) stops the task: stopCode
   EssentialContainerExited, ``Essential container in task exited`` — or TaskFailedToStart with
   the container's own reason when it never ran (pull, create and start failures).
2. A container starts when every dependsOn condition holds (START: dependency running or
   stopped; COMPLETE: stopped; SUCCESS: stopped with 0; HEALTHY: HEALTHY). A condition that can
   never hold, or a startTimeout > 0 passed since the dependency started (COMPLETE, SUCCESS,
   HEALTHY), stops the container before it starts.
3. Shutdown runs in reverse dependency order: a container is signalled only once every
   container depending on it has stopped; SIGKILL follows after its stopTimeout.
4. The task is RUNNING once every container has started (or ended), PENDING before.
5. A stopping task registered with load balancers stays DEACTIVATING, its containers running,
   until the service scheduler has drained its targets (``load_balancing.held``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from corral.ecs import health
from corral.runtime.driver import ContainerState

PRIVATE = "x-corral"
STARTED = ("RUNNING", "STOPPED")


@dataclass(frozen=True)
class Action:
    kind: str  # sandbox | pull | start | signal | health | restart | cleanup
    container: str | None = None
    signal: str | None = None


@dataclass
class Plan:
    doc: dict[str, Any]
    actions: list[Action] = field(default_factory=list)
    changed: bool = False  # a state change clients can see (version + 1)


def plan(doc: dict[str, Any], observed: dict[str, ContainerState | None], now: float,
         *, default_stop_timeout: float = 30.0) -> Plan:
    doc = copy.deepcopy(doc)
    before = visible(doc)
    p = doc[PRIVATE]
    defs = {c["name"]: c for c in p["td"]["containerDefinitions"]}
    facts = p["containers"]
    _observe(facts, observed, now)
    actions: list[Action] = []
    restarts = _restarts(doc, defs, facts, now)
    actions += restarts
    _essential_exit(doc, defs, facts, now, skip={a.container for a in restarts})
    if doc["desiredStatus"] == "RUNNING":
        actions += _run(doc, defs, facts, now)
    else:
        actions += _stop(doc, defs, facts, now, default_stop_timeout)
    _project(doc, defs, facts)
    return Plan(doc, actions, visible(doc) != before)


# --- observing -------------------------------------------------------------------------------

def _observe(facts: dict[str, dict], observed: dict[str, ContainerState | None],
             now: float) -> None:
    for f in facts.values():
        if f["known"] not in ("CREATED", "RUNNING"):
            continue
        st = observed.get(f["runtimeId"])
        if st is None:
            _stopped(f, now, None, "ContainerVanishedError: the container disappeared from "
                                   "the runtime")
        elif st.status == "running" and f["known"] == "CREATED":
            f["known"], f["startedAt"] = "RUNNING", _epoch(st.started_at) or now
        elif st.status == "exited":
            f.setdefault("startedAt", _epoch(st.started_at))
            reason = None
            if st.oom_killed:
                reason = "OutOfMemoryError: Container killed due to memory usage"
            elif st.exit_code is None and st.error:
                reason = f"UnknownError: {st.error}"
            _stopped(f, _epoch(st.finished_at) or now, st.exit_code, reason)
        if st is not None and st.bindings:
            f["bindings"] = [[b.container_port, b.host_port, b.protocol, b.bind_ip]
                             for b in st.bindings]


def _stopped(f: dict, when: float, exit_code: int | None, reason: str | None) -> None:
    f["known"], f["finishedAt"] = "STOPPED", when
    if exit_code is not None:
        f["exitCode"] = exit_code
    if reason and not f.get("reason"):  # the first error is kept
        f["reason"] = reason


def _epoch(value) -> float | None:
    return value.timestamp() if value is not None else None


# --- running ---------------------------------------------------------------------------------

def _restarts(doc: dict, defs: dict, facts: dict, now: float) -> list[Action]:
    """Containers with a restart policy that exited while the task should run restart in
    place (reference §2.5), at most once per restartAttemptPeriod of running."""
    if doc["desiredStatus"] != "RUNNING":
        return []
    out = []
    for name, f in facts.items():
        policy = defs[name].get("restartPolicy") or {}
        if f["known"] != "STOPPED" or not policy.get("enabled") or f.get("reason") or \
                f.get("exitCode") in (policy.get("ignoredExitCodes") or []):
            continue
        since = f.get("restartedAt") or f.get("startedAt") or now
        if now - since >= policy.get("restartAttemptPeriod", 300):
            out.append(Action("restart", name))
    return out


def _essential_exit(doc: dict, defs: dict, facts: dict, now: float, skip: set) -> None:
    for name, f in facts.items():
        if not defs[name].get("essential", True) or f["known"] != "STOPPED" or name in skip:
            continue
        if doc.get("executionStoppedAt") is None:
            doc["executionStoppedAt"] = f.get("finishedAt") or now
        if doc["desiredStatus"] == "RUNNING":
            never_ran = f.get("startedAt") is None and f.get("reason")
            _desire_stop(doc, now, "TaskFailedToStart" if never_ran else
                         "EssentialContainerExited",
                         f["reason"] if never_ran else "Essential container in task exited")


def _desire_stop(doc: dict, now: float, code: str, reason: str) -> None:
    doc["desiredStatus"] = "STOPPED"
    doc.setdefault("stopCode", code)
    doc.setdefault("stoppedReason", reason)
    doc["stoppingAt"] = doc.get("stoppingAt") or now


def _run(doc: dict, defs: dict, facts: dict, now: float) -> list[Action]:
    p = doc[PRIVATE]
    if not p.get("sandbox"):
        doc["lastStatus"] = "PROVISIONING" if doc.get("attachments") else "PENDING"
        return [Action("sandbox")]
    if doc["lastStatus"] == "PROVISIONING":
        doc["lastStatus"] = "PENDING"
    if not p.get("pulled"):
        return [Action("pull")]
    actions = []
    for name, f in facts.items():
        if f["known"] == "NONE":
            verdict = _dependencies(name, defs, facts, now)
            if verdict is True:
                actions.append(Action("start", name))
            elif isinstance(verdict, str):
                _stopped(f, now, None, verdict)
        elif f["known"] == "RUNNING" and defs[name].get("healthCheck") and \
                health.argv(defs[name]["healthCheck"]) is not None:
            state = f.setdefault("health", health.initial(f["startedAt"],
                                                        defs[name]["healthCheck"]))
            if now >= state["nextAt"]:
                actions.append(Action("health", name))
    if doc["lastStatus"] == "PENDING" and all(f["known"] in STARTED for f in facts.values()) \
            and any(f["known"] == "RUNNING" for f in facts.values()):
        doc["lastStatus"], doc["startedAt"] = "RUNNING", now
    return actions


def _dependencies(name: str, defs: dict, facts: dict, now: float) -> bool | str | None:
    """True: start now; None: wait; a string: the reason it never will."""
    for dep in defs[name].get("dependsOn") or []:
        other, cond = facts[dep["containerName"]], dep["condition"]
        known, code = other["known"], other.get("exitCode")
        ran = other.get("startedAt") is not None
        if cond == "START" and known in STARTED:
            continue
        if cond == "COMPLETE" and known == "STOPPED" and ran:
            continue
        if cond == "SUCCESS" and known == "STOPPED" and code == 0:
            continue
        if cond == "HEALTHY" and (other.get("health") or {}).get("status") == "HEALTHY":
            continue
        if known == "STOPPED":
            return (f"DependencyError: failed to resolve container ordering dependency "
                    f"[{dep['containerName']}] for target [{name}] as dependency did not "
                    f"{'exit successfully' if cond == 'SUCCESS' else 'reach ' + cond}.")
        timeout = defs[name].get("startTimeout") or 0
        if timeout > 0 and cond != "START" and ran and now - other["startedAt"] > timeout:
            return (f"DependencyTimeoutError: timed out waiting for dependency "
                    f"[{dep['containerName']}] of [{name}] to reach {cond} after {timeout}s")
        return None
    return True


# --- stopping --------------------------------------------------------------------------------

def _stop(doc: dict, defs: dict, facts: dict, now: float, default_timeout: float
          ) -> list[Action]:
    p = doc[PRIVATE]
    doc["stoppingAt"] = doc.get("stoppingAt") or now
    for f in facts.values():
        if f["known"] == "NONE":
            f["known"] = "STOPPED"  # never started: nothing to stop
    running = [n for n, f in facts.items() if f["known"] in ("CREATED", "RUNNING")]
    if running and _draining(doc):
        doc["lastStatus"] = "DEACTIVATING"
        return []
    if doc["lastStatus"] != "STOPPED" and (running or not p.get("cleaned")):
        doc["lastStatus"] = "DEPROVISIONING" if not running and doc.get("attachments") \
            else "STOPPING"
    actions = []
    for name in running:
        if any(name in _deps_of(d) and facts[n]["known"] != "STOPPED"
               for n, d in defs.items() if n != name):
            continue  # dependents stop first
        f = facts[name]
        timeout = defs[name].get("stopTimeout") or default_timeout
        if f["known"] == "CREATED":
            f["known"], f["finishedAt"] = "STOPPED", now
        elif f.get("stopSentAt") is None:
            f["stopSentAt"] = now
            actions.append(Action("signal", name, p.get("stopSignals", {}).get(name, "SIGTERM")))
        elif not f.get("killSent") and now - f["stopSentAt"] >= timeout:
            f["killSent"] = True
            actions.append(Action("signal", name, "SIGKILL"))
    if all(f["known"] == "STOPPED" for f in facts.values()):
        if not p.get("cleaned"):
            actions.append(Action("cleanup"))
        elif doc["lastStatus"] != "STOPPED":
            doc["lastStatus"], doc["stoppedAt"] = "STOPPED", now
            doc["executionStoppedAt"] = doc.get("executionStoppedAt") or now
    return actions


def _draining(doc: dict) -> bool:
    record = doc[PRIVATE].get("lb")  # written by the scheduler: corral/ecs/load_balancing.py
    return bool(record and record["registered"] and not record.get("released"))


def _deps_of(container: dict) -> set[str]:
    return {d["containerName"] for d in container.get("dependsOn") or []}


# --- the API view ----------------------------------------------------------------------------

def _project(doc: dict, defs: dict, facts: dict) -> None:
    """Write the facts into the Task shape's containers and health."""
    host_mode = doc[PRIVATE]["td"].get("networkMode") == "host"
    for c in doc["containers"]:
        f = facts[c["name"]]
        c["lastStatus"] = {"RUNNING": "RUNNING", "STOPPED": "STOPPED"}.get(f["known"], "PENDING")
        for key in ("exitCode", "reason", "imageDigest"):
            if f.get(key) is not None:
                c[key] = f[key]
        if host_mode and f["known"] == "RUNNING" and not f.get("bindings"):
            f["bindings"] = [[m["containerPort"], m["containerPort"], m.get("protocol", "tcp"),
                              "0.0.0.0"] for m in defs[c["name"]].get("portMappings") or []]
        if f.get("bindings") and not c.get("networkInterfaces"):
            c["networkBindings"] = [
                {"bindIP": ip, "containerPort": cp, "hostPort": hp, "protocol": proto}
                for cp, hp, proto, ip in f["bindings"]]
        if defs[c["name"]].get("healthCheck"):
            c["healthStatus"] = (f.get("health") or {}).get("status", "UNKNOWN")
    doc["healthStatus"] = health.task_health([
        (defs[n].get("essential", True), bool(defs[n].get("healthCheck")),
         (facts[n].get("health") or {}).get("status", "UNKNOWN")) for n in facts])


def project(doc: dict[str, Any]) -> None:
    """Refresh the API view after the executor recorded outcomes in the facts."""
    p = doc[PRIVATE]
    _project(doc, {c["name"]: c for c in p["td"]["containerDefinitions"]}, p["containers"])


def visible(doc: dict) -> Any:
    """What a client can see change (``version`` counts these changes)."""
    return {k: v for k, v in doc.items() if k not in (PRIVATE, "version")}


def fail_to_start(doc: dict[str, Any], reason: str, now: float,
                  container: str | None = None) -> None:
    """Record a failure that keeps the task from starting (sandbox, pull): the container (or
    every container not started yet) ends with ``reason`` and the task stops with
    TaskFailedToStart and the same reason, as the ECS agent reports image pull failures."""
    for name, f in doc[PRIVATE]["containers"].items():
        if (container is None and f["known"] == "NONE") or name == container:
            _stopped(f, now, None, reason)
    _desire_stop(doc, now, "TaskFailedToStart", reason)
