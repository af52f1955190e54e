"""Logs Insights queries: compile once, run over a stream of events (pure: the caller brings
the events, the clock and the cancel check).

    q = insights.compile("filter @message like /Exception/ | stats count(*) by bin(1h)")
    result = q.run(events, limit=10_000, should_stop=…)   # events: (log label, Event) pairs
    result.rows        [[{"field": "bin(1h)", "value": "2024-05-01 12:00:00.000"}, …], …]
    result.statistics  {"recordsMatched": …, "recordsScanned": …, "bytesScanned": …}

The commands become a chain of generators, so events stream through: ``filter``, ``fields``,
``parse`` and ``limit`` hold nothing, ``limit`` stops the scan early, and ``sort`` keeps only
the rows that can still be returned (a heap of the next ``limit`` or of the query's row cap).
``stats`` holds one accumulator per group.

Each event is a :class:`Record` with the built-in fields (@timestamp, @message, @logStream,
@log, @ingestionTime, @ptr); the fields of a JSON message (``a.b`` for nested objects,
``a.0`` for arrays) are discovered the first time a query names a field the record lacks.
Results show string values; a field without a value is left out of its row, as AWS does.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from corral.logs.insights_functions import AGGREGATES, FUNCTIONS, Agg, Ts, num, text
from corral.logs.insights_grammar import parse
from corral.logs.insights_parse import Binary, Call, Command, Field, Item, Lit, QueryError, Unary

BUILTINS = ("@timestamp", "@message", "@logStream", "@log")
_MISSING = object()


class EventLike(Protocol):
    id: int
    stream: str
    ts: int
    ingested: int
    message: str


class Cancelled(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised out of ``run`` when ``should_stop`` says so."""


class Record(dict):
    """One row: built-ins set up front, JSON fields discovered on first miss."""

    discovered = False

    def field(self, name: str) -> Any:
        value = self.get(name, _MISSING)
        if value is _MISSING and not self.discovered:
            self.discover()
            value = self.get(name, _MISSING)
        return None if value is _MISSING else value

    def discover(self) -> None:
        self.discovered = True
        message = self.get("@message")
        if not isinstance(message, str) or not message.lstrip().startswith("{"):
            return
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            for key, value in flatten(doc):
                self.setdefault(key, value)


def flatten(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict | list):
            yield from flatten(value, name + ".")
        elif isinstance(value, bool):
            yield name, "true" if value else "false"
        elif value is not None:
            yield name, value


# --- expressions ---------------------------------------------------------------------------

def truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    return value != ""


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    na, nb = num(a), num(b)
    x, y = (na, nb) if na is not None and nb is not None else (text(a), text(b))
    return {"=": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y,  # type: ignore
            ">=": x >= y}[op]  # type: ignore[operator]


def _arith(op: str, a: Any, b: Any) -> Any:
    x, y = num(a), num(b)
    if x is None or y is None:
        return None
    if op in "/%" and y == 0:
        return None
    result = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y, "/": lambda: x / y,
              "%": lambda: x % y, "^": lambda: x ** y}[op]()
    return Ts(result) if isinstance(a, Ts) and op in "+-" and isinstance(result, int) else result


def _like(value: Any, pattern: Any) -> bool:
    s = text(value)
    if s is None:
        return False
    return pattern.search(s) is not None if isinstance(pattern, re.Pattern) else pattern in s


def evaluate(expr: Any, rec: Record, aggs: dict[int, Any] | None = None) -> Any:
    """The value of ``expr`` for ``rec``; ``aggs`` holds a stats group's aggregate results
    by the id of their Call node."""
    if isinstance(expr, Field):
        return rec.field(expr.name)
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, Call):
        if aggs is not None and id(expr) in aggs:
            return aggs[id(expr)]
        return FUNCTIONS[expr.name].fn(rec, *(evaluate(a, rec, aggs) for a in expr.args))
    if isinstance(expr, Unary):
        value = evaluate(expr.arg, rec, aggs)
        if expr.op == "not":
            return not truthy(value)
        n = num(value)
        return None if n is None else -n
    op = expr.op
    if op == "and":
        return truthy(evaluate(expr.left, rec, aggs)) and truthy(evaluate(expr.right, rec, aggs))
    if op == "or":
        return truthy(evaluate(expr.left, rec, aggs)) or truthy(evaluate(expr.right, rec, aggs))
    left, right = evaluate(expr.left, rec, aggs), evaluate(expr.right, rec, aggs)
    if op in ("like", "notlike"):
        return _like(left, right) == (op == "like")
    if op in ("in", "notin"):
        hit = left is not None and any(_compare("=", left, v) for v in right)
        return hit == (op == "in")
    if op in ("=", "!=", "<", "<=", ">", ">="):
        return _compare(op, left, right)
    return _arith(op, left, right)


def aggregate_calls(expr: Any) -> list[Call]:
    if isinstance(expr, Call):
        if expr.name in AGGREGATES:
            return [expr]
        return [c for a in expr.args for c in aggregate_calls(a)]
    if isinstance(expr, Binary):
        return aggregate_calls(expr.left) + aggregate_calls(expr.right)
    return aggregate_calls(expr.arg) if isinstance(expr, Unary) else []


# --- sorting (AWS's "updated natural sort") --------------------------------------------------

_CHUNK = re.compile(r"\d+|\D+")


def natural_key(value: Any) -> tuple:
    """Non-numbers before numbers; numbers by value; other text in chunks: digit runs by
    length, then value, everything else by code point (the ``sort`` command's rules)."""
    n = num(value) if not isinstance(value, str) or value.strip() == value else None
    if n is not None:
        return (1, n)
    chunks = []
    for chunk in _CHUNK.findall(text(value) or ""):
        if chunk[0].isdigit():
            chunks.append((0x30, len(chunk), int(chunk)))
        else:
            chunks.append((ord(chunk[0]), chunk))
    return (0, tuple(chunks))


def _sort_cmp(desc: list[bool]) -> Callable[[Any, Any], int]:
    def cmp(a: tuple, b: tuple) -> int:
        for ka, kb, d in zip(a[0], b[0], desc, strict=True):
            if ka == kb:
                continue
            if ka is None or kb is None:  # a missing value sorts last either way
                return 1 if ka is None else -1
            return (1 if ka > kb else -1) * (-1 if d else 1)
        return (a[1] > b[1]) - (a[1] < b[1])  # stable: earlier rows first
    return cmp


# --- the pipeline --------------------------------------------------------------------------

@dataclass
class Counters:
    scanned: int = 0
    matched: int = 0
    bytes: int = 0

    def as_statistics(self) -> dict[str, float]:
        return {"recordsMatched": float(self.matched), "recordsScanned": float(self.scanned),
                "bytesScanned": float(self.bytes)}


@dataclass
class Result:
    rows: list[list[dict[str, str]]]
    statistics: dict[str, float]
    fields: list[str]


class Query:
    def __init__(self, commands: list[Command]):
        self.commands = commands
        self.aggregated = any(c.kind == "stats" for c in commands)

    def message_literals(self) -> list[str]:
        """Substrings @message holds in every event the query keeps: ``@message like
        "text"`` conditions the leading ``filter`` commands AND together (a prefilter the
        store can run in SQL; regexes and anything after another command are not used)."""
        out: list[str] = []
        for cmd in self.commands:
            if cmd.kind != "filter":
                break
            out += _required_likes(cmd.expr)
        return list(dict.fromkeys(out))

    def run(self, events: Iterable[tuple[str, EventLike]], *, limit: int = 10_000,
            should_stop: Callable[[], bool] | None = None,
            ptr: Callable[[str, EventLike], str] | None = None) -> Result:
        counters = Counters()
        stream: Iterable[Record] = self._records(events, counters, should_stop, ptr)
        columns: list[str] | None = None
        counted = False
        for n, cmd in enumerate(self.commands):
            if not counted and cmd.kind in ("stats", "sort", "limit", "dedup"):
                stream, counted = self._count(stream, counters), True
            stream, columns = self._stage(cmd, stream, columns, self._keep(n, limit))
        if not counted:
            stream = self._count(stream, counters)
        rows = list(itertools.islice(stream, limit))
        shown = columns or self._default_columns(rows)
        return Result([self._row(r, shown) for r in rows], counters.as_statistics(), shown)

    def _keep(self, n: int, limit: int) -> int:
        """How many rows a sort at command ``n`` must keep: the next limit, else the cap."""
        nxt = self.commands[n + 1] if n + 1 < len(self.commands) else None
        return min(nxt.count, limit) if nxt is not None and nxt.kind == "limit" else limit

    @staticmethod
    def _records(events: Iterable[tuple[str, EventLike]], counters: Counters,
                 should_stop: Callable[[], bool] | None,
                 ptr: Callable[[str, EventLike], str] | None) -> Iterator[Record]:
        for log, e in events:
            counters.scanned += 1
            counters.bytes += len(e.message.encode())
            if should_stop is not None and counters.scanned % 1000 == 0 and should_stop():
                raise Cancelled()
            yield Record({"@timestamp": Ts(e.ts), "@message": e.message, "@logStream": e.stream,
                          "@log": log, "@ingestionTime": Ts(e.ingested),
                          "@ptr": ptr(log, e) if ptr else str(e.id)})

    @staticmethod
    def _count(stream: Iterable[Record], counters: Counters) -> Iterator[Record]:
        for rec in stream:
            counters.matched += 1
            yield rec

    def _stage(self, cmd: Command, stream: Iterable[Record], columns: list[str] | None,
               keep: int) -> tuple[Iterable[Record], list[str] | None]:
        kind = cmd.kind
        if kind == "filter":
            return (r for r in stream if truthy(evaluate(cmd.expr, r))), columns
        if kind == "fields":
            names = [i.name for i in cmd.items]
            return _compute(stream, cmd.items), _merge(columns, names)
        if kind == "display":
            return stream, [i.name for i in cmd.items]
        if kind == "parse":
            return _parse(stream, cmd), columns
        if kind == "limit":
            return itertools.islice(stream, cmd.count), columns
        if kind == "dedup":
            return _dedup(stream, [i.name for i in cmd.items]), columns
        if kind == "sort":
            return _sort(stream, cmd, keep), columns
        return _stats(stream, cmd), [i.name for i in cmd.by + cmd.items]

    def _default_columns(self, rows: list[Record]) -> list[str]:
        if self.aggregated:
            return list(dict.fromkeys(k for r in rows for k in r))
        for r in rows:
            if not r.discovered:
                r.discover()
        extra = (k for r in rows for k in r if not k.startswith("@"))
        return [*BUILTINS, *dict.fromkeys(extra)]

    def _row(self, rec: Record, columns: list[str]) -> list[dict[str, str]]:
        out = []
        for name in columns:
            value = text(rec.field(name))
            if value is not None:
                out.append({"field": name, "value": value})
        if not self.aggregated and "@ptr" not in columns and rec.get("@ptr"):
            out.append({"field": "@ptr", "value": rec["@ptr"]})
        return out


def _required_likes(expr: Any) -> list[str]:
    if isinstance(expr, Binary) and expr.op == "and":
        return _required_likes(expr.left) + _required_likes(expr.right)
    if (isinstance(expr, Binary) and expr.op == "like" and expr.left == Field("@message")
            and isinstance(expr.right, Lit) and isinstance(expr.right.value, str)
            and expr.right.value):
        return [expr.right.value]
    return []


def _merge(columns: list[str] | None, names: list[str]) -> list[str]:
    return list(dict.fromkeys([*(columns or []), *names]))


def _compute(stream: Iterable[Record], items: list[Item]) -> Iterator[Record]:
    for rec in stream:
        for item in items:
            if not (isinstance(item.expr, Field) and item.expr.name == item.name):
                rec[item.name] = evaluate(item.expr, rec)
        yield rec


def _parse(stream: Iterable[Record], cmd: Command) -> Iterator[Record]:
    assert cmd.pattern is not None  # the parser always sets it for parse
    for rec in stream:
        source = text(evaluate(cmd.source, rec))
        m = cmd.pattern.search(source) if source is not None else None
        if m is not None:
            values = m.groupdict().values() if cmd.pattern.groupindex else m.groups()
            for name, value in zip(cmd.names, values, strict=True):
                if value is not None:
                    rec[name] = value
        yield rec


def _dedup(stream: Iterable[Record], names: list[str]) -> Iterator[Record]:
    seen: set[tuple] = set()
    for rec in stream:
        key = tuple(text(rec.field(n)) for n in names)
        if None in key:  # null values are not duplicates of one another
            yield rec
        elif key not in seen:
            seen.add(key)
            yield rec


def _sort(stream: Iterable[Record], cmd: Command, keep: int) -> Iterator[Record]:
    def keyed() -> Iterator[tuple]:
        for seq, rec in enumerate(stream):
            keys = []
            for item in cmd.items:
                value = evaluate(item.expr, rec)
                keys.append(None if value is None else natural_key(value))
            yield (keys, seq, rec)

    key = functools.cmp_to_key(_sort_cmp(cmd.desc))
    for _keys, _seq, rec in heapq.nsmallest(keep, keyed(), key=key):
        yield rec


def _stats(stream: Iterable[Record], cmd: Command) -> Iterator[Record]:
    calls = [c for item in cmd.items for c in aggregate_calls(item.expr)]
    groups: dict[tuple, tuple[list[Any], list[Agg]]] = {}
    for rec in stream:
        by = [evaluate(i.expr, rec) for i in cmd.by]
        key = tuple(text(v) for v in by)
        if key not in groups:
            groups[key] = (by, [AGGREGATES[c.name](*(evaluate(a, rec) for a in c.args[1:]))
                                for c in calls])
        ts = num(rec.get("@timestamp")) or 0
        for call, acc in zip(calls, groups[key][1], strict=True):
            arg = call.args[0] if call.args else Lit("*")
            acc.add(1 if arg == Lit("*") else evaluate(arg, rec), int(ts))
    for by, accs in groups.values():
        results = {id(c): acc.result() for c, acc in zip(calls, accs, strict=True)}
        row = Record({i.name: v for i, v in zip(cmd.by, by, strict=True)})
        row.discovered = True
        for item in cmd.items:
            row[item.name] = evaluate(item.expr, row, results)
        yield row


def compile(query: str) -> Query:  # noqa: A001 - the module's verb, like re.compile
    """The compiled query; QueryError (with offsets) when it is malformed."""
    commands = parse(query)
    for cmd in commands:
        exprs = [cmd.expr] if cmd.expr is not None else []
        exprs += [i.expr for i in cmd.by] + ([i.expr for i in cmd.items]
                                             if cmd.kind != "stats" else [])
        for expr in exprs:
            for call in aggregate_calls(expr):
                raise QueryError(f"{call.name}() is an aggregate: use it in stats",
                                 call.start, call.end)
    return Query(commands)


__all__ = ["Cancelled", "Query", "QueryError", "Result", "compile"]
