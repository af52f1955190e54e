"""Task placement on container instances (pure: data in, decisions out, no I/O).

    reservation(task_def, overrides) ─> Reservation   what one task holds on its instance
    place(reservation, candidates, constraints, strategies, group=, count=, rng=)
        for each of the ``count`` tasks, one at a time (reference §4.3):
          1. candidates: ACTIVE instances (DRAINING ones take no new tasks)
          2. resources:  CPU, then MEMORY, then PORTS must fit ─ else RESOURCE:<what>
          3. constraints (binding): memberOf <expression>, distinctInstance
          4. strategies (best effort, in order; later ones break ties): binpack, spread, random
          5. select the best; subtract its reservation, add the task to the instance's groups
        ─> Placement(placed=[instance id per placed task], failures=[(arn, reason)...])

A task that cannot be placed becomes one failure entry, named after the *closest* instance:
the one that got furthest through the checks (resources, then constraints), as ECS reports
"the closest matching container-instance". Reasons are AWS's strings: ``RESOURCE:CPU``,
``RESOURCE:MEMORY``, ``RESOURCE:PORTS`` (§4.6), ``AGENT`` for a disconnected agent, and the
constraint texts ECS prints: ``MemberOf placement constraint unsatisfied.``,
``DistinctInstance placement constraint unsatisfied.``. A cluster without an ACTIVE instance
raises :class:`NoContainerInstances` (RunTask answers InvalidParameterException).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from corral.ecs import cluster_query
from corral.ecs.errors import InvalidParameterException
from corral.ecs.taskdef_validation import parse_cpu, parse_memory

MAX_CONSTRAINTS = 10  # per task: definition + RunTask / service (reference §4.5)
MAX_STRATEGIES = 5  # per RunTask / service (§4.4)
MEMBER_OF_UNSATISFIED = "MemberOf placement constraint unsatisfied."
DISTINCT_UNSATISFIED = "DistinctInstance placement constraint unsatisfied."


class NoContainerInstances(InvalidParameterException):
    def __init__(self, message: str = "No Container Instances were found in your cluster."):
        super().__init__(message)


@dataclass(frozen=True)
class Reservation:
    """What one task holds on its container instance while it is not STOPPED."""

    cpu: int = 0
    memory: int = 0  # MiB
    ports: tuple[int, ...] = ()  # static TCP host ports
    ports_udp: tuple[int, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        """The ``x-corral.reserved`` form a task row keeps."""
        return {"cpu": self.cpu, "memory": self.memory, "ports": list(self.ports),
                "portsUdp": list(self.ports_udp)}


@dataclass(frozen=True)
class Resources:
    """An instance's free CPU units and MiB, and the host ports already taken (reserved by the
    host or held by tasks): AWS's ``remainingResources`` lists taken ports, not free ones."""

    cpu: int
    memory: int
    ports: frozenset[int] = frozenset()
    ports_udp: frozenset[int] = frozenset()

    def minus(self, r: Reservation) -> Resources:
        return Resources(self.cpu - r.cpu, self.memory - r.memory,
                         self.ports | set(r.ports), self.ports_udp | set(r.ports_udp))


@dataclass(frozen=True)
class Candidate:
    instance_id: str
    arn: str
    status: str  # ACTIVE | DRAINING
    remaining: Resources
    facts: cluster_query.Facts = field(default_factory=cluster_query.Facts)
    groups: tuple[str, ...] = ()  # the group of each task on the instance (a multiset)


@dataclass(frozen=True)
class Placement:
    placed: list[str]  # an instance id per placed task, in placement order
    failures: list[tuple[str, str]]  # (closest instance arn, reason) per unplaced task


# --- reservation (reference §4.2, agent task.go ToHostResources) ----------------------------

def _units(value: Any, parse) -> int | None:
    """A task size as RegisterTaskDefinition reads it (``"512"``, ``"1 vCPU"``, ``"2 GB"``);
    None when unset. A size that is not one is the caller's mistake, not a 500."""
    if value in (None, ""):
        return None
    amount = parse(str(value))
    if amount is None:
        raise InvalidParameterException(f"'{value}' is not a valid CPU or memory amount.")
    return amount


def _container_memory(c: dict[str, Any]) -> int:
    soft = c.get("memoryReservation") or 0
    return soft if soft > 0 else (c.get("memory") or 0)


def _merged_containers(task_def: dict, overrides: dict) -> list[dict[str, Any]]:
    by_name = {o.get("name"): o for o in overrides.get("containerOverrides") or []}
    out = []
    for c in task_def.get("containerDefinitions") or []:
        o = by_name.get(c.get("name"), {})
        out.append({**c, **{k: o[k] for k in ("cpu", "memory", "memoryReservation")
                            if o.get(k) is not None}})
    return out


def _host_ports(task_def: dict, containers: list[dict]) -> tuple[list[int], list[int]]:
    mode = task_def.get("networkMode") or "bridge"
    tcp: list[int] = []
    udp: list[int] = []
    if mode == "awsvpc":  # each task has its own namespace: nothing taken on the host
        return tcp, udp
    for c in containers:
        for pm in c.get("portMappings") or []:
            port = pm.get("hostPort") or (pm.get("containerPort") if mode == "host" else 0)
            if port:  # 0 / unset in bridge mode is a dynamic port: not reserved up front
                (udp if pm.get("protocol") == "udp" else tcp).append(int(port))
    return tcp, udp


def reservation(task_def: dict[str, Any], overrides: dict[str, Any] | None) -> Reservation:
    """What a task of ``task_def`` run with ``overrides`` holds on its instance: task-level
    cpu/memory over the sum of its containers (memoryReservation preferred over memory), and
    its static host ports (none for awsvpc)."""
    overrides = overrides or {}
    containers = _merged_containers(task_def, overrides)
    cpu = _units(overrides.get("cpu"), parse_cpu)
    if cpu is None:
        cpu = _units(task_def.get("cpu"), parse_cpu)
    if cpu is None:
        cpu = sum(c.get("cpu") or 0 for c in containers)
    memory = _units(overrides.get("memory"), parse_memory)
    if memory is None:
        memory = _units(task_def.get("memory"), parse_memory)
    if memory is None:
        memory = sum(_container_memory(c) for c in containers)
    tcp, udp = _host_ports(task_def, containers)
    return Reservation(cpu, memory, tuple(tcp), tuple(udp))


# --- validation ----------------------------------------------------------------------------

def validate_constraints(constraints: list[dict] | None, *, where: str = "RunTask",
                         allow_distinct: bool = True) -> None:
    """AWS's checks on placementConstraints (InvalidParameterException); ``allow_distinct``
    is False for task definitions, where ECS refuses distinctInstance."""
    constraints = constraints or []
    if len(constraints) > MAX_CONSTRAINTS:
        raise InvalidParameterException(
            f"Too many placement constraints: {len(constraints)}; at most {MAX_CONSTRAINTS} "
            f"are allowed per task.")
    for c in constraints:
        kind, expr = c.get("type"), c.get("expression")
        if kind == "distinctInstance":
            if not allow_distinct:
                raise InvalidParameterException(
                    f"{where}: constraint.type 'distinctInstance' is not supported.")
            if expr:
                raise InvalidParameterException(
                    "A distinctInstance placement constraint takes no expression.")
        elif kind == "memberOf":
            if not expr:
                raise InvalidParameterException(
                    "A memberOf placement constraint requires an expression.")
            try:
                cluster_query.parse(expr)
            except ValueError as e:
                raise InvalidParameterException(
                    f"Invalid placement constraint expression '{expr}': {e}.") from None
        else:
            raise InvalidParameterException(
                f"Invalid placement constraint type '{kind}'. Valid types are memberOf and "
                f"distinctInstance.")


_STRATEGY_FIELDS = {"binpack": ("cpu", "memory"), "spread": None, "random": ()}


def validate_strategies(strategies: list[dict] | None) -> None:
    """AWS's checks on placementStrategy (InvalidParameterException)."""
    strategies = strategies or []
    if len(strategies) > MAX_STRATEGIES:
        raise InvalidParameterException(
            f"Too many placement strategies: {len(strategies)}; at most {MAX_STRATEGIES} "
            f"are allowed.")
    for s in strategies:
        kind, fld = s.get("type"), s.get("field")
        if kind not in _STRATEGY_FIELDS:
            raise InvalidParameterException(
                f"Invalid placement strategy type '{kind}'. Valid types are random, spread "
                f"and binpack.")
        if kind == "random" and fld:
            raise InvalidParameterException("A random placement strategy takes no field.")
        if kind == "binpack" and (fld or "").lower() not in ("cpu", "memory"):
            raise InvalidParameterException(
                f"Invalid field '{fld}' for a binpack placement strategy. Valid fields are "
                f"cpu and memory.")
        if kind == "spread" and not _spread_field_ok(fld):
            raise InvalidParameterException(
                f"Invalid field '{fld}' for a spread placement strategy. Valid fields are "
                f"instanceId, host and attribute:<name>.")


def _spread_field_ok(fld: str | None) -> bool:
    if not fld:
        return False
    return fld.lower() in ("instanceid", "host") or (
        fld.startswith("attribute:") and len(fld) > len("attribute:"))


# --- placement -----------------------------------------------------------------------------

# The checks, in the order ECS applies them; a candidate's "distance" is how many it passed.
def _resource_failure(c: Candidate, r: Reservation) -> str | None:
    if not c.facts.agent_connected:
        return "AGENT"
    if r.cpu > c.remaining.cpu:
        return "RESOURCE:CPU"
    if r.memory > c.remaining.memory:
        return "RESOURCE:MEMORY"
    if set(r.ports) & c.remaining.ports or set(r.ports_udp) & c.remaining.ports_udp:
        return "RESOURCE:PORTS"
    return None


def _constraint_failure(c: Candidate, constraints: list[dict], group: str) -> str | None:
    for con in constraints:
        if con.get("type") == "memberOf":
            if not cluster_query.matches(con["expression"], c.facts):
                return MEMBER_OF_UNSATISFIED
        elif con.get("type") == "distinctInstance" and group in c.groups:
            return DISTINCT_UNSATISFIED
    return None


_CHECK_ORDER = ("AGENT", "RESOURCE:CPU", "RESOURCE:MEMORY", "RESOURCE:PORTS",
                MEMBER_OF_UNSATISFIED, DISTINCT_UNSATISFIED)


def _attribute(c: Candidate, name: str) -> str | None:
    return c.facts.attributes.get(name)


def _score(c: Candidate, strategy: dict, everyone: list[Candidate], group: str,
           rng: random.Random) -> float:
    """Lower is better for this strategy."""
    kind, fld = strategy.get("type"), (strategy.get("field") or "")
    if kind == "binpack":  # least remaining of the resource that still fits first
        return c.remaining.memory if fld.lower() == "memory" else c.remaining.cpu
    if kind == "spread":
        if fld.lower() in ("instanceid", "host"):
            return c.groups.count(group)
        name = fld.split(":", 1)[1]  # fewest group tasks in this candidate's attribute bucket
        value = _attribute(c, name)
        return sum(o.groups.count(group) for o in everyone if _attribute(o, name) == value)
    return rng.random()


def _choose(fits: list[Candidate], everyone: list[Candidate], strategies: list[dict],
            group: str, rng: random.Random) -> Candidate:
    # Ties after every strategy go to a random candidate (RunTask's default is random).
    def key(c: Candidate) -> tuple[float, ...]:
        return (*(_score(c, s, everyone, group, rng) for s in strategies), rng.random())

    return min(fits, key=key)


def _with_task(c: Candidate, r: Reservation, group: str) -> Candidate:
    facts = replace(c.facts, running_tasks_count=c.facts.running_tasks_count + 1,
                    task_groups=c.facts.task_groups | {group})
    return replace(c, remaining=c.remaining.minus(r), groups=(*c.groups, group), facts=facts)


def _place_one(r: Reservation, live: list[Candidate], constraints: list[dict],
               strategies: list[dict], group: str, rng: random.Random
               ) -> Candidate | tuple[str, str]:
    """The chosen candidate, or (closest arn, reason) when none fits."""
    fits, misses = [], []
    for c in live:
        reason = _resource_failure(c, r) or _constraint_failure(c, constraints, group)
        if reason is None:
            fits.append(c)
        else:
            misses.append((_CHECK_ORDER.index(reason), c.arn, reason))
    if not fits:
        _, arn, reason = max(misses, key=lambda m: m[0])
        return arn, reason
    return _choose(fits, live, strategies, group, rng)


def place(reservation: Reservation, candidates: list[Candidate], constraints: list[dict],
          strategies: list[dict], *, group: str, count: int, rng: random.Random) -> Placement:
    """Place ``count`` tasks of ``group`` one at a time, each seeing the resources and groups
    of the ones placed before it. Constraints and strategies are assumed valid (see
    ``validate_constraints`` / ``validate_strategies``)."""
    live = [c for c in candidates if c.status == "ACTIVE"]
    if not live:
        raise NoContainerInstances()
    placed: list[str] = []
    failures: list[tuple[str, str]] = []
    for _ in range(count):
        chosen = _place_one(reservation, live, constraints or [], strategies or [], group, rng)
        if isinstance(chosen, tuple):
            failures.append(chosen)
            continue
        placed.append(chosen.instance_id)
        live = [_with_task(c, reservation, group) if c is chosen else c for c in live]
    return Placement(placed, failures)
