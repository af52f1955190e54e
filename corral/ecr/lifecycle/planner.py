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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import compress

from corral.ecr.lifecycle.policy import Rule


@dataclass(frozen=True)
class PlanImage:
    """What the planner knows of an image."""

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    last_pulled_at: datetime | None = None
    seq: int = 0  # tie-break for equal push times: higher = pushed later


def _tag_regex(text: str, *, pattern: bool) -> re.Pattern:
    """One prefix or pattern as a regex over an image's tags joined by newlines (tags never
    hold one): ``^prefix`` on some line, or ``^pattern$`` for a whole tag, where a pattern's
    ``*`` is zero or more characters. One C-level search per prefix instead of a Python loop
    over the tags: the planner asks this for every image and rule."""
    if not pattern:
        return re.compile("^" + re.escape(text), re.MULTILINE)
    body = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", text))
    return re.compile(f"^{body}$", re.MULTILINE)


@lru_cache(maxsize=256)
def _selector(rule: Rule) -> Callable[[str], bool]:
    """The rule's tag selection as a predicate on an image's newline-joined tags."""
    if rule.tag_status == "any":
        return lambda joined: True
    if rule.tag_status == "untagged":
        return lambda joined: not joined
    searches = [_tag_regex(p, pattern=False).search for p in rule.tag_prefixes]
    searches += [_tag_regex(p, pattern=True).search for p in rule.tag_patterns]
    if len(searches) == 1:
        only = searches[0]
        return lambda joined: bool(joined) and only(joined) is not None
    return lambda joined: bool(joined) and all(s(joined) is not None for s in searches)


def selects(rule: Rule, image: PlanImage) -> bool:
    """Whether ``image`` is in the rule's tag selection (rule 2 above): ``tagged`` needs a
    tag, and every listed prefix/pattern must match some tag of the image."""
    return _selector(rule)("\n".join(image.tags))


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
    joined = ["\n".join(i.tags) for i in ordered]
    claimed: dict[str, int] = {}
    protected: set[str] = set()
    for rule in sorted(rules, key=lambda r: r.priority):
        if rule.tag_status == "any":
            matched = ordered
        else:
            matched = list(compress(ordered, map(_selector(rule), joined)))
        for image in candidates(rule, matched, now):
            if image.digest not in claimed and image.digest not in protected:
                claimed[image.digest] = rule.priority
        protected.update(i.digest for i in matched)
    return claimed
