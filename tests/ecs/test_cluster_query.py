"""The cluster query language (reference §4.5): a table of expressions against one instance,
and a table of malformed expressions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corral.ecs.cluster_query import Facts, matches, parse

INSTANCE = Facts(
    attributes={
        "ecs.instance-type": "t2.small",
        "ecs.availability-zone": "us-east-1a",
        "ecs.os-type": "linux",
        "ecs.capability.task-eni": None,  # a capability: present, no value
        "stack": "prod",
        "weight": "10",
    },
    ec2_instance_id="i-abcd1234",
    agent_connected=True,
    agent_version="1.14.6",
    registered_at=datetime(2018, 3, 1, 12, 0, tzinfo=UTC),
    running_tasks_count=1,
    task_groups=frozenset({"service:production", "family:web"}),
)

CASES = [
    # the Developer Guide's examples
    ("attribute:ecs.instance-type == t2.small", True),
    ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", True),
    ("attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
     True),
    ("task:group == service:production", True),
    ("not(task:group == database)", True),
    ("runningTasksCount == 1", True),
    ("agentVersion < 1.14.5", False),
    ("registeredAt < 2018-02-13", False),
    ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", True),
    # operator aliases
    ("attribute:ecs.instance-type equals t2.small", True),
    ("attribute:ecs.instance-type not_equals t2.small", False),
    ("runningTasksCount greater_than 0", True),
    ("runningTasksCount greater_than_equal 2", False),
    ("runningTasksCount less_than 2", True),
    ("runningTasksCount less_than_equal 0", False),
    ("attribute:ecs.instance-type matches t2\\..*", True),
    ("attribute:ecs.instance-type not_matches m5.*", True),
    ("attribute:stack not_in [dev, test]", True),
    ("attribute:stack !in [prod]", False),
    # exists on valued, valueless and missing attributes
    ("attribute:ecs.capability.task-eni exists", True),
    ("attribute:stack exists", True),
    ("attribute:missing exists", False),
    ("attribute:missing !exists", True),
    ("attribute:missing not_exists", True),
    # a missing attribute: positive comparisons fail, their negations hold
    ("attribute:missing == x", False),
    ("attribute:missing != x", True),
    # typed comparisons
    ("attribute:weight > 9", True),  # numbers compare as numbers: 10 > 9
    ("agentVersion >= 1.14.6", True),
    ("agentVersion > 1.9", True),  # 1.14 > 1.9 as versions, not strings
    ("registeredAt > 2018-03-01T11:59:00", True),
    ("agentConnected == true", True),
    ("ec2InstanceId =~ 'i-[0-9a-f]{8}'", True),  # =~ must match the whole value
    ("ec2InstanceId =~ abcd", False),
    # compound expressions, precedence, parentheses, quoting
    ("attribute:stack == prod && runningTasksCount == 0", False),
    ("attribute:stack == prod || runningTasksCount == 0", True),
    ("attribute:stack == dev or attribute:stack == test and runningTasksCount == 1", False),
    ("(attribute:stack == dev or attribute:stack == prod) and runningTasksCount == 1", True),
    ("!(attribute:stack == prod)", False),
    ("not attribute:stack == dev", True),
    ("attribute:stack == 'prod'", True),
    ('attribute:ecs.os-type == "linux"', True),
    ("task:group in [family:web, family:db]", True),
    ("task:group != service:production", False),
]


@pytest.mark.parametrize("expression,expected", CASES, ids=[c[0] for c in CASES])
def test_expression_against_an_instance(expression, expected):
    assert matches(expression, INSTANCE) is expected


def test_an_instance_without_tasks_has_no_group():
    idle = Facts(attributes={}, running_tasks_count=0)
    assert matches("not(task:group == database)", idle)
    assert not matches("task:group exists", idle)


BAD = [
    ("", "empty"),
    ("   ", "empty"),
    ("stack == prod", "not a subject"),
    ("attribute: == x", "not a subject"),
    ("attribute:stack", "ends too early"),
    ("attribute:stack ===", "unexpected character"),
    ("attribute:stack like prod", "not an operator"),
    ("attribute:stack == prod extra", "unexpected"),
    ("(attribute:stack == prod", "ends too early"),
    ("attribute:stack == prod)", "unexpected"),
    ("attribute:stack in prod", "expected '\\['"),
    ("attribute:stack in [a, ]", "expected a value"),
    ("runningTasksCount > many", "not an integer"),
    ("agentVersion < latest", "not a version"),
    ("registeredAt < yesterday", "not a date"),
    ("agentConnected == maybe", "not true or false"),
    ("attribute:stack =~ (", "expected a value"),
    ("attribute:stack =~ '('", "not a valid regular expression"),
    ("attribute:stack == prod and", "ends too early"),
    ("attribute:a == b " + "x" * 2000, "longer than 2000"),
]


@pytest.mark.parametrize("expression,reason", BAD, ids=[b[0][:40] or "blank" for b in BAD])
def test_malformed_expression_is_a_value_error(expression, reason):
    with pytest.raises(ValueError, match=reason):
        parse(expression)
