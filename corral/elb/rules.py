"""Listener rules: the pure routing decision of an Application Load Balancer.

Given a listener's rules (the ``Rule`` docs the store holds, any order: they are sorted here by
priority with the default rule last) and one request, :func:`route` returns what to do with it:

    Request ──> rules by priority (lowest first) ──> first rule whose conditions all match
                                                          │ its terminal action
              ┌───────────────────────────┬───────────────┴─────────────┐
          Forward(target group,      FixedResponse(status,         Redirect(status,
          picked by weight)          content type, body)           Location)

Condition semantics, as the ALB guide (load-balancer-listeners, "Rule condition types") states:
values within one condition are ORed, conditions of a rule are ANDed;
- ``path-pattern``: case-sensitive, ``*`` (any run) and ``?`` (one character) wildcards, matched
  against the path only — never the query string;
- ``host-header``: case-insensitive with wildcards, against the Host without its port;
- ``http-header``: the name case-insensitive, values case-insensitive with wildcards;
- ``query-string``: ``Key``/``Value`` pairs (``Key`` optional), case-insensitive, wildcards;
- ``http-request-method``: exact, case-sensitive;
- ``source-ip``: CIDR blocks against the client's address (not X-Forwarded-For).
Both the legacy ``Values`` form and the ``<Field>Config`` forms are read; ``RegexValues`` (the
regex form botocore 1.43 added) are searched with Python's ``re``.

Everything here is a function of its inputs; the weighted pick takes an injected ``random``.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class Request:
    """What rules look at: the request line, headers (names lower-cased), client address."""

    method: str
    path: str  # without the query string
    query: str = ""  # the raw query string, without "?"
    host: str = ""  # the Host header as sent (port included, if any)
    headers: Sequence[tuple[str, str]] = ()  # (lower-case name, value)
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP"  # the listener's protocol
    port: int = 80  # the listener's port

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def hostname(self) -> str:
        host = self.host
        if host.startswith("["):  # an IPv6 literal: [::1]:80
            return host.split("]", 1)[0] + "]"
        return host.rsplit(":", 1)[0] if ":" in host else host


@dataclass(frozen=True)
class Forward:
    target_group_arn: str
    rule_arn: str = ""


@dataclass(frozen=True)
class FixedResponse:
    status: int
    content_type: str
    body: str
    rule_arn: str = ""


@dataclass(frozen=True)
class Redirect:
    status: int  # 301 or 302
    location: str
    rule_arn: str = ""


@dataclass(frozen=True)
class NoTarget:
    """A forward whose target groups all weigh 0: nothing can take the request (503)."""

    rule_arn: str = ""


Action = Forward | FixedResponse | Redirect | NoTarget
Matcher = Callable[[Request], bool]


@dataclass(frozen=True)
class CompiledRule:
    arn: str
    priority: float  # the default rule sorts last
    matchers: tuple[Matcher, ...]
    action: dict[str, Any]  # the terminal action's doc
    forward: tuple[tuple[str, int], ...] = field(default=())  # (target group, weight)

    def matches(self, request: Request) -> bool:
        return all(m(request) for m in self.matchers)


# --- wildcards ------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """An ALB wildcard pattern as a regex: ``*`` any run of characters, ``?`` exactly one."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def _any_wildcard(patterns: Iterable[str], value: str, ignore_case: bool) -> bool:
    return any(_wildcard(p, ignore_case).fullmatch(value) for p in patterns)


def _config_values(cond: dict, config: str) -> tuple[list[str], list[re.Pattern[str]]]:
    """(wildcard values, compiled regex values) of a condition, legacy ``Values`` form
    included. A bad regex raises ``re.error`` here, when the rule is compiled, never while a
    request is matched."""
    cfg = cond.get(config) or {}
    values = list(cfg.get("Values") or []) or list(cond.get("Values") or [])
    regexes = list(cfg.get("RegexValues") or []) or list(cond.get("RegexValues") or [])
    return values, [re.compile(x) for x in regexes]


# --- conditions -----------------------------------------------------------------------------

def _path_matcher(cond: dict) -> Matcher:
    values, regexes = _config_values(cond, "PathPatternConfig")
    return lambda r: (_any_wildcard(values, r.path, False)
                      or any(x.search(r.path) for x in regexes))


def _host_matcher(cond: dict) -> Matcher:
    values, regexes = _config_values(cond, "HostHeaderConfig")
    return lambda r: (_any_wildcard(values, r.hostname, True)
                      or any(x.search(r.hostname) for x in regexes))


def _header_matcher(cond: dict) -> Matcher:
    cfg = cond.get("HttpHeaderConfig") or {}
    name = cfg.get("HttpHeaderName", "")
    values = list(cfg.get("Values") or [])
    regexes = [re.compile(x) for x in cfg.get("RegexValues") or []]
    return lambda r: any(_any_wildcard(values, v, True) or any(x.search(v) for x in regexes)
                         for v in r.header_values(name))


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def _query_matcher(cond: dict) -> Matcher:
    wanted = [(kv.get("Key"), kv.get("Value", ""))
              for kv in (cond.get("QueryStringConfig") or {}).get("Values") or []]

    def match(r: Request) -> bool:
        pairs = _query_pairs(r.query)
        return any((key is None or _wildcard(key, True).fullmatch(k))
                   and _wildcard(value, True).fullmatch(v)
                   for key, value in wanted for k, v in pairs)
    return match


def _method_matcher(cond: dict) -> Matcher:
    values, _ = _config_values(cond, "HttpRequestMethodConfig")
    return lambda r: r.method in values


def _source_ip_matcher(cond: dict) -> Matcher:
    values, _ = _config_values(cond, "SourceIpConfig")
    networks = [ipaddress.ip_network(v, strict=False) for v in values]

    def match(r: Request) -> bool:
        try:
            address = ipaddress.ip_address(r.source_ip)
        except ValueError:
            return False
        return any(address.version == n.version and address in n for n in networks)
    return match


CONDITIONS: dict[str, Callable[[dict], Matcher]] = {
    "path-pattern": _path_matcher,
    "host-header": _host_matcher,
    "http-header": _header_matcher,
    "query-string": _query_matcher,
    "http-request-method": _method_matcher,
    "source-ip": _source_ip_matcher,
}


# --- rules and actions ----------------------------------------------------------------------

def terminal_action(actions: Sequence[dict]) -> dict:
    """The action that answers: the last by ``Order`` (authenticate-* actions come before it
    and are not carried out by Corral)."""
    ordered = sorted(enumerate(actions), key=lambda ia: (ia[1].get("Order", 50000), ia[0]))
    for _, action in reversed(ordered):
        if not action.get("Type", "").startswith("authenticate"):
            return action
    raise ValueError("rule has no terminal action")


def _forward_groups(action: dict) -> tuple[tuple[str, int], ...]:
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        return tuple((g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups)
    return ((action["TargetGroupArn"], 1),) if action.get("TargetGroupArn") else ()


def compile_rule(doc: dict) -> CompiledRule:
    priority = doc.get("Priority", "default")
    action = terminal_action(doc.get("Actions") or [])
    matchers = tuple(CONDITIONS[c["Field"]](c) for c in doc.get("Conditions") or [])
    forward = _forward_groups(action) if action.get("Type") == "forward" else ()
    return CompiledRule(doc.get("RuleArn", ""),
                        float("inf") if priority == "default" else float(priority),
                        matchers, action, forward)


BAD_RULE = (KeyError, ValueError, TypeError, re.error)  # what a malformed rule doc raises


def compile_rules(docs: Iterable[dict],
                  on_error: Callable[[dict, Exception], None] | None = None
                  ) -> list[CompiledRule]:
    """Compiled rules in evaluation order: lowest priority first, the default rule last.
    A rule that does not compile raises, or — given ``on_error`` — is reported to it and left
    out, so one bad rule (stored before the API checked it) cannot take the others down."""
    compiled = []
    for doc in docs:
        try:
            compiled.append(compile_rule(doc))
        except BAD_RULE as e:
            if on_error is None:
                raise
            on_error(doc, e)
    return sorted(compiled, key=lambda r: r.priority)


def route(rules: Sequence[CompiledRule], request: Request, rng: random.Random) -> Action | None:
    """The action of the first matching rule (``None`` only if there is no default rule)."""
    for rule in rules:
        if rule.matches(request):
            return _act(rule, request, rng)
    return None


def _act(rule: CompiledRule, request: Request, rng: random.Random) -> Action:
    action = rule.action
    kind = action.get("Type")
    if kind == "forward":
        arn = pick_weighted(rule.forward, rng)
        return Forward(arn, rule.arn) if arn else NoTarget(rule.arn)
    if kind == "fixed-response":
        cfg = action.get("FixedResponseConfig") or {}
        return FixedResponse(int(cfg.get("StatusCode", "200")),
                             cfg.get("ContentType") or "text/plain",
                             cfg.get("MessageBody") or "", rule.arn)
    if kind == "redirect":
        cfg = action.get("RedirectConfig") or {}
        status = 301 if cfg.get("StatusCode") == "HTTP_301" else 302
        return Redirect(status, redirect_location(cfg, request), rule.arn)
    raise ValueError(f"unsupported action type {kind!r}")


def pick_weighted(groups: Sequence[tuple[str, int]], rng: random.Random) -> str | None:
    """A target group chosen with probability weight / total; ``None`` when all weigh 0."""
    total = sum(w for _, w in groups)
    if total <= 0:
        return None
    point = rng.random() * total
    for arn, weight in groups:
        if point < weight:
            return arn
        point -= weight
    return next(arn for arn, w in reversed(groups) if w > 0)  # float rounding at the top


def redirect_location(cfg: dict, request: Request) -> str:
    """The ``Location`` of a redirect: each URI component from RedirectConfig with the
    reserved keywords substituted (defaults keep the request's own component; ``#{path}`` is
    the path without its leading "/", as RedirectActionConfig documents)."""
    words = {"#{protocol}": request.protocol.lower(), "#{host}": request.hostname,
             "#{port}": str(request.port), "#{path}": request.path.removeprefix("/"),
             "#{query}": request.query}

    def fill(template: str) -> str:
        for word, value in words.items():
            template = template.replace(word, value)
        return template

    protocol = fill(cfg.get("Protocol") or "#{protocol}").lower()
    host = fill(cfg.get("Host") or "#{host}")
    port = fill(cfg.get("Port") or "#{port}")
    path = fill(cfg.get("Path") or "/#{path}")
    query = fill(cfg.get("Query") if cfg.get("Query") is not None else "#{query}")
    location = f"{protocol}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    return f"{location}?{query}" if query else location
