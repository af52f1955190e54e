"""CloudWatch Logs filter patterns (metric filters, subscription filters, FilterLogEvents): the
grammar, compiled into a matcher. Pure: no I/O, no clock.

    compile(text) -> Pattern          cached; raises InvalidFilterPattern
    Pattern.match(message) -> bool
    Pattern.literals() -> [str]       substrings EVERY matching message contains: the store's
                                      SQL prefilter (``scan(contains=…)``) may drop events
                                      without them, so this list must never over-promise
    Pattern.extract(message, "$.x" | "$x")   the value a metric filter's metricValue names
    Pattern.selectors                 the "$…" names the pattern can supply to extract

The three pattern kinds (AWS "Filter pattern syntax for metric filters, subscription filters,
filter log events, and Live Tail"), picked by the first character:

    { … }    JSON              corral.logs.filter_json
    [ … ]    space-delimited   corral.logs.filter_delimited
    other    terms             here: ``ERROR``, ``"Failed to"`` (a phrase), ``?ERROR ?WARN``
                               (at least one), ``ERROR -Exiting`` (not this), ``%regex%``;
                               case-sensitive substring matches; empty matches everything

A message matches terms when it holds every plain term, none of the ``-`` terms and, if there
are ``?`` terms, at least one of them. AWS requires quotes around a term with characters other
than letters, digits and a few punctuation marks ("Invalid character(s) in term '…'").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from corral.logs.filter_delimited import DelimitedPattern
from corral.logs.filter_expr import MAX_REGEXES, PatternError, regex
from corral.logs.filter_json import JsonPattern, selector_steps

MAX_LENGTH = 1024  # the model's FilterPattern max


class InvalidFilterPattern(ValueError):
    """A malformed pattern. ``str()`` is AWS's InvalidParameterException message."""

    def __init__(self, detail: str = ""):
        super().__init__(f"Invalid filter pattern: {detail}" if detail else
                         "Invalid filter pattern")
        self.detail = detail


class Pattern(Protocol):
    def match(self, message: str) -> bool: ...
    def literals(self) -> list[str]: ...
    def extract(self, message: str, selector: str) -> Any: ...


# --- terms -----------------------------------------------------------------------------

_TERM = re.compile(r'\s*([?-]?)(?:"((?:[^"\\]|\\.)*)"|%([^%]*)%|([^\s"]+))')
_BARE_OK = re.compile(r"[\w.:/#+$'-]+")  # unquoted term characters AWS accepts


@dataclass(frozen=True)
class Term:
    text: str
    is_regex: bool = False

    def found_in(self, message: str) -> bool:
        return (regex(self.text).search(message) is not None) if self.is_regex \
            else self.text in message


@dataclass(frozen=True)
class TermPattern:
    required: tuple[Term, ...] = ()
    optional: tuple[Term, ...] = ()  # ?term: at least one
    excluded: tuple[Term, ...] = ()  # -term: none

    @classmethod
    def parse(cls, text: str) -> TermPattern:
        groups: dict[str, list[Term]] = {"": [], "?": [], "-": []}
        pos, regexes = 0, 0
        while text[pos:].strip():
            m = _TERM.match(text, pos)
            if m is None:
                raise PatternError(f"Invalid character(s) in term '{text[pos:].strip()}'")
            prefix, quoted, rx, bare = m.groups()
            groups[prefix].append(cls._term(m.group(0).strip(), quoted, rx, bare))
            regexes += rx is not None
            pos = m.end()
        if regexes > MAX_REGEXES:
            raise PatternError(f"A filter pattern can contain at most {MAX_REGEXES} "
                               "regular expressions")
        return cls(tuple(groups[""]), tuple(groups["?"]), tuple(groups["-"]))

    @staticmethod
    def _term(raw: str, quoted: str | None, rx: str | None, bare: str | None) -> Term:
        if rx is not None:
            regex(rx)
            return Term(rx, is_regex=True)
        if quoted is not None:
            if not quoted:
                raise PatternError(f"Invalid character(s) in term '{raw}'")
            return Term(re.sub(r"\\(.)", r"\1", quoted))
        if not _BARE_OK.fullmatch(bare or "") or bare in ("-", "?"):
            raise PatternError(f"Invalid character(s) in term '{raw}'")
        return Term(bare)  # type: ignore[arg-type]

    def match(self, message: str) -> bool:
        return (all(t.found_in(message) for t in self.required)
                and not any(t.found_in(message) for t in self.excluded)
                and (not self.optional or any(t.found_in(message) for t in self.optional)))

    def literals(self) -> list[str]:
        out = [t.text for t in self.required if not t.is_regex]
        if len(self.optional) == 1 and not self.optional[0].is_regex:
            out.append(self.optional[0].text)  # "at least one of one" is required
        return list(dict.fromkeys(out))

    def extract(self, message: str, selector: str) -> Any:
        return None  # terms name no fields


# --- the front door --------------------------------------------------------------------

@lru_cache(maxsize=256)
def compile(text: str | None) -> Pattern:  # noqa: A001 - the module's verb, like re.compile
    text = text or ""
    if len(text) > MAX_LENGTH:
        raise InvalidFilterPattern(f"The pattern is longer than {MAX_LENGTH} characters")
    stripped = text.strip()
    try:
        if stripped.startswith("{"):
            return JsonPattern.parse(stripped)
        if stripped.startswith("["):
            return DelimitedPattern.parse(stripped)
        return TermPattern.parse(stripped)
    except PatternError as e:
        raise InvalidFilterPattern(str(e)) from None


def selectors(pattern: Pattern) -> set[str]:
    """The ``$.x`` / ``$x`` names a metric filter on this pattern can take a value from."""
    if isinstance(pattern, DelimitedPattern):
        return {f"${n}" for n in pattern.names if n != "..."}
    if isinstance(pattern, JsonPattern):
        return {"$.*"}  # any selector: JSON values come from the message, not the pattern
    return set()


def valid_selector(pattern: Pattern, selector: str) -> bool:
    """Whether ``extract(message, selector)`` can ever give a value (PutMetricFilter checks
    its metricValue with this)."""
    if isinstance(pattern, JsonPattern):
        try:
            selector_steps(selector)
        except PatternError:
            return False
        return True
    return selector in selectors(pattern)
