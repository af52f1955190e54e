"""ECS changes as the EventBridge events AWS sends for them, kept in memory for
``corral events --follow`` (and, later, the console and an EventBridge-style history).

    tasks.insert / tasks.save(bump) ──emit "ecs.task.state"────┐  published after the commit
    services.save ────────────────────emit "ecs.service.state"─┤  (corral.store.db.emit)
                                                               v
                          EventStream: payload ─> envelopes ─> ring of the last 10,000,
                                                               each with a sequence number
                                                               v
                          admin ``ecs/events`` {"after": seq} ─> since(seq, account, region)

Every event is the envelope EventBridge delivers (reference ecs-semantics.md §3.6, §3.7, §11;
DG ecs_cwe_events): ``{"version": "0", "id", "detail-type", "source": "aws.ecs", "account",
"time", "region", "resources": [arn], "detail"}``. Three detail types:

- ``ECS Task State Change``: detail is the Task shape as DescribeTasks returns it, plus
  ``updatedAt`` (``stoppedAt`` once the task stopped, §11; else when the change was saved).
- ``ECS Service Action``: one per new service event whose message AWS also reports to
  EventBridge (steady state, start impaired, placement failure, throttling — see
  ``SERVICE_ACTIONS``). Messages with no EventBridge counterpart (``has started 1 tasks``)
  are not sent: AWS reports those changes as task state changes instead.
- ``ECS Deployment State Change``: one per deployment whose rolloutState changed.

Timestamps inside ``detail`` are RFC 3339 strings with milliseconds, as EventBridge writes
them; Corral's documents keep epoch seconds (what the JSON API sends), so the mapping converts
every number under a key ending in ``At``. The stream is a pure mapping plus a locked ring
buffer: nothing is persisted, and a restart starts a new sequence — like EventBridge, it is a
feed of what happens, not the record (the record is the store).
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

TASK_STATE = "ecs.task.state"
SERVICE_STATE = "ecs.service.state"
CAPACITY = 10_000

TASK_CHANGE = "ECS Task State Change"
SERVICE_ACTION = "ECS Service Action"
DEPLOYMENT_CHANGE = "ECS Deployment State Change"

# Service event message → (eventType, eventName); first match wins. The names and their
# types are the documented ECS Service Action events (reference §3.7, DG ecs_cwe_events);
# the substrings are the messages the scheduler writes for those situations (§3.7 table).
SERVICE_ACTIONS: list[tuple[str, str, str]] = [
    ("has reached a steady state.", "INFO", "SERVICE_STEADY_STATE"),
    ("is unable to consistently start tasks successfully.", "WARN",
     "SERVICE_TASK_START_IMPAIRED"),
    ("was unable to place a task", "ERROR", "SERVICE_TASK_PLACEMENT_FAILURE"),
    ("operations are being throttled.", "ERROR", "ECS_OPERATION_THROTTLED"),
]

# A placement failure's ``reasons`` (DG ecs_cwe_events shows e.g. ``RESOURCE:CPU``), from the
# closing words of the scheduler's message.
PLACEMENT_REASONS: list[tuple[str, str]] = [
    ("insufficient CPU units available", "RESOURCE:CPU"),
    ("insufficient memory available", "RESOURCE:MEMORY"),
    ("is already using a port required by your task", "RESOURCE:PORTS"),
]

# rolloutState → (eventType, eventName) of the ECS Deployment State Change (reference §3.6).
DEPLOYMENT_EVENTS: dict[str, tuple[str, str]] = {
    "IN_PROGRESS": ("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS"),
    "COMPLETED": ("INFO", "SERVICE_DEPLOYMENT_COMPLETED"),
    "FAILED": ("ERROR", "SERVICE_DEPLOYMENT_FAILED"),
}


def rfc3339(epoch: float, *, millis: bool = True) -> str:
    """``2020-01-23T17:57:34.604Z`` (detail timestamps) or ``…T17:57:34Z`` (the envelope's
    ``time``, which EventBridge gives to the second)."""
    when = datetime.fromtimestamp(epoch, UTC)
    if not millis:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _timestamps(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with every epoch number under an ``…At`` key as RFC 3339."""
    if isinstance(value, dict):
        return {k: _timestamps(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_timestamps(v, key) for v in value]
    if key.endswith("At") and isinstance(value, int | float) and not isinstance(value, bool):
        return rfc3339(value)
    return value


def envelope(detail_type: str, account: str, region: str, resource: str, when: float,
             detail: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {"version": "0", "id": event_id, "detail-type": detail_type, "source": "aws.ecs",
            "account": account, "time": rfc3339(when, millis=False), "region": region,
            "resources": [resource], "detail": detail}


def task_event(account: str, region: str, task: dict[str, Any], at: float,
               new_id: Callable[[], str]) -> dict[str, Any]:
    """The ECS Task State Change for ``task`` (the Task shape, epoch timestamps) saved at
    ``at``."""
    updated = task.get("stoppedAt") if task.get("lastStatus") == "STOPPED" else None
    detail = _timestamps({**task, "updatedAt": updated or at})
    return envelope(TASK_CHANGE, account, region, task["taskArn"], updated or at, detail,
                    new_id())


def service_action(message: str) -> tuple[str, str] | None:
    for text, event_type, name in SERVICE_ACTIONS:
        if text in message:
            return event_type, name
    return None


def service_events(payload: dict[str, Any], new_id: Callable[[], str]) -> list[dict[str, Any]]:
    """The envelopes for one ``ecs.service.state`` payload: deployment changes first (a
    failed deployment before the rollback it starts), then service actions oldest first."""
    account, region, arn = payload["account"], payload["region"], payload["service"]
    out = []
    for d in payload.get("deployments", []):
        event_type, name = DEPLOYMENT_EVENTS[d["rolloutState"]]
        when = d.get("updatedAt") or payload["at"]
        detail = {"eventType": event_type, "eventName": name, "deploymentId": d["id"],
                  "updatedAt": rfc3339(when), "reason": d.get("rolloutStateReason", "")}
        out.append(envelope(DEPLOYMENT_CHANGE, account, region, arn, when, detail, new_id()))
    for e in payload.get("events", []):
        action = service_action(e["message"])
        if action is None:
            continue
        detail = {"eventType": action[0], "eventName": action[1],
                  "clusterArn": payload["cluster"], "createdAt": rfc3339(e["createdAt"])}
        reasons = [r for text, r in PLACEMENT_REASONS if text in e["message"]]
        if action[1] == "SERVICE_TASK_PLACEMENT_FAILURE" and reasons:
            detail["reasons"] = reasons
        out.append(envelope(SERVICE_ACTION, account, region, arn, e["createdAt"], detail,
                            new_id()))
    return out


def service_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What a save of a service document changed, for the ``ecs.service.state`` payload:
    ``events`` new since ``old`` (oldest first) and ``deployments`` whose rolloutState
    changed or that are new with one ({id, rolloutState, rolloutStateReason, updatedAt};
    terminal states first). Empty when nothing the stream reports changed."""
    old = old or {}
    seen = {e["id"] for e in old.get("events", [])}
    events = [dict(e) for e in reversed(new.get("events", [])) if e["id"] not in seen]
    before = {d["id"]: d.get("rolloutState") for d in old.get("deployments", [])}
    deployments = [
        {k: d[k] for k in ("id", "rolloutState", "rolloutStateReason", "updatedAt") if k in d}
        for d in new.get("deployments", [])
        if d.get("rolloutState") in DEPLOYMENT_EVENTS
        and before.get(d["id"]) != d["rolloutState"]]
    deployments.sort(key=lambda d: d["rolloutState"] == "IN_PROGRESS")
    out: dict[str, Any] = {}
    if events:
        out["events"] = events
    if deployments:
        out["deployments"] = deployments
    return out


class EventStream:
    """The last ``capacity`` envelopes with increasing sequence numbers (the first is 1).
    Thread-safe: publishers are request and controller threads, readers admin requests."""

    def __init__(self, capacity: int = CAPACITY,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())):
        self._ring: deque[tuple[int, str, str, dict[str, Any]]] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self._new_id = new_id

    def subscribe(self, bus) -> None:
        """Listen on an :class:`corral.events.EventBus`."""
        bus.subscribe(TASK_STATE, self.on_task)
        bus.subscribe(SERVICE_STATE, self.on_service)

    def on_task(self, payload: dict[str, Any]) -> None:
        self.add(task_event(payload["account"], payload["region"], payload["task"],
                            payload["at"], self._new_id))

    def on_service(self, payload: dict[str, Any]) -> None:
        for event in service_events(payload, self._new_id):
            self.add(event)

    def add(self, event: dict[str, Any]) -> int:
        with self._lock:
            self._seq += 1
            self._ring.append((self._seq, event["account"], event["region"], event))
            return self._seq

    def since(self, seq: int, account: str, region: str, *, limit: int | None = None
              ) -> tuple[list[dict[str, Any]], int]:
        """Events after ``seq`` of ``account`` and ``region``, oldest first, and the sequence
        number to ask after next time (the newest one looked at, so another account's events
        are not scanned again). Events that fell out of the ring are simply gone; a ``seq``
        beyond the newest one comes from before a restart and reads the new stream whole."""
        with self._lock:
            last = self._seq
            if seq > last:
                seq = 0
            newer = []
            for entry in reversed(self._ring):  # newest first: stop at what was seen
                if entry[0] <= seq:
                    break
                newer.append(entry)
        newer.reverse()
        out: list[dict[str, Any]] = []
        for n, acct, reg, event in newer:
            if (acct, reg) != (account, region):
                continue
            if limit is not None and len(out) >= limit:
                return out, seq
            out.append(event)
            seq = n
        return out, last
