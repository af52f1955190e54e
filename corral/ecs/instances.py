"""Container instances in the state store, and the resource accounting the agent does.

Corral's container instance is this machine. **It is registered in every ACTIVE cluster as soon
as the cluster exists** (CreateCluster, or the ``default`` cluster's creation on first use), the
way an EC2 instance appears once its agent registers: ListContainerInstances of a new cluster
shows it, and RunTask places on it. A user may deregister it (DeregisterContainerInstance);
it then stays out of that cluster, as a deregistered agent does, until the cluster is deleted
and created again. DeleteCluster removes the cluster's instance rows.

Accounting (reference §4.1): ``registeredResources`` are fixed at registration (CPU = cores ×
1024, MEMORY = MemTotal MiB, PORTS = the reserved ports). ``remainingResources`` = registered −
the ``x-corral.reserved`` of every task on the instance whose lastStatus is not STOPPED; its
PORTS list the taken ports (reserved + the tasks' static host ports), as AWS shows them.

Rows are handed out as plain dicts of the table's columns (``doc`` holds registeredResources,
the agent's attributes, custom attributes, versionInfo and a version counter).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from corral.ecs import cluster_query, host, names
from corral.ecs.placement import Candidate, Resources
from corral.store.schema import ecs_container_instances as _ci
from corral.store.schema import ecs_tasks as _tasks

LISTED = ("ACTIVE", "DRAINING")  # registered; INACTIVE = deregistered
PENDING_TASK_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")


def _scope(account: str, region: str, cluster: str):
    return and_(_ci.c.account_id == account, _ci.c.region == region, _ci.c.cluster == cluster)


def arn(row: dict[str, Any]) -> str:
    return names.container_instance_arn(row["region"], row["account_id"], row["cluster"],
                                        row["instance_id"])


# --- reading -------------------------------------------------------------------------------

def rows(db: Connection, account: str, region: str, cluster: str, *,
         statuses: tuple[str, ...] = LISTED) -> list[dict[str, Any]]:
    q = (select(_ci).where(_scope(account, region, cluster), _ci.c.status.in_(statuses))
         .order_by(_ci.c.registered_at, _ci.c.instance_id))
    return [dict(r._mapping) for r in db.execute(q)]


def get(db: Connection, account: str, region: str, cluster: str, ref: str
        ) -> dict[str, Any] | None:
    """An instance of the cluster (any status) by id or ARN; None when it is not there."""
    q = select(_ci).where(_scope(account, region, cluster),
                          _ci.c.instance_id == names.last_part(ref))
    row = db.execute(q).first()
    return dict(row._mapping) if row else None


def count_registered(db: Connection, account: str, region: str, cluster: str) -> int:
    q = select(func.count()).select_from(_ci).where(_scope(account, region, cluster),
                                                    _ci.c.status.in_(LISTED))
    return db.execute(q).scalar_one()


def active_tasks(db: Connection, account: str, region: str, cluster: str,
                 instance_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(lastStatus, doc) of the cluster's tasks that are not STOPPED (on one instance when
    ``instance_id`` is given)."""
    q = select(_tasks.c.last_status, _tasks.c.doc).where(
        _tasks.c.account_id == account, _tasks.c.region == region, _tasks.c.cluster == cluster,
        _tasks.c.last_status != "STOPPED")
    if instance_id is not None:
        q = q.where(_tasks.c.container_instance == instance_id)
    return [(r.last_status, r.doc) for r in db.execute(q)]


# --- accounting ----------------------------------------------------------------------------

def _resource(doc_resources: list[dict], name: str) -> dict[str, Any]:
    return next((r for r in doc_resources if r["name"] == name), {})


def registered(row: dict[str, Any]) -> Resources:
    res = row["doc"]["registeredResources"]
    return Resources(
        cpu=_resource(res, "CPU").get("integerValue", 0),
        memory=_resource(res, "MEMORY").get("integerValue", 0),
        ports=frozenset(int(p) for p in _resource(res, "PORTS").get("stringSetValue", [])),
        ports_udp=frozenset(int(p) for p in _resource(res, "PORTS_UDP").get("stringSetValue",
                                                                            [])))


def _held(tasks: list[tuple[str, dict]], base: Resources) -> Resources:
    cpu, memory = base.cpu, base.memory
    ports, udp = set(base.ports), set(base.ports_udp)
    for _, doc in tasks:
        held = (doc.get("x-corral") or {}).get("reserved") or {}
        cpu -= held.get("cpu", 0)
        memory -= held.get("memory", 0)
        ports.update(held.get("ports", []))
        udp.update(held.get("portsUdp", []))
    return Resources(cpu, memory, frozenset(ports), frozenset(udp))


def remaining(db: Connection, account: str, region: str, row: dict[str, Any]) -> Resources:
    """Registered minus what the instance's tasks that are not STOPPED hold."""
    tasks = active_tasks(db, account, region, row["cluster"], row["instance_id"])
    return _held(tasks, registered(row))


def _counts(tasks: list[tuple[str, dict]]) -> tuple[int, int]:
    running = sum(1 for status, _ in tasks if status == "RUNNING")
    pending = sum(1 for status, _ in tasks if status in PENDING_TASK_STATES)
    return running, pending


# --- shapes --------------------------------------------------------------------------------

def _integer(name: str, value: int) -> dict[str, Any]:
    return {"name": name, "type": "INTEGER", "doubleValue": 0.0, "longValue": 0,
            "integerValue": value}


def _string_set(name: str, values: frozenset[int]) -> dict[str, Any]:
    return {"name": name, "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0,
            "integerValue": 0, "stringSetValue": [str(p) for p in sorted(values)]}


def resources_shape(r: Resources) -> list[dict[str, Any]]:
    return [_integer("CPU", r.cpu), _integer("MEMORY", r.memory),
            _string_set("PORTS", r.ports), _string_set("PORTS_UDP", r.ports_udp)]


def attributes(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent's attributes followed by the custom ones (PutAttributes)."""
    return list(row["doc"]["attributes"]) + list(row["doc"].get("customAttributes", []))


def view(db: Connection, row: dict[str, Any], *, tags: list[dict] | None = None
         ) -> dict[str, Any]:
    """The ContainerInstance shape (``tags`` given when the caller asked for TAGS)."""
    tasks = active_tasks(db, row["account_id"], row["region"], row["cluster"],
                         row["instance_id"])
    running, pending = _counts(tasks)
    doc = row["doc"]
    out = {
        "containerInstanceArn": arn(row),
        "ec2InstanceId": row["ec2_instance_id"],
        "version": doc.get("version", 1),
        "versionInfo": doc["versionInfo"],
        "remainingResources": resources_shape(_held(tasks, registered(row))),
        "registeredResources": doc["registeredResources"],
        "status": row["status"],
        "agentConnected": row["status"] != "INACTIVE",
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "attributes": attributes(row),
        "registeredAt": row["registered_at"],
        "attachments": [],
    }
    if tags is not None:
        out["tags"] = tags
    return out


def facts(row: dict[str, Any], tasks: list[tuple[str, dict]]) -> cluster_query.Facts:
    """What the cluster query language sees of the instance."""
    return cluster_query.Facts(
        attributes={a["name"]: a.get("value") for a in attributes(row)},
        ec2_instance_id=row["ec2_instance_id"],
        agent_connected=row["status"] != "INACTIVE",
        agent_version=row["doc"]["versionInfo"]["agentVersion"],
        registered_at=row["registered_at"],
        running_tasks_count=_counts(tasks)[0],
        task_groups=frozenset(doc.get("group") for _, doc in tasks if doc.get("group")),
    )


def candidates(db: Connection, account: str, region: str, cluster: str) -> list[Candidate]:
    """The cluster's registered instances as the placement planner sees them."""
    out = []
    for row in rows(db, account, region, cluster):
        tasks = active_tasks(db, account, region, cluster, row["instance_id"])
        out.append(Candidate(
            instance_id=row["instance_id"], arn=arn(row), status=row["status"],
            remaining=_held(tasks, registered(row)), facts=facts(row, tasks),
            groups=tuple(doc.get("group") or "" for _, doc in tasks)))
    return out


# --- writing -------------------------------------------------------------------------------

def register_local(db: Connection, account: str, region: str, cluster: str, now: datetime
                   ) -> dict[str, Any]:
    """A new registration of this machine in the cluster."""
    me = host.local()
    doc = {
        "registeredResources": resources_shape(Resources(
            me.cpu_units, me.memory_mib, frozenset(host.RESERVED_PORTS), frozenset())),
        "attributes": me.attributes(region),
        "customAttributes": [],
        "versionInfo": me.version_info(),
        "version": 1,
    }
    row = {"account_id": account, "region": region, "cluster": cluster,
           "instance_id": names.new_id(), "ec2_instance_id": me.ec2_instance_id,
           "status": "ACTIVE", "registered_at": now, "doc": doc}
    db.execute(_ci.insert().values(**row))
    return row


def ensure_local(db: Connection, account: str, region: str, cluster: str, now: datetime
                 ) -> dict[str, Any] | None:
    """This machine's registration in the cluster, registering it if it never was; None when
    a user deregistered it (it stays out until the cluster is created again)."""
    mine = [r for r in rows(db, account, region, cluster, statuses=("ACTIVE", "DRAINING",
                                                                     "INACTIVE"))
            if r["ec2_instance_id"] == host.local().ec2_instance_id]
    live = [r for r in mine if r["status"] in LISTED]
    if live:
        return live[0]
    if mine:
        return None
    return register_local(db, account, region, cluster, now)


def update(db: Connection, row: dict[str, Any], *, status: str | None = None,
           doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """Change status and/or doc, bumping the version counter; the updated row."""
    new_doc = dict(doc if doc is not None else row["doc"])
    new_doc["version"] = row["doc"].get("version", 1) + 1
    values = {"doc": new_doc, "status": status or row["status"]}
    db.execute(_ci.update().where(_scope(row["account_id"], row["region"], row["cluster"]),
                                  _ci.c.instance_id == row["instance_id"]).values(**values))
    return {**row, **values}


def forget_cluster(db: Connection, account: str, region: str, cluster: str) -> None:
    """Every instance row of a deleted cluster."""
    db.execute(delete(_ci).where(_scope(account, region, cluster)))


def is_local(row: dict[str, Any]) -> bool:
    return row["ec2_instance_id"] == host.local().ec2_instance_id
