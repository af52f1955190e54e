"""Listener rule matching as ALB evaluates it (ALB guide load-balancer-listeners, "Rule
condition types"; botocore RedirectActionConfig): one table of (conditions, request) ->
matches, then priorities, actions, weights and redirects."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from corral.elb import rules
from corral.elb.rules import Request

TG_A, TG_B = "arn:tg/a", "arn:tg/b"


def req(path: str = "/", **kw) -> Request:
    headers = [(k.lower(), v) for k, v in kw.pop("headers", {}).items()]
    return Request(kw.pop("method", "GET"), path, kw.pop("query", ""), kw.pop("host", "x"),
                   headers, **kw)


def cond(field: str, *values, **config) -> dict:
    return {"Field": field, **({"Values": list(values)} if values else {}), **config}


def matches(conditions: list[dict], request: Request) -> bool:
    rule = rules.compile_rule({"RuleArn": "r", "Priority": "1", "Conditions": conditions,
                               "Actions": [{"Type": "forward", "TargetGroupArn": TG_A}]})
    return rule.matches(request)


CASES = [
    # path-pattern: case-sensitive, * and ?, path only
    ("path-exact", [cond("path-pattern", "/img")], req("/img"), True),
    ("path-star", [cond("path-pattern", "/img/*")], req("/img/a/b.png"), True),
    ("path-star-empty", [cond("path-pattern", "/img*")], req("/img"), True),
    ("path-question", [cond("path-pattern", "/v?/x")], req("/v2/x"), True),
    ("path-question-one-char", [cond("path-pattern", "/v?/x")], req("/v10/x"), False),
    ("path-case-sensitive", [cond("path-pattern", "/API/*")], req("/api/users"), False),
    ("path-ignores-query", [cond("path-pattern", "/a")], req("/a", query="b=1"), True),
    ("path-config-form", [cond("path-pattern", PathPatternConfig={"Values": ["/c/*"]})],
     req("/c/1"), True),
    ("path-values-or", [cond("path-pattern", "/a", "/b")], req("/b"), True),
    ("path-regex", [cond("path-pattern", PathPatternConfig={"RegexValues": [r"^/u/\d+$"]})],
     req("/u/42"), True),
    ("path-dot-literal", [cond("path-pattern", "/a.b")], req("/aXb"), False),
    # host-header: case-insensitive, wildcards, port ignored
    ("host-exact", [cond("host-header", "shop.example.com")], req(host="shop.example.com"),
     True),
    ("host-case-insensitive", [cond("host-header", "Shop.Example.COM")],
     req(host="shop.example.com"), True),
    ("host-wildcard", [cond("host-header", "*.example.com")], req(host="api.example.com"),
     True),
    ("host-port-ignored", [cond("host-header", "api.example.com")],
     req(host="api.example.com:8080"), True),
    ("host-other", [cond("host-header", "*.example.com")], req(host="example.org"), False),
    ("host-config-form", [cond("host-header", HostHeaderConfig={"Values": ["a.*"]})],
     req(host="A.B"), True),
    # http-header: name and values case-insensitive, wildcards
    ("header-match", [cond("http-header", HttpHeaderConfig={
        "HttpHeaderName": "User-Agent", "Values": ["*Mobile*"]})],
     req(headers={"user-agent": "Foo mobile Bar"}), True),
    ("header-absent", [cond("http-header", HttpHeaderConfig={
        "HttpHeaderName": "X-Env", "Values": ["*"]})], req(), False),
    ("header-value-differs", [cond("http-header", HttpHeaderConfig={
        "HttpHeaderName": "X-Env", "Values": ["prod"]})], req(headers={"X-Env": "dev"}), False),
    # query-string: key optional, case-insensitive, wildcards, decoded
    ("query-pair", [cond("query-string", QueryStringConfig={
        "Values": [{"Key": "version", "Value": "v1"}]})], req(query="a=1&version=V1"), True),
    ("query-value-only", [cond("query-string", QueryStringConfig={
        "Values": [{"Value": "*beta*"}]})], req(query="x=my-beta-1"), True),
    ("query-wildcard-key", [cond("query-string", QueryStringConfig={
        "Values": [{"Key": "ver*", "Value": "2"}]})], req(query="version=2"), True),
    ("query-decoded", [cond("query-string", QueryStringConfig={
        "Values": [{"Key": "q", "Value": "a b"}]})], req(query="q=a%20b"), True),
    ("query-missing", [cond("query-string", QueryStringConfig={
        "Values": [{"Key": "version", "Value": "v1"}]})], req(query=""), False),
    # http-request-method: exact, case-sensitive
    ("method-match", [cond("http-request-method", HttpRequestMethodConfig={
        "Values": ["POST", "PUT"]})], req(method="PUT"), True),
    ("method-case", [cond("http-request-method", HttpRequestMethodConfig={
        "Values": ["POST"]})], req(method="post"), False),
    # source-ip: CIDRs against the client address
    ("source-ip-in", [cond("source-ip", SourceIpConfig={"Values": ["10.0.0.0/8"]})],
     req(source_ip="10.1.2.3"), True),
    ("source-ip-out", [cond("source-ip", SourceIpConfig={"Values": ["10.0.0.0/8"]})],
     req(source_ip="192.168.1.1"), False),
    ("source-ip-v6-vs-v4", [cond("source-ip", SourceIpConfig={"Values": ["::/0"]})],
     req(source_ip="10.1.2.3"), False),
    # conditions AND
    ("and-both", [cond("path-pattern", "/api/*"), cond("host-header", "api.*")],
     req("/api/x", host="api.example"), True),
    ("and-one-fails", [cond("path-pattern", "/api/*"), cond("host-header", "api.*")],
     req("/api/x", host="www.example"), False),
    ("no-conditions", [], req("/anything"), True),
]


@pytest.mark.parametrize("conditions,request_,expected",
                         [pytest.param(c, r, e, id=i) for i, c, r, e in CASES])
def test_condition_matching(conditions, request_, expected):
    assert matches(conditions, request_) is expected


def listener_rules() -> list[dict]:
    forward_b = [{"Type": "forward", "TargetGroupArn": TG_B}]
    return [  # deliberately out of order: route() must sort by priority, default last
        {"RuleArn": "default", "Priority": "default", "IsDefault": True,
         "Actions": [{"Type": "forward", "TargetGroupArn": TG_A}]},
        {"RuleArn": "r20", "Priority": "20", "Conditions": [cond("path-pattern", "/api/*")],
         "Actions": forward_b},
        {"RuleArn": "r5", "Priority": "5", "Conditions": [cond("path-pattern", "/api/health")],
         "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {
             "StatusCode": "204"}}]},
    ]


@pytest.mark.parametrize("path,rule", [
    pytest.param("/api/health", "r5", id="lowest-priority-wins"),
    pytest.param("/api/users", "r20", id="second-rule"),
    pytest.param("/other", "default", id="default-last"),
])
def test_rules_are_evaluated_by_priority_with_the_default_last(path, rule):
    action = rules.route(rules.compile_rules(listener_rules()), req(path), random.Random(1))
    assert action is not None and action.rule_arn == rule


def test_fixed_response_defaults():
    action = rules.route(rules.compile_rules(listener_rules()), req("/api/health"),
                         random.Random(1))
    assert action == rules.FixedResponse(204, "text/plain", "", "r5")


def test_weighted_forward_follows_the_weights():
    rule = rules.compile_rules([{"RuleArn": "d", "Priority": "default", "Actions": [{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": TG_A, "Weight": 80}, {"TargetGroupArn": TG_B, "Weight": 20}]}}]}])
    rng = random.Random(7)
    picks = Counter(rules.route(rule, req(), rng).target_group_arn for _ in range(5000))
    assert 0.77 < picks[TG_A] / 5000 < 0.83


def test_weight_zero_group_never_gets_traffic_and_all_zero_is_no_target():
    groups = [(TG_A, 0), (TG_B, 5)]
    rng = random.Random(3)
    assert {rules.pick_weighted(groups, rng) for _ in range(200)} == {TG_B}
    assert rules.pick_weighted([(TG_A, 0)], rng) is None
    rule = rules.compile_rules([{"RuleArn": "d", "Priority": "default", "Actions": [{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": TG_A, "Weight": 0}]}}]}])
    assert isinstance(rules.route(rule, req(), rng), rules.NoTarget)


def test_terminal_action_is_the_last_by_order_after_authentication():
    actions = [{"Type": "forward", "TargetGroupArn": TG_A, "Order": 2},
               {"Type": "authenticate-oidc", "Order": 1}]
    assert rules.terminal_action(actions)["Type"] == "forward"


@pytest.mark.parametrize("config,request_,location", [
    pytest.param({"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
                 req("/a/b", query="x=1", host="shop.example:8080", port=8080),
                 "https://shop.example:443/a/b?x=1", id="to-https-keeps-rest"),
    pytest.param({"Path": "/new/#{path}"}, req("/old"), "http://x:80/new/old",
                 id="path-keyword-without-leading-slash"),
    pytest.param({"Host": "www.#{host}", "Query": "#{query}&src=lb"},
                 req("/", query="a=1", host="example.com"),
                 "http://www.example.com:80/?a=1&src=lb", id="host-and-query-keywords"),
    pytest.param({"Query": ""}, req("/p", query="a=1"), "http://x:80/p", id="query-dropped"),
    pytest.param({"Port": "#{port}", "Path": "/#{host}/#{port}"}, req("/", host="h", port=81),
                 "http://h:81/h/81", id="keywords-in-path"),
])
def test_redirect_location(config, request_, location):
    assert rules.redirect_location(config, request_) == location


def test_redirect_status_codes():
    docs = [{"RuleArn": "d", "Priority": "default", "Actions": [{
        "Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "StatusCode": "HTTP_302"}}]}]
    action = rules.route(rules.compile_rules(docs), req("/"), random.Random(0))
    assert isinstance(action, rules.Redirect) and action.status == 302


def test_a_bad_regex_fails_when_the_rule_is_compiled_not_per_request():
    doc = {"RuleArn": "bad", "Priority": "1", "Actions": [{"Type": "forward",
                                                          "TargetGroupArn": TG_A}],
           "Conditions": [{"Field": "path-pattern",
                           "PathPatternConfig": {"Values": ["/zz"], "RegexValues": ["("]}}]}
    with pytest.raises(re.error):
        rules.compile_rule(doc)


def test_compile_rules_leaves_out_a_bad_rule_and_keeps_the_others():
    bad = {"RuleArn": "bad", "Priority": "1", "Actions": [{"Type": "forward",
                                                          "TargetGroupArn": TG_B}],
           "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["("]}}]}
    reported: list[str] = []
    compiled = rules.compile_rules([bad, *listener_rules()],
                                   on_error=lambda doc, _e: reported.append(doc["RuleArn"]))
    assert reported == ["bad"]
    assert [r.arn for r in compiled] == ["r5", "r20", "default"]


def test_regex_values_alone_match_by_search():
    path = [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": [r"^/v\d+/"]}}]
    assert matches(path, req("/v2/users")) and not matches(path, req("/vx/users"))
