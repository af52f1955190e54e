"""Logs Insights query language: tokens, expressions and commands (pure).

    fields @timestamp, @message | filter @message like /Exception/
      | stats count(*) as exceptionCount by bin(1h) | sort exceptionCount desc | limit 25

A query is commands joined by ``|``. Expressions: literals (numbers, 'strings' or "strings",
/regexes/, durations such as ``5m``), fields (``@timestamp``, ``a.b``, ```odd name```),
function calls, ``+ - * / % ^``, comparisons ``= != < <= > >=``, ``like`` / ``=~`` (a string
means "contains", a regex means "found"), ``in [ … ]``, ``and`` / ``or`` / ``not``.

Every error is a :class:`QueryError` carrying the character offsets it concerns, which the
API returns in MalformedQueryException's ``queryCompileError.location``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DURATION_MS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000,
               "hr": 3_600_000, "d": 86_400_000, "w": 604_800_000, "mo": 2_592_000_000,
               "q": 7_776_000_000, "y": 31_536_000_000}
COMMANDS = ("fields", "display", "filter", "stats", "sort", "limit", "parse", "dedup")
UNSUPPORTED = ("pattern", "diff", "unmask", "unnest", "filterIndex", "source", "anomaly",
               "lookup")
KEYWORDS = {"and", "or", "not", "like", "in", "as", "by", "asc", "desc"}


class QueryError(ValueError):
    def __init__(self, message: str, start: int, end: int):
        super().__init__(message)
        self.message, self.start, self.end = message, start, end


@dataclass(frozen=True)
class Tok:
    kind: str  # num dur str regex name op punct pipe end
    text: str
    start: int
    end: int
    value: Any = None


_LEX = re.compile(r"""
    (?P<ws>\s+)
  | (?P<dur>\d+(?:\.\d+)?(?:ms|sec|min|hr|mo|s|m|h|d|w|q|y)\b)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<bq>`[^`]*`)
  | (?P<name>[@$A-Za-z_][\w@$]*(?:\.[\w@$]+)*)
  | (?P<op>=~|!=|<=|>=|==|[=<>+\-*/%^!])
  | (?P<punct>[(),\[\]])
  | (?P<pipe>\|)
""", re.X)
_REGEX = re.compile(r"/((?:[^/\\\n]|\\.)*)/")
_OPERAND_END = {"num", "dur", "str", "regex", "name"}


def lex(query: str) -> list[Tok]:
    """Tokens; a ``/`` starts a regex where an operand may begin (not after an operand, so
    ``a / b`` divides), and after ``parse`` or ``parse FIELD``."""
    out: list[Tok] = []
    pos = 0
    while pos < len(query):
        if query[pos] == "/" and _regex_allowed(out):
            m = _REGEX.match(query, pos)
            if m is None:
                raise QueryError("Unterminated regular expression", pos, len(query))
            out.append(Tok("regex", m.group(0), pos, m.end(), _compile_regex(m, pos)))
            pos = m.end()
            continue
        m = _LEX.match(query, pos)
        if m is None:
            raise QueryError(f"Unexpected symbol '{query[pos]}'", pos, pos + 1)
        kind, text = m.lastgroup, m.group(0)
        pos = m.end()
        if kind == "ws":
            continue
        out.append(_token(kind, text, m.start()))  # type: ignore[arg-type]
    out.append(Tok("end", "", len(query), len(query)))
    return out


def _token(kind: str, text: str, start: int) -> Tok:
    end = start + len(text)
    if kind == "str":
        return Tok("str", text, start, end, re.sub(r"\\(.)", r"\1", text[1:-1]))
    if kind == "bq":
        return Tok("name", text, start, end, text[1:-1])
    if kind == "num":
        return Tok("num", text, start, end, float(text) if re.search(r"[.eE]", text) else int(text))
    if kind == "dur":
        n, unit = re.fullmatch(r"([\d.]+)(\D+)", text).groups()  # type: ignore[union-attr]
        return Tok("dur", text, start, end, int(float(n) * DURATION_MS[unit]))
    return Tok(kind, text, start, end, text)


def _regex_allowed(prev: list[Tok]) -> bool:
    if not prev:
        return True
    last = prev[-1]
    if last.kind == "name" and last.text.lower() == "parse":
        return True
    if last.kind == "name" and len(prev) >= 2 and prev[-2].text.lower() == "parse":
        return True
    if last.kind == "name" and last.text.lower() in ("like", "in", "and", "or", "not"):
        return True
    return last.kind not in _OPERAND_END and last.text not in (")", "]")


def _compile_regex(m: re.Match[str], pos: int) -> re.Pattern[str]:
    # Insights regexes are Java's: named groups are (?<name>…); Python spells them (?P<name>…).
    body = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", m.group(1)).replace("\\/", "/")
    try:
        return re.compile(body)
    except re.error as e:
        raise QueryError(f"Invalid regular expression: {e.msg}", pos, m.end()) from None


# --- the tree ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Call:
    name: str  # lower-cased
    args: tuple[Any, ...]
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class Unary:
    op: str  # not | -
    arg: Any


@dataclass(frozen=True)
class Binary:
    op: str  # and or = != < <= > >= + - * / % ^ like notlike in notin
    left: Any
    right: Any


@dataclass(frozen=True)
class Item:
    expr: Any
    name: str  # the alias, or the expression as written
    start: int = 0
    end: int = 0


@dataclass
class Command:
    kind: str
    items: list[Item] = field(default_factory=list)  # fields/display/stats/dedup/sort keys
    by: list[Item] = field(default_factory=list)  # stats … by
    expr: Any = None  # filter
    desc: list[bool] = field(default_factory=list)  # sort
    count: int = 0  # limit
    source: Any = None  # parse: the field parsed
    pattern: re.Pattern[str] | None = None  # parse: glob or regex, compiled
    names: list[str] = field(default_factory=list)  # parse: the fields it sets
    start: int = 0

