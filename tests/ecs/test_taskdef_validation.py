"""RegisterTaskDefinition's semantic rules (corral.ecs.taskdef_validation), as tables.

Invalid definitions: each case is a change to a valid base definition and the exact
ClientException message ECS answers (AWS's verbatim text where it is known, see the module).
Valid definitions: what normalization fills in, as DescribeTaskDefinition shows it.
"""

from __future__ import annotations

import copy

import pytest

from corral.ecs.errors import ClientException
from corral.ecs.taskdef_validation import normalize

ECR_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/app:1"
ROLE = "arn:aws:iam::000000000000:role/ecsTaskRole"


def base(**task) -> dict:
    return {"family": "web", "containerDefinitions": [
        {"name": "app", "image": ECR_IMAGE, "memory": 128}], **task}


def fargate(**task) -> dict:
    return base(**{"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
                   "cpu": "256", "memory": "512", **task})


def with_container(req: dict, **fields) -> dict:
    req = copy.deepcopy(req)
    req["containerDefinitions"][0].update(fields)
    return req


def with_containers(req: dict, *extra: dict) -> dict:
    req = copy.deepcopy(req)
    req["containerDefinitions"] += [{"image": "busybox", "memory": 64, **c} for c in extra]
    return req


def without(req: dict, *path: str) -> dict:
    req = copy.deepcopy(req)
    target = req["containerDefinitions"][0] if path[0] == "container" else req
    target.pop(path[-1])
    return req


INVALID = [
    # --- family ---
    ("family-invalid-chars", base(family="web app"), "Family contains invalid characters."),
    ("family-dot", base(family="web.app"), "Family contains invalid characters."),
    ("family-too-long", base(family="f" * 256),
     "Family name must be at most 255 characters long."),
    ("family-empty", base(family=""), "Family should not be null or empty."),
    # --- container list ---
    ("no-containers", base(containerDefinitions=[]), "Container list cannot be empty."),
    ("eleven-containers", base(containerDefinitions=[
        {"name": f"c{i}", "image": "busybox", "memory": 64} for i in range(11)]),
     "Too many containers."),
    # --- container names / image ---
    ("container-name-invalid", with_container(base(), name="my app"),
     "Container.name contains invalid characters."),
    ("container-name-missing", without(base(), "container", "name"),
     "Container.name should not be null or empty."),
    ("container-name-duplicate", with_containers(base(), {"name": "app"}),
     "Container names must be unique; 'app' is used more than once."),
    ("image-missing", without(base(), "container", "image"),
     "Container.image should not be null or empty."),
    # --- essential ---
    ("no-essential", with_container(base(), essential=False),
     "At least one essential container is required."),
    # --- memory ---
    ("ec2-no-memory", without(base(), "container", "memory"),
     "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' "
     "must be specified."),
    ("memory-below-6", with_container(base(), memory=4),
     "Invalid 'memory' setting for container 'app'. The minimum is 6"),
    ("reservation-below-6", with_container(base(), memory=None, memoryReservation=5),
     "Invalid 'memoryReservation' setting for container 'app'. The minimum is 6"),
    ("reservation-above-memory", with_container(base(), memory=128, memoryReservation=256),
     "Invalid 'memoryReservation' setting for container 'app'. It must be less than or "
     "equal to the container's 'memory' setting."),
    ("container-memory-above-task", with_container(base(memory="256"), memory=512),
     "The 'memory' setting for container 'app' is greater than for the task."),
    ("reservations-above-task", with_containers(
        with_container(base(memory="256"), memory=None, memoryReservation=200),
        {"name": "side", "memory": None, "memoryReservation": 100}),
     "The sum of all container 'memoryReservation' values cannot be greater than the value "
     "of the task 'memory'."),
    ("container-cpu-negative", with_container(base(), cpu=-1),
     "Invalid 'cpu' setting for container 'app'. The minimum is 0"),
    # --- task cpu / memory forms ---
    ("task-cpu-garbage", base(cpu="lots"),
     "Invalid 'cpu' setting for task. Specify CPU units (for example, 1024) or vCPUs (for "
     "example, 1 vCPU)."),
    ("task-cpu-too-small", base(cpu="64"),
     "Invalid 'cpu' setting for task. The minimum is 128 and the maximum is 196608."),
    ("task-memory-garbage", base(memory="1 TB"),
     "Invalid 'memory' setting for task. Specify MiB (for example, 512) or GB (for example, "
     "1 GB); the minimum is 6 MiB."),
    # --- Fargate ---
    ("fargate-bridge", fargate(networkMode="bridge"),
     "Fargate only supports network mode \u2018awsvpc\u2019."),
    ("fargate-default-mode", without(fargate(), "networkMode"),
     "Fargate only supports network mode \u2018awsvpc\u2019."),
    ("fargate-no-cpu", without(fargate(), "cpu"),
     "Fargate requires that 'cpu' be defined at the task level."),
    ("fargate-no-memory", without(with_container(fargate(), memory=None, memoryReservation=64),
                                  "memory"),
     "Fargate requires that 'memory' be defined at the task level."),
    ("fargate-256-4096", fargate(memory="4096"),
     "No Fargate configuration exists for given values: 256 CPU, 4096 memory. See the "
     "Amazon ECS documentation for the valid values."),
    ("fargate-1024-1024", fargate(cpu="1 vCPU", memory="1 GB"),
     "No Fargate configuration exists for given values: 1024 CPU, 1024 memory. See the "
     "Amazon ECS documentation for the valid values."),
    ("fargate-8192-18432-not-step", fargate(cpu="8192", memory="18432"),
     "No Fargate configuration exists for given values: 8192 CPU, 18432 memory. See the "
     "Amazon ECS documentation for the valid values."),
    ("fargate-cpu-3072", fargate(cpu="3072", memory="8192"),
     "No Fargate configuration exists for given values: 3072 CPU, 8192 memory. See the "
     "Amazon ECS documentation for the valid values."),
    ("fargate-stop-timeout", with_container(fargate(), stopTimeout=121),
     "Invalid 'stopTimeout' setting for container 'app'. Tasks using Fargate allow at most "
     "120 seconds."),
    ("fargate-start-timeout", with_container(fargate(), startTimeout=200),
     "Invalid 'startTimeout' setting for container 'app'. Tasks using Fargate allow at most "
     "120 seconds."),
    ("fargate-privileged", with_container(fargate(), privileged=True),
     "Fargate requires that the privileged setting be false at the container level."),
    ("fargate-pid-host", fargate(pidMode="host"),
     "Fargate does not support pidMode 'host'. Use pidMode 'task'."),
    # --- ports ---
    ("awsvpc-hostport-differs", with_container(
        base(networkMode="awsvpc"), portMappings=[{"containerPort": 80, "hostPort": 8080}]),
     "When networkMode=awsvpc, the host ports and container ports in port mappings must "
     "match."),
    ("host-hostport-differs", with_container(
        base(networkMode="host"), portMappings=[{"containerPort": 80, "hostPort": 81}]),
     "When networkMode=host, the host ports and container ports in port mappings must "
     "match."),
    ("none-with-ports", with_container(
        base(networkMode="none"), portMappings=[{"containerPort": 80}]),
     "Port mappings are not supported when networkMode=none."),
    ("bridge-hostport-too-big", with_container(
        base(), portMappings=[{"containerPort": 80, "hostPort": 70000}]),
     "Invalid 'hostPort' setting for container 'app'. Specify a port from 0 to 65535."),
    ("container-port-zero", with_container(base(), portMappings=[{"containerPort": 0}]),
     "Invalid 'containerPort' setting for container 'app'. Specify a port from 1 to 65535."),
    ("duplicate-port", with_container(base(), portMappings=[
        {"containerPort": 80}, {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}]),
     "Container 'app' maps containerPort 80/tcp more than once."),
    ("port-range-bad", with_container(
        base(), portMappings=[{"containerPortRange": "9000-8000"}]),
     "Invalid containerPortRange '9000-8000' for container 'app'. Specify <first>-<last> "
     "with 1 <= first < last <= 65535."),
    # --- links ---
    ("links-awsvpc", with_containers(with_container(
        base(networkMode="awsvpc"), links=["db"]), {"name": "db"}),
     "Links are not supported when networkMode=awsvpc."),
    ("link-unknown", with_container(base(), links=["db:database"]),
     "Container 'app' links to 'db', which is not another container of this task "
     "definition."),
    # --- dependsOn ---
    ("depends-on-missing", with_container(
        base(), dependsOn=[{"containerName": "db", "condition": "START"}]),
     "Container 'app' depends on container 'db', which does not exist."),
    ("depends-on-itself", with_container(
        base(), dependsOn=[{"containerName": "app", "condition": "START"}]),
     "Container 'app' cannot depend on itself."),
    ("depends-complete-on-essential", with_containers(with_container(
        base(), dependsOn=[{"containerName": "init", "condition": "COMPLETE"}]),
        {"name": "init"}),
     "A dependency container with SUCCESS or COMPLETE condition cannot be an essential "
     "container"),
    ("depends-success-on-essential", with_containers(with_container(
        base(), dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
        {"name": "init", "essential": True}),
     "A dependency container with SUCCESS or COMPLETE condition cannot be an essential "
     "container"),
    ("depends-healthy-without-check", with_containers(with_container(
        base(), dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
        {"name": "db"}),
     "Container 'app' depends on 'db' being HEALTHY, but 'db' has no healthCheck."),
    ("depends-cycle", with_containers(with_container(
        base(), dependsOn=[{"containerName": "b", "condition": "START"}]),
        {"name": "b", "dependsOn": [{"containerName": "c", "condition": "START"}]},
        {"name": "c", "dependsOn": [{"containerName": "app", "condition": "START"}]}),
     "Container dependencies form a cycle: app -> b -> c -> app."),
    # --- healthCheck ---
    ("health-command-first", with_container(base(), healthCheck={"command": ["curl", "-f"]}),
     "Invalid 'healthCheck' setting for container 'app'. The command must start with CMD, "
     "CMD-SHELL or NONE."),
    ("health-cmd-alone", with_container(base(), healthCheck={"command": ["CMD-SHELL"]}),
     "Invalid 'healthCheck' setting for container 'app'. CMD-SHELL needs a command to run."),
    ("health-interval-4", with_container(
        base(), healthCheck={"command": ["CMD", "true"], "interval": 4}),
     "Invalid 'healthCheck' setting for container 'app'. 'interval' must be between 5 and "
     "300."),
    ("health-timeout-61", with_container(
        base(), healthCheck={"command": ["CMD", "true"], "timeout": 61}),
     "Invalid 'healthCheck' setting for container 'app'. 'timeout' must be between 2 and "
     "60."),
    ("health-retries-0", with_container(
        base(), healthCheck={"command": ["CMD", "true"], "retries": 0}),
     "Invalid 'healthCheck' setting for container 'app'. 'retries' must be between 1 and "
     "10."),
    ("health-start-period-301", with_container(
        base(), healthCheck={"command": ["CMD", "true"], "startPeriod": 301}),
     "Invalid 'healthCheck' setting for container 'app'. 'startPeriod' must be between 0 and "
     "300."),
    # --- volumes and mounts ---
    ("mount-unknown-volume", with_container(
        base(), mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}]),
     "Invalid 'mountPoints' setting for container 'app'. sourceVolume 'data' is not a volume "
     "of the task definition."),
    ("mount-no-path", with_container(
        base(volumes=[{"name": "data"}]), mountPoints=[{"sourceVolume": "data"}]),
     "Invalid 'mountPoints' setting for container 'app'. containerPath must be specified."),
    ("volumes-from-unknown", with_container(base(), volumesFrom=[{"sourceContainer": "x"}]),
     "Invalid 'volumesFrom' setting for container 'app'. sourceContainer 'x' is not another "
     "container of the task definition."),
    ("volume-duplicate", base(volumes=[{"name": "data"}, {"name": "data"}]),
     "Volume names must be unique; 'data' is used more than once."),
    ("volume-bad-name", base(volumes=[{"name": "my data"}]),
     "Invalid volume name 'my data'. Up to 255 letters (uppercase and lowercase), numbers, "
     "hyphens, and underscores are allowed."),
    # --- ulimits ---
    ("ulimit-unknown", with_container(
        base(), ulimits=[{"name": "memory", "softLimit": 1, "hardLimit": 2}]),
     "Unrecognized ulimit name memory"),
    ("ulimit-soft-above-hard", with_container(
        base(), ulimits=[{"name": "nofile", "softLimit": 4096, "hardLimit": 1024}]),
     "Invalid 'ulimits' setting for container 'app'. The soft limit of 'nofile' cannot be "
     "greater than its hard limit."),
    # --- restartPolicy ---
    ("restart-period-59", with_container(
        base(), restartPolicy={"enabled": True, "restartAttemptPeriod": 59}),
     "Invalid 'restartPolicy' setting for container 'app'. restartAttemptPeriod must be "
     "between 60 and 1800 seconds."),
    ("restart-51-codes", with_container(
        base(), restartPolicy={"enabled": True, "ignoredExitCodes": list(range(51))}),
     "Invalid 'restartPolicy' setting for container 'app'. ignoredExitCodes can list at most "
     "50 exit codes."),
    # --- roles ---
    ("task-role-not-role", base(taskRoleArn="arn:aws:iam::000000000000:user/bob"),
     "Role is not valid"),
    ("execution-role-garbage", base(executionRoleArn="ecsTaskExecutionRole"),
     "Role is not valid"),
    # --- task options ---
    ("placement-11", base(placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}] * 11),
     "Too many placement constraints. A task definition can have at most 10."),
    ("placement-no-expression", base(placementConstraints=[{"type": "memberOf"}]),
     "A memberOf placement constraint requires an expression."),
    ("pid-mode-bad", base(pidMode="container"),
     "Invalid pidMode 'container'. Valid values are host and task."),
    ("ipc-mode-bad", base(ipcMode="shareable"),
     "Invalid ipcMode 'shareable'. Valid values are host, task and none."),
    ("ephemeral-storage-20", base(ephemeralStorage={"sizeInGiB": 20}),
     "The ephemeral storage size must be between 21 and 200 GiB."),
]


def _drop_nones(req: dict) -> dict:
    """Cases set a field to None to mean 'absent' (as the protocol layer hands it over)."""
    for c in req["containerDefinitions"]:
        for k in [k for k, v in c.items() if v is None]:
            del c[k]
    return req


@pytest.mark.parametrize("request_, message", [(r, m) for _, r, m in INVALID],
                         ids=[i for i, _, _ in INVALID])
def test_invalid_definition_gets_aws_message(request_, message):
    with pytest.raises(ClientException) as err:
        normalize(_drop_nones(copy.deepcopy(request_)))
    assert err.value.code == "ClientException"
    assert err.value.message == message


def test_table_is_large_and_ids_unique():
    assert len(INVALID) >= 35
    assert len({i for i, _, _ in INVALID}) == len(INVALID)


# --- valid definitions: normalization ------------------------------------------------------

def test_container_defaults_filled_as_ecs_returns_them():
    td = normalize(base())
    c = td["containerDefinitions"][0]
    assert c == {"name": "app", "image": ECR_IMAGE, "memory": 128, "cpu": 0,
                 "essential": True, "portMappings": [], "environment": [],
                 "mountPoints": [], "volumesFrom": [], "systemControls": []}
    assert td["networkMode"] == "bridge"
    assert td["volumes"] == [] and td["placementConstraints"] == []
    assert td["compatibilities"] == ["EC2"]
    assert {"name": "com.amazonaws.ecs.capability.ecr-auth"} in td["requiresAttributes"]


VALID_SIZES = [
    ("units", "1024", "2048", "1024", "2048"),
    ("vcpu-lower", "1 vcpu", "2 GB", "1024", "2048"),
    ("vcpu-fraction", "0.25 vCPU", "0.5GB", "256", "512"),
    ("vcpus-plural", "2 vCPUs", "4 GiB", "2048", "4096"),
    ("mib", "512", "1024 MiB", "512", "1024"),
    ("16-vcpu", "16 vCPU", "120 GB", "16384", "122880"),
]


@pytest.mark.parametrize("cpu, memory, want_cpu, want_memory",
                         [v[1:] for v in VALID_SIZES], ids=[v[0] for v in VALID_SIZES])
def test_task_size_normalized_to_numbers_and_fargate_compatible(cpu, memory, want_cpu,
                                                                want_memory):
    td = normalize(fargate(cpu=cpu, memory=memory))
    assert (td["cpu"], td["memory"]) == (want_cpu, want_memory)
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    names = [a["name"] for a in td["requiresAttributes"]]
    assert "ecs.capability.task-eni" in names


def test_every_fargate_combination_is_accepted():
    from corral.ecs.taskdef_validation import FARGATE_SIZES
    count = 0
    for cpu, memories in FARGATE_SIZES.items():
        for memory in memories:
            td = normalize(fargate(cpu=str(cpu), memory=str(memory)))
            assert "FARGATE" in td["compatibilities"]
            count += 1
    assert count == 3 + 4 + 7 + 13 + 23 + 12 + 12


def test_host_port_defaults_per_network_mode():
    ports = [{"containerPort": 80}, {"containerPort": 53, "protocol": "udp"}]
    bridge = normalize(with_container(base(), portMappings=ports))
    assert bridge["containerDefinitions"][0]["portMappings"] == [
        {"containerPort": 80, "protocol": "tcp", "hostPort": 0},
        {"containerPort": 53, "protocol": "udp", "hostPort": 0}]
    for mode in ("awsvpc", "host"):
        td = normalize(with_container(base(networkMode=mode), portMappings=ports))
        assert [p["hostPort"] for p in td["containerDefinitions"][0]["portMappings"]] == [80, 53]


def test_awsvpc_without_task_size_is_ec2_only():
    td = normalize(base(networkMode="awsvpc"))
    assert td["compatibilities"] == ["EC2"]


def test_long_stop_timeout_is_ec2_only_without_fargate_requirement():
    td = normalize(with_container(base(networkMode="awsvpc", cpu="256", memory="512"),
                                  stopTimeout=300))
    assert td["compatibilities"] == ["EC2"]


def test_health_check_defaults_and_attributes():
    td = normalize(with_container(base(taskRoleArn=ROLE, executionRoleArn=ROLE),
                                  healthCheck={"command": ["CMD-SHELL", "true"]},
                                  logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1"}},
                                  memoryReservation=64))
    assert td["containerDefinitions"][0]["healthCheck"] == {
        "command": ["CMD-SHELL", "true"], "interval": 30, "timeout": 5, "retries": 3}
    names = [a["name"] for a in td["requiresAttributes"]]
    for want in ("com.amazonaws.ecs.capability.ecr-auth",
                 "com.amazonaws.ecs.capability.task-iam-role",
                 "ecs.capability.execution-role-ecr-pull",
                 "ecs.capability.container-health-check",
                 "com.amazonaws.ecs.capability.logging-driver.awslogs",
                 "ecs.capability.execution-role-awslogs",
                 "com.amazonaws.ecs.capability.docker-remote-api.1.21"):
        assert want in names
    assert len(names) == len(set(names))


def test_sidecar_with_dependencies_volumes_and_links_is_valid():
    req = with_containers(
        with_container(base(volumes=[{"name": "logs", "host": {"sourcePath": "/tmp/x"}}]),
                       mountPoints=[{"sourceVolume": "logs", "containerPath": "/logs"}],
                       links=["init"],
                       dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
        {"name": "init", "essential": False},
        {"name": "reader", "essential": False, "volumesFrom": [{"sourceContainer": "app"}],
         "dependsOn": [{"containerName": "app", "condition": "START"}]})
    td = normalize(req)
    assert [c["essential"] for c in td["containerDefinitions"]] == [True, False, False]


def test_request_is_not_modified_and_tags_are_not_part_of_the_body():
    req = base(tags=[{"key": "a", "value": "b"}])
    before = copy.deepcopy(req)
    td = normalize(req)
    assert req == before
    assert "tags" not in td
