"""ECS TagResource, UntagResource and ListTagsForResource (a mixin of EcsProvider), plus the
helpers other ECS operations use for their ``tags`` parameters.

ECS tags are ``{"key", "value"}`` (lowercase), stored by ARN in the shared tag store. A tag
operation first checks that the ARN names a resource of the caller's account and region:

    cluster/<name>                          ecs_clusters (INACTIVE ⇒ InvalidParameterException)
    task-definition/<family>:<revision>     ecs_task_definitions (not being deleted)
    task/<cluster>/<id>                     ecs_tasks
    container-instance/<cluster>/<id>       ecs_container_instances
    service/<cluster>/<name>                ecs_services (not INACTIVE)

Rules [BC TagResource.tags]: at most 50 tags per resource, keys 1–128 and values 0–256
characters of letters, numbers, spaces and ``+ - = . _ : / @``; the ``aws:`` prefix (any case)
is reserved for AWS on keys and values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select

from corral.aws import arns
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.ecs import taskdefs
from corral.ecs.errors import InvalidParameterException, ResourceNotFoundException
from corral.ecs.names import family_revision
from corral.store import tags as tag_store
from corral.store.schema import ecs_clusters, ecs_container_instances, ecs_services, ecs_tasks

MAX_TAGS = 50
MAX_KEY, MAX_VALUE = 128, 256
_ALLOWED = re.compile(r"^[\w\s+\-=.:/@]*$")
_INACTIVE_CLUSTER = "The specified cluster is inactive. Specify an active cluster and try again."
_NOT_FOUND = "The specified resource could not be found."


def tags_view(db: Connection, arn: str) -> list[dict[str, str]]:
    """The resource's tags in ECS's shape, ordered by key."""
    return [{"key": k, "value": v} for k, v in tag_store.get(db, arn).items()]


def store_tags(db: Connection, arn: str, tags_param: list[dict[str, Any]] | None) -> None:
    """Validate an ECS ``tags`` parameter and merge it into the resource's tags (a key given
    again takes the new value). Raises InvalidParameterException."""
    new = parse_tags(tags_param)
    if not new:
        return
    merged = tag_store.get(db, arn) | new
    if len(merged) > MAX_TAGS:
        raise InvalidParameterException(
            f"A resource can have at most {MAX_TAGS} tags; this request would leave "
            f"{len(merged)}.")
    tag_store.put(db, arn, new)


def parse_tags(tags_param: list[dict[str, Any]] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in tags_param or []:
        key, value = tag.get("key"), tag.get("value", "")
        if not key:
            raise InvalidParameterException("Tag keys must not be empty.")
        if value is None:
            value = ""
        _check_text("key", key, MAX_KEY)
        _check_text("value", value, MAX_VALUE)
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise InvalidParameterException(f"A resource can have at most {MAX_TAGS} tags.")
    return tags


def _check_text(what: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise InvalidParameterException(
            f"Tag {what} '{text[:40]}' is longer than {limit} characters.")
    if not _ALLOWED.match(text):
        raise InvalidParameterException(
            f"Tag {what} '{text}' contains characters that are not allowed: use letters, "
            f"numbers, spaces and + - = . _ : / @.")
    if text.lower().startswith("aws:"):
        raise InvalidParameterException(
            f"Tag {what} '{text}' uses the prefix 'aws:', which is reserved for AWS use.")


# --- which resources can be tagged ---------------------------------------------------------

def _split(resource_id: str) -> tuple[str | None, str]:
    """``<cluster>/<id>`` (new ARN format) or ``<id>`` (old format) ⇒ (cluster|None, id)."""
    cluster, sep, last = resource_id.rpartition("/")
    return (cluster if sep else None), last


def _cluster_exists(db: Connection, account: str, region: str, rid: str) -> bool:
    c = ecs_clusters.c
    row = db.execute(select(c.status).where(
        c.account_id == account, c.region == region, c.name == rid)).first()
    if row is not None and row[0] == "INACTIVE":
        raise InvalidParameterException(_INACTIVE_CLUSTER)  # AWS text
    return row is not None


def _taskdef_exists(db: Connection, account: str, region: str, rid: str) -> bool:
    try:
        family, revision = family_revision(rid)
    except ValueError:
        return False
    return revision is not None and taskdefs.exists(db, account, region, family, revision)


def _task_exists(db: Connection, account: str, region: str, rid: str) -> bool:
    cluster, task_id = _split(rid)
    t = ecs_tasks.c
    q = select(t.task_id).where(t.account_id == account, t.region == region,
                                t.task_id == task_id)
    if cluster is not None:
        q = q.where(t.cluster == cluster)
    return db.execute(q).first() is not None


def _instance_exists(db: Connection, account: str, region: str, rid: str) -> bool:
    cluster, instance_id = _split(rid)
    i = ecs_container_instances.c
    q = select(i.instance_id).where(i.account_id == account, i.region == region,
                                    i.instance_id == instance_id)
    if cluster is not None:
        q = q.where(i.cluster == cluster)
    return db.execute(q).first() is not None


def _service_exists(db: Connection, account: str, region: str, rid: str) -> bool:
    cluster, name = _split(rid)
    s = ecs_services.c
    q = select(s.name).where(s.account_id == account, s.region == region, s.name == name,
                             s.status != "INACTIVE")
    if cluster is not None:
        q = q.where(s.cluster == cluster)
    return db.execute(q).first() is not None


_EXISTS: dict[str, Callable[[Connection, str, str, str], bool]] = {
    "cluster": _cluster_exists,
    "task-definition": _taskdef_exists,
    "task": _task_exists,
    "container-instance": _instance_exists,
    "service": _service_exists,
}


def check_resource(ctx: RequestContext, resource_arn: str) -> None:
    """Raise unless ``resource_arn`` is a taggable ECS resource of the caller's scope."""
    arn = arns.parse(resource_arn)
    if arn is None or arn.service != "ecs" or "/" not in arn.resource:
        raise InvalidParameterException(
            f"Invalid identifier: '{resource_arn}' is not the ARN of an ECS resource.")
    kind, rid = arn.resource.split("/", 1)
    exists = _EXISTS.get(kind)
    if exists is None:
        raise InvalidParameterException(
            f"Corral does not support tags on ECS {kind} resources yet.")
    if (arn.account, arn.region) != (ctx.account_id, ctx.region):
        raise ResourceNotFoundException(_NOT_FOUND)
    if not exists(ctx.db, ctx.account_id, ctx.region, rid):
        raise ResourceNotFoundException(_NOT_FOUND)


def _resource_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [params["resourceArn"]]


class TagOperations:
    @acts_on(_resource_arn)
    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        check_resource(ctx, params["resourceArn"])
        store_tags(ctx.db, params["resourceArn"], params["tags"])
        return {}

    @acts_on(_resource_arn)
    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        check_resource(ctx, params["resourceArn"])
        keys = params["tagKeys"]
        for key in keys:
            if key.lower().startswith("aws:"):
                raise InvalidParameterException(
                    f"Tag key '{key}' uses the prefix 'aws:', which is reserved for AWS use.")
        if keys:
            tag_store.remove(ctx.db, params["resourceArn"], keys)
        return {}

    @acts_on(_resource_arn)
    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        check_resource(ctx, params["resourceArn"])
        return {"tags": tags_view(ctx.db, params["resourceArn"])}
