"""Corral's own task actions (``corral tasks …``):

    ecs/stop-all-tasks {"wait"?: bool}   ⇒ {"stopping": n, "active": n}  (corral down --stop-tasks)
    ecs/task-logs  {"task": id|arn, "container"?: name, "offset"?: {name: bytes | [ts, id]}}
                   ⇒ {"lines": [{"container", "time", "stream", "text"}], "offset": {…},
                      "sources": {name: "file" | "logs:<region>:<group>:<stream>"},
                      "lastStatus": …}
    ecs/events     {"after"?: seq, "limit"?: n}   ⇒ {"events": [EventBridge envelope, …],
                   "next": seq}   (``corral events [--follow]``; see ``event_stream``)

Output is read from the runtime's per-container log while the container exists and from the
copy the agent keeps after it stopped (until the task is forgotten) — except for a container
with the awslogs driver, whose lines are read from its CloudWatch Logs stream (what the
shipper delivered; its offset is the keyset ``[ts, id]`` of the last event returned, and
``stream`` is ``awslogs``). ``offset`` lets
``--follow`` ask only for what is new; ``after`` does the same for the event stream, whose
events are scoped to the caller's account and region like every store query.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from corral.admin import AdminApi
from corral.aws.context import RequestContext
from corral.aws.errors import ValidationException
from corral.ecs import names, tasks
from corral.ecs.event_stream import EventStream
from corral.logs import store as logs_store
from corral.runtime.driver import RuntimeFailure
from corral.store.db import emit

MAX_BYTES = 1024 * 1024  # per call and container
MAX_EVENTS = 1000  # per ecs/events call: a follower catching up asks again at once


def register(admin: AdminApi, agent, stream: EventStream, scheduler=None) -> None:
    @admin.action("ecs/events", transaction=False)  # memory only: no store transaction
    def events(ctx: RequestContext, body: dict) -> dict:
        after, limit = body.get("after", 0), body.get("limit", MAX_EVENTS)
        for name, value in (("after", after), ("limit", limit)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValidationException(f"{name} must be a non-negative integer")
        found, nxt = stream.since(after, ctx.account_id, ctx.region,
                                  limit=min(limit or MAX_EVENTS, MAX_EVENTS))
        return {"events": found, "next": nxt}

    @admin.action("ecs/task-logs", transaction=False)  # a read: no write lock per poll
    def task_logs(ctx: RequestContext, body: dict) -> dict:
        ref = str(body.get("task") or "")
        with agent.store.transaction(write=False) as db:
            row = tasks.get(db, ctx.account_id, ctx.region, names.last_part(ref))
        if row is None:
            raise ValidationException(f"no task {ref!r} in {ctx.account_id}/{ctx.region}; "
                                      "list them with `aws ecs list-tasks`")
        offsets = body.get("offset") or {}
        if not isinstance(offsets, dict) or not all(map(_offset_ok, offsets.values())):
            raise ValidationException("offset must map container names to byte offsets >= 0 "
                                      "(or [ts, id] positions of awslogs streams)")
        offsets, lines, sources = dict(offsets), [], {}
        for name, f in row.private["containers"].items():
            if body.get("container") and name != body["container"]:
                continue
            if f.get("awslogs"):  # shipped to CloudWatch Logs: read it back from there
                sources[name] = "logs:{region}:{group}:{stream}".format(**f["awslogs"])
                found, last = _read_stream(agent.store, row.account_id, f["awslogs"],
                                           offsets.get(name))
                if last is not None:
                    offsets[name] = last
                lines += [dict(line, container=name) for line in found]
                continue
            sources[name] = "file"
            path = _log_file(agent, row.task_id, name, f["runtimeId"])
            start = offsets.get(name, 0)
            chunk, offsets[name] = _read(path, start if isinstance(start, int) else 0)
            lines += [_parse(name, line) for line in chunk]
        lines.sort(key=lambda x: x["time"])
        return {"lines": lines, "offset": offsets, "sources": sources,
                "lastStatus": row.doc["lastStatus"]}


    @admin.action("ecs/stop-all-tasks")
    def stop_all(ctx: RequestContext, body: dict) -> dict:
        """Every task of the caller's account and region that is not STOPPED is told to stop
        (``corral down --stop-tasks``); with ``wait`` only counts those still active. The
        service scheduler pauses until the server stops, so services do not replace them (the
        next ``corral up`` brings services back to their desired count)."""
        if scheduler is not None:
            scheduler.paused = True
        rows = [r for r in tasks.active(ctx.db)
                if (r.account_id, r.region) == (ctx.account_id, ctx.region)]
        stopping = 0
        for row in rows:
            if body.get("wait") or row.doc["desiredStatus"] == "STOPPED":
                continue
            row.doc.update(desiredStatus="STOPPED", stopCode="UserInitiated",
                           stoppedReason="Task stopped by user",
                           stoppingAt=time.time())
            tasks.save(ctx.db, row)
            emit(ctx.db, "ecs.task.changed", task=[row.account_id, row.region, row.task_id])
            stopping += 1
        return {"stopping": stopping, "active": len(rows)}


def _log_file(agent, task_id: str, name: str, runtime_id: str) -> Path | None:
    saved = agent.saved_log(task_id, name)
    if saved.exists():
        return saved
    try:
        return agent.driver.log_path(runtime_id)
    except RuntimeFailure:
        return None


def _offset_ok(v: object) -> bool:
    if isinstance(v, list):
        return len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _read_stream(store, account: str, where: dict, after: object
                 ) -> tuple[list[dict], list[int] | None]:
    """The stream's events after the keyset position ``after`` (oldest first), as lines."""
    position = tuple(after) if isinstance(after, list) else None
    with store.transaction(write=False) as db:
        group = logs_store.group(db, account, where["region"], where["group"])
        stream = group and logs_store.stream(db, group, where["stream"])
        events = logs_store.read_stream(db, stream, after=position, limit=MAX_EVENTS) \
            if stream is not None else []
    lines = [{"time": _iso_ms(e.ts), "stream": "awslogs", "text": e.message.removesuffix("\n")}
             for e in events]
    last = [events[-1].ts, events[-1].id] if events else (list(position) if position else None)
    return lines, last


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _read(path: Path | None, start: int) -> tuple[list[str], int]:
    if path is None or not path.exists():
        return [], start
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(MAX_BYTES)
    end = data.rfind(b"\n") + 1  # whole lines only
    text = data[:end].decode("utf-8", "replace")
    return text.splitlines(), start + end


def _parse(container: str, line: str) -> dict:
    when, _, rest = line.partition(" ")
    stream, _, text = rest.partition(" ")
    return {"container": container, "time": when, "stream": stream, "text": text}
