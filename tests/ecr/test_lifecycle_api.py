"""ECR lifecycle policy operations and their execution, with boto3 against a real server:
Put/Get/DeleteLifecyclePolicy, every validation rule with ECR's message, the preview
operations, and `lifecycle/run` (what `corral lifecycle run` calls)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from botocore.exceptions import ClientError

from tests.ecr.lifecycle_helpers import admin, pad, policy, rule
from tests.ecr.push import push_image, push_index

ACCOUNT = "000000000000"
PREFIX = ("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
          "'Lifecycle policy validation failure: ")
KEEP_ONE = policy(rule(1, "any", n=1))


def error_of(call, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return exc.value


@pytest.fixture
def repo(ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name)
    return repo_name


def digests_in(ecr, repo: str) -> set[str]:
    return {d["imageDigest"] for p in ecr.get_paginator("describe_images").paginate(
        repositoryName=repo) for d in p["imageDetails"]}


# --- Put / Get / Delete --------------------------------------------------------------------


def test_put_get_delete_round_trip(ecr, repo):
    text = policy(rule(1, "tagged", patterns=["prod*"], n=3), rule(2, "untagged", n=1))
    out = ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
    assert out == {"registryId": ACCOUNT, "repositoryName": repo, "lifecyclePolicyText": text,
                   "ResponseMetadata": out["ResponseMetadata"]}
    got = ecr.get_lifecycle_policy(repositoryName=repo)
    assert got["lifecyclePolicyText"] == text
    assert "lastEvaluatedAt" not in got  # never evaluated yet
    deleted = ecr.delete_lifecycle_policy(repositoryName=repo)
    assert deleted["lifecyclePolicyText"] == text
    err = error_of(ecr.get_lifecycle_policy, repositoryName=repo)
    assert err.response["Error"]["Code"] == "LifecyclePolicyNotFoundException"


@pytest.mark.parametrize("operation", ["get_lifecycle_policy", "delete_lifecycle_policy"])
def test_no_policy_is_lifecycle_policy_not_found(ecr, repo, operation):
    err = error_of(getattr(ecr, operation), repositoryName=repo)
    assert err.response["Error"]["Code"] == "LifecyclePolicyNotFoundException"
    assert err.response["Error"]["Message"] == (
        f"Lifecycle policy does not exist for the repository with name '{repo}' in the "
        f"registry with id '{ACCOUNT}'")


def test_policy_of_missing_repository(ecr):
    err = error_of(ecr.put_lifecycle_policy, repositoryName="no/such-repo",
                   lifecyclePolicyText=KEEP_ONE)
    assert err.response["Error"]["Code"] == "RepositoryNotFoundException"


def test_deleting_the_repository_deletes_its_policy(ecr, repo):
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=KEEP_ONE)
    ecr.delete_repository(repositoryName=repo)
    ecr.create_repository(repositoryName=repo)
    err = error_of(ecr.get_lifecycle_policy, repositoryName=repo)
    assert err.response["Error"]["Code"] == "LifecyclePolicyNotFoundException"


# --- validation: every rule, with ECR's message --------------------------------------------

SEL = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}
ACT = {"type": "expire"}


def doc(*rules) -> str:
    return json.dumps({"rules": list(rules)})


INVALID = [
    ("not_json", "this is not json", "Could not map policyString into LifecyclePolicy."),
    ("not_an_object", "[1, 2, 3]", "Could not map policyString into LifecyclePolicy."),
    ("missing_rules", '{"rulez": []}', 'object has missing required properties (["rules"])'),
    ("unknown_top_level_property", json.dumps({"rules": [{"rulePriority": 1, "selection": SEL,
                                                          "action": ACT}], "x": 1}),
     'object instance has properties which are not allowed by the schema: (["x"])'),
    ("empty_rules", '{"rules": []}',
     "array is too short: must have at least 1 elements but instance has 0 elements"),
    ("rule_not_an_object", '{"rules": ["rule"]}',
     'instance type (string) does not match any allowed primitive type (allowed: ["object"])'),
    ("rule_missing_properties", doc({"rulePriority": 1}),
     'object has missing required properties (["action","selection"])'),
    ("rule_priority_missing", doc({"selection": SEL, "action": ACT}),
     'object has missing required properties (["rulePriority"])'),
    ("rule_unknown_property", doc({"rulePriority": 1, "selection": SEL, "action": ACT,
                                   "name": "x"}),
     'object instance has properties which are not allowed by the schema: (["name"])'),
    ("rule_priority_not_integer", doc({"rulePriority": "1", "selection": SEL, "action": ACT}),
     'instance type (string) does not match any allowed primitive type (allowed: ["integer"])'),
    ("rule_priority_zero", doc({"rulePriority": 0, "selection": SEL, "action": ACT}),
     "numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
    ("selection_missing_count_number", doc({"rulePriority": 1, "action": ACT, "selection": {
        "tagStatus": "any", "countType": "imageCountMoreThan"}}),
     'object has missing required properties (["countNumber"])'),
    ("action_missing_type", doc({"rulePriority": 1, "selection": SEL, "action": {}}),
     'object has missing required properties (["type"])'),
    ("bad_tag_status", doc(rule(1, "some")),
     'instance value (some) not found in enum :(possible values: ["any","tagged","untagged"])'),
    ("bad_action_type", doc({"rulePriority": 1, "selection": SEL, "action": {"type": "delete"}}),
     'instance value (delete) not found in enum :(possible values: ["expire"])'),
    ("bad_count_unit", doc(rule(1, "any", "sinceImagePushed", countUnit="hours")),
     'instance value (hours) not found in enum :(possible values: ["days"])'),
    ("bad_count_type", doc(rule(1, "any", "imageCountLessThan")),
     "instance failed to match exactly one schema (matched 0 out of 2)"),
    ("count_number_zero", doc(rule(1, "any", n=0)),
     "numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
    ("duplicate_rule_priority", doc(rule(1, "tagged", prefixes=["a"]),
                                    rule(1, "tagged", prefixes=["b"])),
     "rulePriority must be unique; more than one rule has rulePriority 1"),
    ("any_not_highest_priority", doc(rule(1, "any"), rule(2, "tagged", prefixes=["a"])),
     "the rule with tagStatus any (rulePriority 1) must have the highest rulePriority, but "
     "rulePriority 2 is higher"),
    ("tagged_without_prefix_or_pattern", doc(rule(1, "tagged")),
     "the rule with rulePriority 1 selects tagged images and must specify a non-empty "
     "tagPrefixList or tagPatternList"),
    ("untagged_with_tag_prefix_list", doc(rule(1, "untagged", prefixes=["a"])),
     "the rule with rulePriority 1 has tagStatus untagged and cannot specify tagPrefixList; "
     "only tagged rules select by tag"),
    ("any_with_tag_pattern_list", doc(rule(1, "any", patterns=["a*"])),
     "the rule with rulePriority 1 has tagStatus any and cannot specify tagPatternList; "
     "only tagged rules select by tag"),
    ("more_than_four_wildcards", doc(rule(1, "tagged", patterns=["test*1*2*3*4*5*6"])),
     "tagPatternList entry 'test*1*2*3*4*5*6' of the rule with rulePriority 1 has 6 "
     "wildcards; at most 4 are allowed"),
    ("two_untagged_rules", doc(rule(1, "untagged"), rule(2, "untagged", n=3)),
     "only one rule may select untagged images; rules with rulePriority 1 and 2 both do"),
    ("same_tag_prefixes_twice", doc(rule(1, "tagged", prefixes=["prod", "web"]),
                                    rule(2, "tagged", prefixes=["web", "prod"], n=5)),
     "rules with rulePriority 1 and 2 select the same tags; each rule must use a unique set "
     "of tag prefixes"),
    ("count_unit_with_image_count_more_than", doc(rule(1, "any", countUnit="days")),
     "the rule with rulePriority 1 has countType imageCountMoreThan and cannot specify "
     "countUnit"),
    ("since_image_pushed_without_count_unit", doc({"rulePriority": 1, "action": ACT,
                                                   "selection": {"tagStatus": "any",
                                                                 "countType": "sinceImagePushed",
                                                                 "countNumber": 3}}),
     "the rule with rulePriority 1 has countType sinceImagePushed and must specify countUnit "
     "(days)"),
    ("storage_class_unsupported", doc(rule(1, "any", storageClass="archive")),
     'storageClass is not supported: Corral has no archive storage class; supported selection '
     'fields are ["countNumber","countType","countUnit","tagPatternList","tagPrefixList",'
     '"tagStatus"]'),
    ("transition_unsupported", doc({"rulePriority": 1, "selection": SEL,
                                    "action": {"type": "transition"}}),
     "action type transition is not supported: Corral has no archive storage class; use expire"),
    ("target_storage_class_unsupported", doc({"rulePriority": 1, "selection": SEL, "action": {
        "type": "expire", "targetStorageClass": "archive"}}),
     "targetStorageClass is not supported: Corral has no archive storage class"),
    ("since_image_transitioned_unsupported", doc(rule(1, "any", "sinceImageTransitioned")),
     "countType sinceImageTransitioned is not supported: Corral has no archive storage class"),
]


@pytest.mark.parametrize(("text", "detail"), [pytest.param(t, d, id=i) for i, t, d in INVALID])
def test_invalid_policy_is_refused_with_ecrs_message(ecr, repo, text, detail):
    err = error_of(ecr.put_lifecycle_policy, repositoryName=repo, lifecyclePolicyText=pad(text))
    assert err.response["Error"]["Code"] == "InvalidParameterException"
    assert err.response["Error"]["Message"] == f"{PREFIX}{detail}'"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_preview_validates_the_given_text_too(ecr, repo):
    err = error_of(ecr.start_lifecycle_policy_preview, repositoryName=repo,
                   lifecyclePolicyText=pad(doc(rule(1, "any", n=0))))
    assert err.response["Error"]["Code"] == "InvalidParameterException"
    assert err.response["Error"]["Message"].startswith(PREFIX)


VALID = [
    ("four_wildcards_per_pattern", doc(rule(1, "tagged", patterns=["*test*1*2*3",
                                                                   "test*1*2*3*"]))),
    ("all_rule_types", doc(rule(1, "tagged", prefixes=["alpha"]),
                           rule(2, "untagged", "sinceImagePushed", 1), rule(3, "any"))),
    ("non_contiguous_priorities", doc(rule(10, "tagged", prefixes=["a"]),
                                      rule(20, "tagged", patterns=["b*"]))),
    ("since_image_pulled", doc(rule(1, "any", "sinceImagePulled", 30))),
    ("prefixes_and_patterns", doc(rule(1, "tagged", prefixes=["a"], patterns=["*-eu"]))),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in VALID])
def test_valid_policies_are_stored_as_given(ecr, repo, text):
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=pad(text))
    assert ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"] == pad(text)


# --- preview -------------------------------------------------------------------------------


@pytest.fixture
def images(ecr, repo):
    """Five images, oldest first: three tagged release-N, one tagged dev, one untagged."""
    pushed = [push_image(ecr, repo, tag=t, layer_sizes=(300,)) for t in
              ("release-1", "release-2", "dev", None, "release-3")]
    return pushed


def test_preview_lists_what_would_expire_and_deletes_nothing(ecr, repo, images):
    text = policy(rule(1, "tagged", prefixes=["release"], n=1), rule(2, "any", n=1))
    out = ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=text)
    assert out["status"] == "COMPLETE" and out["lifecyclePolicyText"] == text
    got = ecr.get_lifecycle_policy_preview(repositoryName=repo)
    assert got["status"] == "COMPLETE"
    results = {r["imageDigest"]: r for r in got["previewResults"]}
    # release-1 and release-2 by rule 1; dev and the untagged one by rule 2 (release-3 is the
    # newest image of all, kept by both rules).
    assert {d: r["appliedRulePriority"] for d, r in results.items()} == {
        images[0].digest: 1, images[1].digest: 1, images[2].digest: 2, images[3].digest: 2}
    first = results[images[0].digest]
    assert first["imageTags"] == ["release-1"]
    assert first["action"] == {"type": "EXPIRE"}
    assert abs(first["imagePushedAt"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert "imageTags" not in results[images[3].digest]
    assert got["summary"]["expiringImageTotalCount"] == 4
    assert digests_in(ecr, repo) == {i.digest for i in images}  # nothing deleted


def test_preview_filter_image_ids_and_pagination(ecr, repo, images):
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=KEEP_ONE)
    ecr.start_lifecycle_policy_preview(repositoryName=repo)  # the stored policy
    untagged = ecr.get_lifecycle_policy_preview(repositoryName=repo,
                                                filter={"tagStatus": "UNTAGGED"})
    assert [r["imageDigest"] for r in untagged["previewResults"]] == [images[3].digest]
    assert untagged["summary"]["expiringImageTotalCount"] == 4
    tagged = ecr.get_lifecycle_policy_preview(repositoryName=repo, filter={"tagStatus": "TAGGED"})
    assert len(tagged["previewResults"]) == 3
    by_id = ecr.get_lifecycle_policy_preview(repositoryName=repo, imageIds=[
        {"imageTag": "dev"}, {"imageDigest": images[0].digest}])
    assert {r["imageDigest"] for r in by_id["previewResults"]} == {images[0].digest,
                                                                   images[2].digest}
    seen, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.get_lifecycle_policy_preview(repositoryName=repo, maxResults=3, **kwargs)
        seen += [r["imageDigest"] for r in page["previewResults"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == [i.digest for i in images[:4]]  # oldest first, each once


def test_preview_of_stored_policy_needs_one(ecr, repo):
    err = error_of(ecr.start_lifecycle_policy_preview, repositoryName=repo)
    assert err.response["Error"]["Code"] == "LifecyclePolicyNotFoundException"


def test_no_preview_is_preview_not_found(ecr, repo):
    err = error_of(ecr.get_lifecycle_policy_preview, repositoryName=repo)
    assert err.response["Error"]["Code"] == "LifecyclePolicyPreviewNotFoundException"


def test_preview_waiter_completes(ecr, repo, images):
    ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=KEEP_ONE)
    ecr.get_waiter("lifecycle_policy_preview_complete").wait(repositoryName=repo)


def test_index_children_stay_while_their_index_stays(ecr, repo):
    index, children = push_index(ecr, repo, tag="multi")
    text = policy(rule(1, "untagged", n=1))  # would take one of the two untagged children
    ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=text)
    assert ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"] == []


# --- running -------------------------------------------------------------------------------


def test_run_expires_exactly_the_preview_and_audits_it(ecr, server, repo, images):
    text = policy(rule(1, "tagged", prefixes=["release"], n=1), rule(2, "any", n=2))
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
    ecr.start_lifecycle_policy_preview(repositoryName=repo)
    previewed = {r["imageDigest"]: r["appliedRulePriority"] for r in
                 ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]}
    status, out = admin(server, "lifecycle/run", {"repository": repo})
    assert status == 200, out
    assert {e["imageDigest"]: e["appliedRulePriority"] for e in out["expired"]} == previewed
    assert digests_in(ecr, repo) == {i.digest for i in images} - set(previewed)
    assert out["repositories"] == 1 and out["gc"] is not None
    evaluated = ecr.get_lifecycle_policy(repositoryName=repo)["lastEvaluatedAt"]
    assert abs(evaluated - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)

    status, hist = admin(server, "lifecycle/history", {"repository": repo})
    assert status == 200
    events = {e["imageDigest"]: e for e in hist["events"]}
    assert set(events) == set(previewed)
    release1 = events[images[0].digest]
    assert release1["imageTags"] == ["release-1"] and release1["appliedRulePriority"] == 1
    assert release1["actor"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_run_with_now_applies_age_rules(ecr, server, repo, images):
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy(
        rule(1, "tagged", "sinceImagePushed", 7, patterns=["release-*"])))
    status, out = admin(server, "lifecycle/run", {"repository": repo})
    assert status == 200 and out["expired"] == []
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=8)).isoformat()
    status, out = admin(server, "lifecycle/run", {"repository": repo, "now": later})
    assert status == 200
    assert {e["imageDigest"] for e in out["expired"]} == {images[i].digest for i in (0, 1, 4)}


def test_run_errors_are_aws_shaped(server, ecr, repo):
    status, out = admin(server, "lifecycle/run", {"repository": "no/such-repo"})
    assert (status, out["__type"]) == (400, "RepositoryNotFoundException")
    status, out = admin(server, "lifecycle/run", {"repository": repo})
    assert (status, out["__type"]) == (400, "LifecyclePolicyNotFoundException")
    status, out = admin(server, "lifecycle/run", {"now": "yesterday"})
    assert (status, out["__type"]) == (400, "ValidationException")


def test_pushes_during_runs_are_never_lost(ecr, server, repo):
    """Each run plans inside its repository's write transaction: an image is either planned
    with (and, being the newest, kept by a count rule) or pushed after the run."""
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy(
        rule(1, "any", n=3)))
    pushed: list[str] = []

    def pusher():
        for i in range(12):
            pushed.append(push_image(ecr, repo, tag=f"v{i}", layer_sizes=(64,)).digest)

    thread = threading.Thread(target=pusher)
    thread.start()
    expired: set[str] = set()
    while thread.is_alive():
        status, out = admin(server, "lifecycle/run", {"repository": repo})
        assert status == 200
        expired |= {e["imageDigest"] for e in out["expired"]}
    thread.join()
    assert digests_in(ecr, repo) == set(pushed) - expired
    assert pushed[-1] in digests_in(ecr, repo)
