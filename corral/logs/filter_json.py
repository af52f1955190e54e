"""JSON filter patterns: ``{ SELECTOR OP VALUE && … }`` over JSON log events (pure).

A selector starts with ``$.`` and walks object keys and array indexes: ``$.eventType``,
``$.user.id``, ``$.users[0].email``, ``$.arrayKey[*]`` (any element). The conditions are
:mod:`corral.logs.filter_expr`'s; a message that is not a JSON object matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from corral.logs.filter_expr import Expr, Parser, PatternError, required_literals, tokens

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]")
# A key or string value reaches the raw message unescaped when it holds only characters JSON
# encoders never escape, so it can serve as a SQL prefilter literal (see literals()).
_VERBATIM = re.compile(r"[A-Za-z0-9 _.:,;@#=+-]+")

@lru_cache(maxsize=512)
def selector_steps(selector: str) -> tuple[str | int, ...]:
    """``$.users[0].email`` -> ("users", 0, "email"); "*" stands for any array element."""
    if not selector.startswith("$") or selector == "$":
        raise PatternError(f"Invalid selector '{selector}': it must start with '$.'")
    steps: list[str | int] = []
    pos = 1
    while pos < len(selector):
        m = _STEP.match(selector, pos)
        if m is None:
            raise PatternError(f"Invalid selector '{selector}'")
        key, index = m.groups()
        steps.append(key if key is not None else ("*" if index == "*" else int(index)))
        pos = m.end()
    return tuple(steps)


def resolve(doc: Any, steps: tuple[str | int, ...]) -> list[Any]:
    """Every value the path reaches (more than one only through ``[*]``)."""
    current = [doc]
    for step in steps:
        nxt: list[Any] = []
        for node in current:
            if isinstance(step, str) and step != "*" and isinstance(node, dict):
                if step in node:
                    nxt.append(node[step])
            elif isinstance(node, list):
                if step == "*":
                    nxt.extend(node)
                elif isinstance(step, int) and step < len(node):
                    nxt.append(node[step])
        current = nxt
    return current


def load(message: str) -> dict[str, Any] | None:
    stripped = message.lstrip()
    if not stripped.startswith("{"):
        return None
    try:
        doc = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


@dataclass(frozen=True)
class JsonPattern:
    expr: Expr

    @classmethod
    def parse(cls, text: str) -> JsonPattern:
        body = text.strip()
        if not body.endswith("}"):
            raise PatternError("If a filter pattern starts with '{' it must end with '}'")
        expr = Parser(tokens(body[1:-1]), keywords=True).parse()
        for operand in expr.operands():
            selector_steps(operand)
        return cls(expr)

    def match(self, message: str) -> bool:
        doc = load(message)
        return doc is not None and self.match_doc(doc)

    def match_doc(self, doc: dict[str, Any]) -> bool:
        return self.expr.eval(lambda selector: resolve(doc, selector_steps(selector)))

    def literals(self) -> list[str]:
        """Substrings of the raw message every match holds: the ``"key"`` of each required
        condition's selector (absent for NOT EXISTS) and the literal parts of its ``=``
        string value, when JSON writes them verbatim (no character an encoder escapes)."""
        out: list[str] = []
        for cond in self.expr.required():
            if cond.op == "NOT EXISTS":
                continue
            out += [f'"{step}"' for step in selector_steps(cond.operand)
                    if isinstance(step, str) and step != "*" and _VERBATIM.fullmatch(step)]
            out += [lit for lit in required_literals(cond) if _VERBATIM.fullmatch(lit)]
        return list(dict.fromkeys(out))

    def extract(self, message: str, selector: str) -> Any:
        doc = load(message)
        if doc is None or not self.match_doc(doc):
            return None
        found = resolve(doc, selector_steps(selector))
        return found[0] if found else None
