"""Lifecycle policy text: parse and validate it exactly as ECR does, into typed rules.

ECR validates the text with a JSON-schema validator and answers ``InvalidParameterException``
with a fixed prefix and the validator's detail (shared/reference/ecr-lifecycle.md §2.2):

    Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint:
    'Lifecycle policy validation failure: <detail>'

Schema-level details (missing or unknown properties, enum values, types, minimums) use the
validator's wording. AWS does not document the wording of the semantic rules (duplicate
priority, ``any`` not last, two untagged rules, ``countUnit`` with ``imageCountMoreThan``,
too many wildcards), so those details are Corral's own, written in the same style and
naming the rule's priority.

Supported: everything of the legacy template plus ``tagPatternList`` and ``sinceImagePulled``.
The archive storage class (``storageClass``, ``action.type: transition``,
``targetStorageClass``, ``countType: sinceImageTransitioned``) is rejected with a detail
saying so — Corral has one storage class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PREFIX = ("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
          "'Lifecycle policy validation failure: ")

TAG_STATUSES = ("any", "tagged", "untagged")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled")
TIME_COUNT_TYPES = ("sinceImagePushed", "sinceImagePulled")
COUNT_UNITS = ("days",)
ACTION_TYPES = ("expire",)
MAX_WILDCARDS = 4

RULE_FIELDS = ("rulePriority", "description", "selection", "action")
SELECTION_FIELDS = ("tagStatus", "tagPatternList", "tagPrefixList", "countType", "countUnit",
                    "countNumber")
# Fields of the archive storage class (Nov 2025): known to ECR, not served by Corral.
ARCHIVE_NOTE = "Corral has no archive storage class"


class PolicyInvalid(Exception):
    """A policy ECR would refuse; ``message`` is the full InvalidParameterException text."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    @property
    def message(self) -> str:
        return f"{PREFIX}{self.detail}'"


@dataclass(frozen=True)
class Rule:
    priority: int
    tag_status: str  # tagged | untagged | any
    count_type: str  # imageCountMoreThan | sinceImagePushed | sinceImagePulled
    count_number: int
    tag_prefixes: tuple[str, ...] = ()
    tag_patterns: tuple[str, ...] = ()
    count_unit: str | None = None
    description: str | None = None
    action: str = "expire"


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]


# --- schema wording ------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _names(values) -> str:
    return json.dumps(sorted(values), separators=(",", ":"))


def _expect(value: Any, kind: str) -> None:
    if _json_type(value) != kind:
        raise PolicyInvalid(f"instance type ({_json_type(value)}) does not match any allowed "
                            f'primitive type (allowed: ["{kind}"])')


def _object(value: Any, required: tuple[str, ...], allowed: tuple[str, ...],
            unsupported: dict[str, str] | None = None) -> dict[str, Any]:
    _expect(value, "object")
    missing = [k for k in required if k not in value]
    if missing:
        raise PolicyInvalid(f"object has missing required properties ({_names(missing)})")
    for key in value:
        if unsupported and key in unsupported:
            raise PolicyInvalid(unsupported[key])
        if key not in allowed:
            raise PolicyInvalid("object instance has properties which are not allowed by the "
                                f'schema: (["{key}"])')
    return value


def _enum(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        shown = value if isinstance(value, str) else json.dumps(value)
        raise PolicyInvalid(f"instance value ({shown}) not found in enum :(possible values: "
                            f"{_names(allowed)})")
    return value


def _positive(value: Any) -> int:
    _expect(value, "integer")
    if value < 1:
        raise PolicyInvalid("numeric instance is lower than the required minimum "
                            f"(minimum: 1, found: {value})")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    _expect(value, "array")
    for item in value:
        _expect(item, "string")
    return tuple(value)


# --- one rule ------------------------------------------------------------------------------


def _action(value: Any) -> str:
    action = _object(value, ("type",), ("type",), {
        "targetStorageClass": f"targetStorageClass is not supported: {ARCHIVE_NOTE}"})
    if action["type"] == "transition":
        raise PolicyInvalid(f"action type transition is not supported: {ARCHIVE_NOTE}; "
                            "use expire")
    return _enum(action["type"], ACTION_TYPES)


def _selection(value: Any, priority: int) -> dict[str, Any]:
    sel = _object(value, ("countNumber", "countType", "tagStatus"), SELECTION_FIELDS, {
        "storageClass": f"storageClass is not supported: {ARCHIVE_NOTE}; supported selection "
                        f"fields are {_names(SELECTION_FIELDS)}"})
    _enum(sel["tagStatus"], TAG_STATUSES)
    if sel["countType"] == "sinceImageTransitioned":
        raise PolicyInvalid(f"countType sinceImageTransitioned is not supported: {ARCHIVE_NOTE}")
    if sel["countType"] not in COUNT_TYPES:
        raise PolicyInvalid("instance failed to match exactly one schema (matched 0 out of 2)")
    if "countUnit" in sel:
        _enum(sel["countUnit"], COUNT_UNITS)
    _positive(sel["countNumber"])
    prefixes = _strings(sel["tagPrefixList"]) if "tagPrefixList" in sel else ()
    patterns = _strings(sel["tagPatternList"]) if "tagPatternList" in sel else ()
    for pattern in patterns:
        if pattern.count("*") > MAX_WILDCARDS:
            raise PolicyInvalid(f"tagPatternList entry '{pattern}' of the rule with rulePriority "
                                f"{priority} has {pattern.count('*')} wildcards; at most "
                                f"{MAX_WILDCARDS} are allowed")
    _tag_rules(sel, priority, prefixes, patterns)
    _count_rules(sel, priority)
    return sel | {"prefixes": prefixes, "patterns": patterns}


def _tag_rules(sel: dict[str, Any], priority: int, prefixes: tuple, patterns: tuple) -> None:
    status = sel["tagStatus"]
    if status == "tagged" and not (prefixes or patterns):
        raise PolicyInvalid(f"the rule with rulePriority {priority} selects tagged images and "
                            "must specify a non-empty tagPrefixList or tagPatternList")
    if status != "tagged":
        for name in ("tagPrefixList", "tagPatternList"):
            if name in sel:
                raise PolicyInvalid(f"the rule with rulePriority {priority} has tagStatus "
                                    f"{status} and cannot specify {name}; only tagged rules "
                                    "select by tag")


def _count_rules(sel: dict[str, Any], priority: int) -> None:
    count_type = sel["countType"]
    if count_type == "imageCountMoreThan" and "countUnit" in sel:
        raise PolicyInvalid(f"the rule with rulePriority {priority} has countType "
                            "imageCountMoreThan and cannot specify countUnit")
    if count_type in TIME_COUNT_TYPES and "countUnit" not in sel:
        raise PolicyInvalid(f"the rule with rulePriority {priority} has countType {count_type} "
                            "and must specify countUnit (days)")


def _rule(value: Any) -> Rule:
    raw = _object(value, ("action", "rulePriority", "selection"), RULE_FIELDS)
    priority = _positive(raw["rulePriority"])
    if "description" in raw:
        _expect(raw["description"], "string")
    action = _action(raw["action"])
    sel = _selection(raw["selection"], priority)
    return Rule(priority=priority, tag_status=sel["tagStatus"], count_type=sel["countType"],
                count_number=sel["countNumber"], tag_prefixes=sel["prefixes"],
                tag_patterns=sel["patterns"], count_unit=sel.get("countUnit"),
                description=raw.get("description"), action=action)


# --- the whole policy ----------------------------------------------------------------------


def _cross_rule_checks(rules: list[Rule]) -> None:
    """The rules ECR states about a policy as a whole (ecr-lifecycle.md §2.1, 2–6)."""
    seen: dict[int, Rule] = {}
    for r in rules:
        if r.priority in seen:
            raise PolicyInvalid(f"rulePriority must be unique; more than one rule has "
                                f"rulePriority {r.priority}")
        seen[r.priority] = r
    highest = max(seen)
    for r in rules:
        if r.tag_status == "any" and r.priority != highest:
            raise PolicyInvalid(f"the rule with tagStatus any (rulePriority {r.priority}) must "
                                f"have the highest rulePriority, but rulePriority {highest} is "
                                "higher")
    untagged = sorted(r.priority for r in rules if r.tag_status == "untagged")
    if len(untagged) > 1:
        raise PolicyInvalid("only one rule may select untagged images; rules with rulePriority "
                            f"{' and '.join(map(str, untagged))} both do")
    selections: dict[tuple, int] = {}
    for r in sorted(rules, key=lambda r: r.priority):
        if r.tag_status != "tagged":
            continue
        key = (frozenset(r.tag_prefixes), frozenset(r.tag_patterns))
        if key in selections:
            raise PolicyInvalid(f"rules with rulePriority {selections[key]} and {r.priority} "
                                "select the same tags; each rule must use a unique set of tag "
                                "prefixes")
        selections[key] = r.priority


def parse(text: str) -> Policy:
    """The policy ``text`` as typed rules, or :class:`PolicyInvalid` with ECR's detail."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise PolicyInvalid("Could not map policyString into LifecyclePolicy.") from None
    if not isinstance(doc, dict):
        raise PolicyInvalid("Could not map policyString into LifecyclePolicy.")
    if "rules" not in doc:
        raise PolicyInvalid('object has missing required properties (["rules"])')
    _object(doc, ("rules",), ("rules",))
    _expect(doc["rules"], "array")
    if not doc["rules"]:
        raise PolicyInvalid("array is too short: must have at least 1 elements but instance "
                            "has 0 elements")
    rules = [_rule(r) for r in doc["rules"]]
    _cross_rule_checks(rules)
    return Policy(tuple(sorted(rules, key=lambda r: r.priority)))
