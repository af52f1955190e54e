"""Tags of any resource, keyed by ARN (shared by every service)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from corral.store.schema import resource_tags


def get(db: Connection, arn: str) -> dict[str, str]:
    rows = db.execute(
        select(resource_tags.c.key, resource_tags.c.value)
        .where(resource_tags.c.arn == arn).order_by(resource_tags.c.key)
    )
    return {k: v for k, v in rows}


def put(db: Connection, arn: str, tags: dict[str, str]) -> None:
    if not tags:
        return
    db.execute(delete(resource_tags).where(resource_tags.c.arn == arn,
                                           resource_tags.c.key.in_(list(tags))))
    db.execute(resource_tags.insert(), [{"arn": arn, "key": k, "value": v} for k, v in tags.items()])


def remove_all(db: Connection, arn: str) -> None:
    """Every tag of a resource that is gone."""
    db.execute(delete(resource_tags).where(resource_tags.c.arn == arn))


def remove(db: Connection, arn: str, keys: list[str]) -> None:
    db.execute(delete(resource_tags).where(resource_tags.c.arn == arn,
                                           resource_tags.c.key.in_(keys)))
