"""Clusters and the local container instance, through a real server with boto3 and the aws
CLI; task rows are inserted straight into the store where a test needs tasks (the task API
lives elsewhere), and removed again."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import delete

from corral.config import Settings
from corral.ecs import clusters, host, instances
from corral.ecs.errors import ClusterNotFoundException
from corral.store.db import Store
from corral.store.schema import ecs_tasks

ACCOUNT, REGION = "000000000000", "us-east-1"


@pytest.fixture
def ecs(server):
    return server.client("ecs")


@pytest.fixture
def name(request):
    return "c-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60] + \
        uuid.uuid4().hex[:6]


@pytest.fixture
def cluster(ecs, name):
    ecs.create_cluster(clusterName=name)
    yield name
    with suppress(ClientError):  # the test may have deleted it already
        ecs.delete_cluster(cluster=name)


@pytest.fixture
def store(server):
    s = Store(Settings(data_dir=server.data_dir).db_url)
    yield s
    s.close()


@contextmanager
def fake_tasks(store, cluster, instance_id, *tasks):
    """Task rows (last_status, launch_type, reserved) on the instance; removed afterwards."""
    ids = []
    with store.transaction() as db:
        for last_status, launch_type, reserved in tasks:
            task_id = uuid.uuid4().hex
            ids.append(task_id)
            db.execute(ecs_tasks.insert().values(
                account_id=ACCOUNT, region=REGION, task_id=task_id, cluster=cluster,
                family="web", desired_status="RUNNING", last_status=last_status,
                launch_type=launch_type,
                container_instance=instance_id if launch_type == "EC2" else None,
                created_at=datetime.now(UTC), version=1,
                doc={"group": "family:web", "x-corral": {"reserved": reserved}}))
    try:
        yield ids
    finally:
        with store.transaction() as db:
            db.execute(delete(ecs_tasks).where(ecs_tasks.c.task_id.in_(ids)))


def _instance(ecs, cluster):
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    assert len(arns) == 1
    return ecs.describe_container_instances(cluster=cluster,
                                            containerInstances=arns)["containerInstances"][0]


def _resources(shape):
    return {r["name"]: r.get("stringSetValue", r.get("integerValue")) for r in shape}


def _mem_total_mib():
    with open("/proc/meminfo") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return kb // 1024


# --- clusters ------------------------------------------------------------------------------

def test_create_describe_list_delete(ecs, name):
    created = ecs.create_cluster(clusterName=name, tags=[{"key": "team", "value": "a"}])
    c = created["cluster"]
    assert c["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}"
    assert (c["status"], c["runningTasksCount"], c["pendingTasksCount"],
            c["activeServicesCount"]) == ("ACTIVE", 0, 0, 0)
    assert c["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert c["tags"] == [{"key": "team", "value": "a"}]
    assert c["clusterArn"] in ecs.list_clusters()["clusterArns"]
    by_arn = ecs.describe_clusters(clusters=[c["clusterArn"]])["clusters"][0]
    assert by_arn["clusterName"] == name and "settings" not in by_arn and by_arn["tags"] == []

    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert c["clusterArn"] not in ecs.list_clusters()["clusterArns"]
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["status"] == "INACTIVE"
    with pytest.raises(ClientError) as e:
        ecs.update_cluster_settings(cluster=name, settings=[
            {"name": "containerInsights", "value": "enabled"}])
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"
    assert e.value.response["Error"]["Message"] == "Cluster not found."


def test_create_existing_active_cluster_returns_it_unchanged(ecs, cluster):
    again = ecs.create_cluster(clusterName=cluster, settings=[
        {"name": "containerInsights", "value": "enabled"}])["cluster"]
    assert again["settings"] == [{"name": "containerInsights", "value": "disabled"}]


def test_recreate_after_delete_is_a_new_cluster(ecs, name):
    ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "v"}])
    ecs.delete_cluster(cluster=name)
    again = ecs.create_cluster(clusterName=name)["cluster"]
    assert again["status"] == "ACTIVE" and again["tags"] == []
    assert again["registeredContainerInstancesCount"] == 1
    ecs.delete_cluster(cluster=name)


def test_describe_include_options_and_missing(ecs, cluster):
    out = ecs.describe_clusters(clusters=[cluster, "nope-" + cluster],
                                include=["SETTINGS", "STATISTICS", "TAGS", "CONFIGURATIONS",
                                         "ATTACHMENTS"])
    c = out["clusters"][0]
    stats = {s["name"]: s["value"] for s in c["statistics"]}
    for key in ("runningEC2TasksCount", "runningFargateTasksCount", "pendingEC2TasksCount",
                "pendingFargateTasksCount", "activeEC2ServiceCount",
                "activeFargateServiceCount", "drainingEC2ServiceCount",
                "drainingFargateServiceCount"):
        assert stats[key] == "0"
    assert c["settings"] and c["attachments"] == []
    assert out["failures"] == [{"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/nope-{cluster}",
                                "reason": "MISSING"}]


def test_bad_cluster_name_is_refused(ecs):
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName="has.dots")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "^[a-zA-Z0-9\\-_]{1,255}$" in e.value.response["Error"]["Message"]


def test_update_cluster_settings_and_configuration(ecs, cluster):
    c = ecs.update_cluster_settings(cluster=cluster, settings=[
        {"name": "containerInsights", "value": "enhanced"}])["cluster"]
    assert c["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    config = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    c = ecs.update_cluster(cluster=cluster, configuration=config)["cluster"]
    assert c["configuration"] == config
    with pytest.raises(ClientError) as e:
        ecs.update_cluster(cluster=cluster, settings=[
            {"name": "containerInsights", "value": "sometimes"}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


CAPACITY_CASES = [
    ("fargate pair", ["FARGATE", "FARGATE_SPOT"],
     [{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
      {"capacityProvider": "FARGATE_SPOT", "weight": 4}], None),
    ("unknown provider", ["MY_ASG"], [], "The specified capacity provider does not exist"),
    ("strategy not associated", ["FARGATE"], [{"capacityProvider": "FARGATE_SPOT",
                                               "weight": 1}],
     "not associated with the cluster"),
    ("two bases", ["FARGATE", "FARGATE_SPOT"],
     [{"capacityProvider": "FARGATE", "base": 1}, {"capacityProvider": "FARGATE_SPOT",
                                                    "base": 2}], "can have a base"),
]


@pytest.mark.parametrize("providers,strategy,error", [c[1:] for c in CAPACITY_CASES],
                         ids=[c[0] for c in CAPACITY_CASES])
def test_put_cluster_capacity_providers(ecs, cluster, providers, strategy, error):
    if error is None:
        c = ecs.put_cluster_capacity_providers(
            cluster=cluster, capacityProviders=providers,
            defaultCapacityProviderStrategy=strategy)["cluster"]
        assert c["capacityProviders"] == providers
        assert c["defaultCapacityProviderStrategy"][1] == {
            "capacityProvider": "FARGATE_SPOT", "weight": 4, "base": 0}
        return
    with pytest.raises(ClientError) as e:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=providers,
                                           defaultCapacityProviderStrategy=strategy)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert error in e.value.response["Error"]["Message"]


def test_create_cluster_with_bad_capacity_provider(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName=name, capacityProviders=["EC2_ASG"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_list_clusters_pages(ecs, name):
    made = [f"{name}-{i}" for i in range(5)]
    for n in made:
        ecs.create_cluster(clusterName=n)
    try:
        seen, token = [], None
        while True:
            page = ecs.list_clusters(maxResults=2, **({"nextToken": token} if token else {}))
            assert len(page["clusterArns"]) <= 2
            seen += page["clusterArns"]
            token = page.get("nextToken")
            if not token:
                break
        assert [a.rsplit("/", 1)[1] for a in seen if name in a] == made
        with pytest.raises(ClientError) as e:
            ecs.list_clusters(maxResults=101)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    finally:
        for n in made:
            ecs.delete_cluster(cluster=n)


def test_default_cluster_is_created_on_first_use(server, store):
    # Another account, so the shared server's default cluster state does not matter.
    other = "222233334444"
    with store.transaction(write=False) as db, \
            pytest.raises(ClusterNotFoundException, match="Cluster not found"):
        clusters.resolve(db, other, REGION, None, create_default=False)
    with store.transaction() as db:
        row = clusters.resolve(db, other, REGION, None)
        assert row["name"] == "default" and row["status"] == "ACTIVE"
        assert instances.count_registered(db, other, REGION, "default") == 1
        assert clusters.resolve(db, other, REGION, "default")["created_at"] == row["created_at"]
        db.rollback()


def test_aws_cli_describe_clusters(server, cluster):
    out = server.aws("ecs", "describe-clusters", "--clusters", cluster, "--include", "STATISTICS")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["clusters"][0]["clusterName"] == cluster
    assert body["clusters"][0]["registeredContainerInstancesCount"] == 1


# --- the local container instance ----------------------------------------------------------

def test_local_instance_registered_resources(ecs, cluster):
    ci = _instance(ecs, cluster)
    reg = _resources(ci["registeredResources"])
    assert reg["CPU"] == os.cpu_count() * 1024
    assert reg["MEMORY"] == _mem_total_mib()
    assert reg["PORTS"] == ["22", "2375", "2376", "51678", "51679"]
    assert reg["PORTS_UDP"] == []
    assert _resources(ci["remainingResources"]) == reg  # no task runs
    assert ci["ec2InstanceId"] == host.local().ec2_instance_id
    assert ci["ec2InstanceId"].startswith("i-") and len(ci["ec2InstanceId"]) == 19
    assert (ci["status"], ci["agentConnected"], ci["runningTasksCount"],
            ci["pendingTasksCount"]) == ("ACTIVE", True, 0, 0)
    assert ci["versionInfo"]["agentVersion"].startswith("1.")
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["ecs.os-type"] == "linux"
    assert attrs["ecs.availability-zone"] == f"{REGION}a"
    assert attrs["ecs.instance-type"] == "corral.local"
    assert attrs["ecs.cpu-architecture"] in ("x86_64", "arm64")
    assert "ecs.capability.task-eni" in attrs
    assert "com.amazonaws.ecs.capability.docker-remote-api.1.44" in attrs
    assert "agentUpdateStatus" not in ci


def test_describe_container_instances_missing(ecs, cluster):
    out = ecs.describe_container_instances(cluster=cluster, containerInstances=["0" * 32])
    assert out["containerInstances"] == []
    assert out["failures"] == [{
        "arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/{cluster}/{'0' * 32}",
        "reason": "MISSING"}]


def test_list_container_instances_of_missing_cluster(ecs):
    with pytest.raises(ClientError) as e:
        ecs.list_container_instances(cluster="no-such-cluster-x")
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"


def test_drain_and_activate(ecs, cluster):
    arn = _instance(ecs, cluster)["containerInstanceArn"]
    out = ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn],
                                               status="DRAINING")
    assert out["containerInstances"][0]["status"] == "DRAINING"
    assert ecs.list_container_instances(cluster=cluster, status="ACTIVE")[
        "containerInstanceArns"] == []
    assert ecs.list_container_instances(cluster=cluster, status="DRAINING")[
        "containerInstanceArns"] == [arn]
    ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn],
                                         status="ACTIVE")
    assert _instance(ecs, cluster)["status"] == "ACTIVE"
    with pytest.raises(ClientError) as e:
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn],
                                             status="REGISTERING")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_custom_attributes_and_filter(ecs, cluster):
    arn = _instance(ecs, cluster)["containerInstanceArn"]
    put = ecs.put_attributes(cluster=cluster, attributes=[
        {"name": "stack", "value": "prod", "targetId": arn}])["attributes"]
    assert put == [{"name": "stack", "value": "prod", "targetType": "container-instance",
                    "targetId": arn}]
    listed = ecs.list_attributes(cluster=cluster, targetType="container-instance",
                                 attributeName="stack", attributeValue="prod")["attributes"]
    assert [a["targetId"] for a in listed] == [arn]
    assert ecs.list_container_instances(cluster=cluster, filter="attribute:stack == prod")[
        "containerInstanceArns"] == [arn]
    assert ecs.list_container_instances(cluster=cluster, filter="attribute:stack == dev")[
        "containerInstanceArns"] == []
    with pytest.raises(ClientError) as e:
        ecs.list_container_instances(cluster=cluster, filter="stack ==")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    ecs.delete_attributes(cluster=cluster, attributes=[{"name": "stack", "targetId": arn}])
    assert ecs.list_attributes(cluster=cluster, targetType="container-instance",
                               attributeName="stack")["attributes"] == []
    with pytest.raises(ClientError) as e:
        ecs.put_attributes(cluster=cluster, attributes=[
            {"name": "x", "value": "y", "targetId": "f" * 32}])
    assert e.value.response["Error"]["Code"] == "TargetNotFoundException"
    with pytest.raises(ClientError) as e:
        ecs.put_attributes(cluster=cluster, attributes=[
            {"name": "ecs.os-type", "value": "windows", "targetId": arn}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_tasks_count_against_the_instance_and_block_delete(ecs, cluster, store):
    ci = _instance(ecs, cluster)
    instance_id = ci["containerInstanceArn"].rsplit("/", 1)[1]
    reg = _resources(ci["registeredResources"])
    with fake_tasks(store, cluster, instance_id,
                    ("RUNNING", "EC2", {"cpu": 256, "memory": 300, "ports": [8080],
                                        "portsUdp": [53]}),
                    ("PENDING", "EC2", {"cpu": 128, "memory": 100, "ports": [],
                                        "portsUdp": []}),
                    ("STOPPED", "EC2", {"cpu": 1000, "memory": 1000, "ports": [9999],
                                        "portsUdp": []}),
                    ("RUNNING", "FARGATE", {"cpu": 0, "memory": 0, "ports": [],
                                            "portsUdp": []})):
        ci = _instance(ecs, cluster)
        rem = _resources(ci["remainingResources"])
        assert rem["CPU"] == reg["CPU"] - 384 and rem["MEMORY"] == reg["MEMORY"] - 400
        assert rem["PORTS"] == ["22", "2375", "2376", "8080", "51678", "51679"]
        assert rem["PORTS_UDP"] == ["53"]
        assert (ci["runningTasksCount"], ci["pendingTasksCount"]) == (1, 1)
        c = ecs.describe_clusters(clusters=[cluster], include=["STATISTICS"])["clusters"][0]
        assert (c["runningTasksCount"], c["pendingTasksCount"]) == (2, 1)
        stats = {s["name"]: s["value"] for s in c["statistics"]}
        assert (stats["runningEC2TasksCount"], stats["runningFargateTasksCount"],
                stats["pendingEC2TasksCount"]) == ("1", "1", "1")
        with pytest.raises(ClientError) as e:
            ecs.delete_cluster(cluster=cluster)
        assert e.value.response["Error"]["Code"] == "ClusterContainsTasksException"
        assert e.value.response["Error"]["Message"] == \
            "The Cluster cannot be deleted while Tasks are active."
        with pytest.raises(ClientError) as e:
            ecs.deregister_container_instance(cluster=cluster,
                                              containerInstance=ci["containerInstanceArn"])
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_remaining_unit(store, name):
    """instances.remaining against rows in a store transaction that is rolled back."""
    with store.transaction() as db:
        clusters.create(db, ACCOUNT, REGION, name, datetime.now(UTC))
        row = instances.rows(db, ACCOUNT, REGION, name)[0]
        assert instances.remaining(db, ACCOUNT, REGION, row) == instances.registered(row)
        db.execute(ecs_tasks.insert().values(
            account_id=ACCOUNT, region=REGION, task_id=uuid.uuid4().hex, cluster=name,
            family="f", desired_status="RUNNING", last_status="ACTIVATING", launch_type="EC2",
            container_instance=row["instance_id"], created_at=datetime.now(UTC), version=1,
            doc={"x-corral": {"reserved": {"cpu": 512, "memory": 64, "ports": [80],
                                           "portsUdp": []}}}))
        left = instances.remaining(db, ACCOUNT, REGION, row)
        full = instances.registered(row)
        assert (left.cpu, left.memory) == (full.cpu - 512, full.memory - 64)
        assert left.ports == full.ports | {80}
        cand = instances.candidates(db, ACCOUNT, REGION, name)[0]
        assert cand.remaining == left and cand.status == "ACTIVE"
        db.rollback()


def test_deregister_keeps_it_out_until_the_cluster_is_recreated(ecs, cluster):
    arn = _instance(ecs, cluster)["containerInstanceArn"]
    out = ecs.deregister_container_instance(cluster=cluster, containerInstance=arn)
    assert out["containerInstance"]["status"] == "INACTIVE"
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []
    c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert c["registeredContainerInstancesCount"] == 0
    ecs.delete_cluster(cluster=cluster)
    ecs.create_cluster(clusterName=cluster)
    assert _instance(ecs, cluster)["containerInstanceArn"] != arn


def test_a_cluster_setting_without_a_name_is_refused(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName=name, settings=[{"value": "enabled"}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "containerInsights" in e.value.response["Error"]["Message"]
