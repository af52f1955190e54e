"""Bad input to ELBv2 gets ELBv2's error code and message, and changes nothing: one table,
each case an operation, its parameters (built from a load balancer, listener and target group
made once) and the code and message AWS answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import free_port

ACCT_REGION = "arn:aws:elasticloadbalancing:us-east-1:000000000000"
MISSING_TG = f"{ACCT_REGION}:targetgroup/nope/0123456789abcdef"
MISSING_LB = f"{ACCT_REGION}:loadbalancer/app/nope/0123456789abcdef"
MISSING_LISTENER = f"{ACCT_REGION}:listener/app/nope/0123456789abcdef/0123456789abcdef"


@dataclass
class World:
    lb: str
    listener: str
    tg: str
    other_lb_tg: str
    port: int


@pytest.fixture(scope="module")
def world(server):
    elb = server.client("elbv2")
    lb = elb.create_load_balancer(Name="t-errors")["LoadBalancers"][0]["LoadBalancerArn"]
    other = elb.create_load_balancer(Name="t-errors-other")["LoadBalancers"][0][
        "LoadBalancerArn"]
    tg = elb.create_target_group(Name="t-errors", Protocol="HTTP", Port=80, TargetType="ip",
                                 )["TargetGroups"][0]["TargetGroupArn"]
    tg2 = elb.create_target_group(Name="t-errors-2", Protocol="HTTP", Port=80,
                                  TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
                                   )["Listeners"][0]["ListenerArn"]
    elb.create_rule(ListenerArn=listener, Priority=5, Actions=_fwd(tg),
                    Conditions=[{"Field": "path-pattern", "Values": ["/taken"]}])
    other_listener = elb.create_listener(
        LoadBalancerArn=other, Protocol="HTTP", Port=free_port(),
        DefaultActions=_fwd(tg2))["Listeners"][0]["ListenerArn"]
    yield World(lb, listener, tg, tg2, port)
    elb.delete_listener(ListenerArn=other_listener)
    for arn in (lb, other):
        elb.delete_load_balancer(LoadBalancerArn=arn)
    for arn in (tg, tg2):
        elb.delete_target_group(TargetGroupArn=arn)


def _fwd(tg: str) -> list[dict[str, Any]]:
    return [{"Type": "forward", "TargetGroupArn": tg}]


def _path(*values: str) -> list[dict[str, Any]]:
    return [{"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}]


def _rule(w: World, **over) -> dict[str, Any]:
    return {"ListenerArn": w.listener, "Priority": 100, "Conditions": _path("/x"),
            "Actions": _fwd(w.tg), **over}


def _tg(**over) -> dict[str, Any]:
    return {"Name": "t-bad", "Protocol": "HTTP", "Port": 80, "TargetType": "ip", **over}


def _redirect(**config) -> list[dict[str, Any]]:
    return [{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301", **config}}]


Params = Callable[[World], dict[str, Any]]
CASES: list[tuple[str, str, Params, str, str]] = [
    # load balancers
    ("lb name too long", "create_load_balancer", lambda w: {"Name": "a" * 33},
     "ValidationError", "cannot be longer than '32' characters"),
    ("lb name bad characters", "create_load_balancer", lambda w: {"Name": "a_b"},
     "ValidationError", "alphanumeric characters or hyphens"),
    ("lb name ends with hyphen", "create_load_balancer", lambda w: {"Name": "ab-"},
     "ValidationError", "cannot begin or end with '-'"),
    ("lb name internal-", "create_load_balancer", lambda w: {"Name": "internal-x"},
     "ValidationError", "cannot begin with 'internal-'"),
    ("network lb", "create_load_balancer", lambda w: {"Name": "t-nlb", "Type": "network"},
     "InvalidConfigurationRequest", "Corral serves application load balancers only"),
    ("one subnet", "create_load_balancer", lambda w: {"Name": "t-sub", "Subnets": ["subnet-1"]},
     "ValidationError", "At least two subnets"),
    ("same name other settings", "create_load_balancer",
     lambda w: {"Name": "t-errors", "Scheme": "internal"},
     "DuplicateLoadBalancerName", "A load balancer with the same name 't-errors' exists"),
    ("unknown lb name", "describe_load_balancers", lambda w: {"Names": ["nope", "t-errors"]},
     "LoadBalancerNotFound", "Load balancers '[nope]' not found"),
    ("unknown lb arn", "describe_load_balancers", lambda w: {"LoadBalancerArns": [MISSING_LB]},
     "LoadBalancerNotFound", "One or more load balancers not found"),
    ("malformed lb arn", "describe_load_balancers", lambda w: {"LoadBalancerArns": ["lb-1"]},
     "ValidationError", "'lb-1' is not a valid load balancer ARN"),
    ("page size range", "describe_load_balancers", lambda w: {"PageSize": 401},
     "ValidationError", "PageSize"),
    ("bad marker", "describe_load_balancers", lambda w: {"Marker": "garbage!"},
     "ValidationError", "marker is not valid"),
    ("lb attribute unknown", "modify_load_balancer_attributes",
     lambda w: {"LoadBalancerArn": w.lb, "Attributes": [{"Key": "no.such", "Value": "1"}]},
     "ValidationError", "Load balancer attribute key 'no.such' is not recognized"),
    ("idle timeout range", "modify_load_balancer_attributes",
     lambda w: {"LoadBalancerArn": w.lb,
                "Attributes": [{"Key": "idle_timeout.timeout_seconds", "Value": "4001"}]},
     "ValidationError", "must be 1 to 4000"),
    # listeners
    ("duplicate listener", "create_listener",
     lambda w: {"LoadBalancerArn": w.lb, "Protocol": "HTTP", "Port": w.port,
                "DefaultActions": _fwd(w.tg)},
     "DuplicateListener", "A listener already exists on this port for this load balancer"),
    ("listener tcp", "create_listener",
     lambda w: {"LoadBalancerArn": w.lb, "Protocol": "TCP", "Port": 1,
                "DefaultActions": _fwd(w.tg)},
     "ValidationError", "Listener protocol 'TCP' must be one of 'HTTPS, HTTP'"),
    ("listener https", "create_listener",
     lambda w: {"LoadBalancerArn": w.lb, "Protocol": "HTTPS", "Port": 1,
                "DefaultActions": _fwd(w.tg)},
     "UnsupportedProtocol", "HTTPS"),
    ("listener port range", "create_listener",
     lambda w: {"LoadBalancerArn": w.lb, "Protocol": "HTTP", "Port": 70000,
                "DefaultActions": _fwd(w.tg)}, "ValidationError", "Port"),
    ("listener on unknown lb", "create_listener",
     lambda w: {"LoadBalancerArn": MISSING_LB, "Port": 1, "DefaultActions": _fwd(w.tg)},
     "LoadBalancerNotFound", "One or more load balancers not found"),
    ("forward to unknown tg", "create_listener",
     lambda w: {"LoadBalancerArn": w.lb, "Port": free_port(), "DefaultActions": _fwd(MISSING_TG)},
     "TargetGroupNotFound", f"Target group '{MISSING_TG}' not found"),
    ("tg of another lb", "create_listener",
     lambda w: {"LoadBalancerArn": w.lb, "Port": free_port(),
                "DefaultActions": _fwd(w.other_lb_tg)},
     "TargetGroupAssociationLimit", "cannot be associated with more than one load balancer"),
    ("unknown listener", "describe_listeners", lambda w: {"ListenerArns": [MISSING_LISTENER]},
     "ListenerNotFound", "One or more listeners not found"),
    ("describe listeners nothing", "describe_listeners", lambda w: {},
     "ValidationError", "You must specify either listener ARNs or a load balancer ARN"),
    # rules
    ("priority in use", "create_rule", lambda w: _rule(w, Priority=5),
     "PriorityInUse", "Priority '5' is currently in use"),
    ("priority range", "create_rule", lambda w: _rule(w, Priority=50001),
     "ValidationError", "Priority"),
    ("no conditions", "create_rule", lambda w: _rule(w, Conditions=[]),
     "ValidationError", "A rule must have at least one condition"),
    ("unknown field", "create_rule",
     lambda w: _rule(w, Conditions=[{"Field": "cookie", "Values": ["a"]}]),
     "ValidationError", "Condition field 'cookie' must be one of"),
    ("six wildcards", "create_rule",
     lambda w: _rule(w, Conditions=_path("/a*b*c*", "/d*e*f*")),
     "ValidationError", "A rule can only have '5' wildcards"),
    ("six condition values", "create_rule",
     lambda w: _rule(w, Conditions=_path("/1", "/2", "/3", "/4", "/5", "/6")),
     "ValidationError", "A rule can only have '5' condition values"),
    ("path too long", "create_rule", lambda w: _rule(w, Conditions=_path("/" + "a" * 128)),
     "ValidationError", "must be 1 to 128 characters long"),
    ("two path conditions", "create_rule",
     lambda w: _rule(w, Conditions=_path("/a") + _path("/b")),
     "ValidationError", "A rule can only have one 'path-pattern' condition"),
    ("bad source ip", "create_rule",
     lambda w: _rule(w, Conditions=[{"Field": "source-ip",
                                     "SourceIpConfig": {"Values": ["10.0.0.300/8"]}}]),
     "ValidationError", "is not a valid CIDR block"),
    ("bad method", "create_rule",
     lambda w: _rule(w, Conditions=[{"Field": "http-request-method",
                                     "HttpRequestMethodConfig": {"Values": ["get"]}}]),
     "ValidationError", "HTTP request method 'get' is not valid"),
    ("legacy values on header", "create_rule",
     lambda w: _rule(w, Conditions=[{"Field": "http-header", "Values": ["a"]}]),
     "ValidationError", "must use 'HttpHeaderConfig'"),
    ("two terminal actions", "create_rule",
     lambda w: _rule(w, Actions=_fwd(w.tg) + [{"Type": "fixed-response", "Order": 2,
                                               "FixedResponseConfig": {"StatusCode": "200"}}]),
     "ValidationError", "only one of the action types"),
    ("authenticate action", "create_rule",
     lambda w: _rule(w, Actions=[{"Type": "authenticate-oidc", "AuthenticateOidcConfig": {
         "Issuer": "i", "AuthorizationEndpoint": "a", "TokenEndpoint": "t",
         "UserInfoEndpoint": "u", "ClientId": "c"}}]),
     "InvalidLoadBalancerAction", "is not supported by Corral"),
    ("weight too high", "create_rule",
     lambda w: _rule(w, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
         {"TargetGroupArn": w.tg, "Weight": 1000}]}}]),
     "ValidationError", "Target group weight '1000' must be between 0 and 999"),
    ("forward config entry without arn", "create_rule",
     lambda w: _rule(w, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
         {"Weight": 1}]}}]),
     "ValidationError", "A target group ARN must be specified for each target group"),
    ("regex does not compile", "create_rule",
     lambda w: _rule(w, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {
         "Values": ["/zz"], "RegexValues": ["("]}}]),
     "ValidationError", "regex value '(' is not a valid regular expression"),
    ("header regex does not compile", "create_rule",
     lambda w: _rule(w, Conditions=[{"Field": "http-header", "HttpHeaderConfig": {
         "HttpHeaderName": "X-A", "RegexValues": ["[a-"]}}]),
     "ValidationError", "is not a valid regular expression"),
    ("stickiness duration", "create_rule",
     lambda w: _rule(w, Actions=[{"Type": "forward", "ForwardConfig": {
         "TargetGroups": [{"TargetGroupArn": w.tg}],
         "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 604801}}}]),
     "ValidationError", "stickiness duration must be between 1 and 604800"),
    ("redirect to itself", "create_rule", lambda w: _rule(w, Actions=_redirect()),
     "ValidationError", "it would redirect to itself"),
    ("redirect bad placeholder", "create_rule",
     lambda w: _rule(w, Actions=_redirect(Host="#{query}.example.com")),
     "ValidationError", "can only use the placeholders"),
    ("redirect path", "create_rule", lambda w: _rule(w, Actions=_redirect(Path="x")),
     "ValidationError", "Redirect path 'x' must begin with a '/'"),
    ("redirect status code", "create_rule",
     lambda w: _rule(w, Actions=[{"Type": "redirect", "RedirectConfig": {
         "StatusCode": "HTTP_307", "Host": "x"}}]), "ValidationError", "StatusCode"),
    ("fixed response content type", "create_rule",
     lambda w: _rule(w, Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
         "StatusCode": "200", "ContentType": "image/png"}}]),
     "ValidationError", "Content type 'image/png' must be one of"),
    ("fixed response status", "create_rule",
     lambda w: _rule(w, Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
         "StatusCode": "302"}}]), "ValidationError", "StatusCode"),
    ("rule on unknown listener", "create_rule", lambda w: _rule(w, ListenerArn=MISSING_LISTENER),
     "ListenerNotFound", "One or more listeners not found"),
    ("unknown rule", "delete_rule",
     lambda w: {"RuleArn": MISSING_LISTENER.replace(":listener/", ":listener-rule/")
                + "/0123456789abcdef"}, "RuleNotFound", "One or more rules not found"),
    ("duplicate priorities", "set_rule_priorities",
     lambda w: {"RulePriorities": [{"RuleArn": "x", "Priority": 7},
                                   {"RuleArn": "y", "Priority": 7}]},
     "ValidationError", "Priority '7' was provided multiple times"),
    # target groups
    ("tg name too long", "create_target_group", lambda w: _tg(Name="b" * 33),
     "ValidationError", "Target group name"),
    ("tg duplicate name", "create_target_group", lambda w: _tg(Name="t-errors", Port=81),
     "DuplicateTargetGroupName", "A target group with the same name 't-errors' exists"),
    ("tg lambda", "create_target_group", lambda w: {"Name": "t-l", "TargetType": "lambda"},
     "InvalidConfigurationRequest", "target type 'lambda' is not supported"),
    ("tg tcp", "create_target_group", lambda w: _tg(Protocol="TCP"),
     "ValidationError", "Protocol 'TCP' is not valid"),
    ("tg no port", "create_target_group",
     lambda w: {"Name": "t-np", "Protocol": "HTTP", "TargetType": "ip"},
     "ValidationError", "A protocol and a port must be specified"),
    ("interval range", "create_target_group", lambda w: _tg(HealthCheckIntervalSeconds=301),
     "ValidationError", "HealthCheckIntervalSeconds"),
    ("timeout not below interval", "create_target_group",
     lambda w: _tg(HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=10),
     "ValidationError", "Health check timeout '10' must be smaller than the interval '10'"),
    ("threshold range", "create_target_group", lambda w: _tg(HealthyThresholdCount=11),
     "ValidationError", "HealthyThresholdCount"),
    ("bad matcher", "create_target_group", lambda w: _tg(Matcher={"HttpCode": "200-600"}),
     "ValidationError", "Health check matcher HTTP code '200-600'"),
    ("matcher backwards range", "modify_target_group",
     lambda w: {"TargetGroupArn": w.tg, "Matcher": {"HttpCode": "299-200"}},
     "ValidationError", "Health check matcher HTTP code '299-200'"),
    ("health path", "create_target_group", lambda w: _tg(HealthCheckPath="health"),
     "ValidationError", "Health check path 'health' must begin with a '/'"),
    ("health port", "create_target_group", lambda w: _tg(HealthCheckPort="http"),
     "ValidationError", "Health check port 'http'"),
    ("tg in use", "delete_target_group", lambda w: {"TargetGroupArn": w.tg},
     "ResourceInUse", "is currently in use by a listener or a rule"),
    ("unknown tg", "describe_target_groups", lambda w: {"TargetGroupArns": [MISSING_TG]},
     "TargetGroupNotFound", "One or more target groups not found"),
    ("unknown tg name", "describe_target_groups", lambda w: {"Names": ["nope"]},
     "TargetGroupNotFound", "Target groups '[nope]' not found"),
    ("malformed tg arn", "describe_target_health", lambda w: {"TargetGroupArn": "tg/1"},
     "ValidationError", "'tg/1' is not a valid target group ARN"),
    ("deregistration delay range", "modify_target_group_attributes",
     lambda w: {"TargetGroupArn": w.tg, "Attributes": [
         {"Key": "deregistration_delay.timeout_seconds", "Value": "3601"}]},
     "ValidationError", "must be 0 to 3600"),
    ("slow start range", "modify_target_group_attributes",
     lambda w: {"TargetGroupArn": w.tg, "Attributes": [
         {"Key": "slow_start.duration_seconds", "Value": "10"}]},
     "ValidationError", "must be 0 (off) or 30 to 900"),
    ("algorithm", "modify_target_group_attributes",
     lambda w: {"TargetGroupArn": w.tg, "Attributes": [
         {"Key": "load_balancing.algorithm.type", "Value": "random"}]},
     "ValidationError", "round_robin, least_outstanding_requests or weighted_random"),
    ("tg attribute unknown", "modify_target_group_attributes",
     lambda w: {"TargetGroupArn": w.tg, "Attributes": [{"Key": "idle_timeout.timeout_seconds",
                                                        "Value": "5"}]},
     "ValidationError", "Target group attribute key 'idle_timeout.timeout_seconds' is not "
                        "recognized"),
    # targets
    ("ip target not ipv4", "register_targets",
     lambda w: {"TargetGroupArn": w.tg, "Targets": [{"Id": "i-0123456789abcdef0"}]},
     "InvalidTarget", "The IP address 'i-0123456789abcdef0' is not a valid IPv4 address"),
    ("target port range", "register_targets",
     lambda w: {"TargetGroupArn": w.tg, "Targets": [{"Id": "10.0.0.1", "Port": 65536}]},
     "ValidationError", "Port"),
    ("deregister unknown", "deregister_targets",
     lambda w: {"TargetGroupArn": w.tg, "Targets": [{"Id": "10.0.0.9"}]},
     "InvalidTarget", "The following targets are not registered in target group"),
    # tags
    ("duplicate tag keys", "add_tags",
     lambda w: {"ResourceArns": [w.lb], "Tags": [{"Key": "a", "Value": "1"},
                                                 {"Key": "a", "Value": "2"}]},
     "DuplicateTagKeys", "Tag key 'a' was specified more than once"),
    ("tags on unknown lb", "add_tags",
     lambda w: {"ResourceArns": [MISSING_LB], "Tags": [{"Key": "a", "Value": "1"}]},
     "LoadBalancerNotFound", "One or more load balancers not found"),
]


@pytest.mark.parametrize("name, op, params, code, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_the_elbv2_error(server, world, name, op, params, code, message):
    elb = server.client("elbv2")
    before = _snapshot(elb)
    with pytest.raises(ClientError) as err:
        getattr(elb, op)(**params(world))
    error = err.value.response["Error"]
    assert (error["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]) == \
        (code, 400), error
    assert message in error["Message"]
    assert _snapshot(elb) == before  # nothing half-written


def _snapshot(elb) -> tuple:
    lbs = elb.describe_load_balancers()["LoadBalancers"]
    tgs = elb.describe_target_groups()["TargetGroups"]
    listeners = [elb.describe_listeners(LoadBalancerArn=b["LoadBalancerArn"])["Listeners"]
                 for b in lbs]
    rules = [elb.describe_rules(ListenerArn=x["ListenerArn"])["Rules"]
             for ls in listeners for x in ls]
    attrs = [elb.describe_target_group_attributes(TargetGroupArn=g["TargetGroupArn"])
             ["Attributes"] for g in tgs]
    return (repr(lbs), repr(tgs), repr(listeners), repr(rules), repr(attrs))


def test_instance_targets_must_be_container_instances(server):
    elb = server.client("elbv2")
    tg = elb.create_target_group(Name="t-instances", Protocol="HTTP", Port=80,
                                 TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    try:
        with pytest.raises(ClientError) as err:
            elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "i-0000000000000dead"}])
        assert err.value.response["Error"]["Code"] == "InvalidTarget"
        assert err.value.response["Error"]["Message"] == \
            "The following targets are not valid instances: 'i-0000000000000dead'"
    finally:
        elb.delete_target_group(TargetGroupArn=tg)
