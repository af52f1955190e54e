"""The awslogs log driver's parts that take no service: options → a frozen config, the
multi-line joiner (pure), and the reader of the supervisor's rotating log files.

Two layers check a container's ``logConfiguration.options``, as on AWS:

    RegisterTaskDefinition ── registration_error() ──> ClientException (ECS's own checks)
    container start        ── parse() ─────────────> AwslogsOptionError: what Docker's
                                                      ValidateLogOpt refuses, reported as
                                                      CannotCreateContainerError by the agent

ECS refuses only a few things itself (an empty ``awslogs-group`` / ``awslogs-region``,
``awslogs-create-group`` set to anything but ``true``, a Fargate task without
``awslogs-stream-prefix``); the rest reaches dockerd unchecked and fails when the container
is created — ``awslogs-datetime-format`` together with ``awslogs-multiline-pattern``, an
unknown ``mode``, ``max-buffer-size`` without ``mode=non-blocking``, an unparsable size or
regex. The messages are moby's (``daemon/logger/awslogs/cloudwatchlogs.go``,
``daemon/logs.go``).

The joiner is Docker's ``processMultilineEvent``: with a start pattern, a line the pattern
matches (``re.search``, unanchored, like Go's ``Regexp.Match``) starts a new event and any
other line is appended; every line keeps its newline (Docker appends ``"\\n"`` to each line of
a multi-line event). A pending event is flushed when the next start arrives, when it grows
past 262,118 bytes, or once it is older than the flush interval (5 s). Without a pattern each
non-empty line is one event. Events longer than 262,118 bytes (256 KiB minus the 26 bytes
CloudWatch counts per event) are split at UTF-8 boundaries.

The reader resumes at a ``Position``: a file named by inode and first bytes (its first line's
timestamp, so a reused inode is not mistaken for it) and an offset. Files are read oldest
first (``log.2``, ``log.1``, ``log``), so a position survives the supervisor's renames.
"""

from __future__ import annotations

import calendar
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

MAX_EVENT_BYTES = 262_144 - 26  # moby maximumBytesPerEvent
FLUSH_INTERVAL_S = 5.0  # moby batchPublishFrequency / defaultForceFlushInterval
ECS_DEFAULT_BUFFER = "10m"  # the ECS agent's max-buffer-size for non-blocking mode

# moby's strftimeToRegex: each %X of awslogs-datetime-format becomes this regex; an unknown
# one becomes "" (Go's map lookup miss), as in Docker.
STRFTIME_TO_REGEX: dict[str, str] = {
    "%a": r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
    "%A": r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
    "%w": r"[0-6]",
    "%d": r"(?:0[1-9]|[1,2][0-9]|3[0,1])",
    "%b": r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
    "%B": r"(?:January|February|March|April|May|June|July|August|September|October|November"
          r"|December)",
    "%m": r"(?:0[1-9]|1[0-2])",
    "%Y": r"\d{4}",
    "%y": r"\d{2}",
    "%H": r"(?:[0,1][0-9]|2[0-3])",
    "%I": r"(?:0[0-9]|1[0-2])",
    "%p": r"[A,P]M",
    "%M": r"[0-5][0-9]",
    "%S": r"[0-5][0-9]",
    "%f": r"\d{6}",
    "%z": r"[+-]\d{4}",
    "%Z": r"[A-Z]{1,4}T",
    "%j": r"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
    "%L": r"\.\d{3}",
}

# Docker's awslogs keys plus the ECS-only awslogs-stream-prefix (the agent turns it into
# awslogs-stream) and the generic mode / max-buffer-size.
KNOWN_OPTIONS = frozenset({
    "awslogs-region", "awslogs-endpoint", "awslogs-group", "awslogs-create-group",
    "awslogs-create-stream", "awslogs-stream", "awslogs-stream-prefix",
    "awslogs-datetime-format", "awslogs-multiline-pattern", "awslogs-credentials-endpoint",
    "awslogs-force-flush-interval-seconds", "awslogs-max-buffered-events", "awslogs-format",
    "tag", "mode", "max-buffer-size",
})

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")  # go-units RAMInBytes
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class AwslogsOptionError(ValueError):
    """An option Docker refuses when the container is created (its message is Docker's)."""


@dataclass(frozen=True)
class AwslogsConfig:
    group: str
    region: str
    stream_prefix: str | None
    create_group: bool
    start_pattern: re.Pattern[str] | None  # multi-line joining, None: one line per event
    mode: str  # "blocking" | "non-blocking"
    max_buffer_bytes: int  # non-blocking only: unshipped bytes kept before dropping
    flush_interval: float = FLUSH_INTERVAL_S

    def stream_name(self, container: str, task_id: str, runtime_id: str) -> str:
        """``<prefix>/<container-name>/<task-id>``; without a prefix Docker names the stream
        after the container id (here the runtime id)."""
        if self.stream_prefix:
            return f"{self.stream_prefix}/{container}/{task_id}"
        return runtime_id


# --- RegisterTaskDefinition ---------------------------------------------------------------


def registration_error(options: dict[str, str] | None, *, fargate: bool) -> str | None:
    """ECS's own checks of an awslogs configuration (ClientException text), or None."""
    options = options or {}
    for key in ("awslogs-group", "awslogs-region"):
        if not options.get(key):
            return f"Log driver awslogs option '{key}' should not be null or empty."
    create = options.get("awslogs-create-group")
    if create is not None and create.lower() != "true":
        return ("Log driver awslogs option 'awslogs-create-group' should only be set to "
                "'true', else omit option.")
    if fargate and not options.get("awslogs-stream-prefix"):
        return ("Fargate requires log configuration options to include awslogs-stream-prefix "
                "to support log driver awslogs.")
    return None


# --- container start ----------------------------------------------------------------------


def parse(options: dict[str, str], *, default_mode: str = "non-blocking") -> AwslogsConfig:
    """The driver's configuration, or AwslogsOptionError with dockerd's words."""
    for key in options:
        if key not in KNOWN_OPTIONS:
            raise AwslogsOptionError(f"unknown log opt '{key}' for awslogs log driver")
    if options.get("awslogs-datetime-format") and options.get("awslogs-multiline-pattern"):
        raise AwslogsOptionError(
            "you cannot configure log opt 'awslogs-datetime-format' and "
            "'awslogs-multiline-pattern' at the same time")
    mode = options.get("mode") or default_mode
    if mode not in ("blocking", "non-blocking"):
        raise AwslogsOptionError(f"logger: logging mode not supported: {mode}")
    size = options.get("max-buffer-size")
    if size is not None and mode != "non-blocking":
        raise AwslogsOptionError(
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'")
    return AwslogsConfig(
        group=options["awslogs-group"], region=options["awslogs-region"],
        stream_prefix=options.get("awslogs-stream-prefix") or None,
        create_group=(options.get("awslogs-create-group") or "").lower() == "true",
        start_pattern=start_pattern(options), mode=mode,
        max_buffer_bytes=buffer_bytes(size or ECS_DEFAULT_BUFFER),
        flush_interval=_flush_interval(options.get("awslogs-force-flush-interval-seconds")))


def datetime_regex(fmt: str) -> str:
    """awslogs-datetime-format (strftime) → the regex Docker matches lines against."""
    return re.sub(r"%.", lambda m: STRFTIME_TO_REGEX.get(m.group(0), ""), fmt)


def start_pattern(options: dict[str, str]) -> re.Pattern[str] | None:
    text = options.get("awslogs-multiline-pattern") or ""
    if options.get("awslogs-datetime-format"):
        text = datetime_regex(options["awslogs-datetime-format"])
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as e:
        raise AwslogsOptionError(
            f"awslogs could not parse multiline pattern key \"{text}\": {e}") from None


def buffer_bytes(text: str) -> int:
    """go-units RAMInBytes: ``10m`` = 10 MiB, ``4k`` = 4 KiB, ``1.5g``, ``512``."""
    m = _SIZE.match(text)
    if m is None:
        raise AwslogsOptionError(
            f"error parsing option max-buffer-size: invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def _flush_interval(text: str | None) -> float:
    if text is None:
        return FLUSH_INTERVAL_S
    if not text.isdigit() or int(text) <= 0:
        raise AwslogsOptionError(
            f"must specify a positive integer for log opt "
            f"'awslogs-force-flush-interval-seconds': {text}")
    return float(text)


# --- the multi-line joiner ----------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    """One event for PutLogEvents; ``end`` is the reader's position after its last line
    (opaque here: the shipper commits it once the event is stored)."""
    timestamp: int  # ms: the first line's
    message: str
    end: object = None
    lines: int = 1


@dataclass
class Joiner:
    """Lines in, events out (pure: time is passed in). ``pattern`` None: one line, one
    event."""
    pattern: re.Pattern[str] | None = None
    interval_ms: int = int(FLUSH_INTERVAL_S * 1000)
    _parts: list[str] = field(default_factory=list)
    _size: int = 0
    _ts: int = 0
    _end: object = None

    def add(self, ts_ms: int, text: str, end: object = None) -> list[LogEvent]:
        if self.pattern is None:
            return split_event(LogEvent(ts_ms, text, end)) if text else []
        size = len(text.encode()) + 1
        out: list[LogEvent] = []
        if self._parts and (self.pattern.search(text) or self._size + size > MAX_EVENT_BYTES):
            out = self.flush()
        if not self._parts:
            self._ts = ts_ms
        self._parts.append(text + "\n")
        self._size += size
        self._end = end
        return out

    def expire(self, now_ms: int) -> list[LogEvent]:
        """The pending event, once it is older than the interval (or from the future)."""
        age = now_ms - self._ts
        if self._parts and (age >= self.interval_ms or age < 0):
            return self.flush()
        return []

    def flush(self) -> list[LogEvent]:
        if not self._parts:
            return []
        event = LogEvent(self._ts, "".join(self._parts), self._end, len(self._parts))
        self._parts, self._size, self._end = [], 0, None
        return split_event(event)

    @property
    def pending(self) -> bool:
        return bool(self._parts)


def split_event(event: LogEvent) -> list[LogEvent]:
    """An event longer than MAX_EVENT_BYTES as several, cut at UTF-8 character boundaries
    (every part carries the original timestamp; the last one the end position)."""
    data = event.message.encode()
    if len(data) <= MAX_EVENT_BYTES:
        return [event]
    parts: list[LogEvent] = []
    while data:
        cut = min(len(data), MAX_EVENT_BYTES)
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # inside a character
            cut -= 1
        parts.append(LogEvent(event.timestamp, data[:cut].decode(), None, 0))
        data = data[cut:]
    last = parts[-1]
    parts[-1] = LogEvent(last.timestamp, last.message, event.end, event.lines)
    return parts


def join(lines: list[tuple[int, str]], pattern: re.Pattern[str] | None) -> list[str]:
    """Whole-input convenience (tests, docs): the messages ``lines`` become."""
    j = Joiner(pattern)
    out = [e for ts, text in lines for e in j.add(ts, text)]
    return [e.message for e in out + j.flush()]


# --- the supervisor's log files -------------------------------------------------------------

HEAD = 30  # the first bytes of a file: its first line's timestamp


@dataclass(frozen=True)
class Position:
    """After the last byte read: the file (inode and first bytes) and the offset in it."""
    ino: int
    head: str
    offset: int


def log_files(path: Path) -> list[tuple[Path, int, str]]:
    """The supervisor's files, oldest first (``path.2``, ``path.1``, ``path``), each with its
    inode and first bytes."""
    out = []
    for p in sorted(path.parent.glob(path.name + ".*"), key=lambda q: -_int(q.suffix[1:])) \
            + [path]:
        if p.suffix[1:].isdigit() or p == path:
            try:
                with open(p, "rb") as f:
                    out.append((p, os.fstat(f.fileno()).st_ino, _head(f.read(HEAD))))
            except FileNotFoundError:
                continue
    return out


def read_lines(files: list[tuple[Path, int, str]], cursor: Position | None, budget: int
               ) -> tuple[list[tuple[int, str, Position]], Position | None, bool]:
    """Whole lines after ``cursor`` (ts ms, text, position after it), the new cursor, and
    whether the cursor's file is gone (rotated away: reading starts at the oldest file)."""
    start, lost = 0, False
    if cursor is not None:
        found = [i for i, (_, ino, head) in enumerate(files)
                 if ino == cursor.ino and (head == cursor.head or not cursor.head)]
        if found:
            start = found[0]
        else:
            lost = bool(files)
    out: list[tuple[int, str, Position]] = []
    for i, (path, ino, head) in enumerate(files[start:], start):
        offset = cursor.offset if (i == start and cursor is not None and not lost) else 0
        chunk = _read_from(path, ino, offset, budget)
        if chunk is None:
            break  # rotated meanwhile: the next pass sees it under its new name
        if not head and offset == 0:
            head = _head(chunk)
        end = chunk.rfind(b"\n") + 1
        for raw in chunk[:end].split(b"\n")[:-1]:
            offset += len(raw) + 1
            ts, text = parse_line(raw)
            out.append((ts, text, Position(ino, head, offset)))
        cursor = Position(ino, head, offset)
        budget -= end
        if budget <= 0 or i == len(files) - 1 or len(chunk) > end:
            break
    return out, cursor, lost


def _read_from(path: Path, ino: int, offset: int, budget: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_ino != ino:
                return None
            f.seek(offset)
            return f.read(budget)
    except FileNotFoundError:
        return None


def parse_line(raw: bytes) -> tuple[int, str]:
    """``<RFC 3339 ns> <stdout|stderr> <text>`` → (ms since the epoch, text)."""
    stamp, _, rest = raw.partition(b" ")
    text = rest.partition(b" ")[2].decode("utf-8", "replace")
    s = stamp.decode("ascii", "replace")
    try:
        secs = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
        return secs * 1000 + int((s[20:23] or "0").ljust(3, "0")), text
    except ValueError:
        return _now_ms(), text


def _head(data: bytes) -> str:
    """A file's identity beside its inode: its first line's timestamp ("" until written)."""
    return data[:HEAD].decode("ascii", "replace") if len(data) >= HEAD else ""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0
