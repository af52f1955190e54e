"""Policy document validation: what IAM refuses as MalformedPolicyDocument, with its reason."""

from __future__ import annotations

import json

import pytest

from corral.iam import policy as pol

GOOD = {"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}


def with_statement(**statement):
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


MALFORMED = [
    ("not_json", "{nope", "identity", "Syntax errors in policy."),
    ("not_an_object", "[1]", "identity", "Syntax errors in policy."),
    ("unknown_version", json.dumps({**GOOD, "Version": "2020-01-01"}), "identity",
     "The policy failed legacy parsing"),
    ("missing_statement", json.dumps({"Version": "2012-10-17"}), "identity",
     "Missing required field Statement"),
    ("bad_effect", with_statement(Effect="Maybe", Action="ecr:*", Resource="*"), "identity",
     "Invalid effect: Maybe"),
    ("missing_action", with_statement(Effect="Allow", Resource="*"), "identity",
     "Policy statement must contain actions."),
    ("missing_resource", with_statement(Effect="Allow", Action="ecr:*"), "identity",
     "Policy statement must contain resources."),
    ("action_without_vendor", with_statement(Effect="Allow", Action="DescribeImages", Resource="*"),
     "identity", "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    ("bad_resource_arn", with_statement(Effect="Allow", Action="ecr:*", Resource="repository/x"),
     "identity", 'Resource repository/x must be in ARN format or "*".'),
    ("principal_in_identity_policy",
     with_statement(Effect="Allow", Action="ecr:*", Resource="*", Principal="*"), "identity",
     "Policy document should not specify a principal."),
    ("invalid_condition_operator",
     with_statement(Effect="Allow", Action="ecr:*", Resource="*",
                    Condition={"StringEqualz": {"aws:username": "a"}}), "identity",
     "Invalid Condition type : StringEqualz"),
    ("null_ifexists_is_not_an_operator",
     with_statement(Effect="Allow", Action="ecr:*", Resource="*",
                    Condition={"NullIfExists": {"aws:username": "true"}}), "identity",
     "Invalid Condition type : NullIfExists"),
    ("bad_set_operator",
     with_statement(Effect="Allow", Action="ecr:*", Resource="*",
                    Condition={"ForSomeValues:StringEquals": {"aws:TagKeys": "a"}}), "identity",
     "Invalid Condition type : ForSomeValues:StringEquals"),
    ("bad_ip_value",
     with_statement(Effect="Allow", Action="ecr:*", Resource="*",
                    Condition={"IpAddress": {"aws:SourceIp": "not-an-ip"}}), "identity",
     "Invalid Condition value for IpAddress: 'not-an-ip'"),
    ("bad_date_value",
     with_statement(Effect="Allow", Action="ecr:*", Resource="*",
                    Condition={"DateLessThan": {"aws:CurrentTime": "tomorrow"}}), "identity",
     "Invalid Condition value for DateLessThan: 'tomorrow'"),
    ("resource_policy_without_principal", with_statement(Effect="Allow", Action="ecr:*"),
     "resource", "Statement is missing required element Principal."),
    ("partial_wildcard_principal",
     with_statement(Effect="Allow", Action="ecr:*", Principal={"AWS": "arn:aws:iam::*:root"}),
     "resource", 'Invalid principal in policy: "AWS":"arn:aws:iam::*:root"'),
    ("notprincipal_in_trust_policy",
     with_statement(Effect="Allow", Action="sts:AssumeRole", NotPrincipal={"AWS": "123456789012"}),
     "trust", "Trust policies cannot contain NotPrincipal."),
    ("unknown_element", with_statement(Effect="Allow", Action="ecr:*", Resource="*", Foo=1),
     "identity", "Syntax errors in policy. Unknown element Foo."),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_policy_reason(case):
    _, text, kind, reason = case
    with pytest.raises(pol.MalformedPolicy) as e:
        pol.parse(text, kind)
    assert e.value.reason == reason


GOOD_DOCS = [
    ("identity", json.dumps(GOOD)),
    ("repository_policy_2008_without_resource", json.dumps({
        "Version": "2008-10-17", "Statement": [{"Sid": "pull", "Effect": "Allow",
                                               "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                                               "Action": ["ecr:BatchGetImage"]}]})),
    ("trust", json.dumps({"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}})),
]


@pytest.mark.parametrize("case", GOOD_DOCS, ids=[c[0] for c in GOOD_DOCS])
def test_valid_policies_parse(case):
    kind, text = case
    kind = "resource" if kind.startswith("repository") else kind
    assert pol.parse(text, kind).statements


def test_size_ignores_whitespace():
    assert pol.size('{ "a" :\n 1 }') == len('{"a":1}')
