"""The pure policy evaluator, one table per documented rule (shared reference §2–§7; IAM User
Guide reference_policies_evaluation-logic, …-cross-account, elements_*, condition_operators,
multi-value-conditions, variables), plus Hypothesis properties of the combination rules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.iam import evaluator as ev
from corral.iam import policy as pol

A, B = "111122223333", "444455556666"
REPO = f"arn:aws:ecr:us-east-1:{A}:repository/app"
OTHER_REPO = f"arn:aws:ecr:us-east-1:{A}:repository/other"
ALICE = ev.Caller(f"arn:aws:iam::{A}:user/alice", A, "User")
ROLE = f"arn:aws:iam::{A}:role/deployer"
SESSION = ev.Caller(f"arn:aws:sts::{A}:assumed-role/deployer/s1", A, "AssumedRole", ROLE)
ROOT = ev.Caller(f"arn:aws:iam::{A}:root", A, "Account")
BOB_B = ev.Caller(f"arn:aws:iam::{B}:user/bob", B, "User")


def doc(*statements, version="2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def allow(action="ecr:BatchGetImage", resource=REPO, **extra):
    """An Allow statement; ``resource=None`` leaves Resource out (repository policies)."""
    s = {"Effect": "Allow", "Action": action, **extra}
    return s if resource is None else {**s, "Resource": resource}


def deny(action="ecr:BatchGetImage", resource=REPO, **extra):
    return {**allow(action, resource, **extra), "Effect": "Deny"}


def named(kind, *statements, version="2012-10-17"):
    return ev.Named("p", pol.parse(doc(*statements, version=version), kind))


def decide(*, identity=(), resource=None, boundary=None, session=None, action="ecr:BatchGetImage",
           arn=REPO, caller=ALICE, context=None, resource_account=None, trust=False):
    req = ev.Request(action, arn, caller, ev.context_of(context or {}), resource_account)
    return ev.evaluate(
        req, [named("identity", s) for s in identity],
        boundary=None if boundary is None else [named("identity", s) for s in boundary],
        session=None if session is None else [named("identity", s) for s in session],
        resource=None if resource is None else named("trust" if trust else "resource", *resource),
        trust=trust,
    ).result


ALLOWED, IMPLICIT, EXPLICIT = ev.ALLOWED, ev.IMPLICIT, ev.EXPLICIT


# --- §2.1 same-account evaluation ------------------------------------------------------------

SAME_ACCOUNT = [
    ("implicit_deny_by_default", {}, IMPLICIT),
    ("identity_allow_grants", {"identity": [allow()]}, ALLOWED),
    ("explicit_deny_beats_allow", {"identity": [allow(), deny()]}, EXPLICIT),
    ("explicit_deny_in_resource_policy_beats_identity_allow",
     {"identity": [allow()], "resource": [deny(Principal="*", resource=None)]}, EXPLICIT),
    ("explicit_deny_in_boundary_beats_allow",
     {"identity": [allow()], "boundary": [allow(), deny()]}, EXPLICIT),
    ("explicit_deny_in_session_policy_beats_allow",
     {"identity": [allow()], "session": [allow(), deny()], "caller": SESSION}, EXPLICIT),
    ("resource_policy_naming_user_grants_alone",
     {"resource": [allow(Principal={"AWS": ALICE.arn}, resource=None)]}, ALLOWED),
    ("resource_policy_naming_account_only_delegates",
     {"resource": [allow(Principal={"AWS": A}, resource=None)]}, IMPLICIT),
    ("resource_policy_naming_account_root_arn_only_delegates",
     {"resource": [allow(Principal={"AWS": f"arn:aws:iam::{A}:root"}, resource=None)]}, IMPLICIT),
    ("resource_policy_naming_account_plus_identity_allow",
     {"identity": [allow()], "resource": [allow(Principal={"AWS": A}, resource=None)]}, ALLOWED),
    ("resource_policy_naming_role_grants_session",
     {"resource": [allow(Principal={"AWS": ROLE}, resource=None)], "caller": SESSION}, ALLOWED),
    ("resource_policy_naming_other_user_does_not_grant",
     {"resource": [allow(Principal={"AWS": f"arn:aws:iam::{A}:user/mallory"},
                         resource=None)]}, IMPLICIT),
    ("account_root_has_full_access", {"caller": ROOT}, ALLOWED),
    ("account_root_is_denied_by_resource_policy_deny",
     {"caller": ROOT, "resource": [deny(Principal="*", resource=None)]}, EXPLICIT),
    ("identity_allow_for_another_resource_does_not_apply",
     {"identity": [allow(resource=OTHER_REPO)]}, IMPLICIT),
]


@pytest.mark.parametrize("case", SAME_ACCOUNT, ids=[c[0] for c in SAME_ACCOUNT])
def test_rule_same_account(case):
    _, kwargs, expected = case
    assert decide(**kwargs) == expected


# --- §2.1 permissions boundaries and session policies ---------------------------------------

BOUNDARIES = [
    ("boundary_caps_identity_allow", {"identity": [allow()], "boundary": [allow("ecr:List*")]},
     IMPLICIT),
    ("boundary_and_identity_both_allow", {"identity": [allow()], "boundary": [allow("ecr:*")]},
     ALLOWED),
    ("boundary_alone_grants_nothing", {"boundary": [allow("*", "*")]}, IMPLICIT),
    ("boundary_does_not_cap_resource_policy_naming_user",
     {"boundary": [allow("ecr:List*")],
      "resource": [allow(Principal={"AWS": ALICE.arn}, resource=None)]}, ALLOWED),
    ("boundary_caps_resource_policy_naming_role",
     {"boundary": [allow("ecr:List*")], "caller": SESSION,
      "resource": [allow(Principal={"AWS": ROLE}, resource=None)]}, IMPLICIT),
    ("empty_boundary_list_caps_everything", {"identity": [allow()], "boundary": []}, IMPLICIT),
    ("notprincipal_deny_always_denies_a_principal_with_a_boundary",
     {"identity": [allow()], "boundary": [allow()],
      "resource": [deny(NotPrincipal={"AWS": ALICE.arn}, resource=None)]}, EXPLICIT),
    ("notprincipal_deny_spares_listed_principal_without_boundary",
     {"identity": [allow()], "resource": [deny(NotPrincipal={"AWS": ALICE.arn}, resource=None)]},
     ALLOWED),
]


@pytest.mark.parametrize("case", BOUNDARIES, ids=[c[0] for c in BOUNDARIES])
def test_rule_permissions_boundary(case):
    _, kwargs, expected = case
    assert decide(**kwargs) == expected


SESSIONS = [
    ("session_policy_narrows_role", {"identity": [allow()], "session": [allow("ecr:List*")]},
     IMPLICIT),
    ("session_policy_and_role_both_allow", {"identity": [allow()], "session": [allow("ecr:*")]},
     ALLOWED),
    ("session_policy_alone_grants_nothing", {"session": [allow("*", "*")]}, IMPLICIT),
    ("no_session_policy_leaves_role_unrestricted", {"identity": [allow()]}, ALLOWED),
    ("session_policy_caps_resource_policy_naming_role",
     {"session": [allow("ecr:List*")],
      "resource": [allow(Principal={"AWS": ROLE}, resource=None)]}, IMPLICIT),
]


@pytest.mark.parametrize("case", SESSIONS, ids=[c[0] for c in SESSIONS])
def test_rule_session_policy(case):
    _, kwargs, expected = case
    assert decide(caller=SESSION, **kwargs) == expected


def test_rule_resource_policy_naming_session_arn_is_not_capped():
    """Reference §7 open question 1, decided for the IAM documentation: a resource policy that
    names the role-session ARN grants on its own; the session policy does not cap it
    (cloud-copilot/iam-simulate decides the other way)."""
    assert decide(caller=SESSION, session=[allow("ecr:List*")],
                  resource=[allow(Principal={"AWS": SESSION.arn}, resource=None)]) == ALLOWED


# --- §2.2 cross account ---------------------------------------------------------------------

CROSS = [
    ("needs_both_sides_identity_only", {"identity": [allow()]}, IMPLICIT),
    ("needs_both_sides_resource_only",
     {"resource": [allow(Principal={"AWS": B}, resource=None)]}, IMPLICIT),
    ("account_named_in_resource_policy_plus_identity_allow",
     {"identity": [allow()], "resource": [allow(Principal={"AWS": B}, resource=None)]}, ALLOWED),
    ("principal_named_in_resource_policy_plus_identity_allow",
     {"identity": [allow()], "resource": [allow(Principal={"AWS": BOB_B.arn}, resource=None)]},
     ALLOWED),
    ("other_account_named_does_not_grant",
     {"identity": [allow()], "resource": [allow(Principal={"AWS": A}, resource=None)]}, IMPLICIT),
    ("boundary_in_trusted_account_caps",
     {"identity": [allow()], "boundary": [allow("ecr:List*")],
      "resource": [allow(Principal={"AWS": B}, resource=None)]}, IMPLICIT),
    ("resource_policy_deny_wins",
     {"identity": [allow()], "resource": [allow(Principal={"AWS": B}, resource=None),
                                          deny(Principal={"AWS": B}, resource=None)]}, EXPLICIT),
]


@pytest.mark.parametrize("case", CROSS, ids=[c[0] for c in CROSS])
def test_rule_cross_account(case):
    _, kwargs, expected = case
    assert decide(caller=BOB_B, resource_account=A, **kwargs) == expected


# --- §2.3 trust policies --------------------------------------------------------------------

TRUST = [
    ("trust_naming_caller_needs_no_identity_permission",
     {"resource": [{"Effect": "Allow", "Principal": {"AWS": ALICE.arn}, "Action": "sts:AssumeRole"}]},
     ALLOWED),
    ("trust_naming_account_needs_identity_permission",
     {"resource": [{"Effect": "Allow", "Principal": {"AWS": A}, "Action": "sts:AssumeRole"}]},
     IMPLICIT),
    ("trust_naming_account_with_identity_permission",
     {"resource": [{"Effect": "Allow", "Principal": {"AWS": A}, "Action": "sts:AssumeRole"}],
      "identity": [allow("sts:AssumeRole", ROLE)]}, ALLOWED),
    ("identity_allow_alone_is_never_enough_for_trust",
     {"identity": [allow("sts:AssumeRole", ROLE)]}, IMPLICIT),
    ("trust_external_id_condition_must_match",
     {"resource": [{"Effect": "Allow", "Principal": {"AWS": ALICE.arn}, "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "x1"}}}],
      "context": {"sts:ExternalId": "nope"}}, IMPLICIT),
    ("trust_service_principal",
     {"resource": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole"}],
      "caller": ev.Caller("ecs-tasks.amazonaws.com", A, "Service", name="ecs-tasks.amazonaws.com")},
     ALLOWED),
]


@pytest.mark.parametrize("case", TRUST, ids=[c[0] for c in TRUST])
def test_rule_trust_policy_must_allow_explicitly(case):
    _, kwargs, expected = case
    assert decide(action="sts:AssumeRole", arn=ROLE, trust=True, **kwargs) == expected


# --- §3 statement elements ------------------------------------------------------------------

ELEMENTS = [
    ("action_names_are_case_insensitive", allow("ECR:batchgetimage"), "ecr:BatchGetImage", REPO,
     ALLOWED),
    ("action_wildcard_star", allow("ecr:Batch*"), "ecr:BatchGetImage", REPO, ALLOWED),
    ("action_wildcard_question_mark", allow("ecr:BatchGetImag?"), "ecr:BatchGetImage", REPO,
     ALLOWED),
    ("action_of_other_service_does_not_match", allow("ecs:*"), "ecr:BatchGetImage", REPO, IMPLICIT),
    ("notaction_allow_grants_everything_else",
     {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "ecr:BatchGetImage", REPO, ALLOWED),
    ("notaction_allow_does_not_grant_listed",
     {"Effect": "Allow", "NotAction": "ecr:*", "Resource": "*"}, "ecr:BatchGetImage", REPO,
     IMPLICIT),
    ("resource_arns_are_case_sensitive", allow(resource=REPO.upper().replace("ARN:AWS:ECR", "arn:aws:ecr")),
     "ecr:BatchGetImage", REPO, IMPLICIT),
    ("resource_wildcard_spans_slashes", allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/*"),
     "ecr:BatchGetImage", f"arn:aws:ecr:us-east-1:{A}:repository/team/app", ALLOWED),
    ("resource_wildcard_per_segment", allow(resource="arn:aws:ecr:*:*:repository/app"),
     "ecr:BatchGetImage", REPO, ALLOWED),
    ("resource_star_matches_wildcard_only_action", allow("ecr:GetAuthorizationToken", "*"),
     "ecr:GetAuthorizationToken", "*", ALLOWED),
    ("resource_arn_does_not_match_wildcard_only_action",
     allow("ecr:GetAuthorizationToken", f"arn:aws:ecr:us-east-1:{A}:repository/*"),
     "ecr:GetAuthorizationToken", "*", IMPLICIT),
    ("notresource_allow_grants_everything_else",
     {"Effect": "Allow", "Action": "ecr:*", "NotResource": OTHER_REPO}, "ecr:BatchGetImage", REPO,
     ALLOWED),
    ("notresource_allow_excludes_listed",
     {"Effect": "Allow", "Action": "ecr:*", "NotResource": REPO}, "ecr:BatchGetImage", REPO,
     IMPLICIT),
]


@pytest.mark.parametrize("case", ELEMENTS, ids=[c[0] for c in ELEMENTS])
def test_rule_statement_elements(case):
    _, statement, action, arn, expected = case
    assert decide(identity=[statement], action=action, arn=arn) == expected


def test_rule_notaction_with_deny_denies_everything_else():
    statements = [allow("*", "*"), {"Effect": "Deny", "NotAction": "ecr:List*", "Resource": "*"}]
    assert decide(identity=statements, action="ecr:BatchGetImage") == EXPLICIT
    assert decide(identity=statements, action="ecr:ListImages") == ALLOWED


def test_rule_statement_as_single_object_and_old_version():
    p = pol.parse(json.dumps({"Statement": allow()}))
    assert p.version == "2008-10-17"
    assert ev.evaluate(ev.Request("ecr:BatchGetImage", REPO, ALICE), [ev.Named("p", p)]).allowed


# --- §4 conditions ---------------------------------------------------------------------------

NOW = "2026-01-15T12:00:00Z"
CTX = {
    "aws:username": "alice", "aws:SourceIp": "10.1.2.3", "aws:CurrentTime": NOW,
    "aws:EpochTime": "1768478400", "aws:SecureTransport": "false",
    "aws:PrincipalArn": ALICE.arn, "aws:ResourceTag/Team": "red",
    "aws:TagKeys": ["env", "team"], "ecs:task-cpu": "256",
    "aws:PrincipalTag/dept": "eng",
}
CONDITIONS = [
    ("StringEquals", {"StringEquals": {"aws:username": "alice"}}, True),
    ("StringEquals_is_case_sensitive", {"StringEquals": {"aws:username": "Alice"}}, False),
    ("StringEquals_values_are_or", {"StringEquals": {"aws:username": ["bob", "alice"]}}, True),
    ("StringNotEquals", {"StringNotEquals": {"aws:username": "bob"}}, True),
    ("StringNotEquals_values_are_nor", {"StringNotEquals": {"aws:username": ["bob", "alice"]}},
     False),
    ("StringEqualsIgnoreCase", {"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, True),
    ("StringNotEqualsIgnoreCase", {"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}, False),
    ("StringLike", {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/al*"}}, True),
    ("StringLike_question_mark", {"StringLike": {"aws:username": "alic?"}}, True),
    ("StringNotLike", {"StringNotLike": {"aws:username": "b*"}}, True),
    ("StringEquals_does_not_glob", {"StringEquals": {"aws:username": "a*"}}, False),
    ("NumericEquals", {"NumericEquals": {"ecs:task-cpu": "256"}}, True),
    ("NumericNotEquals", {"NumericNotEquals": {"ecs:task-cpu": "512"}}, True),
    ("NumericLessThan", {"NumericLessThan": {"ecs:task-cpu": "512"}}, True),
    ("NumericLessThanEquals", {"NumericLessThanEquals": {"ecs:task-cpu": "256"}}, True),
    ("NumericGreaterThan", {"NumericGreaterThan": {"ecs:task-cpu": "256"}}, False),
    ("NumericGreaterThanEquals", {"NumericGreaterThanEquals": {"ecs:task-cpu": "256.0"}}, True),
    ("DateEquals_epoch_vs_iso", {"DateEquals": {"aws:CurrentTime": "1768478400"}}, True),
    ("DateNotEquals", {"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, True),
    ("DateLessThan", {"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}, True),
    ("DateLessThanEquals", {"DateLessThanEquals": {"aws:CurrentTime": NOW}}, True),
    ("DateGreaterThan", {"DateGreaterThan": {"aws:CurrentTime": "2027-01-01"}}, False),
    ("DateGreaterThanEquals", {"DateGreaterThanEquals": {"aws:EpochTime": "1768478400"}}, True),
    ("Bool", {"Bool": {"aws:SecureTransport": "false"}}, True),
    ("Bool_true_does_not_match_false", {"Bool": {"aws:SecureTransport": "true"}}, False),
    ("BinaryEquals", {"BinaryEquals": {"aws:username": "YWxpY2U="}}, False),
    ("IpAddress_cidr", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True),
    ("IpAddress_bare_ip_is_slash_32", {"IpAddress": {"aws:SourceIp": "10.1.2.3"}}, True),
    ("NotIpAddress", {"NotIpAddress": {"aws:SourceIp": "192.168.0.0/16"}}, True),
    ("ArnLike", {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, True),
    ("ArnEquals_globs_like_ArnLike", {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}},
     True),
    ("ArnLike_star_does_not_cross_colon", {"ArnLike": {"aws:PrincipalArn": "arn:aws:*"}}, False),
    ("ArnNotLike", {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, True),
    ("ArnNotEquals", {"ArnNotEquals": {"aws:PrincipalArn": ALICE.arn}}, False),
    ("condition_keys_are_case_insensitive", {"StringEquals": {"AWS:UserName": "alice"}}, True),
    ("tag_keys_in_condition_keys_are_case_insensitive",
     {"StringEquals": {"aws:ResourceTag/team": "red"}}, True),
    ("operators_in_a_block_are_and",
     {"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}, False),
    ("keys_in_an_operator_are_and",
     {"StringEquals": {"aws:username": "alice", "aws:ResourceTag/team": "blue"}}, False),
    ("missing_key_positive_operator_is_false", {"StringEquals": {"aws:SourceVpc": "vpc-1"}}, False),
    ("missing_key_negated_operator_is_true", {"StringNotEquals": {"aws:SourceVpc": "vpc-1"}},
     True),
    ("IfExists_missing_key_is_true", {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, True),
    ("IfExists_present_key_is_tested", {"StringEqualsIfExists": {"aws:username": "bob"}}, False),
    ("Null_true_means_absent", {"Null": {"aws:SourceVpc": "true"}}, True),
    ("Null_false_means_present", {"Null": {"aws:username": "false"}}, True),
    ("Null_true_on_present_key", {"Null": {"aws:username": "true"}}, False),
    ("ForAllValues_all_in_set", {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team", "x"]}},
     True),
    ("ForAllValues_one_outside_set", {"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}},
     False),
    ("ForAllValues_missing_key_is_true", {"ForAllValues:StringEquals": {"aws:RequestTag/x": "y"}},
     True),
    ("ForAnyValue_one_in_set", {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, True),
    ("ForAnyValue_none_in_set", {"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}, False),
    ("ForAnyValue_missing_key_is_false", {"ForAnyValue:StringEquals": {"aws:RequestTag/x": "y"}},
     False),
    ("ForAnyValue_StringNotEquals", {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["env"]}},
     True),
    ("ForAllValues_StringLike", {"ForAllValues:StringLike": {"aws:TagKeys": ["e*", "t*"]}}, True),
]


@pytest.mark.parametrize("case", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_rule_condition_operators(case):
    _, condition, matches = case
    result = decide(identity=[allow(Condition=condition)], context=CTX)
    assert result == (ALLOWED if matches else IMPLICIT)


def test_rule_negated_ifexists_in_deny_still_denies_when_key_missing():
    statements = [allow(), deny(Condition={"StringNotEqualsIfExists": {"aws:SourceVpc": "v"}})]
    assert decide(identity=statements, context={}) == EXPLICIT
    assert decide(identity=statements, context={"aws:SourceVpc": "other"}) == EXPLICIT
    assert decide(identity=statements, context={"aws:SourceVpc": "v"}) == ALLOWED


# --- §5 policy variables ---------------------------------------------------------------------

VARIABLES = [
    ("variable_in_resource", allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:username}}/*"),
     f"arn:aws:ecr:us-east-1:{A}:repository/alice/app", ALLOWED),
    ("variable_in_resource_other_user",
     allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:username}}/*"),
     f"arn:aws:ecr:us-east-1:{A}:repository/bob/app", IMPLICIT),
    ("variable_names_are_case_insensitive",
     allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/${{AWS:UserName}}/*"),
     f"arn:aws:ecr:us-east-1:{A}:repository/alice/app", ALLOWED),
    ("variable_value_is_literal_not_a_glob",
     allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:PrincipalTag/glob}}"),
     f"arn:aws:ecr:us-east-1:{A}:repository/anything", IMPLICIT),
    ("unresolvable_variable_in_resource_matches_nothing",
     allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:PrincipalTag/none}}"),
     f"arn:aws:ecr:us-east-1:{A}:repository/", IMPLICIT),
    ("default_value", allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:PrincipalTag/none, 'shared'}}"),
     f"arn:aws:ecr:us-east-1:{A}:repository/shared", ALLOWED),
    ("escape_star", allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/a${{*}}"),
     f"arn:aws:ecr:us-east-1:{A}:repository/a*", ALLOWED),
    ("variable_in_condition", allow(Condition={"StringEquals": {"aws:PrincipalTag/dept": "${aws:username}"}}),
     REPO, IMPLICIT),
    ("variable_in_condition_matches", allow(Condition={"StringLike": {"aws:PrincipalArn": "*/${aws:username}"}}),
     REPO, ALLOWED),
    ("unresolvable_variable_negated_condition_matches",
     allow(Condition={"StringNotEquals": {"aws:username": "${aws:PrincipalTag/none}"}}), REPO, ALLOWED),
]


@pytest.mark.parametrize("case", VARIABLES, ids=[c[0] for c in VARIABLES])
def test_rule_policy_variables(case):
    _, statement, arn, expected = case
    ctx = {**CTX, "aws:PrincipalTag/glob": "*"}
    assert decide(identity=[statement], arn=arn, context=ctx) == expected


def test_rule_variables_are_literal_in_old_version():
    statement = allow(resource=f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:username}}")
    p = ev.Named("p", pol.parse(doc(statement, version="2008-10-17")))
    req = ev.Request("ecr:BatchGetImage", f"arn:aws:ecr:us-east-1:{A}:repository/alice", ALICE,
                     ev.context_of(CTX))
    assert not ev.evaluate(req, [p]).allowed
    literal = ev.Request("ecr:BatchGetImage",
                         f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:username}}", ALICE)
    assert ev.evaluate(literal, [p]).allowed


# --- messages and matched statements -------------------------------------------------------

def test_decision_names_policy_type_and_matched_statements():
    req = ev.Request("ecr:BatchGetImage", REPO, ALICE)
    d = ev.evaluate(req, [named("identity", allow(Sid="A1"), deny(Sid="D1"))])
    assert d.result == EXPLICIT
    assert d.why("ecr:BatchGetImage") == "with an explicit deny in an identity-based policy"
    assert {m.statement.sid for m in d.matched} == {"A1", "D1"}
    d = ev.evaluate(req, [])
    assert d.why("ecr:BatchGetImage") == (
        "because no identity-based policy allows the ecr:BatchGetImage action")
    d = ev.evaluate(req, [named("identity", allow())], boundary=[])
    assert d.why("ecr:BatchGetImage") == (
        "because no permissions boundary allows the ecr:BatchGetImage action")


# --- Hypothesis properties -------------------------------------------------------------------

_actions = st.sampled_from(["ecr:BatchGetImage", "ecr:*", "ecr:Put*", "*", "ecs:*",
                            "ecr:ListImages"])
_resources = st.sampled_from([REPO, OTHER_REPO, "*", f"arn:aws:ecr:*:{A}:repository/*"])
_conditions = st.sampled_from([None, {"StringEquals": {"aws:username": "alice"}},
                               {"StringNotEquals": {"aws:username": "alice"}},
                               {"Bool": {"aws:SecureTransport": "true"}},
                               {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}])


@st.composite
def _statement(draw, effect=None):
    s = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
         "Action": draw(_actions), "Resource": draw(_resources)}
    cond = draw(_conditions)
    if cond:
        s["Condition"] = cond
    return s


_request = st.tuples(st.sampled_from(["ecr:BatchGetImage", "ecr:PutImage", "ecs:RunTask"]),
                     st.sampled_from([REPO, OTHER_REPO]))


def _decide_statements(statements, action, arn):
    return decide(identity=statements, action=action, arn=arn, context=CTX)


@settings(max_examples=200, deadline=None)
@given(st.lists(_statement(), max_size=6), _statement("Deny"), _request)
def test_property_adding_a_deny_never_turns_deny_into_allow(statements, extra, request):
    before = _decide_statements(statements, *request)
    after = _decide_statements([*statements, extra], *request)
    if before != ALLOWED:
        assert after != ALLOWED


@settings(max_examples=200, deadline=None)
@given(st.lists(_statement(), max_size=6), _statement("Allow"), _request)
def test_property_adding_an_allow_never_turns_allow_into_deny(statements, extra, request):
    before = _decide_statements(statements, *request)
    after = _decide_statements([*statements, extra], *request)
    if before == ALLOWED:
        assert after == ALLOWED


@settings(max_examples=200, deadline=None)
@given(st.lists(_statement(), max_size=6), st.randoms(use_true_random=False), _request)
def test_property_statement_order_never_matters(statements, rnd, request):
    shuffled = list(statements)
    rnd.shuffle(shuffled)
    assert _decide_statements(statements, *request) == _decide_statements(shuffled, *request)


_principals = st.sampled_from(["*", {"AWS": ALICE.arn}, {"AWS": A}, {"AWS": ROLE},
                               {"AWS": SESSION.arn}, {"AWS": B}])


@st.composite
def _resource_statement(draw, effect=None):
    s = draw(_statement(effect))
    s.pop("Resource")
    s["Principal"] = draw(_principals)
    return s


_callers = st.sampled_from([ALICE, SESSION, BOB_B])
_maybe = st.one_of(st.none(), st.lists(_statement(), max_size=3))


def _decide_all(identity, boundary, session, resource, caller, request):
    action, arn = request
    return decide(identity=identity, boundary=boundary,
                  session=session if caller is SESSION else None,
                  resource=resource or None, caller=caller, action=action, arn=arn,
                  context=CTX, resource_account=A)


@settings(max_examples=300, deadline=None)
@given(st.lists(_statement(), max_size=4), _maybe, _maybe, st.lists(_resource_statement(),
                                                                     max_size=3),
       _callers, _request, st.sampled_from(["identity", "boundary", "session", "resource"]),
       st.data())
def test_property_a_deny_anywhere_never_turns_deny_into_allow(identity, boundary, session,
                                                              resource, caller, request, where,
                                                              data):
    """Across every policy type (identity, boundary, session, resource) and same/cross
    account callers: adding a Deny statement never turns a denial into Allow."""
    before = _decide_all(identity, boundary, session, resource, caller, request)
    extra = data.draw(_resource_statement("Deny") if where == "resource" else _statement("Deny"))
    lists = {"identity": identity, "boundary": boundary, "session": session,
             "resource": resource}
    lists[where] = [*(lists[where] or []), extra]
    after = _decide_all(lists["identity"], lists["boundary"], lists["session"],
                        lists["resource"], caller, request)
    if before != ALLOWED:
        assert after != ALLOWED
