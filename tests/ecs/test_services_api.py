"""The ECS services API (Create/Update/Delete/Describe/ListServices, service deployments and
revisions) through a real Corral server, with boto3 and the aws CLI.

The scheduler that starts a service's tasks may run beside these tests, so they never wait
for it and never depend on tasks starting: services are created with desiredCount 0, or run
a task definition whose image does not exist (its tasks can only fail to pull). What a test
checks is what the API itself answers and stores; where the scheduler may already have moved
a field on (a rolloutState, DRAINING → INACTIVE) the assertion accepts both.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from contextlib import suppress
from datetime import datetime

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import update

from corral.config import Settings
from corral.store.db import Store
from corral.store.schema import ecs_services

ACCOUNT, REGION = "000000000000", "us-east-1"
MISSING_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/corral-missing/none:1"
TG = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/web/0123456789abcdef"
DEPLOYMENT_ID = re.compile(r"^ecs-svc/\d{19}$")


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _web(**fields) -> dict:
    return {"name": "web", "image": MISSING_IMAGE, "memory": 32,
            "portMappings": [{"containerPort": 80}], **fields}


@pytest.fixture(scope="module")
def ecs(server):
    return server.client("ecs")


@pytest.fixture(scope="module")
def env(ecs):
    """A cluster of the module's own, task definitions (bridge, awsvpc/FARGATE, INACTIVE)
    and one existing service; every service is force-deleted and the cluster deleted
    afterwards."""
    cluster, fam = f"svc-{_uid()}", f"svc-{_uid()}"
    ecs.create_cluster(clusterName=cluster)
    reg = ecs.register_task_definition
    e = {"cluster": cluster, "family": fam,
         "td": reg(family=fam, containerDefinitions=[_web()])["taskDefinition"],
         "fargate": reg(family=f"{fam}-f", networkMode="awsvpc", cpu="256", memory="512",
                        requiresCompatibilities=["FARGATE"],
                        containerDefinitions=[_web()])["taskDefinition"]}
    gone = reg(family=f"{fam}-gone", containerDefinitions=[_web()])["taskDefinition"]
    ecs.deregister_task_definition(taskDefinition=gone["taskDefinitionArn"])
    e["inactive"] = gone
    ecs.create_service(cluster=cluster, serviceName="existing", desiredCount=0,
                       taskDefinition=e["td"]["taskDefinitionArn"])
    yield e
    _clean(ecs, cluster)


def _clean(ecs, cluster: str) -> None:
    token = None
    while True:
        page = ecs.list_services(cluster=cluster, maxResults=100,
                                 **({"nextToken": token} if token else {}))
        for arn in page["serviceArns"]:
            ecs.delete_service(cluster=cluster, service=arn, force=True)
        token = page.get("nextToken")
        if not token:
            break
    with suppress(ClientError):  # draining services may still hold it for a moment
        ecs.delete_cluster(cluster=cluster)


@pytest.fixture
def store(server):
    s = Store(Settings(data_dir=server.data_dir).db_url)
    yield s
    s.close()


def create(ecs, env, name=None, **extra) -> dict:
    extra.setdefault("desiredCount", 0)
    extra.setdefault("taskDefinition", env["td"]["taskDefinitionArn"])
    return ecs.create_service(cluster=env["cluster"], serviceName=name or f"s-{_uid()}",
                              **extra)["service"]


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    e = err.value.response["Error"]
    return e["Code"], e["Message"]


# --- create -------------------------------------------------------------------------------

def test_create_returns_the_service_shape_with_defaults(ecs, env):
    s = create(ecs, env, "shape")
    assert s["serviceArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{env['cluster']}/shape"
    assert s["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{env['cluster']}"
    assert (s["status"], s["desiredCount"], s["runningCount"], s["pendingCount"]) == \
        ("ACTIVE", 0, 0, 0)
    assert (s["launchType"], s["schedulingStrategy"], s["propagateTags"]) == \
        ("EC2", "REPLICA", "NONE")
    assert s["taskDefinition"] == env["td"]["taskDefinitionArn"]
    assert s["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        "maximumPercent": 200, "minimumHealthyPercent": 100}
    assert s["deploymentController"] == {"type": "ECS"}
    assert s["createdBy"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert isinstance(s["createdAt"], datetime)
    assert (s["events"], s["loadBalancers"], s["placementConstraints"]) == ([], [], [])
    assert (s["enableECSManagedTags"], s["enableExecuteCommand"]) == (False, False)
    assert "x-corral" not in s and "healthCheckGracePeriodSeconds" not in s


def test_create_makes_one_primary_deployment_in_progress(ecs, env):
    s = create(ecs, env)
    [d] = s["deployments"]
    assert DEPLOYMENT_ID.match(d["id"])
    assert (d["status"], d["desiredCount"], d["pendingCount"], d["runningCount"],
            d["failedTasks"]) == ("PRIMARY", 0, 0, 0, 0)
    assert (d["rolloutState"], d["rolloutStateReason"]) == \
        ("IN_PROGRESS", f"ECS deployment {d['id']} in progress.")
    assert d["taskDefinition"] == env["td"]["taskDefinitionArn"]
    assert d["launchType"] == "EC2" and "x-breaker" not in d
    assert d["createdAt"] == d["updatedAt"]


def test_daemon_service_defaults_to_one_task_and_100_0(ecs, env):
    s = ecs.create_service(cluster=env["cluster"], serviceName=f"d-{_uid()}",
                           taskDefinition=env["td"]["taskDefinitionArn"],
                           schedulingStrategy="DAEMON")["service"]
    assert (s["schedulingStrategy"], s["desiredCount"]) == ("DAEMON", 1)
    assert (s["deploymentConfiguration"]["maximumPercent"],
            s["deploymentConfiguration"]["minimumHealthyPercent"]) == (100, 0)
    ecs.delete_service(cluster=env["cluster"], service=s["serviceName"], force=True)


def test_fargate_service_keeps_network_and_platform(ecs, env):
    net = {"awsvpcConfiguration": {"subnets": ["subnet-0123"], "assignPublicIp": "DISABLED"}}
    s = create(ecs, env, launchType="FARGATE", networkConfiguration=net,
               taskDefinition=env["fargate"]["taskDefinitionArn"])
    assert (s["launchType"], s["platformVersion"], s["platformFamily"]) == \
        ("FARGATE", "LATEST", "Linux")
    d = s["deployments"][0]
    assert (d["platformVersion"], d["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
            ) == ("1.4.0", ["subnet-0123"])


@pytest.fixture(scope="module")
def groups(server):
    """Target groups of both types, one forwarded to by a load balancer's listener, one not."""
    elb = server.client("elbv2")
    lb = elb.create_load_balancer(Name=f"svc-{_uid()}")["LoadBalancers"][0]["LoadBalancerArn"]
    made = {key: elb.create_target_group(Name=f"svc-{key}-{_uid()}", Protocol="HTTP", Port=80,
                                         VpcId="vpc-1", TargetType=kind,
                                         )["TargetGroups"][0]["TargetGroupArn"]
            for key, kind in (("instance", "instance"), ("ip", "ip"), ("lonely", "instance"))}
    with socket.socket() as s:  # a free port for the listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": made["instance"], "Weight": 1},
            {"TargetGroupArn": made["ip"], "Weight": 1}]}}])["Listeners"][0]["ListenerArn"]
    yield made
    elb.delete_listener(ListenerArn=listener)
    elb.delete_load_balancer(LoadBalancerArn=lb)
    for arn in made.values():
        elb.delete_target_group(TargetGroupArn=arn)


def test_load_balancer_service_stores_target_group_and_grace_period(ecs, env, groups):
    lb = {"targetGroupArn": groups["instance"], "containerName": "web", "containerPort": 80}
    s = create(ecs, env, loadBalancers=[lb], healthCheckGracePeriodSeconds=30)
    assert s["loadBalancers"] == [lb]
    assert s["healthCheckGracePeriodSeconds"] == 30


def test_target_groups_must_exist_have_a_load_balancer_and_fit_the_network_mode(ecs, env,
                                                                                groups):
    def lbs(arn: str) -> list[dict]:
        return [{"targetGroupArn": arn, "containerName": "web", "containerPort": 80}]

    assert error_of(ecs.create_service, cluster=env["cluster"], serviceName=f"b-{_uid()}",
                    desiredCount=0, taskDefinition=env["td"]["taskDefinitionArn"],
                    loadBalancers=lbs(TG)) == (
        "InvalidParameterException",
        f"The target group with targetGroupArn {TG} does not exist.")
    assert error_of(ecs.create_service, cluster=env["cluster"], serviceName=f"b-{_uid()}",
                    desiredCount=0, taskDefinition=env["td"]["taskDefinitionArn"],
                    loadBalancers=lbs(groups["lonely"])) == (
        "InvalidParameterException", f"The target group with targetGroupArn {groups['lonely']} "
        "does not have an associated load balancer.")
    assert error_of(ecs.create_service, cluster=env["cluster"], serviceName=f"b-{_uid()}",
                    desiredCount=0, taskDefinition=env["td"]["taskDefinitionArn"],
                    loadBalancers=lbs(groups["ip"])) == (
        "InvalidParameterException", f"The provided target group {groups['ip']} has target "
        "type ip, which is incompatible with the bridge network mode specified in the task "
        "definition.")


def test_same_client_token_is_an_idempotent_retry(ecs, env):
    name, token = f"i-{_uid()}", str(uuid.uuid4())
    first = create(ecs, env, name, clientToken=token)
    again = create(ecs, env, name, clientToken=token)
    assert again["deployments"][0]["id"] == first["deployments"][0]["id"]
    assert error_of(ecs.create_service, cluster=env["cluster"], serviceName=name,
                    desiredCount=0, taskDefinition=env["td"]["taskDefinitionArn"],
                    clientToken=str(uuid.uuid4())) == \
        ("InvalidParameterException", "Creation of service was not idempotent.")


# --- update -------------------------------------------------------------------------------

def test_new_task_definition_makes_a_new_primary_with_zero_desired(ecs, env):
    """Reference §3.3 [REAL]: right after UpdateService the new PRIMARY shows desiredCount
    0, the old deployment turns ACTIVE and keeps its rolloutState."""
    s = create(ecs, env)
    old = s["deployments"][0]
    rev2 = ecs.register_task_definition(family=env["family"],
                                        containerDefinitions=[_web()])["taskDefinition"]
    u = ecs.update_service(cluster=env["cluster"], service=s["serviceName"],
                           taskDefinition=rev2["taskDefinitionArn"])["service"]
    new, previous = u["deployments"]
    assert u["taskDefinition"] == rev2["taskDefinitionArn"]
    assert DEPLOYMENT_ID.match(new["id"]) and new["id"] != old["id"]
    assert (new["status"], new["desiredCount"], new["taskDefinition"], new["rolloutState"]) \
        == ("PRIMARY", 0, rev2["taskDefinitionArn"], "IN_PROGRESS")
    assert (previous["id"], previous["status"], previous["taskDefinition"]) == \
        (old["id"], "ACTIVE", env["td"]["taskDefinitionArn"])
    assert previous["rolloutState"] in ("IN_PROGRESS", "COMPLETED")


def test_desired_count_only_change_keeps_the_deployment(ecs, env):
    s = create(ecs, env)
    u = ecs.update_service(cluster=env["cluster"], service=s["serviceArn"],
                           desiredCount=2)["service"]
    [d] = [d for d in u["deployments"] if d["status"] == "PRIMARY"]
    assert (u["desiredCount"], d["id"], d["desiredCount"]) == \
        (2, s["deployments"][0]["id"], 2)
    assert error_of(ecs.delete_service, cluster=env["cluster"], service=s["serviceName"]) == \
        ("InvalidParameterException",
         "The service cannot be stopped while it is scaled above 0.")
    gone = ecs.delete_service(cluster=env["cluster"], service=s["serviceName"],
                              force=True)["service"]
    assert (gone["status"], gone["desiredCount"]) == ("DRAINING", 0)


def test_a_service_scales_on_a_deleted_task_definition(ecs, env):
    """AWS: services on a deleted revision keep running and can still scale."""
    arn = ecs.register_task_definition(family=f"{env['family']}-del",
                                       containerDefinitions=[_web()])["taskDefinition"][
        "taskDefinitionArn"]
    s = create(ecs, env, taskDefinition=arn)
    ecs.deregister_task_definition(taskDefinition=arn)
    ecs.delete_task_definitions(taskDefinitions=[arn])
    u = ecs.update_service(cluster=env["cluster"], service=s["serviceArn"],
                           desiredCount=1)["service"]
    assert (u["desiredCount"], u["taskDefinition"]) == (1, arn)
    ecs.delete_service(cluster=env["cluster"], service=s["serviceArn"], force=True)


def test_force_new_deployment_and_settings(ecs, env):
    s = create(ecs, env)
    u = ecs.update_service(
        cluster=env["cluster"], service=s["serviceName"], forceNewDeployment=True,
        deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50,
                                 "deploymentCircuitBreaker": {"enable": True,
                                                              "rollback": True}},
        propagateTags="SERVICE", enableExecuteCommand=True)["service"]
    assert [d["status"] for d in u["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert u["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 150, "minimumHealthyPercent": 50}
    assert (u["propagateTags"], u["enableExecuteCommand"]) == ("SERVICE", True)


def test_service_deployments_and_revisions_follow_the_history(ecs, env):
    s = create(ecs, env)
    u = ecs.update_service(cluster=env["cluster"], service=s["serviceName"],
                           forceNewDeployment=True)["service"]
    new_id, old_id = (d["id"] for d in u["deployments"])
    listed = ecs.list_service_deployments(cluster=env["cluster"],
                                          service=s["serviceName"])["serviceDeployments"]
    digits = [b["serviceDeploymentArn"].rsplit("/", 1)[1] for b in listed]
    assert digits == [new_id.split("/")[1], old_id.split("/")[1]]  # newest first
    prefix = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{env['cluster']}/"
    assert listed[0]["serviceDeploymentArn"] == f"{prefix}{s['serviceName']}/{digits[0]}"
    assert listed[0]["status"] == "IN_PROGRESS"
    assert listed[1]["status"] in ("STOPPED", "SUCCESSFUL")
    full = ecs.describe_service_deployments(
        serviceDeploymentArns=[listed[0]["serviceDeploymentArn"], f"{prefix}x/1"])
    [sd] = full["serviceDeployments"]
    assert sd["targetServiceRevision"]["arn"] == listed[0]["targetServiceRevisionArn"]
    assert sd["sourceServiceRevisions"][0]["arn"].endswith(digits[1])
    assert sd["deploymentCircuitBreaker"]["status"] == "DISABLED"
    assert full["failures"] == [{"arn": f"{prefix}x/1", "reason": "MISSING"}]
    [rev] = ecs.describe_service_revisions(
        serviceRevisionArns=[sd["targetServiceRevision"]["arn"]])["serviceRevisions"]
    assert (rev["taskDefinition"], rev["launchType"], rev["containerImages"]) == (
        env["td"]["taskDefinitionArn"], "EC2", [{"containerName": "web",
                                                 "image": MISSING_IMAGE}])


# --- describe, list, delete ---------------------------------------------------------------

def test_describe_answers_missing_for_unknown_services(ecs, env):
    s = create(ecs, env)
    other = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/elsewhere/{s['serviceName']}"
    out = ecs.describe_services(cluster=env["cluster"],
                                services=[s["serviceName"], s["serviceArn"], "nope", other])
    assert [x["serviceArn"] for x in out["services"]] == [s["serviceArn"]] * 2
    assert out["failures"] == [
        {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{env['cluster']}/nope",
         "reason": "MISSING"},
        {"arn": other, "reason": "MISSING"}]


def test_deleted_service_is_draining_described_and_not_listed(ecs, env, store):
    s = create(ecs, env)
    gone = ecs.delete_service(cluster=env["cluster"], service=s["serviceName"])["service"]
    assert (gone["status"], gone["desiredCount"]) == ("DRAINING", 0)
    [seen] = ecs.describe_services(cluster=env["cluster"],
                                   services=[s["serviceName"]])["services"]
    assert seen["status"] in ("DRAINING", "INACTIVE")  # the scheduler finishes the drain
    assert s["serviceArn"] not in ecs.list_services(cluster=env["cluster"],
                                                    maxResults=100)["serviceArns"]
    assert error_of(ecs.update_service, cluster=env["cluster"], service=s["serviceName"],
                    desiredCount=1) == ("ServiceNotActiveException", "Service was not ACTIVE.")
    with store.transaction() as db:  # what the scheduler does once no task is left
        db.execute(update(ecs_services).where(ecs_services.c.name == s["serviceName"])
                   .values(status="INACTIVE", doc={**_raw(store, s), "status": "INACTIVE"}))
    again = create(ecs, env, s["serviceName"])
    assert again["status"] == "ACTIVE"
    assert again["deployments"][0]["id"] != s["deployments"][0]["id"]


def _raw(store, service: dict) -> dict:
    with store.transaction(write=False) as db:
        return db.execute(ecs_services.select().where(
            ecs_services.c.name == service["serviceName"])).first().doc


def test_list_pages_and_filters(ecs, server):
    cluster = f"list-{_uid()}"
    ecs.create_cluster(clusterName=cluster)
    try:
        fam = f"l-{_uid()}"
        td = ecs.register_task_definition(family=fam, containerDefinitions=[_web()])
        arn = td["taskDefinition"]["taskDefinitionArn"]
        made = sorted(ecs.create_service(cluster=cluster, serviceName=f"s{i}", desiredCount=0,
                                         taskDefinition=arn)["service"]["serviceArn"]
                      for i in range(3))
        first = ecs.list_services(cluster=cluster, maxResults=2)
        rest = ecs.list_services(cluster=cluster, nextToken=first["nextToken"])
        assert first["serviceArns"] + rest["serviceArns"] == made
        assert "nextToken" not in rest
        assert ecs.list_services(cluster=cluster, launchType="FARGATE")["serviceArns"] == []
        assert ecs.list_services(cluster=cluster, schedulingStrategy="REPLICA",
                                 launchType="EC2")["serviceArns"] == made
        c = ecs.describe_clusters(clusters=[cluster], include=["STATISTICS"])["clusters"][0]
        assert c["activeServicesCount"] == 3
        assert {"name": "activeEC2ServiceCount", "value": "3"} in c["statistics"]
        assert error_of(ecs.delete_cluster, cluster=cluster) == (
            "ClusterContainsServicesException",
            "The Cluster cannot be deleted while Services are active.")
    finally:
        _clean(ecs, cluster)


def test_tags_on_services(ecs, env):
    s = create(ecs, env, tags=[{"key": "team", "value": "web"}])
    arn = s["serviceArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "dev"}])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "env", "value": "dev"}, {"key": "team", "value": "web"}]
    ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
    [seen] = ecs.describe_services(cluster=env["cluster"], services=[arn],
                                   include=["TAGS"])["services"]
    assert seen["tags"] == [{"key": "env", "value": "dev"}]
    [plain] = ecs.describe_services(cluster=env["cluster"], services=[arn])["services"]
    assert "tags" not in plain


def test_list_services_by_namespace_without_cloud_map(ecs):
    assert error_of(ecs.list_services_by_namespace, namespace="nowhere") == \
        ("NamespaceNotFoundException", "Namespace not found.")


def test_aws_cli_create_update_and_describe(server, env):
    name = f"cli-{_uid()}"
    out = server.aws("ecs", "create-service", "--cluster", env["cluster"], "--service-name",
                     name, "--task-definition", env["td"]["taskDefinitionArn"],
                     "--desired-count", "0")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["service"]["deployments"][0]["status"] == "PRIMARY"
    out = server.aws("ecs", "update-service", "--cluster", env["cluster"], "--service", name,
                     "--force-new-deployment")
    assert out.returncode == 0, out.stderr
    out = server.aws("ecs", "describe-services", "--cluster", env["cluster"], "--services",
                     name, "missing")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert [d["status"] for d in body["services"][0]["deployments"]][0] == "PRIMARY"
    assert body["failures"][0]["reason"] == "MISSING"
    out = server.aws("ecs", "update-service", "--cluster", env["cluster"], "--service",
                     "missing", "--desired-count", "1")
    assert out.returncode != 0 and "ServiceNotFoundException" in out.stderr


# --- bad input ----------------------------------------------------------------------------

def _lb(**over) -> list[dict]:
    return [{"targetGroupArn": TG, "containerName": "web", "containerPort": 80, **over}]


AWSVPC = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
# id -> (operation, parameters given the env, expected code, expected message)
INVALID = {
    "unknown-cluster": ("create", lambda e: {"cluster": "no-such-cluster"},
                        "ClusterNotFoundException", "Cluster not found."),
    "inactive-task-definition": (
        "create", lambda e: {"taskDefinition": e["inactive"]["taskDefinitionArn"]},
        "ClientException", "TaskDefinition is inactive"),
    "unknown-task-definition": ("create", lambda e: {"taskDefinition": "nope:7"},
                                "ClientException", "TaskDefinition not found."),
    "bad-name": ("create", lambda e: {"serviceName": "bad name!"}, "InvalidParameterException",
                 "Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, "
                 "hyphens, and underscores are allowed."),
    "duplicate-name": ("create", lambda e: {"serviceName": "existing"},
                       "InvalidParameterException", "Creation of service was not idempotent."),
    "max-percent-zero": (
        "create", lambda e: {"deploymentConfiguration": {"maximumPercent": 0}},
        "InvalidParameterException", "maximumPercent must be greater than 0."),
    "min-percent-above-100": (
        "create", lambda e: {"deploymentConfiguration": {"minimumHealthyPercent": 150}},
        "InvalidParameterException", "minimumHealthyPercent must be between 0 and 100."),
    "max-below-min": (
        "create", lambda e: {"deploymentConfiguration": {"maximumPercent": 50}},
        "InvalidParameterException",
        "maximumPercent (50) must be greater than or equal to minimumHealthyPercent (100)."),
    "daemon-max-above-100": (
        "create", lambda e: {"schedulingStrategy": "DAEMON", "desiredCount": None,
                             "deploymentConfiguration": {"maximumPercent": 200}},
        "InvalidParameterException",
        "The daemon scheduling strategy does not support values above 100 for maximumPercent "
        "on a deployment configuration. Change the maximumPercent value to 100, and try "
        "again"),
    "daemon-with-desired-count": (
        "create", lambda e: {"schedulingStrategy": "DAEMON", "desiredCount": 1},
        "InvalidParameterException",
        "The daemon scheduling strategy does not support a desired count for services."),
    "replica-without-desired-count": (
        "create", lambda e: {"desiredCount": None}, "InvalidParameterException",
        "desiredCount is required for services that use the REPLICA scheduling strategy."),
    "negative-desired-count": ("create", lambda e: {"desiredCount": -1},
                               "InvalidParameterException",
                               "desiredCount must be greater than or equal to 0."),
    "lb-unknown-container": ("create", lambda e: {"loadBalancers": _lb(containerName="db")},
                             "InvalidParameterException",
                             "The container db does not exist in the task definition."),
    "lb-unknown-port": ("create", lambda e: {"loadBalancers": _lb(containerPort=8080)},
                        "InvalidParameterException",
                        "The container web did not have a container port 8080 defined."),
    "lb-without-target-group": (
        "create", lambda e: {"loadBalancers": _lb(targetGroupArn=None)},
        "InvalidParameterException",
        "A load balancer must name a targetGroupArn or a loadBalancerName."),
    "grace-without-lb": (
        "create", lambda e: {"healthCheckGracePeriodSeconds": 30}, "InvalidParameterException",
        "Health check grace period is only valid for services configured to use load "
        "balancers"),
    "role-without-lb": ("create", lambda e: {"role": "ecsServiceRole"},
                        "InvalidParameterException",
                        "A role can only be given to a service configured to use load "
                        "balancers."),
    "awsvpc-without-network": (
        "create", lambda e: {"taskDefinition": e["fargate"]["taskDefinitionArn"],
                             "launchType": "FARGATE"},
        "InvalidParameterException",
        "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
    "network-for-bridge": (
        "create", lambda e: {"networkConfiguration": AWSVPC}, "InvalidParameterException",
        "Network Configuration is not valid for the given networkMode of this task "
        "definition."),
    "launch-type-and-strategy": (
        "create", lambda e: {"launchType": "EC2", "capacityProviderStrategy": [
            {"capacityProvider": "FARGATE", "weight": 1}]}, "InvalidParameterException",
        "Specifying both a launch type and capacity provider strategy is not supported. "
        "Remove one and try again."),
    "ec2-platform-version": (
        "create", lambda e: {"platformVersion": "1.4.0"}, "InvalidParameterException",
        "The platform version must be null when specifying an EC2 launch type."),
    "unknown-platform-version": (
        "create", lambda e: {"taskDefinition": e["fargate"]["taskDefinitionArn"],
                             "launchType": "FARGATE", "networkConfiguration": AWSVPC,
                             "platformVersion": "9.9.9"},
        "PlatformUnknownException",
        "The specified platform version 9.9.9 does not exist. Corral runs LATEST, 1.4.0, "
        "1.3.0."),
    "code-deploy-controller": (
        "create", lambda e: {"deploymentController": {"type": "CODE_DEPLOY"}},
        "InvalidParameterException",
        "Corral supports the ECS rolling update deployment controller, not CODE_DEPLOY."),
    "bad-placement-strategy": (
        "create", lambda e: {"placementStrategy": [{"type": "binpack", "field": "disk"}]},
        "InvalidParameterException",
        "Invalid field 'disk' for a binpack placement strategy. Valid fields are cpu and "
        "memory."),
    "service-registries": (
        "create", lambda e: {"serviceRegistries": [{"registryArn": "arn:aws:x"}]},
        "UnsupportedFeatureException",
        "Corral does not support service discovery (serviceRegistries) for services."),
    "update-unknown-service": ("update", lambda e: {"service": "nope", "desiredCount": 1},
                               "ServiceNotFoundException", "Service not found."),
    "update-inactive-task-definition": (
        "update", lambda e: {"taskDefinition": e["inactive"]["taskDefinitionArn"]},
        "ClientException", "TaskDefinition is inactive"),
    "update-negative-desired-count": ("update", lambda e: {"desiredCount": -2},
                                      "InvalidParameterException",
                                      "desiredCount must be greater than or equal to 0."),
    "update-grace-without-lb": (
        "update", lambda e: {"healthCheckGracePeriodSeconds": 10}, "InvalidParameterException",
        "Health check grace period is only valid for services configured to use load "
        "balancers"),
    "update-max-percent-zero": (
        "update", lambda e: {"deploymentConfiguration": {"maximumPercent": 0}},
        "InvalidParameterException", "maximumPercent must be greater than 0."),
    "update-unknown-cluster": ("update", lambda e: {"cluster": "no-such-cluster"},
                               "ClusterNotFoundException", "Cluster not found."),
    "delete-unknown-service": ("delete", lambda e: {"service": "nope"},
                               "ServiceNotFoundException", "Service not found."),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_calls_get_aws_errors(ecs, env, case):
    op, build, code, message = INVALID[case]
    params: dict = {"cluster": env["cluster"]}
    if op == "create":
        params.update(serviceName=f"bad-{_uid()}", desiredCount=0,
                      taskDefinition=env["td"]["taskDefinitionArn"])
    else:
        params["service"] = "existing"
    params.update(build(env))
    params = {k: v for k, v in params.items() if v is not None}
    if params.get("loadBalancers"):
        params["loadBalancers"] = [{k: v for k, v in lb.items() if v is not None}
                                   for lb in params["loadBalancers"]]
    call = {"create": ecs.create_service, "update": ecs.update_service,
            "delete": ecs.delete_service}[op]
    assert error_of(call, **params) == (code, message)
