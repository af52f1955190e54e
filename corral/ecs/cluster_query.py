"""The ECS cluster query language (pure): parse once, evaluate against an instance's facts.

Grammar (ECS Developer Guide, cluster-query-language; reference §4.5)::

    expression := or
    or         := and   (("||" | "or")  and)*
    and        := unary (("&&" | "and") unary)*
    unary      := ("!" | "not") unary | "(" expression ")" | condition
    condition  := subject operator [argument]
    subject    := agentConnected | agentVersion | attribute:<name> | ec2InstanceId
                | registeredAt | runningTasksCount | task:group
    argument   := value | "[" value ("," value)* "]"      (a list only after in / not_in)
    value      := bare-word | 'quoted' | "quoted"

Operators and their aliases live in one table (``_OPERATORS``). Every subject is treated as a
*set* of values: a single attribute has at most one value (none when the instance lacks it),
``task:group`` has one value per group of the tasks on the instance. A positive operator holds
when *any* value satisfies it; its negation (``!=``, ``!in``, ``!~``, ``!exists``) is exactly
``not`` of the positive one, so ``attribute:x != a`` holds on an instance without ``x``.

Comparisons are typed by subject: ``runningTasksCount`` as integers, ``agentVersion`` as dotted
versions, ``registeredAt`` as UTC dates/times, ``agentConnected`` as booleans; attribute values
compare as numbers when both sides are numbers, else as strings. ``=~`` is Java's
``String.matches``: the whole value must match; a pattern holding brackets, parentheses,
commas or spaces must be quoted (``=~ 'i-[0-9a-f]{8}'``). Malformed expressions raise ``ValueError`` with
a message saying what is wrong; callers turn it into ``InvalidParameterException``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

MAX_LENGTH = 2000  # characters of a memberOf expression (PlacementConstraint.expression)


@dataclass(frozen=True)
class Facts:
    """What a query can ask about one container instance."""

    attributes: Mapping[str, str | None] = field(default_factory=dict)
    ec2_instance_id: str = ""
    agent_connected: bool = True
    agent_version: str = ""
    registered_at: datetime | None = None
    running_tasks_count: int = 0
    task_groups: frozenset[str] = frozenset()


# --- operators ------------------------------------------------------------------------------
# canonical name -> spellings; the negated forms are evaluated as not(positive).
_OPERATORS: dict[str, tuple[str, ...]] = {
    "==": ("==", "equals"),
    "!=": ("!=", "not_equals"),
    ">": (">", "greater_than"),
    ">=": (">=", "greater_than_equal"),
    "<": ("<", "less_than"),
    "<=": ("<=", "less_than_equal"),
    "exists": ("exists",),
    "!exists": ("!exists", "not_exists"),
    "in": ("in",),
    "!in": ("!in", "not_in"),
    "=~": ("=~", "matches"),
    "!~": ("!~", "not_matches"),
}
_SPELLING = {s: canon for canon, spellings in _OPERATORS.items() for s in spellings}
_NEGATION = {"!=": "==", "!exists": "exists", "!in": "in", "!~": "=~"}
_ORDERING = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
             "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
_SUBJECTS = ("agentConnected", "agentVersion", "ec2InstanceId", "registeredAt",
             "runningTasksCount", "task:group")


# --- typed values ---------------------------------------------------------------------------

def _version(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        raise ValueError(f"'{text}' is not a version such as 1.14.5")
    return tuple(int(p) for p in text.split("."))


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a date such as 2018-02-13") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _integer(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise ValueError(f"'{text}' is not an integer")
    return int(text)


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"'{text}' is not true or false")
    return text.lower() == "true"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# Subjects with a type: how to read the argument, how to read the instance's value.
_TYPED: dict[str, Callable[[str], Any]] = {
    "runningTasksCount": _integer, "agentVersion": _version, "registeredAt": _timestamp,
    "agentConnected": _boolean,
}


def _subject_values(subject: str, facts: Facts) -> list[Any]:
    """The instance's values for a subject, typed like the arguments they meet."""
    if subject.startswith("attribute:"):
        name = subject.split(":", 1)[1]
        return [facts.attributes[name]] if name in facts.attributes else []
    if subject == "task:group":
        return sorted(facts.task_groups)
    if subject == "ec2InstanceId":
        return [facts.ec2_instance_id] if facts.ec2_instance_id else []
    if subject == "runningTasksCount":
        return [facts.running_tasks_count]
    if subject == "agentConnected":
        return [facts.agent_connected]
    if subject == "agentVersion":
        return [_version(facts.agent_version)] if facts.agent_version else []
    return [facts.registered_at] if facts.registered_at else []  # registeredAt


def _compare(op: str, value: Any, arg: Any) -> bool:
    if isinstance(value, str) or value is None:  # attribute, ec2InstanceId, task:group
        left, right = _number(value or ""), _number(arg)
        if left is None or right is None:
            left, right = value or "", arg
        return _ORDERING[op](left, right)
    return _ORDERING[op](value, arg)


# --- the tree -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    subject: str
    op: str  # canonical, positive or negated
    args: tuple[Any, ...] = ()  # typed; a regex is compiled

    def matches(self, facts: Facts) -> bool:
        if self.op in _NEGATION:
            return not Condition(self.subject, _NEGATION[self.op], self.args).matches(facts)
        values = _subject_values(self.subject, facts)
        if self.op == "exists":
            return bool(values)
        if self.op == "==":
            return any(v == self.args[0] for v in values)
        if self.op == "in":
            return any(v in self.args for v in values)
        if self.op == "=~":
            return any(v is not None and self.args[0].fullmatch(str(v)) for v in values)
        return any(_compare(self.op, v, self.args[0]) for v in values)


@dataclass(frozen=True)
class Not:
    inner: Expression

    def matches(self, facts: Facts) -> bool:
        return not self.inner.matches(facts)


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    left: Expression
    right: Expression

    def matches(self, facts: Facts) -> bool:
        if self.op == "and":
            return self.left.matches(facts) and self.right.matches(facts)
        return self.left.matches(facts) or self.right.matches(facts)


Expression = Condition | Not | BoolOp


# --- lexer ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<punct>[()\[\],])
    | (?P<op>==|!=|>=|<=|=~|!~|&&|\|\||>|<|!)
    | (?P<quoted>'[^']*'|"[^"]*")
    | (?P<word>[^\s()\[\],'"!=<>~&|]+)
    )""", re.VERBOSE)


@dataclass(frozen=True)
class _Token:
    kind: str  # punct | op | quoted | word
    text: str

    def value(self) -> str:
        return self.text[1:-1] if self.kind == "quoted" else self.text


def _tokens(text: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"unexpected character {text[pos:].lstrip()[:1]!r} at "
                             f"position {pos}")
        kind = m.lastgroup or "word"
        out.append(_Token(kind, m.group(kind)))
        pos = m.end()
    return out


# --- parser (recursive descent) -------------------------------------------------------------

class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> _Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise ValueError("the expression ends too early")
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind != "quoted" and tok.text in texts

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text or tok.kind == "quoted":
            raise ValueError(f"expected '{text}' but found '{tok.text}'")

    def expression(self) -> Expression:
        left = self.conjunction()
        while self.at("||", "or"):
            self.take()
            left = BoolOp("or", left, self.conjunction())
        return left

    def conjunction(self) -> Expression:
        left = self.unary()
        while self.at("&&", "and"):
            self.take()
            left = BoolOp("and", left, self.unary())
        return left

    def unary(self) -> Expression:
        if self.at("!", "not"):
            self.take()
            return Not(self.unary())
        if self.at("("):
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        return self.condition()

    def condition(self) -> Condition:
        subject = self.take()
        if subject.kind != "word" or not _is_subject(subject.text):
            raise ValueError(f"'{subject.text}' is not a subject (agentConnected, agentVersion, "
                             f"attribute:<name>, ec2InstanceId, registeredAt, "
                             f"runningTasksCount, task:group)")
        op = self.operator()
        if op in ("exists", "!exists"):
            return Condition(subject.text, op)
        if op in ("in", "!in"):
            return Condition(subject.text, op, tuple(_typed(subject.text, v)
                                                     for v in self.values()))
        raw = self.value()
        if op in ("=~", "!~"):
            return Condition(subject.text, op, (_regex(raw),))
        return Condition(subject.text, op, (_typed(subject.text, raw),))

    def operator(self) -> str:
        tok = self.take()
        text = tok.text
        if text == "!" and self.peek() is not None and self.peek().text in ("exists", "in"):
            text += self.take().text  # "!exists", "!in" lex as "!" + word
        if tok.kind == "quoted" or text not in _SPELLING:
            raise ValueError(f"'{text}' is not an operator")
        return _SPELLING[text]

    def value(self) -> str:
        tok = self.take()
        if tok.kind not in ("word", "quoted"):
            raise ValueError(f"expected a value but found '{tok.text}'")
        return tok.value()

    def values(self) -> list[str]:
        self.expect("[")
        out = [self.value()]
        while self.at(","):
            self.take()
            out.append(self.value())
        self.expect("]")
        return out


def _is_subject(text: str) -> bool:
    return text in _SUBJECTS or (text.startswith("attribute:") and len(text) > len("attribute:"))


def _typed(subject: str, raw: str) -> Any:
    convert = _TYPED.get(subject)
    return convert(raw) if convert else raw


def _regex(raw: str) -> re.Pattern:
    try:
        return re.compile(raw)
    except re.error as e:
        raise ValueError(f"'{raw}' is not a valid regular expression: {e}") from None


@lru_cache(maxsize=512)
def parse(text: str) -> Expression:
    """The expression's tree; ``ValueError`` (with the reason) when it is malformed."""
    if not text or not text.strip():
        raise ValueError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"the expression is longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokens(text))
    tree = parser.expression()
    extra = parser.peek()
    if extra is not None:
        raise ValueError(f"unexpected '{extra.text}' after a complete expression")
    return tree


def matches(text: str, facts: Facts) -> bool:
    """Whether an instance with ``facts`` satisfies the expression ``text``."""
    return parse(text).matches(facts)
