"""RegisterTaskDefinition's semantic validation and normalization: a pure function of the
request.

The protocol layer has already checked what botocore's model declares (types, enums such as
``networkMode``, ``UlimitName`` and ``ContainerCondition``, required members). What is left is
ECS's own rule book, checked here in a fixed order (the first broken rule answers, as ECS
answers one error at a time):

    family ─ container list ─ task cpu/memory ─ roles ─ task options ─ volumes
      ─ per container: name, image, memory, ports, links, health check, mounts, ulimits,
        restart policy, timeouts
      ─ essential ─ dependsOn graph ─ task-level memory sums ─ Fargate requirements

and the result is the ``TaskDefinition`` body as DescribeTaskDefinition returns it: the
request's fields plus ECS's defaults (``essential`` true, ``cpu`` 0, empty lists, port
``protocol`` tcp, ``hostPort``, health-check interval/timeout/retries, ``networkMode``
bridge), task ``cpu``/``memory`` as strings of numbers, ``compatibilities`` and
``requiresAttributes``. Identity (ARN, revision, status, timestamps) is added by the caller.

Messages: where AWS's text is known from real responses it is used verbatim (marked
``# AWS text``); the others are written in AWS's style and say which field and limit failed.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from corral.aws import arns
from corral.ecr.scope import registry_of_host
from corral.ecs import awslogs
from corral.ecs.errors import ClientException

NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
MAX_CONTAINERS = 10
MAX_PLACEMENT_CONSTRAINTS = 10
MIN_CONTAINER_MEMORY = 6  # MiB: Docker's minimum for a container
TASK_CPU_RANGE = (128, 196608)  # EC2/external task-level cpu [BC TaskDefinition.cpu]
FARGATE_MAX_TIMEOUT = 120
ULIMIT_NAMES = frozenset({"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
                          "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending",
                          "stack"})
HEALTH_RANGES = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10),
                 "startPeriod": (0, 300)}
HEALTH_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3}
# Task cpu → the task memory values Fargate offers (MiB) [DG AWS_Fargate, task size].
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
_CPU = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(vcpus?)?\s*$", re.IGNORECASE)
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|mib|mb)?\s*$", re.IGNORECASE)
_PORT_RANGE = re.compile(r"^(\d+)-(\d+)$")
_LOCAL_REGISTRY = re.compile(r"(localhost|127\.0\.0\.1)(:\d+)?")  # Corral's own, by address
_LIST_DEFAULTS = ("portMappings", "environment", "mountPoints", "volumesFrom", "systemControls")


def fail(message: str) -> ClientException:
    return ClientException(message)


def normalize(request: dict[str, Any]) -> dict[str, Any]:
    """The TaskDefinition body for a RegisterTaskDefinition request (``tags`` excluded), or
    ClientException with the first rule it breaks. The request is not modified."""
    td = copy.deepcopy({k: v for k, v in request.items() if k != "tags" and v is not None})
    _check_family(td.get("family"))
    containers = td.get("containerDefinitions") or []
    _check_container_list(containers)
    td.setdefault("networkMode", "bridge")
    fargate = "FARGATE" in (td.get("requiresCompatibilities") or [])
    _normalize_task_size(td)
    _check_roles(td)
    _check_task_options(td, fargate)
    volumes = _check_volumes(td.setdefault("volumes", []))
    names = _check_container_names(containers)
    for c in containers:
        _normalize_container(c, td, names, volumes, fargate)
    if not any(c["essential"] for c in containers):
        raise fail("At least one essential container is required.")
    _check_dependencies(containers)
    _check_task_memory(td)
    if fargate:
        _check_fargate(td)
    td.setdefault("placementConstraints", [])
    td["compatibilities"] = compatibilities(td)
    td["requiresAttributes"] = [{"name": n} for n in requires_attributes(td)]
    return td


# --- task level ---------------------------------------------------------------------------

def _check_family(family: str | None) -> None:
    if not family:
        raise fail("Family should not be null or empty.")
    if len(family) > 255:
        raise fail("Family name must be at most 255 characters long.")
    if not NAME.match(family):
        raise fail("Family contains invalid characters.")  # AWS text


def _check_container_list(containers: list) -> None:
    if not containers:
        raise fail("Container list cannot be empty.")  # AWS text
    if len(containers) > MAX_CONTAINERS:
        raise fail("Too many containers.")  # AWS text (10 per task definition)


def parse_cpu(text: str) -> int | None:
    """CPU units from ``"1024"``, ``"1 vCPU"``, ``"0.5 vcpu"``; None when not a size."""
    m = _CPU.match(text)
    if not m:
        return None
    units = float(m.group(1)) * (1024 if m.group(2) else 1)
    return int(units) if units.is_integer() else None


def parse_memory(text: str) -> int | None:
    """MiB from ``"512"``, ``"1 GB"``, ``"2GiB"``, ``"512 MiB"``; None when not a size."""
    m = _MEMORY.match(text)
    if not m:
        return None
    unit = (m.group(2) or "").lower()
    mib = float(m.group(1)) * (1024 if unit in ("gb", "gib") else 1)
    return int(mib) if mib.is_integer() else None


def _normalize_task_size(td: dict) -> None:
    if "cpu" in td:
        cpu = parse_cpu(td["cpu"])
        if cpu is None:
            raise fail("Invalid 'cpu' setting for task. Specify CPU units (for example, "
                       "1024) or vCPUs (for example, 1 vCPU).")
        low, high = TASK_CPU_RANGE
        if not low <= cpu <= high:
            raise fail(f"Invalid 'cpu' setting for task. The minimum is {low} and the "
                       f"maximum is {high}.")
        td["cpu"] = str(cpu)
    if "memory" in td:
        memory = parse_memory(td["memory"])
        if memory is None or memory < MIN_CONTAINER_MEMORY:
            raise fail("Invalid 'memory' setting for task. Specify MiB (for example, 512) "
                       "or GB (for example, 1 GB); the minimum is 6 MiB.")
        td["memory"] = str(memory)


def _check_roles(td: dict) -> None:
    for field in ("taskRoleArn", "executionRoleArn"):
        if field in td:
            arn = arns.parse(td[field])
            if arn is None or arn.service != "iam" or arn.resource_type != "role":
                raise fail("Role is not valid")  # AWS text


def _check_task_options(td: dict, fargate: bool) -> None:
    if td.get("pidMode") not in (None, "host", "task"):
        raise fail(f"Invalid pidMode '{td['pidMode']}'. Valid values are host and task.")
    if td.get("ipcMode") not in (None, "host", "task", "none"):
        raise fail(f"Invalid ipcMode '{td['ipcMode']}'. Valid values are host, task and none.")
    constraints = td.get("placementConstraints") or []
    if len(constraints) > MAX_PLACEMENT_CONSTRAINTS:
        raise fail(f"Too many placement constraints. A task definition can have at most "
                   f"{MAX_PLACEMENT_CONSTRAINTS}.")
    for pc in constraints:
        if pc.get("type", "memberOf") != "memberOf":
            raise fail("Only placement constraints of type memberOf are supported in task "
                       "definitions.")
        if not pc.get("expression"):
            raise fail("A memberOf placement constraint requires an expression.")
    size = (td.get("ephemeralStorage") or {}).get("sizeInGiB")
    if size is not None and not 21 <= size <= 200:
        raise fail("The ephemeral storage size must be between 21 and 200 GiB.")


def _check_volumes(volumes: list[dict]) -> dict[str, dict]:
    by_name: dict[str, dict] = {}
    for v in volumes:
        name = v.get("name")
        if not name or not NAME.match(name):
            raise fail(f"Invalid volume name '{name or ''}'. Up to 255 letters (uppercase and "
                       f"lowercase), numbers, hyphens, and underscores are allowed.")
        if name in by_name:
            raise fail(f"Volume names must be unique; '{name}' is used more than once.")
        by_name[name] = v
    return by_name


def _check_task_memory(td: dict) -> None:
    if "memory" not in td:
        return
    limit = int(td["memory"])
    for c in td["containerDefinitions"]:
        if c.get("memory") is not None and c["memory"] > limit:
            raise fail(f"The 'memory' setting for container '{c['name']}' is greater than "
                       f"for the task.")  # AWS text
    if sum(c.get("memoryReservation") or 0 for c in td["containerDefinitions"]) > limit:
        raise fail("The sum of all container 'memoryReservation' values cannot be greater "
                   "than the value of the task 'memory'.")  # AWS text


def _check_fargate(td: dict) -> None:
    if td["networkMode"] != "awsvpc":
        raise fail("Fargate only supports network mode \u2018awsvpc\u2019.")  # AWS text
    if "cpu" not in td:
        raise fail("Fargate requires that 'cpu' be defined at the task level.")  # AWS text
    if "memory" not in td:
        raise fail("Fargate requires that 'memory' be defined at the task level.")  # AWS text
    if not fargate_size_ok(td["cpu"], td["memory"]):
        raise fail(f"No Fargate configuration exists for given values: {td['cpu']} CPU, "
                   f"{td['memory']} memory. See the Amazon ECS documentation for the valid "
                   f"values.")  # AWS text
    if td.get("pidMode") == "host":
        raise fail("Fargate does not support pidMode 'host'. Use pidMode 'task'.")
    if "ipcMode" in td:
        raise fail("Fargate does not support the ipcMode parameter.")
    for v in td["volumes"]:
        if (v.get("host") or {}).get("sourcePath"):
            raise fail(f"Fargate does not support host.sourcePath on volume '{v['name']}'.")
    for c in td["containerDefinitions"]:
        if c.get("privileged"):
            raise fail("Fargate requires that the privileged setting be false at the "
                       "container level.")


def fargate_size_ok(cpu: str, memory: str) -> bool:
    return int(memory) in FARGATE_SIZES.get(int(cpu), ())


# --- containers ---------------------------------------------------------------------------

def _check_container_names(containers: list[dict]) -> set[str]:
    names: set[str] = set()
    for c in containers:
        name = c.get("name")
        if not name:
            raise fail("Container.name should not be null or empty.")  # AWS text
        if not NAME.match(name):
            raise fail("Container.name contains invalid characters.")  # AWS text
        if name in names:
            raise fail(f"Container names must be unique; '{name}' is used more than once.")
        names.add(name)
    return names


def _normalize_container(c: dict, td: dict, names: set[str], volumes: dict[str, dict],
                         fargate: bool) -> None:
    c.setdefault("cpu", 0)
    c.setdefault("essential", True)
    for key in _LIST_DEFAULTS:
        c.setdefault(key, [])
    if not c.get("image"):
        raise fail("Container.image should not be null or empty.")  # AWS text
    if c["cpu"] < 0:
        raise fail(f"Invalid 'cpu' setting for container '{c['name']}'. The minimum is 0")
    _check_memory(c, "memory" in td)
    _check_ports(c, td["networkMode"])
    _check_links(c, td["networkMode"], names)
    _check_health(c)
    _check_mounts(c, names, volumes)
    _check_ulimits(c)
    _check_restart(c)
    _check_timeouts(c, fargate)
    _check_awslogs(c, fargate)


def _check_awslogs(c: dict, fargate: bool) -> None:
    """ECS's own checks of awslogs options (corral.ecs.awslogs; Docker's refusals come at
    container start)."""
    log = c.get("logConfiguration") or {}
    if log.get("logDriver") == "awslogs":
        error = awslogs.registration_error(log.get("options"), fargate=fargate)
        if error:
            raise fail(error)


def _check_memory(c: dict, task_memory: bool) -> None:
    name, hard, soft = c["name"], c.get("memory"), c.get("memoryReservation")
    if hard is None and soft is None and not task_memory:
        raise fail(f"Invalid setting for container '{name}'. At least one of 'memory' or "
                   f"'memoryReservation' must be specified.")  # AWS text
    for field, value in (("memory", hard), ("memoryReservation", soft)):
        if value is not None and value < MIN_CONTAINER_MEMORY:
            raise fail(f"Invalid '{field}' setting for container '{name}'. The minimum is "
                       f"{MIN_CONTAINER_MEMORY}")
    if hard is not None and soft is not None and soft > hard:
        raise fail(f"Invalid 'memoryReservation' setting for container '{name}'. It must be "
                   f"less than or equal to the container's 'memory' setting.")


def _check_ports(c: dict, mode: str) -> None:
    name, mappings = c["name"], c["portMappings"]
    if mappings and mode == "none":
        raise fail("Port mappings are not supported when networkMode=none.")
    seen: set[tuple[Any, str]] = set()
    for pm in mappings:
        pm.setdefault("protocol", "tcp")
        if "containerPortRange" in pm:
            _check_port_range(name, pm, mode)
            continue
        port = pm.get("containerPort")
        if port is None or not 1 <= port <= 65535:
            raise fail(f"Invalid 'containerPort' setting for container '{name}'. Specify a "
                       f"port from 1 to 65535.")
        _check_host_port(name, pm, mode)
        if (port, pm["protocol"]) in seen:
            raise fail(f"Container '{name}' maps containerPort {port}/{pm['protocol']} more "
                       f"than once.")
        seen.add((port, pm["protocol"]))


def _check_host_port(name: str, pm: dict, mode: str) -> None:
    if mode in ("awsvpc", "host"):
        if pm.get("hostPort") not in (None, pm["containerPort"]):
            raise fail(f"When networkMode={mode}, the host ports and container ports in port "
                       f"mappings must match.")  # AWS text
        pm["hostPort"] = pm["containerPort"]
        return
    pm.setdefault("hostPort", 0)  # bridge: 0 = a dynamic host port
    if not 0 <= pm["hostPort"] <= 65535:
        raise fail(f"Invalid 'hostPort' setting for container '{name}'. Specify a port from "
                   f"0 to 65535.")


def _check_port_range(name: str, pm: dict, mode: str) -> None:
    m = _PORT_RANGE.match(pm["containerPortRange"])
    if mode not in ("bridge", "awsvpc"):
        raise fail("containerPortRange is only supported when networkMode is bridge or "
                   "awsvpc.")
    if "containerPort" in pm or "hostPort" in pm:
        raise fail(f"Container '{name}': containerPortRange cannot be combined with "
                   f"containerPort or hostPort.")
    if not m or not 1 <= int(m.group(1)) < int(m.group(2)) <= 65535:
        raise fail(f"Invalid containerPortRange '{pm['containerPortRange']}' for container "
                   f"'{name}'. Specify <first>-<last> with 1 <= first < last <= 65535.")


def _check_links(c: dict, mode: str, names: set[str]) -> None:
    links = c.get("links") or []
    if links and mode != "bridge":
        raise fail(f"Links are not supported when networkMode={mode}.")
    for link in links:
        target = link.split(":", 1)[0]
        if target not in names or target == c["name"]:
            raise fail(f"Container '{c['name']}' links to '{target}', which is not another "
                       f"container of this task definition.")


def _check_health(c: dict) -> None:
    hc = c.get("healthCheck")
    if hc is None:
        return
    command = hc.get("command") or []
    if not command or command[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise fail(f"Invalid 'healthCheck' setting for container '{c['name']}'. The command "
                   f"must start with CMD, CMD-SHELL or NONE.")
    if command[0] != "NONE" and len(command) < 2:
        raise fail(f"Invalid 'healthCheck' setting for container '{c['name']}'. {command[0]} "
                   f"needs a command to run.")
    for field, (low, high) in HEALTH_RANGES.items():
        value = hc.get(field, HEALTH_DEFAULTS.get(field))
        if value is not None and not low <= value <= high:
            raise fail(f"Invalid 'healthCheck' setting for container '{c['name']}'. "
                       f"'{field}' must be between {low} and {high}.")
    for field, default in HEALTH_DEFAULTS.items():
        hc.setdefault(field, default)


def _check_mounts(c: dict, names: set[str], volumes: dict[str, dict]) -> None:
    for mp in c["mountPoints"]:
        source = mp.get("sourceVolume")
        if source not in volumes:
            raise fail(f"Invalid 'mountPoints' setting for container '{c['name']}'. "
                       f"sourceVolume '{source or ''}' is not a volume of the task definition.")
        if not mp.get("containerPath"):
            raise fail(f"Invalid 'mountPoints' setting for container '{c['name']}'. "
                       f"containerPath must be specified.")
    for vf in c["volumesFrom"]:
        source = vf.get("sourceContainer")
        if source not in names or source == c["name"]:
            raise fail(f"Invalid 'volumesFrom' setting for container '{c['name']}'. "
                       f"sourceContainer '{source or ''}' is not another container of the "
                       f"task definition.")


def _check_ulimits(c: dict) -> None:
    for u in c.get("ulimits") or []:
        if u["name"] not in ULIMIT_NAMES:
            raise fail(f"Unrecognized ulimit name {u['name']}")  # AWS text
        if u["softLimit"] > u["hardLimit"]:
            raise fail(f"Invalid 'ulimits' setting for container '{c['name']}'. The soft "
                       f"limit of '{u['name']}' cannot be greater than its hard limit.")


def _check_restart(c: dict) -> None:
    policy = c.get("restartPolicy")
    if not policy:
        return
    period = policy.get("restartAttemptPeriod")
    if period is not None and not 60 <= period <= 1800:
        raise fail(f"Invalid 'restartPolicy' setting for container '{c['name']}'. "
                   f"restartAttemptPeriod must be between 60 and 1800 seconds.")
    if len(policy.get("ignoredExitCodes") or []) > 50:
        raise fail(f"Invalid 'restartPolicy' setting for container '{c['name']}'. "
                   f"ignoredExitCodes can list at most 50 exit codes.")


def _check_timeouts(c: dict, fargate: bool) -> None:
    for field in ("startTimeout", "stopTimeout"):
        value = c.get(field)
        if value is None:
            continue
        if value < 0:
            raise fail(f"Invalid '{field}' setting for container '{c['name']}'. The minimum "
                       f"is 0")
        if fargate and value > FARGATE_MAX_TIMEOUT:
            raise fail(f"Invalid '{field}' setting for container '{c['name']}'. Tasks using "
                       f"Fargate allow at most {FARGATE_MAX_TIMEOUT} seconds.")


def _check_dependencies(containers: list[dict]) -> None:
    by_name = {c["name"]: c for c in containers}
    for c in containers:
        for dep in c.get("dependsOn") or []:
            target = by_name.get(dep["containerName"])
            if target is None:
                raise fail(f"Container '{c['name']}' depends on container "
                           f"'{dep['containerName']}', which does not exist.")
            if target is c:
                raise fail(f"Container '{c['name']}' cannot depend on itself.")
            if dep["condition"] in ("COMPLETE", "SUCCESS") and target["essential"]:
                raise fail("A dependency container with SUCCESS or COMPLETE condition cannot "
                           "be an essential container")  # AWS text
            if dep["condition"] == "HEALTHY" and not target.get("healthCheck"):
                raise fail(f"Container '{c['name']}' depends on '{target['name']}' being "
                           f"HEALTHY, but '{target['name']}' has no healthCheck.")
    cycle = _find_cycle({c["name"]: [d["containerName"] for d in c.get("dependsOn") or []]
                         for c in containers})
    if cycle:
        raise fail("Container dependencies form a cycle: " + " -> ".join(cycle) + ".")


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path (first node repeated at the end), or None: depth-first
    search keeping the current path; a node met again on the path closes a cycle."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in graph.get(node, []):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return None

    for start in graph:
        found = visit(start, [])
        if found:
            return found
    return None


# --- derived fields -----------------------------------------------------------------------

def fargate_compatible(td: dict) -> bool:
    """Whether FARGATE can run this definition: awsvpc, a Fargate task size, and none of
    the options Fargate refuses."""
    containers = td["containerDefinitions"]
    return (td["networkMode"] == "awsvpc"
            and "cpu" in td and "memory" in td and fargate_size_ok(td["cpu"], td["memory"])
            and td.get("pidMode") != "host" and "ipcMode" not in td
            and not any((v.get("host") or {}).get("sourcePath") for v in td["volumes"])
            and not any(c.get("privileged") for c in containers)
            and all((c.get(f) or 0) <= FARGATE_MAX_TIMEOUT
                    for c in containers for f in ("startTimeout", "stopTimeout")))


def compatibilities(td: dict) -> list[str]:
    return ["EC2", "FARGATE"] if fargate_compatible(td) else ["EC2"]


def _is_ecr_image(image: str) -> bool:
    """Whether ``image`` names a registry host: an ECR one (``ecr.scope``'s grammar) or
    Corral's own at a local address."""
    host, slash, _ = image.partition("/")
    return bool(slash) and (registry_of_host(host) is not None
                            or _LOCAL_REGISTRY.fullmatch(host) is not None)


def requires_attributes(td: dict) -> list[str]:
    """The agent capabilities a container instance needs, as ECS derives them (a modest
    subset: the ones tied to the features Corral runs)."""
    out: list[str] = []
    add = out.append
    containers = td["containerDefinitions"]
    ecr = any(_is_ecr_image(c["image"]) for c in containers)
    if ecr:
        add("com.amazonaws.ecs.capability.ecr-auth")
    if "taskRoleArn" in td:
        add("com.amazonaws.ecs.capability.task-iam-role")
    if "executionRoleArn" in td and ecr:
        add("ecs.capability.execution-role-ecr-pull")
    if td["networkMode"] == "awsvpc":
        add("com.amazonaws.ecs.capability.docker-remote-api.1.18")
        add("ecs.capability.task-eni")
    for c in containers:
        out.extend(_container_attributes(c, "executionRoleArn" in td))
    return list(dict.fromkeys(out))


def _container_attributes(c: dict, execution_role: bool) -> list[str]:
    out = []
    if c.get("memoryReservation") is not None:
        out.append("com.amazonaws.ecs.capability.docker-remote-api.1.21")
    if c.get("healthCheck"):
        out += ["com.amazonaws.ecs.capability.docker-remote-api.1.24",
                "ecs.capability.container-health-check"]
    if c.get("dependsOn") or "startTimeout" in c or "stopTimeout" in c:
        out.append("ecs.capability.container-ordering")
    log = c.get("logConfiguration")
    if log:
        out += [f"com.amazonaws.ecs.capability.logging-driver.{log['logDriver']}",
                "com.amazonaws.ecs.capability.docker-remote-api.1.19"]
        if log["logDriver"] == "awslogs" and execution_role:
            out.append("ecs.capability.execution-role-awslogs")
    return out
