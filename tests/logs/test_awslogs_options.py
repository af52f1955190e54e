"""The awslogs driver's pure parts (corral.ecs.awslogs): ECS's registration checks, Docker's
start-time checks, stream names, datetime-format → regex, and multi-line joining (the cases
are the examples of Docker's awslogs documentation, a Java stack trace and a Python
traceback)."""

from __future__ import annotations

import re

import pytest

from corral.ecs import awslogs
from corral.ecs.awslogs import (
    AwslogsOptionError,
    Joiner,
    datetime_regex,
    join,
    log_files,
    read_lines,
)
from corral.ecs.errors import ClientException
from corral.ecs.taskdef_validation import normalize

BASE = {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1"}


def _td(options: dict, *, fargate: bool = False) -> dict:
    td = {"family": "web", "containerDefinitions": [{
        "name": "web", "image": "busybox", "memory": 64,
        "logConfiguration": {"logDriver": "awslogs", "options": options}}]}
    if fargate:
        td |= {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "512"}
    return td


# --- RegisterTaskDefinition: what ECS itself refuses ------------------------------------

REFUSED = [
    pytest.param({"awslogs-region": "us-east-1"}, False,
                 "Log driver awslogs option 'awslogs-group' should not be null or empty.",
                 id="group-missing"),
    pytest.param({**BASE, "awslogs-group": ""}, False,
                 "Log driver awslogs option 'awslogs-group' should not be null or empty.",
                 id="group-empty"),
    pytest.param({"awslogs-group": "g"}, False,
                 "Log driver awslogs option 'awslogs-region' should not be null or empty.",
                 id="region-missing"),
    pytest.param({**BASE, "awslogs-create-group": "false"}, False,
                 "Log driver awslogs option 'awslogs-create-group' should only be set to "
                 "'true', else omit option.", id="create-group-false"),
    pytest.param(BASE, True,
                 "Fargate requires log configuration options to include awslogs-stream-prefix "
                 "to support log driver awslogs.", id="fargate-without-prefix"),
]


@pytest.mark.parametrize(("options", "fargate", "message"), REFUSED)
def test_register_refuses(options: dict, fargate: bool, message: str) -> None:
    with pytest.raises(ClientException) as e:
        normalize(_td(options, fargate=fargate))
    assert e.value.message == message


ACCEPTED = [
    pytest.param(BASE, False, id="ec2-without-prefix"),
    pytest.param({**BASE, "awslogs-stream-prefix": "ecs"}, True, id="fargate-with-prefix"),
    pytest.param({**BASE, "awslogs-create-group": "true"}, False, id="create-group-true"),
    # Docker refuses these only when the container is created (see test_start_refuses):
    pytest.param({**BASE, "awslogs-datetime-format": "%Y", "awslogs-multiline-pattern": "^x"},
                 False, id="both-multiline-options"),
    pytest.param({**BASE, "mode": "sometimes"}, False, id="unknown-mode"),
]


@pytest.mark.parametrize(("options", "fargate"), ACCEPTED)
def test_register_accepts(options: dict, fargate: bool) -> None:
    td = normalize(_td(options, fargate=fargate))
    assert td["containerDefinitions"][0]["logConfiguration"]["options"] == options


# --- container start: what dockerd refuses -----------------------------------------------

START_REFUSED = [
    pytest.param({**BASE, "awslogs-datetime-format": "%Y", "awslogs-multiline-pattern": "^x"},
                 "you cannot configure log opt 'awslogs-datetime-format' and "
                 "'awslogs-multiline-pattern' at the same time", id="both-multiline"),
    pytest.param({**BASE, "mode": "sometimes"},
                 "logger: logging mode not supported: sometimes", id="mode"),
    pytest.param({**BASE, "mode": "blocking", "max-buffer-size": "4m"},
                 "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
                 id="buffer-with-blocking"),
    pytest.param({**BASE, "mode": "non-blocking", "max-buffer-size": "lots"},
                 "error parsing option max-buffer-size: invalid size: 'lots'", id="size"),
    pytest.param({**BASE, "awslogs-multiline-pattern": "(unclosed"},
                 "awslogs could not parse multiline pattern key", id="bad-regex"),
    pytest.param({**BASE, "awslogs-colour": "red"},
                 "unknown log opt 'awslogs-colour' for awslogs log driver", id="unknown-key"),
]


@pytest.mark.parametrize(("options", "message"), START_REFUSED)
def test_start_refuses(options: dict, message: str) -> None:
    with pytest.raises(AwslogsOptionError) as e:
        awslogs.parse(options)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(("text", "size"), [
    ("10m", 10 << 20), ("4k", 4 << 10), ("512", 512), ("1.5g", 3 << 29), ("25MB", 25 << 20),
    ("2Mi", 2 << 20), ("8 KiB", 8 << 10)], ids=str)
def test_max_buffer_size(text: str, size: int) -> None:
    assert awslogs.buffer_bytes(text) == size


def test_defaults_are_ecs_ones() -> None:
    """Non-blocking with ECS's 10m buffer (reference §7), 5 s flush, no pattern."""
    cfg = awslogs.parse(BASE)
    assert (cfg.mode, cfg.max_buffer_bytes, cfg.flush_interval, cfg.start_pattern,
            cfg.create_group) == ("non-blocking", 10 << 20, 5.0, None, False)
    assert awslogs.parse({**BASE, "mode": "blocking"}).mode == "blocking"


@pytest.mark.parametrize(("prefix", "expected"), [
    ("ecs", "ecs/web/0123456789abcdef0123456789abcdef"),
    ("my/app", "my/app/web/0123456789abcdef0123456789abcdef"),
    (None, "0123456789abcdef0123456789abcdef-web"),  # no prefix: the container id
])
def test_stream_name(prefix: str | None, expected: str) -> None:
    options = {**BASE, **({"awslogs-stream-prefix": prefix} if prefix else {})}
    cfg = awslogs.parse(options)
    task = "0123456789abcdef0123456789abcdef"
    assert cfg.stream_name("web", task, f"{task}-web") == expected


# --- datetime-format → regex (moby's strftimeToRegex) ------------------------------------

DIRECTIVES = [("%a", "Mon"), ("%A", "Monday"), ("%w", "0"), ("%d", "08"), ("%b", "Jan"),
              ("%B", "January"), ("%m", "12"), ("%Y", "2017"), ("%y", "17"), ("%H", "23"),
              ("%I", "12"), ("%p", "AM"), ("%M", "59"), ("%S", "01"), ("%f", "000345"),
              ("%z", "+0100"), ("%Z", "EST"), ("%j", "365"), ("%L", ".123")]


@pytest.mark.parametrize(("directive", "example"), DIRECTIVES, ids=[d for d, _ in DIRECTIVES])
def test_each_directive_matches_dockers_example(directive: str, example: str) -> None:
    assert re.fullmatch(datetime_regex(directive), example)


@pytest.mark.parametrize(("directive", "wrong"), [
    ("%d", "32"), ("%m", "13"), ("%H", "24"), ("%M", "60"), ("%b", "Foo"), ("%z", "0100"),
    ("%j", "367")], ids=str)
def test_directive_refuses(directive: str, wrong: str) -> None:
    assert not re.fullmatch(datetime_regex(directive), wrong)


@pytest.mark.parametrize(("fmt", "line", "starts"), [
    (r"\[%b %d, %Y %H:%M:%S\]", "[May 01, 2017 19:00:01] A message was logged", True),
    (r"\[%b %d, %Y %H:%M:%S\]", "Some random message", False),
    ("%Y-%m-%dT%H:%M:%S%L%z", "2024-05-01T10:00:00.123+0000 GET /", True),
    ("%Y-%m-%d %H:%M:%S", "\tat com.example.App.run(App.java:42)", False),
    ("%Q%Y", "2024", True),  # an unknown directive becomes "" as in Docker
], ids=["docs-start", "docs-continuation", "iso-millis", "java-frame", "unknown"])
def test_datetime_format_as_start_pattern(fmt: str, line: str, starts: bool) -> None:
    pattern = awslogs.parse({**BASE, "awslogs-datetime-format": fmt}).start_pattern
    assert pattern is not None and bool(pattern.search(line)) is starts


# --- multi-line joining --------------------------------------------------------------------

def _lines(*texts: str) -> list[tuple[int, str]]:
    return [(1000 + i, t) for i, t in enumerate(texts)]


DOCKER_DATETIME = _lines(
    "[May 01, 2017 19:00:01] A message was logged",
    "[May 01, 2017 19:00:04] Another multi-line message was logged",
    "Some random message",
    "with some random words",
    "[May 01, 2017 19:01:32] Another message was logged")
DOCKER_PATTERN = _lines(
    "INFO A message was logged",
    "INFO Another multi-line message was logged",
    "     Some random message",
    "INFO Another message was logged")
JAVA = _lines(
    "2024-05-01 10:00:00,123 ERROR [main] com.example.App - request failed",
    "java.lang.IllegalStateException: boom",
    "\tat com.example.App.handle(App.java:42)",
    "\tat com.example.App.main(App.java:10)",
    "Caused by: java.io.IOException: disk full",
    "\t... 2 more",
    "2024-05-01 10:00:01,000 INFO [main] com.example.App - recovered")
PYTHON = _lines(
    "ERROR:app:request failed",
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 10, in <module>',
    "    main()",
    "ZeroDivisionError: division by zero",
    "INFO:app:next request")

JOINED = [
    pytest.param(DOCKER_DATETIME, {"awslogs-datetime-format": r"\[%b %d, %Y %H:%M:%S\]"}, [
        "[May 01, 2017 19:00:01] A message was logged\n",
        "[May 01, 2017 19:00:04] Another multi-line message was logged\nSome random message\n"
        "with some random words\n",
        "[May 01, 2017 19:01:32] Another message was logged\n"], id="docker-datetime-example"),
    pytest.param(DOCKER_PATTERN, {"awslogs-multiline-pattern": "^INFO"}, [
        "INFO A message was logged\n",
        "INFO Another multi-line message was logged\n     Some random message\n",
        "INFO Another message was logged\n"], id="docker-pattern-example"),
    pytest.param(JAVA, {"awslogs-datetime-format": "%Y-%m-%d %H:%M:%S"}, [
        "\n".join(t for _, t in JAVA[:6]) + "\n", JAVA[6][1] + "\n"], id="java-stack-trace"),
    pytest.param(PYTHON, {"awslogs-multiline-pattern": "^(INFO|ERROR|WARNING):"}, [
        "\n".join(t for _, t in PYTHON[:5]) + "\n", "INFO:app:next request\n"],
        id="python-traceback"),
    pytest.param(_lines("one", "", "two"), {}, ["one", "two"], id="no-pattern-line-per-event"),
]


@pytest.mark.parametrize(("lines", "options", "events"), JOINED)
def test_join(lines: list, options: dict, events: list[str]) -> None:
    assert join(lines, awslogs.parse({**BASE, **options}).start_pattern) == events


def test_pending_event_flushed_after_interval_with_first_lines_timestamp() -> None:
    j = Joiner(re.compile("^START"), interval_ms=5000)
    assert j.add(10_000, "START a", end=1) == []
    assert j.add(11_000, "  more", end=2) == []
    assert j.expire(14_999) == []
    [event] = j.expire(15_000)
    assert (event.timestamp, event.message, event.end, event.lines) == (
        10_000, "START a\n  more\n", 2, 2)
    assert not j.pending


def test_next_start_flushes_pending_event() -> None:
    j = Joiner(re.compile("^START"))
    j.add(1, "START a", end=1)
    [event] = j.add(2, "START b", end=2)
    assert (event.message, event.end) == ("START a\n", 1)
    assert j.pending


def test_long_event_split_at_character_boundaries() -> None:
    text = "é" * 200_000  # 400,000 bytes: two events, no character cut in half
    events = Joiner(None).add(5, text, end="pos")
    assert [len(e.message.encode()) <= awslogs.MAX_EVENT_BYTES for e in events] == [True, True]
    assert "".join(e.message for e in events) == text
    assert [e.end for e in events] == [None, "pos"] and {e.timestamp for e in events} == {5}


def test_multiline_event_cut_before_it_outgrows_the_limit() -> None:
    j = Joiner(re.compile("^START"))
    j.add(1, "START", end=0)
    out = [e for i in range(40) for e in j.add(2 + i, "x" * 16_000, end=i + 1)] + j.flush()
    assert len(out) == 3 and all(len(e.message.encode()) <= awslogs.MAX_EVENT_BYTES for e in out)
    assert sum(e.lines for e in out) == 41


# --- the reader of the supervisor's rotating files, and batches ---------------------------

def _write(path, *texts: str, second: int = 0) -> None:
    with open(path, "ab") as f:
        for i, t in enumerate(texts):
            f.write(f"2024-05-01T10:00:{second + i:02d}.123456789Z stdout {t}\n".encode())


def _rotate(path) -> None:
    """What the supervisor's RotatingLog does at 10 MiB (three files in all)."""
    for i in (2, 1):
        older = path.with_name(f"{path.name}.{i - 1}") if i > 1 else path
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{i}"))


def _read(path, cursor, budget=1 << 20):
    lines, cursor, lost = read_lines(log_files(path), cursor, budget)
    return [text for _, text, _ in lines], cursor, lost


def test_reader_follows_the_position_across_rotations(tmp_path) -> None:
    log = tmp_path / "container.log"
    _write(log, "a", "b")
    texts, cursor, lost = _read(log, None)
    assert (texts, lost) == (["a", "b"], False)
    _write(log, "c")
    _rotate(log)  # a, b, c now in container.log.1
    _write(log, "d", second=10)
    _rotate(log)  # … in container.log.2, d in .1
    _write(log, "e", second=20)
    texts, cursor, lost = _read(log, cursor)
    assert (texts, lost) == (["c", "d", "e"], False)
    assert _read(log, cursor)[0] == []  # nothing is read twice


def test_reader_takes_whole_lines_and_respects_the_budget(tmp_path) -> None:
    log = tmp_path / "container.log"
    _write(log, "one", "two")
    with open(log, "ab") as f:
        f.write(b"2024-05-01T10:00:09.000000000Z stdout half a li")  # no newline yet
    texts, cursor, _ = _read(log, None, budget=60)
    assert texts == ["one"]
    texts, cursor, _ = _read(log, cursor)
    assert texts == ["two"]  # the unfinished line waits for its newline
    partial = b"2024-05-01T10:00:09.000000000Z stdout half a li"
    assert cursor.offset == log.stat().st_size - len(partial)


def test_a_position_in_a_file_rotated_away_is_reported_lost(tmp_path) -> None:
    log = tmp_path / "container.log"
    _write(log, "old")
    _, cursor, _ = _read(log, None)
    for second in (10, 20, 30):  # three rotations: the cursor's file is deleted
        _rotate(log)
        _write(log, f"new{second}", second=second)
    texts, _, lost = _read(log, cursor)
    assert lost and texts == ["new10", "new20", "new30"]


def test_a_reused_inode_is_not_the_positions_file(tmp_path) -> None:
    log = tmp_path / "container.log"
    _write(log, "first")
    _, cursor, _ = _read(log, None)
    other = awslogs.Position(cursor.ino, "2030-01-01T00:00:00.000000000Z", cursor.offset)
    texts, _, lost = _read(log, other)
    assert lost and texts == ["first"]


def test_parse_line() -> None:
    assert awslogs.parse_line(b"2024-05-01T10:00:00.123456789Z stderr x y") == (
        1714557600123, "x y")


def _events(n: int, size: int = 1, step_ms: int = 1) -> list:
    return [awslogs.LogEvent(i * step_ms, "x" * size) for i in range(n)]


@pytest.mark.parametrize(("events", "taken"), [
    (_events(12_000), 10_000),  # at most 10,000 events
    (_events(10, 200_000), 5),  # 1,048,576 bytes with 26 per event
    (_events(5, step_ms=10 * 3600 * 1000), 3),  # spanning at most 24 hours
    (_events(3), 3)], ids=["count", "bytes", "span", "all"])
def test_batches_keep_putlogevents_limits(events: list, taken: int) -> None:
    from corral.ecs.log_shipper import take_batch

    assert len(take_batch(events)) == taken
