"""IAM state access: users, groups, roles, managed and inline policies, sessions.

Shared by the IAM API (``provider.py``) and enforcement (``enforce.py``). Every IAM write goes
through ``changed()``, which bumps ``GENERATION``: enforcement caches a principal's parsed
policies per generation, so a policy change is seen by the very next request.
"""

from __future__ import annotations

import secrets
import string
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, event, select

from corral.iam import managed
from corral.store.schema import (
    iam_attachments,
    iam_group_members,
    iam_groups,
    iam_inline_policies,
    iam_policies,
    iam_policy_versions,
    iam_roles,
    iam_sessions,
    iam_users,
)

_ID_ALPHABET = string.ascii_uppercase + string.digits


class _Generation:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.value += 1


GENERATION = _Generation()


def changed(db: Connection | None = None) -> None:
    """Call on every IAM/STS/repository-policy write: cached decision inputs are stale. Bumps
    now and again when ``db``'s transaction commits, so a request that read the old state
    between the two cannot keep it cached."""
    GENERATION.bump()
    if db is not None:
        event.listen(db, "commit", lambda _conn: GENERATION.bump(), once=True)


def unique_id(prefix: str) -> str:
    """IAM unique ids: a 4-letter type prefix (AIDA user, AROA role, AGPA group, ANPA policy)
    and 17 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def arn(account: str, kind: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:{kind}{path}{name}"


def name_of(entity_arn: str) -> str:
    """The name in a user/role/group/policy ARN (the last path segment)."""
    return entity_arn.rsplit("/", 1)[-1]


def user(db: Connection, account: str, name: str):
    return db.execute(select(iam_users).where(iam_users.c.account_id == account,
                                              iam_users.c.name == name)).first()


def role(db: Connection, account: str, name: str):
    return db.execute(select(iam_roles).where(iam_roles.c.account_id == account,
                                              iam_roles.c.name == name)).first()


def group(db: Connection, account: str, name: str):
    return db.execute(select(iam_groups).where(iam_groups.c.account_id == account,
                                               iam_groups.c.name == name)).first()


def session(db: Connection, access_key_id: str):
    return db.execute(select(iam_sessions).where(
        iam_sessions.c.access_key_id == access_key_id)).first()


@dataclass(frozen=True)
class PolicyDoc:
    name: str  # managed policy ARN, or "<kind>/<owner>/<policy name>" for inline ones
    text: str
    kind: str  # "managed" | "inline" | "aws-managed"


def managed_document(db: Connection, policy_arn: str) -> str | None:
    """The default version's document of a managed policy (AWS or customer)."""
    aws = managed.get(policy_arn)
    if aws is not None:
        return aws.text
    row = db.execute(
        select(iam_policy_versions.c.document)
        .select_from(iam_policies.join(
            iam_policy_versions, (iam_policy_versions.c.policy_arn == iam_policies.c.arn)
            & (iam_policy_versions.c.version_id == iam_policies.c.default_version)))
        .where(iam_policies.c.arn == policy_arn)).first()
    return row[0] if row else None


def policies_of(db: Connection, account: str, kind: str, owner: str) -> list[PolicyDoc]:
    """Inline and attached managed policies of one user, group or role."""
    t, a = iam_inline_policies.c, iam_attachments.c
    out = [PolicyDoc(f"{kind}/{owner}/{name}", doc, "inline") for name, doc in db.execute(
        select(t.name, t.document).where(t.account_id == account, t.kind == kind,
                                         t.owner == owner))]
    for (policy_arn,) in db.execute(select(a.policy_arn).where(
            a.account_id == account, a.kind == kind, a.owner == owner)):
        text = managed_document(db, policy_arn)
        if text is not None:
            out.append(PolicyDoc(policy_arn, text, "managed"))
    return out


def groups_of(db: Connection, account: str, user_name: str) -> list[str]:
    m = iam_group_members.c
    return list(db.execute(select(m.group_name).where(
        m.account_id == account, m.user_name == user_name).order_by(m.group_name)).scalars())


def user_identity(db: Connection, account: str, name: str) -> tuple[list[PolicyDoc], Any] | None:
    """(identity policies of a user and its groups, the user row); None if no such user."""
    row = user(db, account, name)
    if row is None:
        return None
    docs = policies_of(db, account, "user", name)
    for g in groups_of(db, account, name):
        docs += policies_of(db, account, "group", g)
    return docs, row


def page(items: list[Any], params: dict[str, Any], key) -> tuple[list[Any], dict[str, Any]]:
    """IAM pagination: ``MaxItems`` (default 100) and an opaque ``Marker``; the answer carries
    ``IsTruncated`` and, when truncated, the ``Marker`` to continue from."""
    from corral.aws import pagination
    from corral.iam.errors import InvalidInput

    try:
        cursor = pagination.decode(params.get("Marker"), after=str)
    except ValueError:
        raise InvalidInput("Invalid Marker.") from None
    if cursor is not None:
        items = [i for i in items if key(i) > cursor["after"]]
    limit = params.get("MaxItems") or 100
    chunk = items[:limit]
    out: dict[str, Any] = {"IsTruncated": len(items) > limit}
    if len(items) > limit:
        out["Marker"] = pagination.encode({"after": key(chunk[-1])})
    return chunk, out
