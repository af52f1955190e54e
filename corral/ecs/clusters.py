"""ECS clusters in the state store, and the Cluster shape with its live counts.

A row is keyed by (account, region, name) with ``status`` ACTIVE or INACTIVE and a JSON ``doc``
holding what the cluster was given: settings, configuration, capacityProviders,
defaultCapacityProviderStrategy, serviceConnectDefaults. Counts are never stored: running and
pending tasks come from ``ecs_tasks``, registered instances from ``ecs_container_instances``,
services from ``ecs_services`` (:func:`_service_counts`).

Other operations find their cluster with :func:`resolve`: an ACTIVE cluster by name or ARN; the
``default`` cluster is created on first use, as AWS creates it for an account's first RunTask
or CreateService; a missing or INACTIVE cluster raises ``ClusterNotFoundException("Cluster not
found.")``, AWS's answer for both. Creating a cluster also registers this machine as its
container instance (see :mod:`corral.ecs.instances`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from corral.aws import arns
from corral.ecs import instances, names, services, tag_ops
from corral.ecs.errors import ClusterNotFoundException, InvalidParameterException
from corral.store.schema import ecs_clusters as _cl
from corral.store.schema import ecs_tasks as _tasks

_NAME = re.compile(r"^[a-zA-Z0-9\-_]{1,255}$")
DEFAULT_SETTINGS = [{"name": "containerInsights", "value": "disabled"}]
# Launch type -> the word AWS's STATISTICS names use.
_LAUNCH_WORDS = (("EC2", "EC2"), ("FARGATE", "Fargate"), ("EXTERNAL", "External"))


def validate_name(name: str) -> None:
    if not _NAME.match(name):
        # AWS's own wording for a cluster name or reference outside the pattern.
        raise InvalidParameterException(f"Cluster must match ^[a-zA-Z0-9\\-_]{{1,255}}$, "
                                        f"but was {name}")


def arn(row: dict[str, Any]) -> str:
    return names.cluster_arn(row["region"], row["account_id"], row["name"])


# --- tags (validation and shape live in corral.ecs.tag_ops) ------------------------------

def store_tags(db: Connection, resource_arn: str, tags_param: list[dict] | None) -> None:
    tag_ops.store_tags(db, resource_arn, tags_param)


def tags_view(db: Connection, resource_arn: str) -> list[dict[str, str]]:
    return tag_ops.tags_view(db, resource_arn)


# --- rows ----------------------------------------------------------------------------------

def _key(account: str, region: str, name: str):
    return and_(_cl.c.account_id == account, _cl.c.region == region, _cl.c.name == name)


def get(db: Connection, account: str, region: str, name: str) -> dict[str, Any] | None:
    """The cluster row in any status; None when it never existed."""
    row = db.execute(select(_cl).where(_key(account, region, name))).first()
    return dict(row._mapping) if row else None


def name_of(account: str, region: str, ref: str | None) -> str | None:
    """The cluster name a name or ARN refers to in this account and region (None when the
    ARN names another account, region or resource type)."""
    parsed = arns.parse(ref) if ref else None
    if parsed is None:
        return names.cluster_name(ref)
    if (parsed.service, parsed.account, parsed.region) != ("ecs", account, region) or \
            parsed.resource_type != "cluster":
        return None
    return parsed.resource_id


def resolve(db: Connection, account: str, region: str, ref: str | None, *,
            create_default: bool = True) -> dict[str, Any]:
    """The ACTIVE cluster ``ref`` names (``default`` when none); the default cluster is
    created on first use when ``create_default`` (only in a write transaction)."""
    name = name_of(account, region, ref)
    if name is None:
        raise ClusterNotFoundException()
    row = get(db, account, region, name)
    if row is not None and row["status"] == "ACTIVE":
        return row
    if name == names.DEFAULT_CLUSTER and create_default and row is None:
        return create(db, account, region, name, datetime.now(UTC))
    if row is None and not arns.parse(ref or ""):
        validate_name(name)  # a malformed name gets AWS's pattern message, not "not found"
    raise ClusterNotFoundException()


def create(db: Connection, account: str, region: str, name: str, now: datetime,
           doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new ACTIVE cluster (replacing an INACTIVE row of the same name) with this machine
    registered in it."""
    doc = {"settings": DEFAULT_SETTINGS, "capacityProviders": [],
           "defaultCapacityProviderStrategy": [], **(doc or {})}
    row = {"account_id": account, "region": region, "name": name, "status": "ACTIVE",
           "created_at": now, "doc": doc}
    if get(db, account, region, name) is not None:
        db.execute(_cl.update().where(_key(account, region, name)).values(**row))
    else:
        db.execute(_cl.insert().values(**row))
    instances.ensure_local(db, account, region, name, now)
    return row


def update(db: Connection, row: dict[str, Any], *, status: str | None = None,
           doc: dict[str, Any] | None = None) -> dict[str, Any]:
    values = {"status": status or row["status"], "doc": doc if doc is not None else row["doc"]}
    db.execute(_cl.update().where(_key(row["account_id"], row["region"], row["name"]))
               .values(**values))
    return {**row, **values}


def page(db: Connection, account: str, region: str, *, after: str, limit: int
         ) -> list[dict[str, Any]]:
    """ACTIVE clusters ordered by name, after the name ``after``."""
    q = (select(_cl).where(_cl.c.account_id == account, _cl.c.region == region,
                           _cl.c.status == "ACTIVE", _cl.c.name > after)
         .order_by(_cl.c.name).limit(limit))
    return [dict(r._mapping) for r in db.execute(q)]


# --- counts --------------------------------------------------------------------------------

def task_counts(db: Connection, account: str, region: str, cluster: str
                ) -> dict[tuple[str, str], int]:
    """(launch type, RUNNING | PENDING) -> number of tasks; PENDING covers PROVISIONING,
    PENDING and ACTIVATING (reference §12: most likely what pendingCount means)."""
    q = (select(_tasks.c.launch_type, _tasks.c.last_status, func.count())
         .where(_tasks.c.account_id == account, _tasks.c.region == region,
                _tasks.c.cluster == cluster, _tasks.c.last_status != "STOPPED")
         .group_by(_tasks.c.launch_type, _tasks.c.last_status))
    out: dict[tuple[str, str], int] = {}
    for launch_type, status, n in db.execute(q):
        state = "PENDING" if status in instances.PENDING_TASK_STATES else status
        out[(launch_type, state)] = out.get((launch_type, state), 0) + n
    return out


def active_task_count(db: Connection, account: str, region: str, cluster: str) -> int:
    """Tasks whose lastStatus is not STOPPED (they block DeleteCluster)."""
    q = select(func.count()).select_from(_tasks).where(
        _tasks.c.account_id == account, _tasks.c.region == region, _tasks.c.cluster == cluster,
        _tasks.c.last_status != "STOPPED")
    return db.execute(q).scalar_one()


def _service_counts(db: Connection, account: str, region: str, cluster: str
                    ) -> dict[tuple[str, str], int]:
    """(launch type, ACTIVE | DRAINING) -> number of services; a service on a capacity
    provider strategy counts as FARGATE (the only providers Corral has)."""
    out: dict[tuple[str, str], int] = {}
    for row in services.in_cluster(db, account, region, cluster,
                                   statuses=("ACTIVE", "DRAINING")):
        launch = "FARGATE" if row.doc.get("capacityProviderStrategy") else \
            row.doc.get("launchType", "EC2")
        key = (launch, row.doc["status"])
        out[key] = out.get(key, 0) + 1
    return out


def _active_services(db: Connection, account: str, region: str, cluster: str) -> int:
    """ACTIVE services of the cluster (activeServicesCount, DeleteCluster's refusal)."""
    return len(services.in_cluster(db, account, region, cluster, statuses=("ACTIVE",)))


def _statistics(tasks: dict[tuple[str, str], int], services: dict[tuple[str, str], int]
                ) -> list[dict[str, str]]:
    out = []
    for state in ("running", "pending"):
        for launch, word in _LAUNCH_WORDS:
            n = tasks.get((launch, state.upper()), 0)
            out.append({"name": f"{state}{word}TasksCount", "value": str(n)})
    for state in ("active", "draining"):
        for launch, word in _LAUNCH_WORDS:
            n = services.get((launch, state.upper()), 0)
            out.append({"name": f"{state}{word}ServiceCount", "value": str(n)})
    return out


# --- the Cluster shape ---------------------------------------------------------------------

def view(db: Connection, row: dict[str, Any], include: list[str] | tuple[str, ...] = ()
         ) -> dict[str, Any]:
    """The Cluster shape; ``include`` takes DescribeClusters' ATTACHMENTS, CONFIGURATIONS,
    SETTINGS, STATISTICS and TAGS (Create/Update answers pass them all)."""
    account, region, name = row["account_id"], row["region"], row["name"]
    active = row["status"] == "ACTIVE"
    tasks = task_counts(db, account, region, name) if active else {}
    services = _service_counts(db, account, region, name) if active else {}
    doc = row["doc"]
    out: dict[str, Any] = {
        "clusterArn": arn(row), "clusterName": name, "status": row["status"],
        "registeredContainerInstancesCount":
            instances.count_registered(db, account, region, name) if active else 0,
        "runningTasksCount": sum(n for (_, s), n in tasks.items() if s == "RUNNING"),
        "pendingTasksCount": sum(n for (_, s), n in tasks.items() if s == "PENDING"),
        "activeServicesCount": _active_services(db, account, region, name) if active else 0,
        "statistics": _statistics(tasks, services) if "STATISTICS" in include else [],
        "tags": tags_view(db, arn(row)) if "TAGS" in include else [],
        "capacityProviders": doc.get("capacityProviders", []),
        "defaultCapacityProviderStrategy": doc.get("defaultCapacityProviderStrategy", []),
    }
    if "SETTINGS" in include:
        out["settings"] = doc.get("settings", DEFAULT_SETTINGS)
    if "CONFIGURATIONS" in include and doc.get("configuration"):
        out["configuration"] = doc["configuration"]
    if "ATTACHMENTS" in include:
        out["attachments"] = []  # FARGATE / FARGATE_SPOT need no Auto Scaling attachment
    if doc.get("serviceConnectDefaults"):
        out["serviceConnectDefaults"] = doc["serviceConnectDefaults"]
    return out


ALL_INCLUDES = ("ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS")
