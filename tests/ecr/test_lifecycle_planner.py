"""The pure lifecycle planner: every example of the ECR User Guide's "Examples of lifecycle
policies" with its documented outcome (shared/reference/ecr-lifecycle.md §4), then Hypothesis
properties for ECR's evaluation rules (§3.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.ecr.lifecycle.planner import PlanImage, plan, selects
from corral.ecr.lifecycle.policy import Rule

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def img(name: str, tags: str = "", age: float = 0, pulled: float | None = None,
        seq: int = 0) -> PlanImage:
    """An image called ``name`` (its digest), pushed ``age`` days before NOW."""
    return PlanImage(
        digest=name, tags=tuple(t for t in tags.split(",") if t),
        pushed_at=NOW - timedelta(days=age),
        last_pulled_at=None if pulled is None else NOW - timedelta(days=pulled), seq=seq)


def keep(priority: int, n: int, status: str = "tagged", prefixes=(), patterns=()) -> Rule:
    return Rule(priority, status, "imageCountMoreThan", n, tuple(prefixes), tuple(patterns))


def older(priority: int, days: int, status: str = "tagged", prefixes=(), patterns=(),
          count_type: str = "sinceImagePushed") -> Rule:
    return Rule(priority, status, count_type, days, tuple(prefixes), tuple(patterns), "days")


# (id, rules, images, expected {digest: rulePriority})
EXAMPLES = [
    pytest.param(
        [older(1, 14, "untagged")],
        [img("A", age=20), img("B", age=15), img("C", age=14), img("D", age=3),
         img("E", "v1", age=30)],
        {"A": 1, "B": 1},
        id="filtering_on_image_age_untagged_older_than_14_days"),
    pytest.param(
        [keep(1, 1, "untagged")],
        [img("A", age=5), img("B", age=4), img("C", age=3), img("D", "v1", age=1)],
        {"A": 1, "B": 1},
        id="filtering_on_image_count_keep_one_untagged"),
    pytest.param(
        [keep(1, 1, prefixes=["prod"]), keep(2, 1, prefixes=["beta"])],
        [img("A", "beta-1,prod-1", age=10), img("B", "beta-2,prod-2", age=9),
         img("C", "beta-3", age=8)],
        {"A": 1},
        id="filtering_on_multiple_rules_example_a"),
    pytest.param(
        [keep(1, 1, prefixes=["beta"]), keep(2, 1, prefixes=["prod"])],
        [img("A", "beta-1,prod-1", age=10), img("B", "beta-2,prod-2", age=9),
         img("C", "beta-3", age=8)],
        {"A": 1, "B": 1},
        id="filtering_on_multiple_rules_example_b"),
    pytest.param(
        [older(1, 5, prefixes=["alpha", "beta"])],
        [img("A", "alpha-1", age=12), img("B", "beta-1", age=11),
         img("C", "alpha-2,beta-2", age=10), img("D", "alpha-3", age=4),
         img("E", "beta-3", age=3), img("F", "alpha-4,beta-4", age=2)],
        {"C": 1},
        id="filtering_on_multiple_tags_in_a_single_rule_example_a"),
    pytest.param(
        [keep(1, 1, prefixes=["alpha", "beta"])],
        [img("A", "alpha-1,beta-1,gamma-1", age=10), img("B", "alpha-2,beta-2", age=9),
         img("C", "alpha-3,beta-3,gamma-2", age=8)],
        {"A": 1, "B": 1},
        id="filtering_on_multiple_tags_in_a_single_rule_example_b"),
    pytest.param(
        [keep(1, 1, "any")],
        [img("A", "alpha-1", age=4), img("B", "beta-1", age=3), img("C", age=2),
         img("D", "alpha-2", age=1)],
        {"A": 1, "B": 1, "C": 1},
        id="filtering_on_all_images_example_a"),
    pytest.param(
        [keep(1, 1, prefixes=["alpha"]), older(2, 1, "untagged"), keep(3, 1, "any")],
        # D and E share their push day; E was pushed later (seq), so E is the newest.
        [img("A", "alpha-1,beta-1", age=4, seq=1), img("B", age=3, seq=2),
         img("C", "alpha-2", age=2, seq=3), img("D", "git hash", age=1, seq=4),
         img("E", age=1, seq=5)],
        {"A": 1, "B": 2, "D": 3},
        id="filtering_on_all_images_example_b_all_rule_types"),
    pytest.param(
        [older(1, 14, patterns=["prod*"])],
        [img("A", "prod", age=20), img("B", "prod1", age=15), img("C", "production", age=3),
         img("D", "dev-prod", age=30), img("E", "prod2", age=14)],
        {"A": 1, "B": 1},
        id="tag_pattern_list_prod_star_older_than_14_days"),
]


@pytest.mark.parametrize(("rules", "images", "expected"), EXAMPLES)
def test_documented_example(rules, images, expected):
    assert plan(rules, images, now=NOW) == expected
    # The outcome never depends on the order the images come in.
    assert plan(rules, list(reversed(images)), now=NOW) == expected


SELECTION = [
    pytest.param(keep(1, 1, prefixes=["prod"]), "prod", True, id="prefix_matches_itself"),
    pytest.param(keep(1, 1, prefixes=["prod"]), "prod-1,x", True, id="prefix_on_any_tag"),
    pytest.param(keep(1, 1, prefixes=["prod"]), "", False, id="tagged_rule_skips_untagged"),
    pytest.param(keep(1, 1, prefixes=["a", "b"]), "a1", False, id="every_prefix_must_match"),
    pytest.param(keep(1, 1, patterns=["*test*1*2*3"]), "my-test-1-2-3", True,
                 id="pattern_four_wildcards"),
    pytest.param(keep(1, 1, patterns=["prod*"]), "preprod", False,
                 id="pattern_matches_whole_tag"),
    pytest.param(keep(1, 1, patterns=["v1.*"]), "v1x2", False, id="pattern_dot_is_literal"),
    pytest.param(keep(1, 1, patterns=["*"]), "anything", True, id="pattern_star_alone"),
    pytest.param(keep(1, 1, patterns=["prod*", "*-eu"]), "prod-1,web-eu", True,
                 id="patterns_may_match_different_tags"),
    pytest.param(keep(1, 1, patterns=["a*b"]), "a1,2b", False, id="pattern_never_spans_two_tags"),
    pytest.param(keep(1, 1, prefixes=["b"]), "ab,c", False, id="prefix_starts_a_tag"),
    pytest.param(keep(1, 1, prefixes=["v1.", "v1.2"]), "v1.2.3", True,
                 id="one_tag_may_match_every_prefix"),
    pytest.param(keep(1, 1, "untagged"), "v1", False, id="untagged_skips_tagged"),
    pytest.param(keep(1, 1, "any"), "", True, id="any_takes_untagged"),
]


@pytest.mark.parametrize(("rule", "tags", "selected"), SELECTION)
def test_selection(rule, tags, selected):
    assert selects(rule, img("X", tags)) is selected


def test_since_image_pushed_needs_more_than_n_whole_days():
    rule = older(1, 2, "any")
    images = [img("exactly", age=2), img("just-over", age=2 + 1 / 86400), img("young", age=1)]
    assert plan([rule], images, now=NOW) == {"just-over": 1}


def test_since_image_pulled_uses_last_pull_and_push_when_never_pulled():
    rule = older(1, 7, "any", count_type="sinceImagePulled")
    images = [img("old-pulled-recently", age=30, pulled=1),
              img("old-pulled-long-ago", age=30, pulled=10),
              img("old-never-pulled", age=30), img("new-never-pulled", age=2)]
    assert plan([rule], images, now=NOW) == {"old-pulled-long-ago": 1, "old-never-pulled": 1}


def test_equal_push_times_order_by_seq():
    images = [img("first", age=1, seq=1), img("second", age=1, seq=2)]
    assert plan([keep(1, 1, "any")], images, now=NOW) == {"first": 1}


def test_no_images_no_plan():
    assert plan([keep(1, 1, "any")], [], now=NOW) == {}


# --- properties ----------------------------------------------------------------------------

TAGS = ["prod-1", "prod-2", "beta-1", "beta-2", "dev", "x"]
PREFIXES = ["prod", "beta", "dev", "p", "x"]
PATTERNS = ["prod*", "*-1", "*", "b*a*"]


@st.composite
def rule_sets(draw) -> list[Rule]:
    """A valid policy: unique priorities, at most one untagged rule, ``any`` last."""
    n = draw(st.integers(1, 5))
    priorities = sorted(draw(st.lists(st.integers(1, 50), min_size=n, max_size=n, unique=True)))
    rules, untagged = [], False
    for i, priority in enumerate(priorities):
        options = ["tagged"] + ([] if untagged else ["untagged"]) + (
            ["any"] if i == n - 1 else [])
        status = draw(st.sampled_from(options))
        untagged = untagged or status == "untagged"
        prefixes = patterns = ()
        if status == "tagged":
            prefixes = tuple(draw(st.lists(st.sampled_from(PREFIXES), max_size=2, unique=True)))
            patterns = tuple(draw(st.lists(st.sampled_from(PATTERNS), min_size=not prefixes,
                                           max_size=2, unique=True)))
        count_type = draw(st.sampled_from(["imageCountMoreThan", "sinceImagePushed",
                                           "sinceImagePulled"]))
        unit = None if count_type == "imageCountMoreThan" else "days"
        rules.append(Rule(priority, status, count_type, draw(st.integers(1, 6)), prefixes,
                          patterns, unit))
    return rules


@st.composite
def image_sets(draw) -> list[PlanImage]:
    n = draw(st.integers(0, 25))
    out = []
    for i in range(n):
        tags = ",".join(draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True)))
        pulled = draw(st.none() | st.integers(0, 12))
        out.append(img(f"sha256:{i:04d}", tags, age=draw(st.integers(0, 12)), pulled=pulled,
                       seq=i))
    return draw(st.permutations(out))


def _protected_before(rules: list[Rule], rule: Rule, image: PlanImage) -> bool:
    return any(r.priority < rule.priority and selects(r, image) for r in rules)


@settings(max_examples=150, deadline=None)
@given(rule_sets(), image_sets())
def test_an_image_is_expired_only_by_the_first_rule_that_selects_it(rules, images):
    """No image is claimed by two rules; no lower-priority rule expires an image a
    higher-priority rule's tag selection matched (evaluation rules 2 and 3)."""
    result = plan(rules, images, now=NOW)
    by_priority = {r.priority: r for r in rules}
    for image in images:
        if image.digest in result:
            rule = by_priority[result[image.digest]]
            assert selects(rule, image)
            assert not _protected_before(rules, rule, image)


@settings(max_examples=150, deadline=None)
@given(rule_sets(), image_sets())
def test_image_count_more_than_n_leaves_at_most_n_unprotected(rules, images):
    result = plan(rules, images, now=NOW)
    for rule in rules:
        if rule.count_type != "imageCountMoreThan":
            continue
        kept = [i for i in images if selects(rule, i) and not _protected_before(rules, rule, i)
                and i.digest not in result]
        assert len(kept) <= rule.count_number


@settings(max_examples=150, deadline=None)
@given(rule_sets(), image_sets())
def test_newest_never_expired_before_older_of_same_selection(rules, images):
    """Within what a rule may expire, expiry goes oldest first (evaluation rule 7)."""
    result = plan(rules, images, now=NOW)
    for rule in rules:
        if rule.count_type == "sinceImagePulled":
            continue  # ordered by last pull, not push
        mine = [i for i in images if selects(rule, i) and not _protected_before(rules, rule, i)]
        for newer in mine:
            if result.get(newer.digest) != rule.priority:
                continue
            for other in mine:
                if (other.pushed_at, other.seq) < (newer.pushed_at, newer.seq):
                    assert result.get(other.digest) == rule.priority


@settings(max_examples=150, deadline=None)
@given(rule_sets(), image_sets())
def test_time_rules_only_expire_images_older_than_n_days(rules, images):
    result = plan(rules, images, now=NOW)
    by_priority = {r.priority: r for r in rules}
    for image in images:
        rule = by_priority.get(result.get(image.digest, 0))
        if rule is not None and rule.count_type == "sinceImagePushed":
            assert NOW - image.pushed_at > timedelta(days=rule.count_number)
