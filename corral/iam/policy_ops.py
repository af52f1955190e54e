"""IAM managed and inline policy operations: CreatePolicy and its versions, inline policies of
users/groups/roles, attach/detach, ListPolicies with scope, permissions boundaries.

Every document is validated by ``corral.iam.policy`` before anything is stored: a bad one is
``MalformedPolicyDocument`` with IAM's reason and leaves no row behind; an oversized one is
``LimitExceeded`` naming the quota (IAM quotas: managed 6,144 characters, inline per user
2,048, group 5,120, role 10,240; whitespace not counted).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, func, select

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.iam import entities, managed
from corral.iam import policy as pol
from corral.iam.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
)
from corral.store import tags as tag_store
from corral.store.schema import (
    iam_attachments,
    iam_inline_policies,
    iam_policies,
    iam_policy_versions,
    iam_roles,
    iam_users,
)

MANAGED_SIZE = 6144
INLINE_SIZE = {"user": 2048, "group": 5120, "role": 10240}
MAX_VERSIONS = 5
MAX_ATTACHED = 10
KINDS = {"User": "user", "Group": "group", "Role": "role"}


def encoded(text: str) -> str:
    """Policy documents travel URL-encoded in IAM responses (botocore decodes them)."""
    return quote(text, safe="")


def validated(text: str, kind: str = "identity", *, limit: int | None = None,
              quota: str = "PolicySize") -> pol.Policy:
    if limit is not None and pol.size(text) > limit:
        raise LimitExceeded(f"Cannot exceed quota for {quota}: {limit}")
    try:
        return pol.parse(text, kind)
    except pol.MalformedPolicy as e:
        raise MalformedPolicyDocument(e.reason) from None


def _policy_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [params["PolicyArn"]]


def _new_policy_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [entities.arn(ctx.account_id, "policy", params.get("Path") or "/",
                         params["PolicyName"])]


def _owner_arn(kind: str):
    def fn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
        name = params[f"{kind.capitalize()}Name"]
        table = {"user": iam_users, "role": iam_roles}.get(kind)
        path = "/"
        if table is not None and ctx.db is not None:
            row = ctx.db.execute(select(table.c.path).where(
                table.c.account_id == ctx.account_id, table.c.name == name)).first()
            path = row[0] if row else "/"
        return [entities.arn(ctx.account_id, kind, path, name)]
    return fn


user_arn, group_arn, role_arn = _owner_arn("user"), _owner_arn("group"), _owner_arn("role")


class PolicyOperations:
    # --- helpers ---------------------------------------------------------------------------

    def _owner(self, ctx: RequestContext, kind: str, name: str):
        row = {"user": entities.user, "group": entities.group, "role": entities.role}[kind](
            ctx.db, ctx.account_id, name)
        if row is None:
            raise NoSuchEntity(f"The {kind} with name {name} cannot be found.")
        return row

    def _customer_policy(self, ctx: RequestContext, policy_arn: str):
        row = ctx.db.execute(select(iam_policies).where(iam_policies.c.arn == policy_arn,
                                                        iam_policies.c.account_id == ctx.account_id)).first()
        if row is None:
            raise NoSuchEntity(f"Policy {policy_arn} does not exist or is not attachable.")
        return row

    def _attachment_count(self, ctx: RequestContext, policy_arn: str) -> int:
        a = iam_attachments.c
        q = select(func.count()).select_from(iam_attachments).where(a.policy_arn == policy_arn)
        if managed.get(policy_arn) is not None:
            q = q.where(a.account_id == ctx.account_id)
        return ctx.db.execute(q).scalar_one()

    def _boundary_count(self, ctx: RequestContext, policy_arn: str) -> int:
        n = 0
        for t in (iam_users, iam_roles):
            n += ctx.db.execute(select(func.count()).select_from(t).where(
                t.c.account_id == ctx.account_id, t.c.boundary_arn == policy_arn)).scalar_one()
        return n

    def _policy_view(self, ctx: RequestContext, row=None, aws: managed.ManagedPolicy | None = None,
                     *, with_tags: bool = True) -> dict[str, Any]:
        if aws is not None:
            return {"PolicyName": aws.name, "PolicyId": aws.policy_id, "Arn": aws.arn,
                    "Path": aws.path, "DefaultVersionId": aws.version,
                    "AttachmentCount": self._attachment_count(ctx, aws.arn),
                    "PermissionsBoundaryUsageCount": self._boundary_count(ctx, aws.arn),
                    "IsAttachable": True, "Description": aws.description,
                    "CreateDate": managed.CREATED, "UpdateDate": managed.CREATED}
        out = {"PolicyName": row.name, "PolicyId": row.unique_id, "Arn": row.arn,
               "Path": row.path, "DefaultVersionId": row.default_version,
               "AttachmentCount": self._attachment_count(ctx, row.arn),
               "PermissionsBoundaryUsageCount": self._boundary_count(ctx, row.arn),
               "IsAttachable": True, "CreateDate": row.created_at, "UpdateDate": row.updated_at}
        if row.description:
            out["Description"] = row.description
        tags = tag_store.get(ctx.db, row.arn) if with_tags else {}
        if tags:
            out["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return out

    def check_attachable(self, ctx: RequestContext, policy_arn: str) -> None:
        if managed.get(policy_arn) is None:
            self._customer_policy(ctx, policy_arn)

    # --- managed policies ------------------------------------------------------------------

    @acts_on(_new_policy_arn)
    def create_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        path = params.get("Path") or "/"
        policy_arn = entities.arn(ctx.account_id, "policy", path, params["PolicyName"])
        validated(params["PolicyDocument"], limit=MANAGED_SIZE)
        p = iam_policies.c
        if ctx.db.execute(select(p.arn).where(p.account_id == ctx.account_id,
                                              p.name == params["PolicyName"])).first():
            raise EntityAlreadyExists(f"A policy called {params['PolicyName']} already exists. "
                                      "Duplicate names are not allowed.")
        now = datetime.now(UTC)
        ctx.db.execute(iam_policies.insert().values(
            arn=policy_arn, account_id=ctx.account_id, name=params["PolicyName"], path=path,
            unique_id=entities.unique_id("ANPA"), description=params.get("Description"),
            default_version="v1", next_version=2, created_at=now, updated_at=now))
        ctx.db.execute(iam_policy_versions.insert().values(
            policy_arn=policy_arn, version_id="v1", document=params["PolicyDocument"],
            created_at=now))
        tag_store.put(ctx.db, policy_arn, {t["Key"]: t["Value"] for t in params.get("Tags") or []})
        entities.changed(ctx.db)
        return {"Policy": self._policy_view(ctx, self._customer_policy(ctx, policy_arn))}

    @acts_on(_policy_arn)
    def get_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        aws = managed.get(params["PolicyArn"])
        if aws is not None:
            return {"Policy": self._policy_view(ctx, aws=aws)}
        return {"Policy": self._policy_view(ctx, self._customer_policy(ctx, params["PolicyArn"]))}

    @acts_on(_policy_arn)
    def delete_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._customer_policy(ctx, params["PolicyArn"])
        if self._attachment_count(ctx, row.arn) or self._boundary_count(ctx, row.arn):
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        ctx.db.execute(delete(iam_policy_versions).where(
            iam_policy_versions.c.policy_arn == row.arn))
        ctx.db.execute(delete(iam_policies).where(iam_policies.c.arn == row.arn))
        tag_store.remove(ctx.db, row.arn, list(tag_store.get(ctx.db, row.arn)))
        entities.changed(ctx.db)
        return {}

    def list_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        scope = params.get("Scope", "All")
        prefix = params.get("PathPrefix") or "/"
        views = []
        if scope in ("All", "AWS"):
            views += [self._policy_view(ctx, aws=p) for p in managed.POLICIES]
        if scope in ("All", "Local"):
            rows = ctx.db.execute(select(iam_policies).where(
                iam_policies.c.account_id == ctx.account_id))
            views += [self._policy_view(ctx, r, with_tags=False) for r in rows]
        views = [v for v in views if v["Path"].startswith(prefix)]
        if params.get("OnlyAttached"):
            views = [v for v in views if v["AttachmentCount"]]
        usage = params.get("PolicyUsageFilter")
        if usage == "PermissionsBoundary":
            views = [v for v in views if v["PermissionsBoundaryUsageCount"]]
        views.sort(key=lambda v: v["Arn"])
        chunk, out = entities.page(views, params, lambda v: v["Arn"])
        return {"Policies": chunk, **out}

    # --- versions --------------------------------------------------------------------------

    def _versions(self, ctx: RequestContext, policy_arn: str) -> list:
        v = iam_policy_versions.c
        return list(ctx.db.execute(select(iam_policy_versions).where(
            v.policy_arn == policy_arn).order_by(v.created_at)))

    @acts_on(_policy_arn)
    def create_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._customer_policy(ctx, params["PolicyArn"])
        validated(params["PolicyDocument"], limit=MANAGED_SIZE)
        if len(self._versions(ctx, row.arn)) >= MAX_VERSIONS:
            raise LimitExceeded("A managed policy can have up to 5 versions. Before you create "
                                "a new version, you must delete an existing version.")
        now = datetime.now(UTC)
        version = f"v{row.next_version}"
        ctx.db.execute(iam_policy_versions.insert().values(
            policy_arn=row.arn, version_id=version, document=params["PolicyDocument"],
            created_at=now))
        values: dict[str, Any] = {"next_version": row.next_version + 1, "updated_at": now}
        if params.get("SetAsDefault"):
            values["default_version"] = version
        ctx.db.execute(iam_policies.update().where(iam_policies.c.arn == row.arn).values(**values))
        entities.changed(ctx.db)
        return {"PolicyVersion": {"VersionId": version, "CreateDate": now,
                                  "IsDefaultVersion": bool(params.get("SetAsDefault"))}}

    @acts_on(_policy_arn)
    def get_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        aws = managed.get(params["PolicyArn"])
        if aws is not None:
            if params["VersionId"] != aws.version:
                raise NoSuchEntity(f"Policy {aws.arn} version {params['VersionId']} does not "
                                   "exist or is not attachable.")
            return {"PolicyVersion": {"Document": encoded(aws.text), "VersionId": aws.version,
                                      "IsDefaultVersion": True, "CreateDate": managed.CREATED}}
        row = self._customer_policy(ctx, params["PolicyArn"])
        for v in self._versions(ctx, row.arn):
            if v.version_id == params["VersionId"]:
                return {"PolicyVersion": {
                    "Document": encoded(v.document), "VersionId": v.version_id,
                    "IsDefaultVersion": v.version_id == row.default_version,
                    "CreateDate": v.created_at}}
        raise NoSuchEntity(f"Policy {row.arn} version {params['VersionId']} does not exist or "
                           "is not attachable.")

    @acts_on(_policy_arn)
    def list_policy_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        aws = managed.get(params["PolicyArn"])
        if aws is not None:
            return {"Versions": [{"VersionId": aws.version, "IsDefaultVersion": True,
                                  "CreateDate": managed.CREATED}], "IsTruncated": False}
        row = self._customer_policy(ctx, params["PolicyArn"])
        views = [{"VersionId": v.version_id, "IsDefaultVersion": v.version_id == row.default_version,
                  "CreateDate": v.created_at} for v in reversed(self._versions(ctx, row.arn))]
        chunk, out = entities.page(views, params, lambda v: v["VersionId"])
        return {"Versions": chunk, **out}

    @acts_on(_policy_arn)
    def delete_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._customer_policy(ctx, params["PolicyArn"])
        if params["VersionId"] == row.default_version:
            raise DeleteConflict("Cannot delete the default version of a policy.")
        v = iam_policy_versions.c
        gone = ctx.db.execute(delete(iam_policy_versions).where(
            v.policy_arn == row.arn, v.version_id == params["VersionId"])).rowcount
        if not gone:
            raise NoSuchEntity(f"Policy {row.arn} version {params['VersionId']} does not exist "
                               "or is not attachable.")
        entities.changed(ctx.db)
        return {}

    @acts_on(_policy_arn)
    def set_default_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._customer_policy(ctx, params["PolicyArn"])
        if params["VersionId"] not in {v.version_id for v in self._versions(ctx, row.arn)}:
            raise NoSuchEntity(f"Policy {row.arn} version {params['VersionId']} does not exist "
                               "or is not attachable.")
        ctx.db.execute(iam_policies.update().where(iam_policies.c.arn == row.arn).values(
            default_version=params["VersionId"], updated_at=datetime.now(UTC)))
        entities.changed(ctx.db)
        return {}

    # --- inline policies -------------------------------------------------------------------

    def _put_inline(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        validated(params["PolicyDocument"], limit=INLINE_SIZE[kind],
                  quota=f"PolicySize for {kind} {owner}")
        t = iam_inline_policies.c
        key = dict(account_id=ctx.account_id, kind=kind, owner=owner, name=params["PolicyName"])
        ctx.db.execute(delete(iam_inline_policies).where(*(getattr(t, k) == v
                                                           for k, v in key.items())))
        ctx.db.execute(iam_inline_policies.insert().values(**key,
                                                           document=params["PolicyDocument"]))
        entities.changed(ctx.db)
        return {}

    def _inline_row(self, ctx, kind: str, params: dict[str, Any]):
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        t = iam_inline_policies.c
        row = ctx.db.execute(select(iam_inline_policies).where(
            t.account_id == ctx.account_id, t.kind == kind, t.owner == owner,
            t.name == params["PolicyName"])).first()
        if row is None:
            raise NoSuchEntity(f"The {kind} policy with name {params['PolicyName']} cannot be "
                               "found.")
        return row

    def _get_inline(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        row = self._inline_row(ctx, kind, params)
        return {f"{kind.capitalize()}Name": row.owner, "PolicyName": row.name,
                "PolicyDocument": encoded(row.document)}

    def _delete_inline(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        row = self._inline_row(ctx, kind, params)
        t = iam_inline_policies.c
        ctx.db.execute(delete(iam_inline_policies).where(
            t.account_id == ctx.account_id, t.kind == kind, t.owner == row.owner,
            t.name == row.name))
        entities.changed(ctx.db)
        return {}

    def _list_inline(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        t = iam_inline_policies.c
        names = list(ctx.db.execute(select(t.name).where(
            t.account_id == ctx.account_id, t.kind == kind, t.owner == owner)
            .order_by(t.name)).scalars())
        chunk, out = entities.page(names, params, lambda n: n)
        return {"PolicyNames": chunk, **out}

    @acts_on(user_arn)
    def put_user_policy(self, ctx, params):
        return self._put_inline(ctx, "user", params)

    @acts_on(group_arn)
    def put_group_policy(self, ctx, params):
        return self._put_inline(ctx, "group", params)

    @acts_on(role_arn)
    def put_role_policy(self, ctx, params):
        return self._put_inline(ctx, "role", params)

    @acts_on(user_arn)
    def get_user_policy(self, ctx, params):
        return self._get_inline(ctx, "user", params)

    @acts_on(group_arn)
    def get_group_policy(self, ctx, params):
        return self._get_inline(ctx, "group", params)

    @acts_on(role_arn)
    def get_role_policy(self, ctx, params):
        return self._get_inline(ctx, "role", params)

    @acts_on(user_arn)
    def delete_user_policy(self, ctx, params):
        return self._delete_inline(ctx, "user", params)

    @acts_on(group_arn)
    def delete_group_policy(self, ctx, params):
        return self._delete_inline(ctx, "group", params)

    @acts_on(role_arn)
    def delete_role_policy(self, ctx, params):
        return self._delete_inline(ctx, "role", params)

    @acts_on(user_arn)
    def list_user_policies(self, ctx, params):
        return self._list_inline(ctx, "user", params)

    @acts_on(group_arn)
    def list_group_policies(self, ctx, params):
        return self._list_inline(ctx, "group", params)

    @acts_on(role_arn)
    def list_role_policies(self, ctx, params):
        return self._list_inline(ctx, "role", params)

    # --- attachments -----------------------------------------------------------------------

    def _attach(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        self.check_attachable(ctx, params["PolicyArn"])
        a = iam_attachments.c
        attached = set(ctx.db.execute(select(a.policy_arn).where(
            a.account_id == ctx.account_id, a.kind == kind, a.owner == owner)).scalars())
        if params["PolicyArn"] in attached:
            return {}
        if len(attached) >= MAX_ATTACHED:
            raise LimitExceeded(f"Cannot exceed quota for PoliciesPer{kind.capitalize()}: "
                                f"{MAX_ATTACHED}")
        ctx.db.execute(iam_attachments.insert().values(
            account_id=ctx.account_id, kind=kind, owner=owner, policy_arn=params["PolicyArn"]))
        entities.changed(ctx.db)
        return {}

    def _detach(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        a = iam_attachments.c
        gone = ctx.db.execute(delete(iam_attachments).where(
            a.account_id == ctx.account_id, a.kind == kind, a.owner == owner,
            a.policy_arn == params["PolicyArn"])).rowcount
        if not gone:
            raise NoSuchEntity(f"Policy {params['PolicyArn']} was not found.")
        entities.changed(ctx.db)
        return {}

    def _list_attached(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        a = iam_attachments.c
        arns_ = sorted(ctx.db.execute(select(a.policy_arn).where(
            a.account_id == ctx.account_id, a.kind == kind, a.owner == owner)).scalars())
        prefix = params.get("PathPrefix") or "/"
        views = [{"PolicyName": entities.name_of(x), "PolicyArn": x} for x in arns_
                 if x.split(":policy", 1)[1].startswith(prefix)]
        chunk, out = entities.page(views, params, lambda v: v["PolicyArn"])
        return {"AttachedPolicies": chunk, **out}

    @acts_on(user_arn)
    def attach_user_policy(self, ctx, params):
        return self._attach(ctx, "user", params)

    @acts_on(group_arn)
    def attach_group_policy(self, ctx, params):
        return self._attach(ctx, "group", params)

    @acts_on(role_arn)
    def attach_role_policy(self, ctx, params):
        return self._attach(ctx, "role", params)

    @acts_on(user_arn)
    def detach_user_policy(self, ctx, params):
        return self._detach(ctx, "user", params)

    @acts_on(group_arn)
    def detach_group_policy(self, ctx, params):
        return self._detach(ctx, "group", params)

    @acts_on(role_arn)
    def detach_role_policy(self, ctx, params):
        return self._detach(ctx, "role", params)

    @acts_on(user_arn)
    def list_attached_user_policies(self, ctx, params):
        return self._list_attached(ctx, "user", params)

    @acts_on(group_arn)
    def list_attached_group_policies(self, ctx, params):
        return self._list_attached(ctx, "group", params)

    @acts_on(role_arn)
    def list_attached_role_policies(self, ctx, params):
        return self._list_attached(ctx, "role", params)

    @acts_on(_policy_arn)
    def list_entities_for_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        self.check_attachable(ctx, params["PolicyArn"])
        a = iam_attachments.c
        rows = list(ctx.db.execute(select(a.kind, a.owner).where(
            a.account_id == ctx.account_id, a.policy_arn == params["PolicyArn"])
            .order_by(a.kind, a.owner)))
        wanted = params.get("EntityFilter")
        out: dict[str, list] = {"PolicyGroups": [], "PolicyUsers": [], "PolicyRoles": []}
        for kind, owner in rows:
            if wanted and KINDS.get(wanted) != kind:
                continue
            row = self._owner(ctx, kind, owner)
            out[f"Policy{kind.capitalize()}s"].append(
                {f"{kind.capitalize()}Name": owner, f"{kind.capitalize()}Id": row.unique_id})
        return {**out, "IsTruncated": False}

    # --- permissions boundaries ------------------------------------------------------------

    def _put_boundary(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        boundary = params["PermissionsBoundary"]
        try:
            self.check_attachable(ctx, boundary)
        except NoSuchEntity:
            raise InvalidInput(f"ARN {boundary} is not valid.") from None
        table = iam_users if kind == "user" else iam_roles
        ctx.db.execute(table.update().where(table.c.account_id == ctx.account_id,
                                            table.c.name == owner).values(boundary_arn=boundary))
        entities.changed(ctx.db)
        return {}

    def _delete_boundary(self, ctx, kind: str, params: dict[str, Any]) -> dict:
        owner = params[f"{kind.capitalize()}Name"]
        self._owner(ctx, kind, owner)
        table = iam_users if kind == "user" else iam_roles
        ctx.db.execute(table.update().where(table.c.account_id == ctx.account_id,
                                            table.c.name == owner).values(boundary_arn=None))
        entities.changed(ctx.db)
        return {}

    @acts_on(user_arn)
    def put_user_permissions_boundary(self, ctx, params):
        return self._put_boundary(ctx, "user", params)

    @acts_on(role_arn)
    def put_role_permissions_boundary(self, ctx, params):
        return self._put_boundary(ctx, "role", params)

    @acts_on(user_arn)
    def delete_user_permissions_boundary(self, ctx, params):
        return self._delete_boundary(ctx, "user", params)

    @acts_on(role_arn)
    def delete_role_permissions_boundary(self, ctx, params):
        return self._delete_boundary(ctx, "role", params)
