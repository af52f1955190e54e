"""Which images a lifecycle policy expires: a pure function of the rules, the images and now.

ECR's evaluation rules (ECR User Guide, "Lifecycle policy evaluation rules";
shared/reference/ecr-lifecycle.md §3), in the order the code applies them:

1. All rules are evaluated; their results are applied in rulePriority order, lowest first.
2. A rule selects images by tag status and — for ``tagged`` — by ``tagPrefixList`` /
   ``tagPatternList``: every listed prefix/pattern must match some tag of the image.
3. ``imageCountMoreThan n``: the selection sorted newest first; everything after the first n
   is a candidate. ``sinceImagePushed n``: every selected image pushed more than n days ago.
   ``sinceImagePulled n``: every selected image last pulled more than n days ago (an image
   never pulled counts from its push — not documented by AWS; Corral's choice).
4. A candidate already claimed by an earlier rule, or matched by an earlier rule's tag
   selection ("protected"), is not marked; but it still counts toward the rule's n.
5. Each image is expired by at most one rule.

"More than n days" is elapsed time: strictly more than n × 24 hours.
Ties in push time sort by ``seq`` (the image's row id: later pushes are newer), then digest,
so the plan never depends on the order images are given in (§3.2 tie-break note).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from corral.ecr.lifecycle.policy import Rule


@dataclass(frozen=True)
class PlanImage:
    """What the planner knows of an image."""

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    last_pulled_at: datetime | None = None
    seq: int = 0  # tie-break for equal push times: higher = pushed later


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern:
    """A tagPatternList entry: ``*`` is zero or more characters, matched against whole tags."""
    return re.compile("".join(".*" if part == "*" else re.escape(part)
                              for part in re.split(r"(\*)", pattern)), re.DOTALL)


def selects(rule: Rule, image: PlanImage) -> bool:
    """Whether ``image`` is in the rule's tag selection (rule 2 above)."""
    if rule.tag_status == "any":
        return True
    if rule.tag_status == "untagged":
        return not image.tags
    if not image.tags:
        return False
    return (all(any(t.startswith(p) for t in image.tags) for p in rule.tag_prefixes)
            and all(any(_pattern(p).fullmatch(t) for t in image.tags)
                    for p in rule.tag_patterns))


def _age_reference(rule: Rule, image: PlanImage) -> datetime:
    if rule.count_type == "sinceImagePulled" and image.last_pulled_at is not None:
        return image.last_pulled_at
    return image.pushed_at


def candidates(rule: Rule, matched: Sequence[PlanImage], now: datetime) -> Iterable[PlanImage]:
    """The images of ``matched`` (newest first) the rule's count would expire (rule 3)."""
    if rule.count_type == "imageCountMoreThan":
        return matched[rule.count_number:]
    limit = now - timedelta(days=rule.count_number)
    return (i for i in matched if _age_reference(rule, i) < limit)


def newest_first(images: Iterable[PlanImage]) -> list[PlanImage]:
    return sorted(images, key=lambda i: (i.pushed_at, i.seq, i.digest), reverse=True)


def plan(rules: Iterable[Rule], images: Iterable[PlanImage], *, now: datetime) -> dict[str, int]:
    """For each image the policy expires, the rulePriority of the rule that expires it."""
    ordered = newest_first(images)  # sorted once; each rule's selection keeps this order
    claimed: dict[str, int] = {}
    protected: set[str] = set()
    for rule in sorted(rules, key=lambda r: r.priority):
        matched = [i for i in ordered if selects(rule, i)]
        for image in candidates(rule, matched, now):
            if image.digest not in claimed and image.digest not in protected:
                claimed[image.digest] = rule.priority
        protected.update(i.digest for i in matched)
    return claimed
