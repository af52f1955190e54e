"""The awslogs log driver: ships each awslogs container's output to CloudWatch Logs.

    agent _do_start ── open_stream() ─> CreateLogGroup (create-group) + CreateLogStream, as the
                       execution role; a failure is the container's CannotStartContainerError
    LogShipper (controller, every 0.5 s) for each container whose stream was opened:
        supervisor's log file ─ read from the committed position ─> Joiner (multi-line)
          ─> pending events ─ every 5 s, or at 1 MiB / 10,000 events ─> ONE store
          transaction: authorize logs:PutLogEvents, logs.store.ingest ─ commit ─>
          <task>/logs/<container>.awslogs.json = the position after the last shipped line
    agent _do_cleanup / _do_restart ── finish() ─> everything left is shipped first

Nothing is lost across a Corral restart because the lines are on disk (the supervisor keeps
writing while Corral is down) and the position is only written after the events are
committed: at-least-once at the file level. A position names a file by inode and by its first
bytes (a timestamp, so a reused inode is not mistaken for it) plus a byte offset; reading
resumes after it and a line at or before it is never sent again, so the stream holds every
line once, in order (a crash between the commit and the position write, a few ms, is the
only window for a repeat).

``mode``: since lines are on disk, ``blocking`` drops nothing (while delivery fails, reading
pauses at 8 MiB of pending events and the rest waits in the file — within the rotation limit
below). ``non-blocking`` (ECS's
default since 2025-06-25) drops, while delivery is failing, the oldest unshipped events
beyond ``max-buffer-size`` (ECS's default 10m) — as Docker's ring buffer does when its
consumer is stuck — and counts them in a WARNING (at most once a minute). Rotation
(10 MiB × 3 files): the shipper reads every 0.5 s, up to 4 MiB per pass, far faster than a
container fills 20 MiB, so while Corral runs no unshipped line rotates away. While Corral is
down the supervisor's three files keep the last 20-30 MiB of output; a container that writes
more than that before Corral returns loses the oldest of it (the shipper reports "the log
rotated past unshipped lines"). Closing that gap needs the supervisor to hold rotation (or
block the container's pipe) until the shipper's position passes the oldest file.

Delivery is authorized as the task's execution role (or the account root without one, as
image pulls are) on the resources AWS's awslogs errors name: ``…:log-group:G:log-stream:``
for CreateLogGroup and ``…:log-group:G:log-stream:S`` for CreateLogStream / PutLogEvents. A
denied or failing PutLogEvents is retried every flush and logged as a WARNING at most once a
minute per container; it never stops the agent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from corral.aws.context import Principal, RequestContext
from corral.aws.errors import AwsError
from corral.controller import Controller
from corral.ecs import awslogs, tasks
from corral.ecs.awslogs import AwslogsConfig, Joiner, LogEvent, Position, log_files, read_lines
from corral.ecs.task_engine import PRIVATE
from corral.files import read_json, write_json_atomic
from corral.logs import names
from corral.logs import store as logs_store
from corral.logs.errors import InvalidParameterException, group_not_found, stream_not_found
from corral.runtime.driver import RuntimeFailure
from corral.runtime.images import account_principal, role_principal

log = logging.getLogger("corral.ecs.log_shipper")

MAX_BATCH_BYTES, MAX_BATCH_EVENTS, PER_EVENT = 1_048_576, 10_000, 26  # moby's limits
MAX_SPAN_MS = 24 * 3600 * 1000  # PutLogEvents: a batch spans at most 24 hours
READ_BUDGET = 4 << 20  # bytes read per pass and container
BLOCKING_PAUSE = 8 << 20  # blocking mode: stop reading while this much waits for delivery
WARN_EVERY_S = 60.0


@dataclass
class Tail:
    """What the shipper knows about one container."""
    key: tuple[str, str, str, str]  # account, region, task id, container
    runtime_id: str
    config: AwslogsConfig
    stream: str
    role: str | None
    state_file: Path
    committed: Position | None
    joiner: Joiner
    cursor: Position | None = None
    pending: list[LogEvent] = field(default_factory=list)
    last_put: float = 0.0
    warned_at: float = -WARN_EVERY_S
    failing: bool = False  # the last delivery failed: non-blocking mode may drop now
    dropped: int = 0  # lines dropped by non-blocking mode (reported in the server log)
    drop_warned_at: float = -WARN_EVERY_S
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pending_bytes(self) -> int:
        return sum(len(e.message.encode()) + PER_EVENT for e in self.pending)


class LogShipper(Controller):
    name = "log-shipper"
    interval = 0.5

    def __init__(self, store, driver, authorizer, endpoint: str, state_dir):
        super().__init__()
        self.store, self.driver, self.authorizer = store, driver, authorizer
        self.endpoint = endpoint
        self.state_dir = state_dir  # (task id, container) -> the directory of saved logs
        self.tails: dict[tuple[str, str, str, str], Tail] = {}
        self.closed: set[tuple[str, str, str, str]] = set()  # finished: not read again
        self._lock = threading.Lock()

    # --- hooks the agent calls --------------------------------------------------------

    def open_stream(self, db: Connection, row: tasks.TaskRow, definition: dict,
                    runtime_id: str) -> dict | None:
        """At container start (``db``: a write transaction): the group (with create-group)
        and the stream, as Docker's driver does before the container runs. Returns what the
        agent records in the container's facts, None without awslogs; raises RuntimeFailure
        with Docker's text."""
        cfg = _config(definition)
        if cfg is None:
            return None
        stream = cfg.stream_name(definition["name"], row.task_id, runtime_id)
        with self._lock:
            self.closed.discard((row.account_id, row.region, row.task_id, definition["name"]))
        principal = self._principal(db, row.account_id, _role(row.doc), row.task_id)
        group_res = names.group_arn(cfg.region, row.account_id, cfg.group) + ":log-stream:"
        now = _now_ms()
        try:
            if cfg.create_group:
                self._authorize(db, principal, cfg.region, "logs:CreateLogGroup", group_res)
                logs_store.ensure_group(db, row.account_id, cfg.region, cfg.group, now)
        except AwsError as e:
            raise _start_failure("log group", e) from None
        try:
            self._authorize(db, principal, cfg.region, "logs:CreateLogStream", group_res + stream)
            group = logs_store.group(db, row.account_id, cfg.region, cfg.group)
            if group is None:
                raise group_not_found()
            logs_store.ensure_stream(db, group, stream, now)
        except AwsError as e:
            raise _start_failure("log stream", e) from None
        return {"group": cfg.group, "region": cfg.region, "stream": stream}

    def finish(self, row: tasks.TaskRow, doc: dict, container: str, *,
               restart: bool = False) -> None:
        """Before the container's log goes away (cleanup, restart in place): ship the rest,
        the pending multi-line event too (``doc``: the worker's current task document).
        After a restart the new log starts afresh."""
        key = (row.account_id, row.region, row.task_id, container)
        tail = self._tail(key, doc)
        if tail is None:
            return
        with tail.lock:
            self._pump(tail, force=True)
            if restart:
                tail.cursor = tail.committed = None
                tail.pending.clear()
                write_json_atomic(tail.state_file, {"fresh": True})
        with self._lock:
            self.tails.pop(key, None)
            self.closed.add(key)  # until a restart opens the stream again

    # --- the controller pass ----------------------------------------------------------

    def reconcile(self) -> None:
        with self.store.transaction(write=False) as db:
            rows = tasks.active(db)
        live = set()
        for row in rows:
            for name, f in row.private["containers"].items():
                if not f.get("awslogs") or f["known"] not in ("RUNNING", "STOPPED"):
                    continue
                key = (row.account_id, row.region, row.task_id, name)
                live.add(key)
                if key in self.closed:
                    continue
                tail = self._tail(key, row.doc)
                if tail is not None and tail.lock.acquire(blocking=False):
                    try:
                        self._pump(tail)
                    finally:
                        tail.lock.release()
        with self._lock:
            for key in [k for k in self.tails if k not in live]:
                del self.tails[key]
            self.closed &= live

    def _tail(self, key: tuple[str, str, str, str], doc: dict) -> Tail | None:
        with self._lock:
            if key in self.tails:
                return self.tails[key]
            f = doc[PRIVATE]["containers"][key[3]]
            definition = next(c for c in doc[PRIVATE]["td"]["containerDefinitions"]
                              if c["name"] == key[3])
            if not f.get("awslogs"):
                return None
            cfg = _config(definition)
            assert cfg is not None  # the stream was opened with this configuration
            state_file = self.state_dir(key[2]) / f"{key[3]}.awslogs.json"
            state_file.parent.mkdir(parents=True, exist_ok=True)
            saved = read_json(state_file) or {}
            committed = Position(saved["ino"], saved["head"], saved["offset"]) \
                if "ino" in saved else None
            tail = Tail(key, f["runtimeId"], cfg, f["awslogs"]["stream"], _role(doc),
                        state_file, committed,
                        Joiner(cfg.start_pattern, int(cfg.flush_interval * 1000)))
            tail.cursor = committed
            self.tails[key] = tail
            return tail

    # --- reading and shipping ---------------------------------------------------------

    def _pump(self, tail: Tail, *, force: bool = False) -> None:
        """Read what is new, then ship what is due (everything, with ``force``)."""
        blocked = tail.config.mode == "blocking" and tail.pending_bytes >= BLOCKING_PAUSE
        if not blocked:
            self._read(tail)
        now_ms = _now_ms()
        tail.pending += tail.joiner.flush() if force else tail.joiner.expire(now_ms)
        if tail.config.mode == "non-blocking" and tail.failing:
            self._drop_oldest(tail)
        while tail.pending and (force or self._due(tail)):
            if not self._ship(tail):
                return

    def _due(self, tail: Tail) -> bool:
        return (time.monotonic() - tail.last_put >= tail.config.flush_interval
                or len(tail.pending) >= MAX_BATCH_EVENTS
                or tail.pending_bytes >= MAX_BATCH_BYTES)

    def _read(self, tail: Tail) -> None:
        try:
            path = self.driver.log_path(tail.runtime_id)
        except RuntimeFailure:
            return  # the container is gone: its rest was shipped by finish()
        lines, cursor, lost = read_lines(log_files(path), tail.cursor, READ_BUDGET)
        if lost:
            log.warning("awslogs %s/%s: the log rotated past unshipped lines while Corral was "
                        "down; shipping resumes at the oldest kept line", tail.key[2], tail.key[3])
        for ts, text, end in lines:
            tail.pending += tail.joiner.add(ts, text, end)
        tail.cursor = cursor

    def _ship(self, tail: Tail) -> bool:
        """One PutLogEvents batch in one store transaction; the position written after the
        commit. False when delivery failed (kept pending, retried at the next flush)."""
        batch = take_batch(tail.pending)
        events = sorted(({"timestamp": e.timestamp, "message": e.message} for e in batch),
                        key=lambda e: e["timestamp"])  # stable: same-ms lines keep order
        account, _, task_id, _ = tail.key
        cfg = tail.config
        tail.last_put = time.monotonic()
        try:
            with self.store.transaction() as db:
                principal = self._principal(db, account, tail.role, task_id)
                self._authorize(db, principal, cfg.region, "logs:PutLogEvents",
                                names.stream_arn(cfg.region, account, cfg.group, tail.stream))
                group = logs_store.group(db, account, cfg.region, cfg.group)
                if group is None:
                    raise group_not_found()
                stream = logs_store.stream(db, group, tail.stream)  # deleted: not made anew
                if stream is None:
                    raise stream_not_found()
                out = logs_store.ingest(db, group, stream, events, _now_ms())
        except InvalidParameterException as e:  # Docker logs the refused batch and drops it
            log.error("awslogs %s/%s: PutLogEvents refused %d events: %s", task_id,
                      tail.key[3], len(batch), e.message)
            out = {}
        except (AwsError, RuntimeFailure, SQLAlchemyError) as e:
            self._warn(tail, f"PutLogEvents failed: {getattr(e, 'code', e.__class__.__name__)}"
                             f": {e}")
            tail.failing = True
            return False
        if out.get("rejectedLogEventsInfo"):
            log.warning("awslogs %s/%s: events rejected: %s", task_id, tail.key[3],
                        out["rejectedLogEventsInfo"])
        tail.failing = False
        del tail.pending[:len(batch)]
        _commit_position(tail, batch)
        return True

    def _drop_oldest(self, tail: Tail) -> None:
        """non-blocking, while delivery fails: keep at most max-buffer-size bytes of
        unshipped events (as Docker's ring buffer does when its consumer is stuck)."""
        excess, n = tail.pending_bytes - tail.config.max_buffer_bytes, 0
        while excess > 0 and n < len(tail.pending):
            excess -= len(tail.pending[n].message.encode()) + PER_EVENT
            tail.dropped += tail.pending[n].lines
            n += 1
        if n:
            gone = tail.pending[:n]
            del tail.pending[:n]
            _commit_position(tail, gone)
            now = time.monotonic()
            if now - tail.drop_warned_at >= WARN_EVERY_S:  # its own minute: never hidden
                tail.drop_warned_at = now
                log.warning("awslogs %s/%s: non-blocking mode has dropped %d lines beyond "
                            "max-buffer-size (%d bytes)", tail.key[2], tail.key[3],
                            tail.dropped, tail.config.max_buffer_bytes)

    def _warn(self, tail: Tail, message: str) -> None:
        now = time.monotonic()
        if now - tail.warned_at >= WARN_EVERY_S:
            tail.warned_at = now
            log.warning("awslogs %s/%s: %s (retrying)", tail.key[2], tail.key[3], message)

    # --- identity ---------------------------------------------------------------------

    def _principal(self, db: Connection, account: str, role: str | None,
                   task_id: str) -> Principal:
        return role_principal(db, role, task_id) if role else account_principal(account)

    def _authorize(self, db: Connection, principal: Principal, region: str, action: str,
                   resource: str) -> None:
        ctx = RequestContext(str(uuid.uuid4()), "logs", action.split(":")[1], region,
                             principal, self.endpoint, db=db)
        self.authorizer.authorize(ctx, action, [resource])


# --- pure helpers ---------------------------------------------------------------------------


def take_batch(pending: list[LogEvent]) -> list[LogEvent]:
    """The longest prefix of ``pending`` one PutLogEvents takes: ≤ 10,000 events, ≤ 1 MiB
    (message bytes + 26 each), spanning ≤ 24 hours."""
    size, lo, hi = 0, None, None
    for i, e in enumerate(pending[:MAX_BATCH_EVENTS]):
        size += len(e.message.encode()) + PER_EVENT
        lo = e.timestamp if lo is None else min(lo, e.timestamp)
        hi = e.timestamp if hi is None else max(hi, e.timestamp)
        if i and (size > MAX_BATCH_BYTES or hi - lo > MAX_SPAN_MS):
            return pending[:i]
    return pending[:MAX_BATCH_EVENTS]


def _commit_position(tail: Tail, gone: list[LogEvent]) -> None:
    """The position after the last line of ``gone`` (shipped or dropped), on disk."""
    end = next((e.end for e in reversed(gone) if isinstance(e.end, Position)), None)
    if end is not None:
        tail.committed = end
        write_json_atomic(tail.state_file, {"ino": end.ino, "head": end.head,
                                            "offset": end.offset})


def _config(definition: dict) -> AwslogsConfig | None:
    log_cfg = definition.get("logConfiguration") or {}
    if log_cfg.get("logDriver") != "awslogs":
        return None
    try:
        return awslogs.parse(log_cfg.get("options") or {})
    except awslogs.AwslogsOptionError as e:  # dockerd refuses to create the container
        raise RuntimeFailure(f"Error response from daemon: {e}",
                             "CannotCreateContainerError") from None


def _start_failure(what: str, e: AwsError) -> RuntimeFailure:
    """Docker's words when the driver cannot start (reference §7, moby awslogs New)."""
    return RuntimeFailure(f"Error response from daemon: failed to initialize logging driver: "
                          f"failed to create Cloudwatch {what}: {e.code}: {e.message}",
                          "CannotStartContainerError")


def _role(doc: dict[str, Any]) -> str | None:
    """The execution role (an override first), as image pulls use it."""
    return (doc.get("overrides") or {}).get("executionRoleArn") or \
        doc[PRIVATE]["td"].get("executionRoleArn")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
