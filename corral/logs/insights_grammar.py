"""The Logs Insights parser: recursive descent from :func:`corral.logs.insights_parse.lex`'s
tokens to :class:`~corral.logs.insights_parse.Command` trees (pure).

    query       command ('|' command)*
    command     fields ITEM, … | display NAME, … | filter EXPR | stats ITEM, … [by ITEM, …]
                | sort EXPR [asc|desc], … | limit N | parse [FIELD] "glob" as NAME, …
                | parse [FIELD] /regex with (?<name>…)/ | dedup NAME, …
    ITEM        EXPR [as NAME]        (unnamed, an item is called by its text: "count(*)")
    EXPR        or > and > not > comparison (= != < <= > >= like =~ in, "not like",
                "not in") > + - > * / % > ^ > unary - > literal | field | call | ( EXPR )
"""

from __future__ import annotations

import re
from typing import Any

from corral.logs.insights_functions import AGGREGATES, FUNCTIONS
from corral.logs.insights_parse import (
    COMMANDS,
    KEYWORDS,
    UNSUPPORTED,
    Binary,
    Call,
    Command,
    Field,
    Item,
    Lit,
    QueryError,
    Tok,
    Unary,
    lex,
)

_COMPARE = {"=", "==", "!=", "<", "<=", ">", ">="}


def parse(query: str) -> list[Command]:
    if not query.strip():
        raise QueryError("The query is empty", 0, 0)
    return Parser(query).commands()


class Parser:
    """Recursive descent, one method per rule; ``aggregates`` names the functions ``stats``
    takes (from :mod:`corral.logs.insights_functions`)."""

    def __init__(self, query: str):
        self.query, self.toks, self.i = query, lex(query), 0
        self.aggregates, self.functions = AGGREGATES, FUNCTIONS

    # tokens
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def error(self, message: str, tok: Tok | None = None) -> QueryError:
        tok = tok or self.tok
        return QueryError(message, tok.start, max(tok.end, tok.start + 1))

    def next(self) -> Tok:
        tok = self.tok
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        return self.tok.kind in ("name", "op", "punct", "pipe") and \
            self.tok.text.lower() in texts

    def expect(self, text: str) -> Tok:
        if not self.at(text):
            raise self.error(f"Expected '{text}' but found {self._found()}")
        return self.next()

    def _found(self) -> str:
        return "end of the query" if self.tok.kind == "end" else f"'{self.tok.text}'"

    # commands
    def commands(self) -> list[Command]:
        out = [self.command()]
        while self.at("|"):
            self.next()
            out.append(self.command())
        if self.tok.kind != "end":
            raise self.error(f"Unexpected {self._found()}")
        return out

    def command(self) -> Command:
        tok = self.tok
        word = tok.text.lower() if tok.kind == "name" else ""
        if word in (u.lower() for u in UNSUPPORTED):
            raise self.error(f"Corral does not support the '{tok.text}' command yet")
        if word not in COMMANDS:
            raise self.error(f"Expected a command ({', '.join(COMMANDS)}) but found "
                             f"{self._found()}")
        self.next()
        cmd = getattr(self, f"cmd_{word}")()
        cmd.start = tok.start
        return cmd

    def cmd_fields(self) -> Command:
        return Command("fields", items=self.items())

    def cmd_display(self) -> Command:
        return Command("display", items=self.field_list())

    def cmd_dedup(self) -> Command:
        return Command("dedup", items=self.field_list())

    def cmd_filter(self) -> Command:
        return Command("filter", expr=self.expr())

    def cmd_limit(self) -> Command:
        tok = self.next()
        if tok.kind != "num" or not isinstance(tok.value, int) or tok.value < 1:
            raise self.error("limit takes a positive whole number", tok)
        return Command("limit", count=tok.value)

    def cmd_sort(self) -> Command:
        items, desc = [], []
        while True:
            items.append(self.item(alias=False))
            desc.append(bool(self.at("desc")))
            if self.at("asc", "desc"):
                self.next()
            if not self.at(","):
                return Command("sort", items=items, desc=desc)
            self.next()

    def cmd_stats(self) -> Command:
        items = self.items()
        for item in items:
            if not self._has_aggregate(item.expr):
                raise QueryError(f"stats needs an aggregate function, found '{item.name}'",
                                 item.start, item.end)
        by = []
        if self.at("by"):
            self.next()
            by = self.items()
        return Command("stats", items=items, by=by)

    def cmd_parse(self) -> Command:
        source: Any = Field("@message")
        if self.tok.kind == "name" and self.tok.text.lower() != "as":
            source = Field(self.next().value)
        tok = self.next()
        if tok.kind == "regex":
            names = list(tok.value.groupindex)
            if not names:
                raise self.error("A parse regex needs named groups: (?<name>…)", tok)
            return Command("parse", source=source, pattern=tok.value, names=names)
        if tok.kind != "str":
            raise self.error("parse takes a \"glob * pattern\" or a /regex/", tok)
        stars = tok.value.count("*")
        self.expect("as")
        names = [i.name for i in self.field_list()]
        if stars != len(names) or not stars:
            raise QueryError(f"The parse pattern has {stars} '*' but {len(names)} field names",
                             tok.start, self.toks[self.i - 1].end)
        return Command("parse", source=source, pattern=_glob(tok.value), names=names)

    # lists
    def items(self, alias: bool = True) -> list[Item]:
        out = [self.item(alias)]
        while self.at(","):
            self.next()
            out.append(self.item(alias))
        return out

    def item(self, alias: bool = True) -> Item:
        start = self.tok.start
        expr = self.expr()
        end = self.toks[self.i - 1].end
        name = expr.name if isinstance(expr, Field) else self.query[start:end]
        if alias and self.at("as"):
            self.next()
            tok = self.next()
            if tok.kind != "name":
                raise self.error("Expected a field name after 'as'", tok)
            name = tok.value
        return Item(expr, name, start, end)

    def field_list(self) -> list[Item]:
        out = []
        while True:
            tok = self.next()
            if tok.kind != "name" or tok.text.lower() in KEYWORDS:
                raise self.error(f"Expected a field name but found '{tok.text}'", tok)
            out.append(Item(Field(tok.value), tok.value, tok.start, tok.end))
            if not self.at(","):
                return out
            self.next()

    # expressions, loosest first
    def expr(self) -> Any:
        left = self.conjunction()
        while self.at("or"):
            self.next()
            left = Binary("or", left, self.conjunction())
        return left

    def conjunction(self) -> Any:
        left = self.negation()
        while self.at("and"):
            self.next()
            left = Binary("and", left, self.negation())
        return left

    def negation(self) -> Any:
        if self.at("not") and not self._not_is_infix():
            self.next()
            return Unary("not", self.negation())
        return self.comparison()

    def _not_is_infix(self) -> bool:
        nxt = self.toks[self.i + 1]
        return nxt.kind == "name" and nxt.text.lower() in ("like", "in")

    def comparison(self) -> Any:
        left = self.additive()
        negate = False
        if self.at("not") and self._not_is_infix():
            self.next()
            negate = True
        if self.at("like", "=~"):
            self.next()
            return Binary("notlike" if negate else "like", left, self.pattern_operand())
        if self.at("in"):
            self.next()
            return Binary("notin" if negate else "in", left, self.list_literal())
        if negate:
            raise self.error("Expected 'like' or 'in' after 'not'")
        if self.tok.kind == "op" and self.tok.text in _COMPARE:
            op = self.next().text
            return Binary("=" if op == "==" else op, left, self.additive())
        return left

    def pattern_operand(self) -> Any:
        tok = self.next()
        if tok.kind == "regex":
            return Lit(tok.value)
        if tok.kind == "str":
            return Lit(tok.value)
        raise self.error("like takes a 'string' or a /regex/", tok)

    def list_literal(self) -> Lit:
        self.expect("[")
        values = []
        while not self.at("]"):
            tok = self.next()
            if tok.kind not in ("num", "str"):
                raise self.error("A list holds numbers and strings", tok)
            values.append(tok.value)
            if not self.at(","):
                break
            self.next()
        self.expect("]")
        return Lit(tuple(values))

    def additive(self) -> Any:
        left = self.multiplicative()
        while self.at("+", "-"):
            left = Binary(self.next().text, left, self.multiplicative())
        return left

    def multiplicative(self) -> Any:
        left = self.power()
        while self.at("*", "/", "%"):
            left = Binary(self.next().text, left, self.power())
        return left

    def power(self) -> Any:
        left = self.unary()
        if self.at("^"):
            self.next()
            return Binary("^", left, self.power())
        return left

    def unary(self) -> Any:
        if self.at("-"):
            self.next()
            return Unary("-", self.unary())
        return self.primary()

    def primary(self) -> Any:
        tok = self.next()
        if tok.kind in ("num", "str", "dur"):
            return Lit(tok.value)
        if tok.kind == "regex":
            return Lit(tok.value)
        if tok.kind == "punct" and tok.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if tok.kind == "name" and tok.text.lower() not in KEYWORDS:
            if self.at("(") and not tok.text.startswith("`"):
                return self.call(tok)
            return Field(tok.value)
        self.i -= 1
        raise self.error(f"Unexpected {self._found()}")

    def call(self, name_tok: Tok) -> Call:
        name = name_tok.text.lower()
        if name not in self.functions and name not in self.aggregates:
            raise self.error(f"Unknown function '{name_tok.text}'", name_tok)
        self.expect("(")
        args: list[Any] = []
        if self.at("*"):
            self.next()
            args.append(Lit("*"))
        elif not self.at(")"):
            args = [self.expr()]
            while self.at(","):
                self.next()
                args.append(self.expr())
        close = self.expect(")")
        lo, hi = (self.aggregates.get(name) or self.functions[name]).arity
        if not lo <= len(args) <= hi:
            raise QueryError(f"{name_tok.text}() takes {lo}–{hi} arguments, got {len(args)}",
                             name_tok.start, close.end)
        return Call(name, tuple(args), name_tok.start, close.end)

    def _has_aggregate(self, expr: Any) -> bool:
        if isinstance(expr, Call):
            return expr.name in self.aggregates or any(map(self._has_aggregate, expr.args))
        if isinstance(expr, Binary):
            return self._has_aggregate(expr.left) or self._has_aggregate(expr.right)
        return isinstance(expr, Unary) and self._has_aggregate(expr.arg)


def _glob(pattern: str) -> re.Pattern[str]:
    """``parse``'s glob: each ``*`` captures (lazily, except a trailing one, which runs to the
    end of the value); the rest is literal."""
    parts = [re.escape(p) for p in pattern.split("*")]
    body = parts[0]
    for n, part in enumerate(parts[1:], 1):
        body += ("(.*)" if n == len(parts) - 1 and not part else "(.*?)") + part
    return re.compile(body, re.S)
