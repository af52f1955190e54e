"""Task definition records in the state store, scoped by account and region.

One row per revision (``ecs_task_definitions``): the indexed columns (family, revision,
status, registered_at) plus ``doc``, the TaskDefinition shape. Timestamps inside ``doc`` are
kept as epoch seconds (JSON has no datetime) and handed out as aware datetimes, so callers
always see the shape the protocol layer serializes.

Revisions are never reused: DeleteTaskDefinitions only marks a row DELETE_IN_PROGRESS (ECS
deletes it later, asynchronously), and the next revision of a family is one more than the
highest ever registered. Deleted rows are invisible to :func:`resolve` and the listings.

Used by the task code: :func:`resolve` finds what RunTask/CreateService name, and
:func:`runnable_error` is the ClientException text for a definition that cannot run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from corral.aws import arns
from corral.ecs import names
from corral.store.schema import ecs_task_definitions

ACTIVE, INACTIVE, DELETE_IN_PROGRESS = "ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"
TIMESTAMPS = ("registeredAt", "deregisteredAt", "deleteRequestedAt")

_t = ecs_task_definitions.c


def _scope(account: str, region: str):
    return and_(_t.account_id == account, _t.region == region)


def _to_doc(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    for key in TIMESTAMPS:
        if isinstance(out.get(key), datetime):
            out[key] = round(out[key].timestamp(), 6)
    return out


def _from_doc(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    for key in TIMESTAMPS:
        if isinstance(out.get(key), (int, float)):
            out[key] = datetime.fromtimestamp(out[key], UTC)
    return out


def next_revision(db: Connection, account: str, region: str, family: str) -> int:
    top = db.execute(select(func.max(_t.revision)).where(
        _scope(account, region), _t.family == family)).scalar()
    return (top or 0) + 1


def insert(db: Connection, account: str, region: str, doc: dict[str, Any]) -> None:
    """Store a new revision; ``doc`` carries family, revision, status and registeredAt."""
    db.execute(ecs_task_definitions.insert().values(
        account_id=account, region=region, family=doc["family"], revision=doc["revision"],
        status=doc["status"], registered_at=doc["registeredAt"], doc=_to_doc(doc)))


def get(db: Connection, account: str, region: str, family: str, revision: int
        ) -> dict[str, Any] | None:
    """That revision in any status (deleted ones included), or None."""
    row = db.execute(select(_t.doc).where(
        _scope(account, region), _t.family == family, _t.revision == revision)).first()
    return _from_doc(row[0]) if row else None


def latest_active(db: Connection, account: str, region: str, family: str
                  ) -> dict[str, Any] | None:
    row = db.execute(select(_t.doc).where(
        _scope(account, region), _t.family == family, _t.status == ACTIVE)
        .order_by(_t.revision.desc()).limit(1)).first()
    return _from_doc(row[0]) if row else None


def parse_ref(account: str, region: str, ref: str) -> tuple[str, int | None] | None:
    """(family, revision|None) for ``family``, ``family:rev`` or an ARN of this account and
    region; None for an ARN of another scope or a revision that is not a number."""
    parsed = arns.parse(ref)
    if parsed is not None and (parsed.service != "ecs" or parsed.account != account
                               or parsed.region != region
                               or parsed.resource_type != "task-definition"):
        return None
    try:
        return names.family_revision(ref)
    except ValueError:
        return None


def deployed(db: Connection, account: str, region: str, arn: str) -> dict[str, Any] | None:
    """The revision a service deployment runs, in any status: services keep running and
    scaling on a deregistered or deleted revision (AWS DeleteTaskDefinitions docs)."""
    try:
        family, revision = names.family_revision(arn)
    except ValueError:
        return None
    return get(db, account, region, family, revision) if revision is not None else None


def resolve(db: Connection, account: str, region: str, ref: str) -> dict[str, Any] | None:
    """The TaskDefinition doc ``ref`` names: a bare family ⇒ its latest ACTIVE revision;
    ``family:revision`` or an ARN ⇒ that revision whatever its status, except deleted
    (DELETE_IN_PROGRESS) ones. None when nothing matches."""
    parsed = parse_ref(account, region, ref)
    if parsed is None:
        return None
    family, revision = parsed
    if revision is None:
        return latest_active(db, account, region, family)
    doc = get(db, account, region, family, revision)
    return doc if doc and doc["status"] != DELETE_IN_PROGRESS else None


def runnable_error(doc: dict[str, Any]) -> str | None:
    """The ClientException text RunTask/StartTask/CreateService answer for a definition that
    cannot start new tasks; None when it can (ACTIVE)."""
    if doc["status"] == INACTIVE:
        return "TaskDefinition is inactive"  # AWS text
    if doc["status"] == DELETE_IN_PROGRESS:
        return "TaskDefinition is being deleted"
    return None


def update(db: Connection, account: str, region: str, doc: dict[str, Any]) -> None:
    """Write back a changed doc (status and timestamps) of an existing revision."""
    db.execute(ecs_task_definitions.update().where(
        _scope(account, region), _t.family == doc["family"], _t.revision == doc["revision"],
    ).values(status=doc["status"], doc=_to_doc(doc)))


def page(db: Connection, account: str, region: str, *, family: str | None, status: str,
         descending: bool, after: tuple[str, int] | None, limit: int) -> list[tuple[str, int]]:
    """(family, revision) pairs in ``status``, ordered by family then revision (both
    reversed when ``descending``), starting after the ``after`` cursor."""
    q = select(_t.family, _t.revision).where(_scope(account, region), _t.status == status)
    if family is not None:
        q = q.where(_t.family == family)
    if after is not None:
        fam, rev = after
        beyond = ((_t.family < fam) | ((_t.family == fam) & (_t.revision < rev)) if descending
                  else (_t.family > fam) | ((_t.family == fam) & (_t.revision > rev)))
        q = q.where(beyond)
    order = (_t.family.desc(), _t.revision.desc()) if descending else (_t.family, _t.revision)
    return [(f, r) for f, r in db.execute(q.order_by(*order).limit(limit))]


def families_page(db: Connection, account: str, region: str, *, prefix: str | None,
                  status: str, after: str | None, limit: int) -> list[str]:
    """Family names in order. A family is ACTIVE when it has an ACTIVE revision and INACTIVE
    when it has revisions but none ACTIVE (``status`` ACTIVE | INACTIVE | ALL); families whose
    every revision is being deleted are gone."""
    active = func.sum(case((_t.status == ACTIVE, 1), else_=0))
    q = (select(_t.family).where(_scope(account, region), _t.status != DELETE_IN_PROGRESS)
         .group_by(_t.family))
    if status == ACTIVE:
        q = q.having(active > 0)
    elif status == INACTIVE:
        q = q.having(active == 0)
    if prefix:
        q = q.where(_t.family.startswith(prefix, autoescape=True))
    if after is not None:
        q = q.where(_t.family > after)
    return [f for (f,) in db.execute(q.order_by(_t.family).limit(limit))]


def exists(db: Connection, account: str, region: str, family: str, revision: int) -> bool:
    """Whether that revision exists and is not being deleted (for tagging)."""
    return db.execute(select(_t.revision).where(
        _scope(account, region), _t.family == family, _t.revision == revision,
        or_(_t.status == ACTIVE, _t.status == INACTIVE))).first() is not None
