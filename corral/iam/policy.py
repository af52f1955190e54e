"""IAM policy documents: parse and validate JSON into compiled, immutable statements.

    JSON text ─> parse(text, kind) ─> Policy(version, statements)   (or MalformedPolicy(reason))

``kind`` says where the document is used, which changes what is legal (IAM User Guide,
reference_policies_elements_*):

- ``identity`` (user/group/role inline and managed policies, permissions boundaries, session
  policies): no ``Principal``/``NotPrincipal``; every statement needs ``Resource``/``NotResource``.
- ``resource`` (ECR repository policies): ``Principal``/``NotPrincipal`` required; ``Resource``
  optional (the policy is attached to the repository and applies to it).
- ``trust`` (role trust policies): ``Principal`` required, ``NotPrincipal`` not allowed.

Compiled statements keep action/resource patterns and conditions in the shapes the evaluator
uses, so a policy is parsed once (``parse_cached``) and evaluated many times.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field

VERSIONS = ("2008-10-17", "2012-10-17")
DEFAULT_VERSION = "2008-10-17"  # a document without Version is evaluated as the old grammar
KINDS = ("identity", "resource", "trust")
_EFFECTS = ("Allow", "Deny")
_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
             "NotPrincipal", "Condition"}
_ACTION = re.compile(r"^[A-Za-z0-9*?-]+:[A-Za-z0-9*?_-]*$")
_SID = re.compile(r"^[A-Za-z0-9 ]*$")
_ACCOUNT = re.compile(r"^\d{12}$")


class MalformedPolicy(ValueError):
    """A document IAM would refuse; ``reason`` is the MalformedPolicyDocument message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Condition:
    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    base: str  # the table operator, e.g. "StringLike"
    set_op: str | None  # "ForAllValues" | "ForAnyValue" | None
    if_exists: bool
    key: str  # lower-cased: condition key names are case-insensitive
    values: tuple[str, ...]


@dataclass(frozen=True)
class Principals:
    """A Principal/NotPrincipal element: ``"*"`` or per-type lists (AWS, Service, Federated…)."""

    everyone: bool
    by_type: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def of(self, kind: str) -> tuple[str, ...]:
        for k, v in self.by_type:
            if k == kind:
                return v
        return ()


@dataclass(frozen=True)
class Statement:
    index: int
    sid: str | None
    effect: str
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principal: Principals | None
    not_principal: Principals | None
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]
    id: str | None = None
    # The evaluator's memo: lower-cased action -> the statements whose Action/NotAction
    # matches it (actions are a finite set, so this stays small).
    by_action: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def variables(self) -> bool:
        """Policy variables are only substituted in Version 2012-10-17 documents."""
        return self.version == "2012-10-17"


def _strings(value, element: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedPolicy(f"Policy statement {element} must not be empty.")
    for item in items:
        if not isinstance(item, str):
            raise MalformedPolicy(f"Syntax errors in policy. {element} must hold strings.")
    return tuple(items)


def _actions(value, element: str) -> tuple[str, ...]:
    out = _strings(value, element)
    for a in out:
        if a != "*" and not _ACTION.match(a.strip()):
            raise MalformedPolicy(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
    return tuple(a.strip() for a in out)


def _resources(value, element: str) -> tuple[str, ...]:
    out = _strings(value, element)
    for r in out:
        if r == "*":
            continue
        parts = r.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
            raise MalformedPolicy(f'Resource {r} must be in ARN format or "*".')
        if "*" in parts[2] or "?" in parts[2]:
            raise MalformedPolicy(f"Resource {r} can not contain a wildcard in the service.")
    return out


def _principals(value, element: str, kind: str) -> Principals:
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy(f"Invalid principal in policy: {json.dumps(value)}")
    by_type = []
    everyone = False
    for ptype, ids in value.items():
        if ptype not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise MalformedPolicy(f'Invalid principal in policy: "{ptype}"')
        items = _strings(ids, element)
        for p in items:
            if ptype == "AWS" and p == "*":
                everyone = True
                continue
            if ptype == "AWS" and not (_ACCOUNT.match(p) or _principal_arn(p)):
                raise MalformedPolicy(f'Invalid principal in policy: "AWS":"{p}"')
            if ptype == "Service" and ("*" in p or "." not in p):
                raise MalformedPolicy(f'Invalid principal in policy: "SERVICE":"{p}"')
            if ptype == "Federated" and "*" in p:
                raise MalformedPolicy(f'Invalid principal in policy: "FEDERATED":"{p}"')
        by_type.append((ptype, tuple(p for p in items if not (ptype == "AWS" and p == "*"))))
    return Principals(everyone=everyone, by_type=tuple(by_type))


def _principal_arn(p: str) -> bool:
    """AWS principals are exact ARNs: no partial wildcards (elements_principal)."""
    parts = p.split(":", 5)
    return (len(parts) == 6 and parts[0] == "arn" and parts[2] in ("iam", "sts")
            and _ACCOUNT.match(parts[4]) is not None and "*" not in p and "?" not in p)


def _conditions(value) -> tuple[Condition, ...]:
    from corral.iam.evaluator import OPERATORS  # the one operator table

    if not isinstance(value, dict):
        raise MalformedPolicy("Syntax errors in policy. Condition must be an object.")
    out = []
    for operator, block in value.items():
        set_op, _, rest = operator.rpartition(":")
        set_op = set_op or None
        if set_op not in (None, "ForAllValues", "ForAnyValue"):
            raise MalformedPolicy(f"Invalid Condition type : {operator}")
        base, if_exists = rest, False
        if base.endswith("IfExists") and base != "IfExists":
            base, if_exists = base[: -len("IfExists")], True
        if base not in OPERATORS or (if_exists and base == "Null"):
            raise MalformedPolicy(f"Invalid Condition type : {operator}")
        if not isinstance(block, dict) or not block:
            raise MalformedPolicy(f"Syntax errors in policy. Condition {operator} must map "
                                  "keys to values.")
        for key, values in block.items():
            items = values if isinstance(values, list) else [values]
            if not items or not all(isinstance(v, (str, bool, int, float)) for v in items):
                raise MalformedPolicy(f"Syntax errors in policy. Condition {operator} {key} "
                                      "must hold strings, numbers or booleans.")
            if ":" not in key:
                raise MalformedPolicy(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
            texts = tuple(_text(v) for v in items)
            OPERATORS[base].check(texts, operator)
            out.append(Condition(operator, base, set_op, if_exists, key.lower(), texts))
    return tuple(out)


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _statement(raw, index: int, kind: str) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy("Syntax errors in policy. Statement must be an object.")
    unknown = set(raw) - _ELEMENTS
    if unknown:
        raise MalformedPolicy(f"Syntax errors in policy. Unknown element {sorted(unknown)[0]}.")
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or (kind == "identity"
                                                          and not _SID.match(sid))):
        raise MalformedPolicy("Statement IDs (SID) must be alpha-numeric. Check that your "
                              "input satisfies the regular expression [0-9A-Za-z]*")
    effect = raw.get("Effect")
    if effect is None:
        raise MalformedPolicy("Missing required field Effect")
    if effect not in _EFFECTS:
        raise MalformedPolicy(f"Invalid effect: {effect}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise MalformedPolicy("Policy statement must contain actions." if "Action" not in raw
                              else "Statement cannot contain both Action and NotAction.")
    has_res = "Resource" in raw or "NotResource" in raw
    if "Resource" in raw and "NotResource" in raw:
        raise MalformedPolicy("Statement cannot contain both Resource and NotResource.")
    if kind == "identity" and not has_res:
        raise MalformedPolicy("Policy statement must contain resources.")
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if kind == "identity" and has_principal:
        raise MalformedPolicy("Policy document should not specify a principal.")
    if kind in ("resource", "trust") and not has_principal:
        raise MalformedPolicy("Policy document must specify a principal." if kind == "trust"
                              else "Statement is missing required element Principal.")
    if kind == "trust" and "NotPrincipal" in raw:
        raise MalformedPolicy("Trust policies cannot contain NotPrincipal.")
    if kind == "trust" and has_res:
        raise MalformedPolicy("Has prohibited field Resource")
    return Statement(
        index=index, sid=sid, effect=effect,
        actions=_actions(raw["Action"], "Action") if "Action" in raw else None,
        not_actions=_actions(raw["NotAction"], "NotAction") if "NotAction" in raw else None,
        resources=_resources(raw["Resource"], "Resource") if "Resource" in raw else None,
        not_resources=(_resources(raw["NotResource"], "NotResource")
                       if "NotResource" in raw else None),
        principal=_principals(raw["Principal"], "Principal", kind) if "Principal" in raw else None,
        not_principal=(_principals(raw["NotPrincipal"], "NotPrincipal", kind)
                       if "NotPrincipal" in raw else None),
        conditions=_conditions(raw["Condition"]) if "Condition" in raw else (),
    )


def parse(text: str, kind: str = "identity") -> Policy:
    """Parse and validate a policy document; raise MalformedPolicy(reason) when IAM would."""
    if kind not in KINDS:
        raise ValueError(kind)
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        raise MalformedPolicy("Syntax errors in policy.") from None
    return from_dict(doc, kind)


def from_dict(doc, kind: str = "identity") -> Policy:
    if not isinstance(doc, dict):
        raise MalformedPolicy("Syntax errors in policy.")
    unknown = set(doc) - {"Version", "Statement", "Id"}
    if unknown:
        raise MalformedPolicy(f"Syntax errors in policy. Unknown element {sorted(unknown)[0]}.")
    version = doc.get("Version", DEFAULT_VERSION)
    if version not in VERSIONS:
        raise MalformedPolicy("The policy failed legacy parsing")
    raw = doc.get("Statement")
    if raw is None:
        raise MalformedPolicy("Missing required field Statement")
    raws = raw if isinstance(raw, list) else [raw]
    if not raws:
        raise MalformedPolicy("Syntax errors in policy. Statement must not be empty.")
    return Policy(version, tuple(_statement(s, i, kind) for i, s in enumerate(raws)),
                  doc.get("Id"))


@functools.lru_cache(maxsize=4096)
def parse_cached(text: str, kind: str = "identity") -> Policy:
    """``parse`` for stored documents, which are evaluated on every request."""
    return parse(text, kind)


def size(text: str) -> int:
    """A document's size as IAM counts it against its quotas: whitespace does not count."""
    return len(re.sub(r"\s+", "", text))
