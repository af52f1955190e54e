"""ELBv2 against a real server with boto3 and the real aws CLI: load balancers, listeners on
this machine's ports, rules, target groups, attributes, tags, target registration and health,
delete order, and the waiters the API side satisfies (load-balancers-deleted,
target-deregistered; load-balancer-available and target-in-service need the data plane and
are tested with it)."""

from __future__ import annotations

import json
import socket

import pytest
from botocore.exceptions import ClientError

from tests.server import free_port


@pytest.fixture
def elb(server):
    return server.client("elbv2")


@pytest.fixture
def lb(elb, request):
    name = ("t-" + request.node.name.replace("_", "-"))[:32].rstrip("-")
    arn = elb.create_load_balancer(Name=name)["LoadBalancers"][0]["LoadBalancerArn"]
    yield arn
    elb.delete_load_balancer(LoadBalancerArn=arn)


def _tg(elb, name: str, **extra) -> str:
    return elb.create_target_group(Name=name, Protocol="HTTP", Port=8080, TargetType="ip",
                                   **extra)["TargetGroups"][0]["TargetGroupArn"]


def _forward(tg: str) -> list[dict]:
    return [{"Type": "forward", "TargetGroupArn": tg}]


def test_load_balancer_shape_dns_name_and_idempotent_create(elb, lb):
    got = elb.describe_load_balancers(LoadBalancerArns=[lb])["LoadBalancers"][0]
    ident = lb.rsplit("/", 1)[1]
    assert got["DNSName"] == f"{got['LoadBalancerName']}-{ident}.us-east-1.elb.localhost"
    assert got["State"]["Code"] in ("provisioning", "active")  # the data plane makes it active
    assert got["Type"] == "application" and got["Scheme"] == "internet-facing"
    assert [z["ZoneName"] for z in got["AvailabilityZones"]] == ["us-east-1a", "us-east-1b"]
    assert got["SecurityGroups"][0].startswith("sg-") and got["VpcId"].startswith("vpc-")
    again = elb.create_load_balancer(Name=got["LoadBalancerName"])["LoadBalancers"][0]
    assert again["LoadBalancerArn"] == lb
    by_name = elb.describe_load_balancers(Names=[got["LoadBalancerName"]])["LoadBalancers"]
    assert [b["LoadBalancerArn"] for b in by_name] == [lb]


def test_listener_rules_target_groups_and_delete_order(elb, lb):
    api, web = _tg(elb, "t-rules-api"), _tg(elb, "t-rules-web")
    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                                   DefaultActions=_forward(web))["Listeners"][0]
    assert listener["Port"] == port and listener["DefaultActions"][0]["ForwardConfig"] == {
        "TargetGroups": [{"TargetGroupArn": web, "Weight": 1}],
        "TargetGroupStickinessConfig": {"Enabled": False}}
    larn = listener["ListenerArn"]
    r1 = elb.create_rule(ListenerArn=larn, Priority=10, Conditions=[
        {"Field": "path-pattern", "Values": ["/api/*"]}], Actions=_forward(api))["Rules"][0]
    r2 = elb.create_rule(ListenerArn=larn, Priority=20, Conditions=[
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Beta",
                                                      "Values": ["yes"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "418", "ContentType": "text/plain", "MessageBody": "beta"}}])["Rules"][0]
    assert r1["Conditions"][0]["PathPatternConfig"] == {"Values": ["/api/*"]}
    rules = elb.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "default"]
    assert rules[-1]["IsDefault"] and rules[-1]["Actions"][0]["TargetGroupArn"] == web
    # swap the two priorities in one call
    swapped = elb.set_rule_priorities(RulePriorities=[
        {"RuleArn": r1["RuleArn"], "Priority": 20}, {"RuleArn": r2["RuleArn"], "Priority": 10}])
    assert {r["RuleArn"]: r["Priority"] for r in swapped["Rules"]} == {
        r1["RuleArn"]: "20", r2["RuleArn"]: "10"}
    modified = elb.modify_rule(RuleArn=r1["RuleArn"], Conditions=[
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}}])
    assert modified["Rules"][0]["Conditions"][0]["Values"] == ["api.example.com"]
    groups = elb.describe_target_groups(LoadBalancerArn=lb)["TargetGroups"]
    assert {g["TargetGroupArn"] for g in groups} == {api, web}
    assert all(g["LoadBalancerArns"] == [lb] for g in groups)
    with pytest.raises(ClientError) as err:
        elb.delete_target_group(TargetGroupArn=api)
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    # ModifyListener moves the port and the default rule follows the new default actions
    new_port = free_port()
    changed = elb.modify_listener(ListenerArn=larn, Port=new_port, DefaultActions=_forward(api))
    assert changed["Listeners"][0]["Port"] == new_port
    default = elb.describe_rules(ListenerArn=larn)["Rules"][-1]
    assert default["Actions"][0]["TargetGroupArn"] == api
    elb.delete_rule(RuleArn=r1["RuleArn"])
    elb.delete_listener(ListenerArn=larn)  # takes its rules along
    with pytest.raises(ClientError) as err:
        elb.describe_rules(RuleArns=[r2["RuleArn"]])
    assert err.value.response["Error"]["Code"] == "RuleNotFound"
    elb.delete_target_group(TargetGroupArn=api)
    elb.delete_target_group(TargetGroupArn=web)


def test_a_port_taken_by_another_program_is_refused(elb, lb):
    tg = _tg(elb, "t-port-taken")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(ClientError) as err:
            elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                                DefaultActions=_forward(tg))
    assert err.value.response["Error"]["Code"] == "InvalidConfigurationRequest"
    assert f"Port {port} is already in use on this machine" in \
        err.value.response["Error"]["Message"]
    elb.delete_target_group(TargetGroupArn=tg)


def test_attributes_round_trip(elb, lb):
    attrs = {a["Key"]: a["Value"] for a in
             elb.describe_load_balancer_attributes(LoadBalancerArn=lb)["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60"
    out = elb.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "120"}])["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "120"} in out
    tg = _tg(elb, "t-attrs")
    defaults = {a["Key"]: a["Value"] for a in
                elb.describe_target_group_attributes(TargetGroupArn=tg)["Attributes"]}
    assert defaults["deregistration_delay.timeout_seconds"] == "300"
    assert defaults["load_balancing.algorithm.type"] == "round_robin"
    assert defaults["slow_start.duration_seconds"] == "0"
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}])
    now = {a["Key"]: a["Value"] for a in
           elb.describe_target_group_attributes(TargetGroupArn=tg)["Attributes"]}
    assert now["deregistration_delay.timeout_seconds"] == "5"
    assert now["load_balancing.algorithm.type"] == "least_outstanding_requests"
    health = elb.modify_target_group(TargetGroupArn=tg, HealthCheckPath="/health",
                                     Matcher={"HttpCode": "200-299"})["TargetGroups"][0]
    assert (health["HealthCheckPath"], health["Matcher"]) == ("/health", {"HttpCode": "200-299"})
    assert health["HealthCheckIntervalSeconds"] == 30 and health["HealthyThresholdCount"] == 5
    elb.delete_target_group(TargetGroupArn=tg)


def test_tags_on_every_kind(elb, lb):
    tg = _tg(elb, "t-tags", Tags=[{"Key": "team", "Value": "a"}])
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                                   DefaultActions=_forward(tg))["Listeners"][0]["ListenerArn"]
    elb.add_tags(ResourceArns=[lb, tg, listener], Tags=[{"Key": "env", "Value": "dev"}])
    elb.remove_tags(ResourceArns=[tg], TagKeys=["team"])
    got = {d["ResourceArn"]: d["Tags"] for d in
           elb.describe_tags(ResourceArns=[lb, tg, listener])["TagDescriptions"]}
    assert got == {lb: [{"Key": "env", "Value": "dev"}], tg: [{"Key": "env", "Value": "dev"}],
                   listener: [{"Key": "env", "Value": "dev"}]}
    elb.delete_listener(ListenerArn=listener)
    elb.delete_target_group(TargetGroupArn=tg)


def test_target_registration_health_and_draining(elb, lb, server):
    tg = _tg(elb, "t-targets")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": 9001},
                                                     {"Id": "10.220.0.7"}])
    health = {(d["Target"]["Id"], d["Target"]["Port"]): d for d in
              elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}
    assert set(health) == {("127.0.0.1", 9001), ("10.220.0.7", 8080)}
    # not forwarded to by any listener yet: unused / Target.NotInUse
    assert health[("10.220.0.7", 8080)]["TargetHealth"] == {
        "State": "unused", "Reason": "Target.NotInUse",
        "Description": "Target group is not configured to receive traffic from the load "
                       "balancer"}
    assert health[("10.220.0.7", 8080)]["HealthCheckPort"] == "8080"
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                                   DefaultActions=_forward(tg))["Listeners"][0]["ListenerArn"]
    one = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": "10.220.0.7"}])
    state = one["TargetHealthDescriptions"][0]["TargetHealth"]
    # initial until the data plane's first check (if it runs in this server, it may be done)
    assert state["State"] in ("initial", "healthy", "unhealthy")
    if state["State"] == "initial":
        assert state["Reason"] in ("Elb.RegistrationInProgress", "Elb.InitialHealthChecking")
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "10.220.0.7"}])
    drained = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": "10.220.0.7"}])
    assert drained["TargetHealthDescriptions"][0]["TargetHealth"] == {
        "State": "draining", "Reason": "Target.DeregistrationInProgress",
        "Description": "Target deregistration is in progress"}
    # re-registering a draining target brings it back
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.220.0.7"}])
    back = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": "10.220.0.7"}])
    assert back["TargetHealthDescriptions"][0]["TargetHealth"]["State"] != "draining"
    unknown = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": "10.0.0.99"}])
    assert unknown["TargetHealthDescriptions"][0]["TargetHealth"] == {
        "State": "unused", "Reason": "Target.NotRegistered",
        "Description": "Target is not registered to the target group"}
    elb.delete_listener(ListenerArn=listener)
    elb.delete_target_group(TargetGroupArn=tg)


def test_waiters_target_deregistered_and_load_balancers_deleted(elb, server):
    tg = _tg(elb, "t-waiters")
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": 9002}])
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": 9002}])
    done = server.aws("elbv2", "wait", "target-deregistered", "--target-group-arn", tg,
                      "--targets", "Id=127.0.0.1,Port=9002", timeout=60)
    assert done.returncode == 0, done.stderr
    made = server.aws("elbv2", "create-load-balancer", "--name", "t-waiter-lb")
    assert made.returncode == 0, made.stderr
    arn = json.loads(made.stdout)["LoadBalancers"][0]["LoadBalancerArn"]
    assert server.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", arn).returncode == 0
    gone = server.aws("elbv2", "wait", "load-balancers-deleted", "--names", "t-waiter-lb",
                      timeout=60)
    assert gone.returncode == 0, gone.stderr
    elb.delete_target_group(TargetGroupArn=tg)


def test_registering_the_same_target_twice_in_one_call_makes_one_target(elb):
    tg = _tg(elb, "t-twice")
    try:
        elb.register_targets(TargetGroupArn=tg, Targets=[
            {"Id": "10.220.0.8"}, {"Id": "10.220.0.8", "Port": 8080}, {"Id": "10.220.0.8"}])
        described = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        assert [(d["Target"]["Id"], d["Target"]["Port"]) for d in described] == [
            ("10.220.0.8", 8080)]
    finally:
        elb.delete_target_group(TargetGroupArn=tg)


def test_a_condition_with_only_regex_values_is_accepted(elb, lb):
    tg = _tg(elb, "t-regex")
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                                   DefaultActions=_forward(tg))["Listeners"][0]["ListenerArn"]
    try:
        rule = elb.create_rule(ListenerArn=listener, Priority=1, Actions=_forward(tg),
                               Conditions=[{"Field": "path-pattern", "PathPatternConfig": {
                                   "RegexValues": [r"^/v\d+/"]}}])["Rules"][0]
        assert rule["Conditions"][0]["PathPatternConfig"] == {"RegexValues": [r"^/v\d+/"]}
    finally:
        elb.delete_listener(ListenerArn=listener)
        elb.delete_target_group(TargetGroupArn=tg)
