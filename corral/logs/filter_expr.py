"""The condition language JSON and space-delimited filter patterns share (pure).

    { ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }     JSON
    [ip, user, ..., status_code = 4* || status_code = 5*, bytes > 1000]     space-delimited

Both are boolean expressions over comparisons: ``operand op value`` with ``= != < <= > >=``,
``&&`` binding tighter than ``||``, parentheses; JSON adds ``IS TRUE|FALSE|NULL`` and
``NOT EXISTS``. The operand is a JSON selector (``$.a[0].b``) or a field name; what it means
is the caller's: evaluation takes a ``lookup(operand) -> values`` (empty when the field is
missing; several for a JSON ``[*]`` selector, where one value satisfying the test is enough).

Value semantics (AWS "Filter pattern syntax", JSON and space-delimited sections):
- a number (``400``, ``1e-3``) compares numerically; a value that is not a number never
  matches a numeric comparison;
- a string (``"UpdateTrail"`` or unquoted ``123.123.*``) takes ``=`` / ``!=`` only, is
  case-sensitive and ``*`` matches any run of characters;
- ``%regex%`` takes ``=`` / ``!=`` and matches when the regex is found in the value;
- a missing field matches no comparison (``NOT EXISTS`` is how to ask for absence).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Lookup = Callable[[str], list[Any]]  # the values an operand names; [] when missing


class PatternError(ValueError):
    """A malformed filter pattern; the message is AWS's detail text."""


_TOKEN = re.compile(r"""\s*(?:
    (?P<lp>\()|(?P<rp>\))|(?P<and>&&)|(?P<or>\|\|)|
    (?P<op>!=|<=|>=|=|<|>)|
    (?P<str>"(?:[^"\\]|\\.)*")|
    (?P<regex>%[^%]*%)|
    (?P<word>[^\s()=!<>&|"%]+)
)""", re.X)

# AWS: a regex may hold alphanumerics, the symbols _ # = @ / ; , - and the operators
# ^ $ ? [ ] { } | \ * + . ; no parentheses. (A space is accepted too: phrases need it.)
_REGEX_OK = re.compile(r"[A-Za-z0-9_#=@/;,\-^$?\[\]{}|\\*+. :]*")
MAX_REGEXES = 2  # "a limit of 2 regex for each filter pattern"


@dataclass(frozen=True)
class Token:
    kind: str  # lp rp and or op str regex word
    text: str
    pos: int


def tokens(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise PatternError(f"Unexpected character '{text[pos]}'")
        kind = m.lastgroup
        if kind is None:  # trailing blanks
            break
        out.append(Token(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


# --- values --------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters; everything else is literal."""
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.S)


@lru_cache(maxsize=256)
def regex(body: str) -> re.Pattern[str]:
    if not _REGEX_OK.fullmatch(body) or not body:
        raise PatternError(f"Invalid regular expression '%{body}%'")
    try:
        return re.compile(body)
    except re.error:
        raise PatternError(f"Invalid regular expression '%{body}%'") from None


def number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numeric(value: Any) -> float | None:
    """A value as a number, if it is one (JSON numbers; delimited fields are text)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return number(value) if isinstance(value, str) else None


def as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format(value, "g") if isinstance(value, float) else str(value)
    return None  # null, objects and arrays match no string


@dataclass(frozen=True)
class Value:
    kind: str  # number | text | regex
    text: str
    num: float | None = None

    def literal_parts(self) -> list[str]:
        """Substrings any value this one equals must contain (text values only)."""
        return [p for p in self.text.split("*") if p] if self.kind == "text" else []


def required_literals(cond: Cond) -> list[str]:
    """Substrings the field's text holds whenever ``cond`` is true."""
    return cond.value.literal_parts() if cond.op == "=" and cond.value else []


def value_of(tok: Token) -> Value:
    if tok.kind == "str":
        return Value("text", re.sub(r"\\(.)", r"\1", tok.text[1:-1]))
    if tok.kind == "regex":
        regex(tok.text[1:-1])  # validate now: a bad regex is a malformed pattern
        return Value("regex", tok.text[1:-1])
    num = number(tok.text)
    return Value("number", tok.text, num) if num is not None else Value("text", tok.text)


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def compare(found: Any, op: str, value: Value) -> bool:
    if value.kind == "number":
        have = numeric(found)
        return have is not None and _NUMERIC_OPS[op](have, value.num)  # type: ignore[arg-type]
    text = as_text(found)
    if text is None:
        return False
    matcher = glob(value.text) if value.kind == "text" else regex(value.text)
    hit = (matcher.fullmatch(text) if value.kind == "text" else matcher.search(text)) is not None
    return hit if op == "=" else not hit


# --- the expression tree -------------------------------------------------------------------

@dataclass(frozen=True)
class Cond:
    operand: str
    op: str  # a comparison operator, or IS / NOT EXISTS
    value: Value | None = None
    state: str = ""  # TRUE | FALSE | NULL for IS

    def eval(self, lookup: Lookup) -> bool:
        values = lookup(self.operand)
        if self.op == "NOT EXISTS":
            return not values
        return any(self.test(v) for v in values)

    def test(self, v: Any) -> bool:
        if self.op == "IS":
            return {"TRUE": v is True, "FALSE": v is False, "NULL": v is None}[self.state]
        return compare(v, self.op, self.value)  # type: ignore[arg-type]

    def required(self) -> list[Cond]:
        return [self]

    def operands(self) -> list[str]:
        return [self.operand]


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    parts: tuple[Any, ...]

    def eval(self, lookup: Lookup) -> bool:
        if self.op == "and":
            return all(p.eval(lookup) for p in self.parts)
        return any(p.eval(lookup) for p in self.parts)

    def required(self) -> list[Cond]:
        """The conditions every match satisfies: all of an AND's; none of an OR's alone."""
        return [c for p in self.parts for c in p.required()] if self.op == "and" else []

    def operands(self) -> list[str]:
        return [o for p in self.parts for o in p.operands()]


Expr = Cond | BoolOp


class Parser:
    """Recursive descent over the tokens; ``keywords`` enables JSON's IS / NOT EXISTS."""

    def __init__(self, toks: list[Token], *, keywords: bool):
        self.toks, self.i, self.keywords = toks, 0, keywords
        self.regexes = 0

    def parse(self) -> Expr:
        if not self.toks:
            raise PatternError("Empty condition")
        expr = self.expr()
        if self.i < len(self.toks):
            raise PatternError(f"Unexpected '{self.toks[self.i].text}'")
        return expr

    def peek(self, kind: str) -> bool:
        return self.i < len(self.toks) and self.toks[self.i].kind == kind

    def take(self, kind: str) -> Token:
        if not self.peek(kind):
            got = self.toks[self.i].text if self.i < len(self.toks) else "end of pattern"
            raise PatternError(f"Unexpected '{got}'")
        self.i += 1
        return self.toks[self.i - 1]

    def expr(self) -> Expr:
        parts = [self.conjunction()]
        while self.peek("or"):
            self.i += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def conjunction(self) -> Expr:
        parts = [self.atom()]
        while self.peek("and"):
            self.i += 1
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def atom(self) -> Expr:
        if self.peek("lp"):
            self.i += 1
            inner = self.expr()
            self.take("rp")
            return inner
        operand = self.take("word").text
        if self.keywords and self._word_is("IS"):
            self.i += 1
            state = self.take("word").text.upper()
            if state not in ("TRUE", "FALSE", "NULL"):
                raise PatternError(f"Unexpected '{state}' after IS")
            return Cond(operand, "IS", state=state)
        if self.keywords and self._word_is("NOT"):
            self.i += 1
            if self.take("word").text.upper() != "EXISTS":
                raise PatternError("Expected EXISTS after NOT")
            return Cond(operand, "NOT EXISTS")
        op = self.take("op").text
        return Cond(operand, op, self.value(op))

    def value(self, op: str) -> Value:
        if not (self.peek("str") or self.peek("regex") or self.peek("word")):
            raise PatternError(f"Expected a value after '{op}'")
        value = value_of(self.toks[self.i])
        self.i += 1
        if value.kind == "regex":
            self.regexes += 1
            if self.regexes > MAX_REGEXES:
                raise PatternError(f"A filter pattern can contain at most {MAX_REGEXES} "
                                   "regular expressions")
        if value.kind != "number" and op not in ("=", "!="):
            raise PatternError(f"Operator '{op}' needs a numeric value")
        return value

    def _word_is(self, word: str) -> bool:
        return self.peek("word") and self.toks[self.i].text.upper() == word
