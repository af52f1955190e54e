"""Repository records in the state store, scoped by account and region."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select

from corral.aws import arns
from corral.store.schema import ecr_repositories, resource_tags


@dataclass(frozen=True)
class Repository:
    id: int
    account_id: str
    region: str
    name: str
    created_at: datetime
    image_tag_mutability: str
    mutability_exclusion_filters: list
    scan_on_push: bool
    encryption_type: str
    kms_key: str | None

    @property
    def arn(self) -> str:
        return arns.ecr_repository(self.region, self.account_id, self.name)


# Hot statements are built once (bound parameters); rows map onto Repository by position,
# since its fields follow the table's column order.
_t = ecr_repositories.c
_SCOPED = (_t.account_id == bindparam("account")) & (_t.region == bindparam("region"))
_GET = select(ecr_repositories).where(_SCOPED, _t.name == bindparam("name"))
_PAGE = (select(ecr_repositories).where(_SCOPED, _t.id > bindparam("after"))
         .order_by(_t.id).limit(bindparam("limit")))


def get(db: Connection, account_id: str, region: str, name: str) -> Repository | None:
    row = db.execute(_GET, {"account": account_id, "region": region, "name": name}).first()
    return Repository(*row) if row else None


def page(db: Connection, account_id: str, region: str, *, after_id: int, limit: int
         ) -> list[Repository]:
    rows = db.execute(_PAGE, {"account": account_id, "region": region, "after": after_id,
                              "limit": limit}).all()
    return [Repository(*r) for r in rows]


def insert(db: Connection, **values) -> Repository:
    new_id = db.execute(ecr_repositories.insert().values(**values)).inserted_primary_key[0]
    return Repository(id=new_id, **values)


def update(db: Connection, repo: Repository, **values) -> None:
    db.execute(ecr_repositories.update().where(ecr_repositories.c.id == repo.id).values(**values))


def remove(db: Connection, repo: Repository) -> None:
    """The repository with everything in it: images, tags, blob links, resource tags,
    lifecycle policy and preview."""
    from corral.ecr import images
    from corral.ecr.lifecycle import records as lifecycle_records

    images.remove_repository_content(db, repo.id)
    lifecycle_records.forget_repository(db, repo.id)
    db.execute(delete(resource_tags).where(resource_tags.c.arn == repo.arn))
    db.execute(delete(ecr_repositories).where(ecr_repositories.c.id == repo.id))
