"""The policy evaluator: a pure function from (request, policies) to a decision with reasons.

    Request(action, resource, principal, context)
    + identity policies, permissions boundary, session policies, resource policy
    ─> evaluate() ─> Decision(Allowed | ImplicitlyDenied | ExplicitlyDenied,
                              the policy type to name in AccessDenied, matched statements)

Rules (IAM User Guide, reference_policies_evaluation-logic and …-cross-account; shared
reference §2): start from implicit deny; any matching Deny wins; same account, an identity
Allow or a resource-policy Allow naming the principal grants, capped by the permissions
boundary and the session policy (a resource Allow naming the user or the session ARN itself is
not capped; one naming the role is); a resource Allow naming only the account delegates to the
identity policies. Cross account, both sides must allow. The account root has full access in
its own account. Role trust policies must always allow explicitly (``trust=True``).

Open question 1 of the reference (a session policy vs. a resource policy that names the
session ARN) is decided for the documentation: the direct grant is not limited by the session
policy (``test_evaluator.py::test_rule_resource_policy_naming_session_arn_is_not_capped``).

Matching details live in small, cached helpers: actions are case-insensitive globs, resources
case-sensitive ARN globs per segment, condition keys case-insensitive; condition operators are
one table (``OPERATORS``); ``…IfExists`` and ``ForAllValues:``/``ForAnyValue:`` are handled once
in ``_condition``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from corral.iam.policy import Condition, MalformedPolicy, Policy, Principals, Statement

ALLOWED, IMPLICIT, EXPLICIT = "Allowed", "ImplicitlyDenied", "ExplicitlyDenied"
ContextValue = str | tuple[str, ...]


# --- the request ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who asks. ``kind``: Account (root) | User | AssumedRole | FederatedUser | Service |
    WebIdentity. ``role_arn`` is the role behind an assumed-role session; ``name`` the service
    principal (``ecs-tasks.amazonaws.com``) or the federated provider ARN."""

    arn: str
    account: str
    kind: str = "User"
    role_arn: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    caller: Caller
    context: Mapping[str, ContextValue] = field(default_factory=dict)  # keys lower-case
    resource_account: str | None = None  # None: the caller's own account (or no resource)


@dataclass(frozen=True)
class Named:
    """A policy with the name simulation and messages report (ARN or ``role/r:inline``)."""

    name: str
    policy: Policy


@dataclass(frozen=True)
class Matched:
    policy_type: str  # identity-based | resource-based | permissions boundary | session
    policy_name: str
    statement: Statement


@dataclass(frozen=True)
class Decision:
    result: str
    policy_type: str | None = None  # the policy type an AccessDenied message names
    matched: tuple[Matched, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.result == ALLOWED

    def why(self, action: str) -> str:
        """The tail of AWS's AccessDenied message (troubleshoot_access-denied)."""
        phrase = _PHRASES.get(self.policy_type or "", f"{self.policy_type} policy")
        if self.result == EXPLICIT:
            article = "an" if phrase[0] in "aeiou" else "a"
            return f"with an explicit deny in {article} {phrase}"
        return f"because no {phrase} allows the {action} action"


_PHRASES = {"identity-based": "identity-based policy", "resource-based": "resource-based policy",
            "permissions boundary": "permissions boundary", "session": "session policy"}


def context_of(values: Mapping[str, ContextValue | list[str]]) -> dict[str, ContextValue]:
    """A request context with the case rule applied once: keys are case-insensitive."""
    return {k.lower(): (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}


# --- patterns -------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def _resolve_var(body: str, ctx: Mapping[str, ContextValue]) -> str | None:
    """``${key}`` / ``${key, 'default'}`` / ``${*}``: the literal text, None if unresolvable."""
    body = body.strip()
    if body in _ESCAPES:
        return _ESCAPES[body]
    key, _, default = body.partition(",")
    value = ctx.get(key.strip().lower())
    if isinstance(value, str):
        return value
    default = default.strip()
    if len(default) >= 2 and default[0] == default[-1] == "'":
        return default[1:-1]
    return None  # missing, or multi-valued (variables take single-valued keys only)


def _pieces(text: str, ctx: Mapping[str, ContextValue] | None) -> list[tuple[str, bool]] | None:
    """Split ``text`` into (text, literal) pieces with variables substituted as literals;
    None when a variable cannot be resolved. ``ctx`` None: no variables (old Version)."""
    if ctx is None or "${" not in text:
        return [(text, False)]
    out, pos = [], 0
    for m in _VAR.finditer(text):
        out.append((text[pos:m.start()], False))
        value = _resolve_var(m.group(1), ctx)
        if value is None:
            return None
        out.append((value, True))
        pos = m.end()
    out.append((text[pos:], False))
    return out


def _glob_source(pieces: list[tuple[str, bool]]) -> str:
    parts = []
    for text, literal in pieces:
        if literal:
            parts.append(re.escape(text))
            continue
        for c in text:
            parts.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return "".join(parts)


@functools.lru_cache(maxsize=16384)
def _regex(source: str, ignore_case: bool) -> re.Pattern:
    return re.compile(source, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@functools.lru_cache(maxsize=16384)
def _static_glob(pattern: str, ignore_case: bool) -> re.Pattern:
    """A pattern without variables, compiled once."""
    return _regex(_glob_source([(pattern, False)]), ignore_case)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False,
               ctx: Mapping[str, ContextValue] | None = None) -> bool:
    """``*``/``?`` wildcard match (StringLike, actions); variables resolve as literal text."""
    if pattern == "*":
        return True
    if ctx is None or "${" not in pattern:
        if "*" not in pattern and "?" not in pattern:
            return pattern.lower() == value.lower() if ignore_case else pattern == value
        return _static_glob(pattern, ignore_case).fullmatch(value) is not None
    pieces = _pieces(pattern, ctx)
    if pieces is None:
        return False
    if len(pieces) == 1 and "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _regex(_glob_source(pieces), ignore_case).fullmatch(value) is not None


def _split_arn_pieces(pieces: list[tuple[str, bool]]) -> list[list[tuple[str, bool]]]:
    """Split a pattern's pieces into the 6 ARN parts on its own (non-literal) colons."""
    parts: list[list[tuple[str, bool]]] = [[]]
    for text, literal in pieces:
        if literal:
            parts[-1].append((text, True))
            continue
        for i, chunk in enumerate(text.split(":") if len(parts) < 6 else [text]):
            if i:
                if len(parts) < 6:
                    parts.append([])
                else:
                    parts[-1].append((":", False))
            parts[-1].append((chunk, False))
    return parts


def arn_match(pattern: str, value: str, ctx: Mapping[str, ContextValue] | None = None) -> bool:
    """Resource / ArnLike matching: each of the first five colon-separated parts is globbed on
    its own (``*`` cannot cross ``:``); the resource part as one string (it may span ``/`` and
    ``:``). Case-sensitive. A value that is not an ARN (``*``) is globbed whole."""
    if pattern == "*":
        return True
    values = value.split(":", 5)
    if len(values) != 6:
        return glob_match(pattern, value, ctx=ctx)
    if ctx is None or "${" not in pattern:
        compiled = _static_arn(pattern)
        return compiled is not None and all(
            (r.fullmatch(v) is not None) if isinstance(r, re.Pattern) else r == v
            for r, v in zip(compiled, values, strict=True))
    pieces = _pieces(pattern, ctx)
    if pieces is None:
        return False
    parts = _split_arn_pieces(pieces)
    if len(parts) != 6:
        return False
    for pat, val in zip(parts, values, strict=True):
        if len(pat) == 1 and not pat[0][1] and pat[0][0] == val:
            continue
        if _regex(_glob_source(pat), False).fullmatch(val) is None:
            return False
    return True


@functools.lru_cache(maxsize=16384)
def _static_arn(pattern: str) -> tuple[re.Pattern | str, ...] | None:
    """An ARN pattern without variables: per part, the literal text or its compiled glob."""
    parts = _split_arn_pieces([(pattern, False)])
    if len(parts) != 6:
        return None
    out: list[re.Pattern | str] = []
    for pat in parts:
        text = "".join(t for t, _ in pat)
        out.append(_regex(_glob_source(pat), False) if ("*" in text or "?" in text) else text)
    return tuple(out)


# --- condition operators: one table --------------------------------------------------------


def _date(text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _number(text: str) -> Decimal:
    value = Decimal(text.strip())
    if not value.is_finite():
        raise InvalidOperation(text)
    return value


def _ip(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@functools.lru_cache(maxsize=16384)
def _contains_ip(policy: str, request: str) -> bool:
    try:
        return ipaddress.ip_address(request.strip()) in _ip_cached(policy)
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)
def _ip_cached(text: str):
    return _ip(text)


def _compare(convert: Callable[[str], object], cmp: Callable[[object, object], bool]):
    def test(policy: str, request: str) -> bool:
        try:
            return cmp(convert(request), convert(policy))
        except (ValueError, ArithmeticError, TypeError):
            return False
    return test


@dataclass(frozen=True)
class Operator:
    """``test(policy_value, request_value, ctx)`` is the positive test; ``negated`` operators
    are true when no policy value matches (AND of negations). ``validate`` rejects policy values
    IAM would refuse; ``variables``: String/ARN operators substitute ``${…}`` in values."""

    test: Callable[[str, str, Mapping | None], bool]
    negated: bool = False
    variables: bool = False
    validate: Callable[[str], object] | None = None

    def check(self, values: Sequence[str], operator: str) -> None:
        if self.validate is None:
            return
        for v in values:
            try:
                self.validate(v)
            except (ValueError, ArithmeticError, binascii.Error):
                raise MalformedPolicy(
                    f"Invalid Condition value for {operator}: {v!r}") from None


def _plain(fn: Callable[[str, str], bool]) -> Callable[[str, str, Mapping | None], bool]:
    return lambda p, r, ctx: fn(p, r)


def _subst(p: str, ctx: Mapping | None) -> str | None:
    pieces = _pieces(p, ctx)
    return None if pieces is None else "".join(t for t, _ in pieces)


def _str_eq(p, r, ctx):
    p = _subst(p, ctx)
    return p is not None and p == r


def _str_eq_ic(p, r, ctx):
    p = _subst(p, ctx)
    return p is not None and p.lower() == r.lower()


def _bool(text: str) -> str:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower()


_lt, _le = (lambda a, b: a < b), (lambda a, b: a <= b)
_gt, _ge = (lambda a, b: a > b), (lambda a, b: a >= b)
_eq = lambda a, b: a == b  # noqa: E731

_STRING = dict(variables=True)
_ARN = dict(variables=True)
OPERATORS: dict[str, Operator] = {
    "StringEquals": Operator(_str_eq, **_STRING),
    "StringNotEquals": Operator(_str_eq, negated=True, **_STRING),
    "StringEqualsIgnoreCase": Operator(_str_eq_ic, **_STRING),
    "StringNotEqualsIgnoreCase": Operator(_str_eq_ic, negated=True, **_STRING),
    "StringLike": Operator(lambda p, r, ctx: glob_match(p, r, ctx=ctx), **_STRING),
    "StringNotLike": Operator(lambda p, r, ctx: glob_match(p, r, ctx=ctx), negated=True,
                              **_STRING),
    "NumericEquals": Operator(_plain(_compare(_number, _eq)), validate=_number),
    "NumericNotEquals": Operator(_plain(_compare(_number, _eq)), negated=True, validate=_number),
    "NumericLessThan": Operator(_plain(_compare(_number, _lt)), validate=_number),
    "NumericLessThanEquals": Operator(_plain(_compare(_number, _le)), validate=_number),
    "NumericGreaterThan": Operator(_plain(_compare(_number, _gt)), validate=_number),
    "NumericGreaterThanEquals": Operator(_plain(_compare(_number, _ge)), validate=_number),
    "DateEquals": Operator(_plain(_compare(_date, _eq)), validate=_date),
    "DateNotEquals": Operator(_plain(_compare(_date, _eq)), negated=True, validate=_date),
    "DateLessThan": Operator(_plain(_compare(_date, _lt)), validate=_date),
    "DateLessThanEquals": Operator(_plain(_compare(_date, _le)), validate=_date),
    "DateGreaterThan": Operator(_plain(_compare(_date, _gt)), validate=_date),
    "DateGreaterThanEquals": Operator(_plain(_compare(_date, _ge)), validate=_date),
    "Bool": Operator(lambda p, r, ctx: (_subst(p, ctx) or "").lower() == r.lower(),
                     variables=True),
    "BinaryEquals": Operator(_plain(lambda p, r: p == r), validate=_b64),
    "IpAddress": Operator(_plain(_contains_ip), validate=_ip),
    "NotIpAddress": Operator(_plain(_contains_ip), negated=True, validate=_ip),
    "ArnEquals": Operator(arn_match, **_ARN),
    "ArnLike": Operator(arn_match, **_ARN),
    "ArnNotEquals": Operator(arn_match, negated=True, **_ARN),
    "ArnNotLike": Operator(arn_match, negated=True, **_ARN),
    "Null": Operator(_plain(lambda p, r: True), validate=_bool),
}


def _any_value(op: Operator, values: Sequence[str], request_value: str, vctx) -> bool:
    return any(op.test(v, request_value, vctx) for v in values)


def _condition(c: Condition, ctx: Mapping[str, ContextValue], variables: bool) -> bool:
    """One operator/key pair; memoized on (condition, request value) unless it holds policy
    variables (then it depends on the whole context)."""
    if variables and OPERATORS[c.base].variables and _has_variables(c):
        return _condition_in(c, ctx, variables)
    return _condition_static(c, ctx.get(c.key))


@functools.lru_cache(maxsize=4096)
def _has_variables(c: Condition) -> bool:
    return any("${" in v for v in c.values)


@functools.lru_cache(maxsize=65536)
def _condition_static(c: Condition, value: ContextValue | None) -> bool:
    return _condition_in(c, {} if value is None else {c.key: value}, False)


def _condition_in(c: Condition, ctx: Mapping[str, ContextValue], variables: bool) -> bool:
    """One operator/key pair. Missing key: positive operators false, negated true, IfExists
    true, Null compares presence; set operators: ForAllValues is true on a missing or empty
    key, ForAnyValue false (reference_policies_multi-value-conditions)."""
    op = OPERATORS[c.base]
    present = c.key in ctx
    if c.base == "Null":
        return any((v.lower() == "true") == (not present) for v in c.values)
    vctx = ctx if (variables and op.variables) else None
    value = ctx.get(c.key)
    if c.set_op is not None:
        items = () if value is None else (value,) if isinstance(value, str) else value
        if c.set_op == "ForAllValues":
            return all(_any_value(op, c.values, r, vctx) != op.negated for r in items)
        if not items:
            return False
        return any(_any_value(op, c.values, r, vctx) != op.negated for r in items)
    if value is None:
        return c.if_exists or op.negated
    items = (value,) if isinstance(value, str) else value
    hit = any(_any_value(op, c.values, r, vctx) for r in items)
    return hit != op.negated


# --- statements -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _action_match(patterns: tuple[str, ...], action: str) -> bool:
    """Memoized: a statement's action list against an action name (both finite sets)."""
    return any(glob_match(p, action, ignore_case=True) for p in patterns)


@functools.lru_cache(maxsize=65536)
def _static_resource_match(patterns: tuple[str, ...], resource: str) -> bool:
    return any(arn_match(p, resource) for p in patterns)


def _resource_match(patterns: tuple[str, ...], resource: str, ctx) -> bool:
    if ctx is None or not any("${" in p for p in patterns):
        return _static_resource_match(patterns, resource)
    return any(arn_match(p, resource, ctx) for p in patterns)


def principal_match(p: Principals, caller: Caller) -> str | None:
    """How a Principal element names the caller: ``Match`` (its own ARN, service or provider,
    or everyone), ``SessionRoleMatch`` (the role behind a session), ``AccountLevelMatch``
    (its account, as an id or ``…:root``), or None."""
    if p.everyone:
        return "Match"
    for aws in p.of("AWS"):
        if aws == caller.arn:
            return "Match"
        if caller.role_arn is not None and aws == caller.role_arn:
            return "SessionRoleMatch"
    for aws in p.of("AWS"):
        if aws == caller.account or aws == f"arn:aws:iam::{caller.account}:root":
            return "AccountLevelMatch"
    if caller.kind == "Service" and caller.name in p.of("Service"):
        return "Match"
    if caller.kind == "WebIdentity" and caller.name in p.of("Federated"):
        return "Match"
    return None


def _action_applies(st: Statement, action: str) -> bool:
    if st.actions is not None and not _action_match(st.actions, action):
        return False
    return st.not_actions is None or not _action_match(st.not_actions, action)


def candidates(policy: Policy, action: str) -> tuple[Statement, ...]:
    """The statements whose Action/NotAction matches ``action`` (memoized per policy)."""
    key = action.lower()
    found = policy.by_action.get(key)
    if found is None:
        found = tuple(st for st in policy.statements if _action_applies(st, action))
        if len(policy.by_action) < 4096:
            policy.by_action[key] = found
    return found


def statement_applies(st: Statement, policy: Policy, req: Request, *,
                      action_checked: bool = False) -> bool:
    """Action, resource and conditions (not the principal) match the request."""
    if not action_checked and not _action_applies(st, req.action):
        return False
    vctx = req.context if policy.variables else None
    if st.resources is not None and not _resource_match(st.resources, req.resource, vctx):
        return False
    if st.not_resources is not None and _resource_match(st.not_resources, req.resource, vctx):
        return False
    return all(_condition(c, req.context, policy.variables) for c in st.conditions)


@dataclass
class _Scan:
    allows: list[tuple[Matched, str]] = field(default_factory=list)  # (match, principal kind)
    denies: list[Matched] = field(default_factory=list)


def _scan(named: Sequence[Named], policy_type: str, req: Request, *,
          with_principal: bool = False, has_boundary: bool = False) -> _Scan:
    out = _Scan()
    if not named:
        return out
    for n in named:
        for st in candidates(n.policy, req.action):
            kind = "Match"
            if with_principal:
                if st.principal is not None:
                    kind = principal_match(st.principal, req.caller)
                    if kind is None:
                        continue
                elif st.not_principal is not None:
                    # Quirk: NotPrincipal + Deny always denies a principal that has a
                    # permissions boundary (access_policies_boundaries).
                    listed = principal_match(st.not_principal, req.caller)
                    if listed is not None and not (has_boundary and st.effect == "Deny"):
                        continue
            if not statement_applies(st, n.policy, req, action_checked=True):
                continue
            m = Matched(policy_type, n.name, st)
            if st.effect == "Deny":
                out.denies.append(m)
            else:
                out.allows.append((m, kind))
    return out


def evaluate(req: Request, identity: Sequence[Named] = (), *,
             boundary: Sequence[Named] | None = None, session: Sequence[Named] | None = None,
             resource: Named | None = None, trust: bool = False) -> Decision:
    """The decision for one request (see the module docstring for the rules).

    ``boundary``/``session`` None: the principal has none (no cap); an empty list caps
    everything. ``trust``: ``resource`` is a role trust policy, which must always allow."""
    idn = _scan(identity, "identity-based", req)
    bnd = _scan(boundary or (), "permissions boundary", req)
    ses = _scan(session or (), "session", req)
    res = _scan([resource] if resource else (), "resource-based", req, with_principal=True,
                has_boundary=boundary is not None)
    matched = tuple([m for m, _ in idn.allows] + idn.denies + [m for m, _ in res.allows]
                    + res.denies + [m for m, _ in bnd.allows] + bnd.denies
                    + [m for m, _ in ses.allows] + ses.denies)
    caller = req.caller
    same_account = req.resource_account in (None, caller.account)
    root = caller.kind == "Account"
    # 1. An explicit deny in any applicable policy (the root's own identity is not governed
    #    by policies, but a resource policy can deny it).
    denies = res.denies if root else idn.denies + res.denies + bnd.denies + ses.denies
    if denies:
        return Decision(EXPLICIT, denies[0].policy_type, matched)
    kinds = {k for _, k in res.allows}
    if trust and not kinds:
        return Decision(IMPLICIT, "resource-based", matched)
    boundary_ok = boundary is None or bool(bnd.allows)
    session_ok = session is None or bool(ses.allows)
    if root:
        if same_account and not trust or kinds:
            return Decision(ALLOWED, None, matched)
        return Decision(IMPLICIT, "resource-based", matched)
    if same_account:
        # 2. A resource Allow naming the user / session ARN itself grants on its own.
        if "Match" in kinds and caller.kind != "Account":
            return Decision(ALLOWED, None, matched)
        # 3. Identity Allow, or a resource Allow naming the session's role: capped by the
        #    boundary and the session policy. An Allow naming only the account delegates.
        if idn.allows or "SessionRoleMatch" in kinds:
            if not boundary_ok:
                return Decision(IMPLICIT, "permissions boundary", matched)
            if not session_ok:
                return Decision(IMPLICIT, "session", matched)
            return Decision(ALLOWED, None, matched)
        return Decision(IMPLICIT, "identity-based", matched)
    # 4. Cross account: the principal's account and the resource's account must both allow.
    if not idn.allows:
        return Decision(IMPLICIT, "identity-based", matched)
    if not boundary_ok:
        return Decision(IMPLICIT, "permissions boundary", matched)
    if not session_ok:
        return Decision(IMPLICIT, "session", matched)
    if not kinds:
        return Decision(IMPLICIT, "resource-based", matched)
    return Decision(ALLOWED, None, matched)
