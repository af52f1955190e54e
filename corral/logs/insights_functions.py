"""Logs Insights functions: values, scalar functions and ``stats`` aggregates (pure).

Values are ``None`` (a missing field: every function of it is ``None`` but ``ispresent``,
``coalesce`` and ``isempty``/``isblank``), ``str``, ``int``/``float``, ``bool`` and
:class:`Ts` (a timestamp in epoch milliseconds, shown as ``2024-05-01 12:00:00.000``). Log
fields arrive as text; arithmetic and ordering read text that spells a number as that number.

Scalar functions take the record (``bin`` reads its @timestamp) and the argument values; an
aggregate is a small accumulator class, one instance per ``stats`` group.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class Ts(int):
    """A timestamp (epoch ms): ``bin()``'s, ``@timestamp``'s and ``fromMillis()``'s values."""

    def __str__(self) -> str:
        return datetime.fromtimestamp(self / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def num(value: Any) -> int | float | None:
    if value is None or isinstance(value, str) and not value:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def text(value: Any) -> str | None:
    """A value as the API shows it (every result value is a string)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Fn:
    arity: tuple[int, int]
    fn: Callable[..., Any]


def _strict(f: Callable[..., Any]) -> Callable[..., Any]:
    """A function of present values: None in, None out."""
    return lambda _rec, *args: None if any(a is None for a in args) else f(*args)


def _numeric(f: Callable[..., Any]) -> Callable[..., Any]:
    def call(_rec, *args):
        nums = [num(a) for a in args]
        return None if any(n is None for n in nums) else f(*nums)
    return call


def _floor_ms(ts: Any, period: Any) -> Ts | None:
    t, p = num(ts), num(period)
    return None if t is None or not p else Ts(int(t // p * p))


def _ceil_ms(ts: Any, period: Any) -> Ts | None:
    t, p = num(ts), num(period)
    return None if t is None or not p else Ts(int(-(-t // p) * p))


def _substr(s: str, start: Any, length: Any = None) -> str | None:
    a, n = num(start), num(length) if length is not None else None
    if a is None:
        return None
    return str(s)[int(a):] if n is None else str(s)[int(a):int(a) + int(n)]


def _log(x: float) -> float | None:
    return math.log(x) if x > 0 else None


FUNCTIONS: dict[str, Fn] = {
    # strings
    "strlen": Fn((1, 1), _strict(lambda s: len(str(s)))),
    "toupper": Fn((1, 1), _strict(lambda s: str(s).upper())),
    "tolower": Fn((1, 1), _strict(lambda s: str(s).lower())),
    "trim": Fn((1, 1), _strict(lambda s: str(s).strip())),
    "ltrim": Fn((1, 1), _strict(lambda s: str(s).lstrip())),
    "rtrim": Fn((1, 1), _strict(lambda s: str(s).rstrip())),
    "concat": Fn((1, 64), lambda _r, *a: "".join(text(v) or "" for v in a)),
    "substr": Fn((2, 3), _strict(_substr)),
    "replace": Fn((3, 3), _strict(lambda s, a, b: str(s).replace(str(a), str(b)))),
    "strcontains": Fn((2, 2), _strict(lambda s, sub: str(sub) in str(s))),
    "isempty": Fn((1, 1), lambda _r, s: s is None or str(s) == ""),
    "isblank": Fn((1, 1), lambda _r, s: s is None or str(s).strip() == ""),
    # general
    "ispresent": Fn((1, 1), lambda _r, v: v is not None),
    "coalesce": Fn((1, 64), lambda _r, *a: next((v for v in a if v is not None), None)),
    # numbers
    "abs": Fn((1, 1), _numeric(abs)),
    "ceil": Fn((1, 1), _numeric(math.ceil)),
    "floor": Fn((1, 1), _numeric(math.floor)),
    "round": Fn((1, 2), _numeric(lambda x, d=0: round(x, int(d)))),
    "sqrt": Fn((1, 1), _numeric(lambda x: math.sqrt(x) if x >= 0 else None)),
    "log": Fn((1, 1), _numeric(_log)),
    "greatest": Fn((1, 64), lambda _r, *a: max((n for n in map(num, a) if n is not None),
                                               default=None)),
    "least": Fn((1, 64), lambda _r, *a: min((n for n in map(num, a) if n is not None),
                                            default=None)),
    # time
    "bin": Fn((1, 1), lambda rec, period: _floor_ms(rec.get("@timestamp"), period)),
    "datefloor": Fn((2, 2), lambda _r, ts, p: _floor_ms(ts, p)),
    "dateceil": Fn((2, 2), lambda _r, ts, p: _ceil_ms(ts, p)),
    "frommillis": Fn((1, 1), _numeric(lambda n: Ts(int(n)))),
    "tomillis": Fn((1, 1), _numeric(int)),
}


# --- aggregates ------------------------------------------------------------------------------

class Agg:
    arity = (1, 1)

    def __init__(self, *params: Any):
        self.params = params  # the literal arguments after the first (pct's percentile)

    def add(self, value: Any, ts: int) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError


class Count(Agg):
    arity = (0, 1)

    def __init__(self, *params: Any):
        super().__init__(*params)
        self.n = 0

    def add(self, value: Any, ts: int) -> None:
        self.n += value is not None

    def result(self) -> Any:
        return self.n


class CountDistinct(Agg):
    def __init__(self, *params: Any):
        super().__init__(*params)
        self.seen: set[str] = set()

    def add(self, value: Any, ts: int) -> None:
        if value is not None:
            self.seen.add(text(value))  # type: ignore[arg-type]

    def result(self) -> Any:
        return len(self.seen)


class Numbers(Agg):
    """The aggregates of a field's numeric values (others are skipped, as AWS skips them)."""

    reduce: Callable[[list[float]], Any] = staticmethod(sum)  # type: ignore[assignment]

    def __init__(self, *params: Any):
        super().__init__(*params)
        self.values: list[float] = []

    def add(self, value: Any, ts: int) -> None:
        n = num(value)
        if n is not None:
            self.values.append(n)

    def result(self) -> Any:
        return type(self).reduce(self.values) if self.values else None


class Sum(Numbers):
    reduce = staticmethod(sum)


class Avg(Numbers):
    reduce = staticmethod(lambda v: sum(v) / len(v))


class Min(Numbers):
    reduce = staticmethod(min)


class Max(Numbers):
    reduce = staticmethod(max)


class Stddev(Numbers):
    reduce = staticmethod(lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)


class Pct(Numbers):
    """``pct(field, p)``: the value at the p-th percentile (nearest rank)."""

    arity = (2, 2)

    def result(self) -> Any:
        if not self.values:
            return None
        p = num(self.params[0]) if self.params else None
        if p is None or not 0 <= p <= 100:
            return None
        ordered = sorted(self.values)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]


class Earliest(Agg):
    def __init__(self, *params: Any):
        super().__init__(*params)
        self.best: tuple[int, Any] | None = None

    def better(self, ts: int, best: int) -> bool:
        return ts < best

    def add(self, value: Any, ts: int) -> None:
        if value is not None and (self.best is None or self.better(ts, self.best[0])):
            self.best = (ts, value)

    def result(self) -> Any:
        return self.best[1] if self.best else None


class Latest(Earliest):
    def better(self, ts: int, best: int) -> bool:
        return ts >= best


AGGREGATES: dict[str, type[Agg]] = {
    "count": Count, "count_distinct": CountDistinct, "sum": Sum, "avg": Avg, "min": Min,
    "max": Max, "stddev": Stddev, "pct": Pct, "earliest": Earliest, "latest": Latest,
}
