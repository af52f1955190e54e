"""ECS identifiers and ARNs (new-format, long ARNs): built and parsed here only.

    cluster              arn:aws:ecs:<region>:<account>:cluster/<name>
    task definition      arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>
    task                 arn:aws:ecs:<region>:<account>:task/<cluster>/<32 hex>
    container            arn:aws:ecs:<region>:<account>:container/<cluster>/<task id>/<uuid>
    container instance   arn:aws:ecs:<region>:<account>:container-instance/<cluster>/<32 hex>
    service              arn:aws:ecs:<region>:<account>:service/<cluster>/<name>
    service deployment   arn:aws:ecs:<region>:<account>:service-deployment/<cluster>/<name>/<id>
    service revision     arn:aws:ecs:<region>:<account>:service-revision/<cluster>/<name>/<id>

A service deployment's and service revision's ``<id>`` are the 19 digits of the deployment id
(``ecs-svc/<digits>``), so the two of one deployment share it.
"""

from __future__ import annotations

import uuid

from corral.aws import arns

DEFAULT_CLUSTER = "default"


def new_id() -> str:
    """A task or container-instance id: 32 lowercase hex digits, as ECS prints them."""
    return uuid.uuid4().hex


def cluster_arn(region: str, account: str, name: str) -> str:
    return arns.build("ecs", region, account, f"cluster/{name}")


def task_definition_arn(region: str, account: str, family: str, revision: int) -> str:
    return arns.build("ecs", region, account, f"task-definition/{family}:{revision}")


def task_arn(region: str, account: str, cluster: str, task_id: str) -> str:
    return arns.build("ecs", region, account, f"task/{cluster}/{task_id}")


def container_arn(region: str, account: str, cluster: str, task_id: str, cid: str) -> str:
    return arns.build("ecs", region, account, f"container/{cluster}/{task_id}/{cid}")


def container_instance_arn(region: str, account: str, cluster: str, instance_id: str) -> str:
    return arns.build("ecs", region, account, f"container-instance/{cluster}/{instance_id}")


def service_arn(region: str, account: str, cluster: str, name: str) -> str:
    return arns.build("ecs", region, account, f"service/{cluster}/{name}")


def service_deployment_arn(region: str, account: str, cluster: str, name: str,
                           deployment_id: str) -> str:
    """A deployment's ServiceDeployment ARN: the 19 digits of ``ecs-svc/<digits>``."""
    digits = deployment_id.rsplit("/", 1)[-1]
    return arns.build("ecs", region, account, f"service-deployment/{cluster}/{name}/{digits}")


def service_revision_arn(region: str, account: str, cluster: str, name: str,
                         deployment_id: str) -> str:
    """The ServiceRevision ARN of what a deployment ran: the same digits as its deployment."""
    digits = deployment_id.rsplit("/", 1)[-1]
    return arns.build("ecs", region, account, f"service-revision/{cluster}/{name}/{digits}")


def cluster_name(ref: str | None) -> str:
    """The cluster name from a name or ARN (``default`` when none is given)."""
    if not ref:
        return DEFAULT_CLUSTER
    parsed = arns.parse(ref)
    if parsed is not None and parsed.resource.startswith("cluster/"):
        return parsed.resource.split("/", 1)[1]
    return ref


def last_part(ref: str) -> str:
    """A task or container-instance id from an id or ARN (``…/<cluster>/<id>``; old-style
    ``…/<id>``)."""
    return ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref


def family_revision(ref: str) -> tuple[str, int | None]:
    """``family``, ``family:revision`` or a task-definition ARN ⇒ (family, revision|None).
    A revision that is not a number raises ValueError."""
    parsed = arns.parse(ref)
    if parsed is not None:
        ref = parsed.resource.split("/", 1)[1] if "/" in parsed.resource else parsed.resource
    family, sep, rev = ref.partition(":")
    if not sep:
        return family, None
    if not rev.isdigit():
        raise ValueError(rev)
    return family, int(rev)
