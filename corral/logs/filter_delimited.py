"""Space-delimited filter patterns: ``[ip, user, ..., status_code = 4*, bytes > 1000]`` (pure).

A message splits into fields at runs of spaces; a field that starts with ``"`` runs to the
next ``"``, one that starts with ``[`` to the next ``]`` (so ``[10/Oct/2000:13:55:36 -0700]``
and ``"GET /index.html HTTP/1.0"`` are one field each), and the quotes or brackets are not
part of the value. The pattern names one field per position; ``...`` stands for any number of
fields. Without ``...`` the message must have exactly as many fields as the pattern.

A position may carry conditions (``status_code = 404``, ``status_code = 4* || status_code =
5*``) in :mod:`corral.logs.filter_expr`'s language; they may name any field of the pattern.
With several ``...`` the fields are aligned every possible way and the message matches when
one alignment satisfies the conditions (leftmost first, which is also what ``extract`` uses).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from corral.logs.filter_expr import Expr, Parser, PatternError, required_literals, tokens

ELLIPSIS = "..."
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD = re.compile(r'"[^"]*"?|\[[^\]]*\]?|[^ ]+')
_MAX_ALIGNMENTS = 10_000  # bounds the work of many "..." over a long message


def split_message(message: str) -> list[str]:
    if '"' not in message and "[" not in message:
        return message.replace("\t", " ").split(" ") if "  " not in message else \
            message.replace("\t", " ").split()
    out = []
    for m in _FIELD.finditer(message.replace("\t", " ")):
        text = m.group(0)
        if len(text) >= 2 and (text[0], text[-1]) in (('"', '"'), ("[", "]")):
            text = text[1:-1]
        out.append(text)
    return out


def split_positions(body: str) -> list[str]:
    """The comma-separated positions of ``[a, b = "x,y", c]``; commas in quotes or regexes
    do not split."""
    parts, current, quote, escaped = [], [], "", False
    for ch in body:
        if quote:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"%":
            quote = ch
        if ch == ",":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if quote:
        raise PatternError("Unterminated quoted value")
    parts.append("".join(current).strip())
    return parts


@dataclass(frozen=True)
class DelimitedPattern:
    names: tuple[str, ...]  # one per position; ELLIPSIS for "..."
    conditions: tuple[Expr, ...]

    @classmethod
    def parse(cls, text: str) -> DelimitedPattern:
        body = text.strip()
        if not body.endswith("]"):
            raise PatternError("If a filter pattern starts with '[' it must end with ']'")
        names: list[str] = []
        conditions: list[Expr] = []
        parser_regexes = 0
        for position in split_positions(body[1:-1]):
            if position == ELLIPSIS:
                names.append(ELLIPSIS)
                continue
            if _NAME.fullmatch(position):
                names.append(position)
                continue
            parser = Parser(tokens(position), keywords=False)
            parser.regexes = parser_regexes
            expr = parser.parse()
            parser_regexes = parser.regexes
            names.append(expr.operands()[0])
            conditions.append(expr)
        return cls._checked(names, conditions)

    @classmethod
    def _checked(cls, names: list[str], conditions: list[Expr]) -> DelimitedPattern:
        for name in names:
            if name != ELLIPSIS and not _NAME.fullmatch(name):
                raise PatternError(f"Invalid field name '{name}'")
        declared = set(names)
        for expr in conditions:
            for operand in expr.operands():
                if operand not in declared:
                    raise PatternError(f"Unknown field '{operand}'")
        if len([n for n in names if n != ELLIPSIS]) != len({n for n in names if n != ELLIPSIS}):
            raise PatternError("A field name is used twice")
        return cls(tuple(names), tuple(conditions))

    def match(self, message: str) -> bool:
        return self.fields(message) is not None

    def fields(self, message: str) -> dict[str, str] | None:
        """The named fields of the first alignment that satisfies the conditions."""
        values = split_message(message)
        if self.names.count(ELLIPSIS) <= 1:  # one alignment at most: no search (hot path)
            bound = self._direct(values)
            return bound if bound is not None and self._holds(bound) else None
        for n, fields in enumerate(self._alignments(values, 0, 0, {})):
            if n >= _MAX_ALIGNMENTS:
                return None
            if self._holds(fields):
                return dict(fields)
        return None

    def _holds(self, fields: dict[str, str]) -> bool:
        def lookup(name: str) -> list[str]:
            return [fields[name]] if name in fields else []

        return all(c.eval(lookup) for c in self.conditions)

    def _direct(self, values: list[str]) -> dict[str, str] | None:
        names = self.names
        if ELLIPSIS not in names:
            return dict(zip(names, values, strict=True)) if len(values) == len(names) else None
        k = names.index(ELLIPSIS)
        head, tail = names[:k], names[k + 1:]
        if len(values) < len(head) + len(tail):
            return None
        bound = dict(zip(head, values, strict=False))
        bound.update(zip(tail, values[len(values) - len(tail):], strict=True))
        return bound

    def _alignments(self, values: list[str], i: int, j: int,
                    bound: dict[str, str]) -> Iterator[dict[str, str]]:
        """Each way positions ``i…`` consume fields ``j…``: a name one, ``...`` any number."""
        if i == len(self.names):
            if j == len(values):
                yield bound
            return
        name = self.names[i]
        if name == ELLIPSIS:
            rest = sum(1 for n in self.names[i + 1:] if n != ELLIPSIS)
            for k in range(j, len(values) - rest + 1):
                yield from self._alignments(values, i + 1, k, bound)
            return
        if j < len(values):
            yield from self._alignments(values, i + 1, j + 1, {**bound, name: values[j]})

    def literals(self) -> list[str]:
        out = [lit for expr in self.conditions for cond in expr.required()
               for lit in required_literals(cond)]
        return list(dict.fromkeys(out))

    def extract(self, message: str, selector: str) -> Any:
        fields = self.fields(message)
        return None if fields is None else fields.get(selector.removeprefix("$"))

