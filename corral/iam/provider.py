"""IAM API (query protocol, a global service: state is per account, never per region).

Users, groups, roles and access keys here; managed/inline policies, attachments and
permissions boundaries in :class:`~corral.iam.policy_ops.PolicyOperations`; simulation and
OIDC providers in :class:`~corral.iam.sim_ops.SimulationOperations`.

Access keys of IAM users live in the same ``access_keys`` table the SigV4 authentication
reads; every change here also drops the key from the authenticator's cache, before and after
the transaction commits, so a deactivated or deleted key stops working at once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, event, func, select

from corral.aws.context import RequestContext
from corral.aws.provider import Provider, acts_on
from corral.iam import entities
from corral.iam.credentials import Credentials
from corral.iam.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
)
from corral.iam.policy_ops import PolicyOperations, encoded, group_arn, role_arn, validated
from corral.iam.sim_ops import SimulationOperations
from corral.store import tags as tag_store
from corral.store.schema import (
    access_keys,
    iam_attachments,
    iam_group_members,
    iam_groups,
    iam_inline_policies,
    iam_roles,
    iam_users,
)

MAX_KEYS_PER_USER = 2
MAX_GROUPS_PER_USER = 10
TRUST_SIZE = 2048  # ACLSizePerRole default quota
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _user_or_caller_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    if params.get("UserName"):
        name = params["UserName"]
        row = entities.user(ctx.db, ctx.account_id, name) if ctx.db is not None else None
        return [entities.arn(ctx.account_id, "user", row.path if row else "/", name)]
    return [ctx.principal.arn]


def _new_arn(kind: str):
    def fn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
        return [entities.arn(ctx.account_id, kind, params.get("Path") or "/",
                             params[f"{kind.capitalize()}Name"])]
    return fn


def _tags(params: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in params.get("Tags") or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _boundary_view(boundary: str | None) -> dict[str, Any]:
    if not boundary:
        return {}
    return {"PermissionsBoundary": {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                    "PermissionsBoundaryArn": boundary}}


class IamProvider(SimulationOperations, PolicyOperations, Provider):
    service = "iam"

    def __init__(self, credentials: Credentials):
        self.credentials = credentials

    # --- views -----------------------------------------------------------------------------

    def _user_view(self, ctx, row, *, tags: bool = True) -> dict[str, Any]:
        out = {"Path": row.path, "UserName": row.name, "UserId": row.unique_id,
               "Arn": entities.arn(row.account_id, "user", row.path, row.name),
               "CreateDate": row.created_at, **_boundary_view(row.boundary_arn)}
        t = tag_store.get(ctx.db, out["Arn"]) if tags else {}
        if t:
            out["Tags"] = _tag_list(t)
        return out

    def _group_view(self, row) -> dict[str, Any]:
        return {"Path": row.path, "GroupName": row.name, "GroupId": row.unique_id,
                "Arn": entities.arn(row.account_id, "group", row.path, row.name),
                "CreateDate": row.created_at}

    def _role_view(self, ctx, row, *, tags: bool = True) -> dict[str, Any]:
        out = {"Path": row.path, "RoleName": row.name, "RoleId": row.unique_id,
               "Arn": entities.arn(row.account_id, "role", row.path, row.name),
               "CreateDate": row.created_at,
               "AssumeRolePolicyDocument": encoded(row.trust_policy),
               "MaxSessionDuration": row.max_session_duration,
               **_boundary_view(row.boundary_arn)}
        if row.description:
            out["Description"] = row.description
        t = tag_store.get(ctx.db, out["Arn"]) if tags else {}
        if t:
            out["Tags"] = _tag_list(t)
        return out

    def _boundary_param(self, ctx, params: dict[str, Any]) -> str | None:
        boundary = params.get("PermissionsBoundary")
        if boundary:
            try:
                self.check_attachable(ctx, boundary)
            except NoSuchEntity:
                raise InvalidInput(f"ARN {boundary} is not valid.") from None
        return boundary

    # --- users -----------------------------------------------------------------------------

    @acts_on(_new_arn("user"))
    def create_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        name = params["UserName"]
        if entities.user(ctx.db, ctx.account_id, name) is not None:
            raise EntityAlreadyExists(f"User with name {name} already exists.")
        boundary = self._boundary_param(ctx, params)
        ctx.db.execute(iam_users.insert().values(
            account_id=ctx.account_id, name=name, path=params.get("Path") or "/",
            unique_id=entities.unique_id("AIDA"), created_at=datetime.now(UTC),
            boundary_arn=boundary))
        row = entities.user(ctx.db, ctx.account_id, name)
        tag_store.put(ctx.db, entities.arn(ctx.account_id, "user", row.path, name), _tags(params))
        entities.changed(ctx.db)
        return {"User": self._user_view(ctx, row)}

    def _user(self, ctx, name: str):
        row = entities.user(ctx.db, ctx.account_id, name)
        if row is None:
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        return row

    @acts_on(_user_or_caller_arn)
    def get_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        name = params.get("UserName")
        if name is None:
            if ctx.principal.type == "Account":
                return {"User": {"Path": "/", "UserName": ctx.account_id, "UserId": ctx.account_id,
                                 "Arn": ctx.principal.arn,
                                 "CreateDate": datetime(2020, 1, 1, tzinfo=UTC)}}
            if ctx.principal.type != "User":
                raise InvalidInput("Must specify userName when calling with non-User "
                                   "credentials")
            name = entities.name_of(ctx.principal.arn)
        return {"User": self._user_view(ctx, self._user(ctx, name))}

    def list_users(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        prefix = params.get("PathPrefix") or "/"
        rows = ctx.db.execute(select(iam_users).where(
            iam_users.c.account_id == ctx.account_id).order_by(iam_users.c.name))
        rows = [r for r in rows if r.path.startswith(prefix)]
        chunk, out = entities.page(rows, params, lambda r: r.name)
        return {"Users": [self._user_view(ctx, r, tags=False) for r in chunk], **out}

    @acts_on(_user_or_caller_arn)
    def update_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._user(ctx, params["UserName"])
        new_name = params.get("NewUserName") or row.name
        new_path = params.get("NewPath") or row.path
        if new_name != row.name and entities.user(ctx.db, ctx.account_id, new_name) is not None:
            raise EntityAlreadyExists(f"User with name {new_name} already exists.")
        acct = ctx.account_id
        old_arn = entities.arn(acct, "user", row.path, row.name)
        new_arn = entities.arn(acct, "user", new_path, new_name)
        ctx.db.execute(iam_users.update().where(
            iam_users.c.account_id == acct, iam_users.c.name == row.name).values(
            name=new_name, path=new_path))
        # Everything that names the user follows it: keys, groups, policies, tags.
        for table, column in ((iam_group_members, "user_name"), (iam_inline_policies, "owner"),
                              (iam_attachments, "owner")):
            cond = [table.c.account_id == acct, getattr(table.c, column) == row.name]
            if column == "owner":
                cond.append(table.c.kind == "user")
            ctx.db.execute(table.update().where(*cond).values({column: new_name}))
        k = access_keys.c
        for key_id in ctx.db.execute(select(k.access_key_id).where(
                k.principal_arn == old_arn)).scalars():
            self._forget_after_commit(ctx, key_id)
        ctx.db.execute(access_keys.update().where(k.principal_arn == old_arn).values(
            principal_arn=new_arn))
        tags = tag_store.get(ctx.db, old_arn)
        tag_store.remove(ctx.db, old_arn, list(tags))
        tag_store.put(ctx.db, new_arn, tags)
        entities.changed(ctx.db)
        return {}

    @acts_on(_user_or_caller_arn)
    def delete_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._user(ctx, params["UserName"])
        user_arn = entities.arn(ctx.account_id, "user", row.path, row.name)
        k = access_keys.c
        if ctx.db.execute(select(k.access_key_id).where(
                k.principal_arn == user_arn, k.session_token.is_(None))).first():
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        a, i, m = iam_attachments.c, iam_inline_policies.c, iam_group_members.c
        if ctx.db.execute(select(a.policy_arn).where(a.account_id == ctx.account_id,
                                                     a.kind == "user", a.owner == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if ctx.db.execute(select(i.name).where(i.account_id == ctx.account_id,
                                               i.kind == "user", i.owner == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if ctx.db.execute(select(m.group_name).where(m.account_id == ctx.account_id,
                                                     m.user_name == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        ctx.db.execute(delete(iam_users).where(iam_users.c.account_id == ctx.account_id,
                                               iam_users.c.name == row.name))
        tag_store.remove(ctx.db, user_arn, list(tag_store.get(ctx.db, user_arn)))
        entities.changed(ctx.db)
        return {}

    # --- groups ----------------------------------------------------------------------------

    @acts_on(_new_arn("group"))
    def create_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        name = params["GroupName"]
        if entities.group(ctx.db, ctx.account_id, name) is not None:
            raise EntityAlreadyExists(f"Group with name {name} already exists.")
        ctx.db.execute(iam_groups.insert().values(
            account_id=ctx.account_id, name=name, path=params.get("Path") or "/",
            unique_id=entities.unique_id("AGPA"), created_at=datetime.now(UTC)))
        entities.changed(ctx.db)
        return {"Group": self._group_view(entities.group(ctx.db, ctx.account_id, name))}

    def _group(self, ctx, name: str):
        row = entities.group(ctx.db, ctx.account_id, name)
        if row is None:
            raise NoSuchEntity(f"The group with name {name} cannot be found.")
        return row

    @acts_on(group_arn)
    def get_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._group(ctx, params["GroupName"])
        m = iam_group_members.c
        names = list(ctx.db.execute(select(m.user_name).where(
            m.account_id == ctx.account_id, m.group_name == row.name)
            .order_by(m.user_name)).scalars())
        chunk, out = entities.page(names, params, lambda n: n)
        users = [self._user_view(ctx, self._user(ctx, n), tags=False) for n in chunk]
        return {"Group": self._group_view(row), "Users": users, **out}

    def list_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        prefix = params.get("PathPrefix") or "/"
        rows = [r for r in ctx.db.execute(select(iam_groups).where(
            iam_groups.c.account_id == ctx.account_id).order_by(iam_groups.c.name))
            if r.path.startswith(prefix)]
        chunk, out = entities.page(rows, params, lambda r: r.name)
        return {"Groups": [self._group_view(r) for r in chunk], **out}

    @acts_on(group_arn)
    def delete_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._group(ctx, params["GroupName"])
        a, i, m = iam_attachments.c, iam_inline_policies.c, iam_group_members.c
        if ctx.db.execute(select(m.user_name).where(m.account_id == ctx.account_id,
                                                    m.group_name == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        if ctx.db.execute(select(a.policy_arn).where(a.account_id == ctx.account_id,
                                                     a.kind == "group", a.owner == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if ctx.db.execute(select(i.name).where(i.account_id == ctx.account_id,
                                               i.kind == "group", i.owner == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        ctx.db.execute(delete(iam_groups).where(iam_groups.c.account_id == ctx.account_id,
                                                iam_groups.c.name == row.name))
        entities.changed(ctx.db)
        return {}

    @acts_on(group_arn)
    def add_user_to_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group, user = self._group(ctx, params["GroupName"]), self._user(ctx, params["UserName"])
        current = entities.groups_of(ctx.db, ctx.account_id, user.name)
        if group.name in current:
            return {}
        if len(current) >= MAX_GROUPS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
        ctx.db.execute(iam_group_members.insert().values(
            account_id=ctx.account_id, group_name=group.name, user_name=user.name))
        entities.changed(ctx.db)
        return {}

    @acts_on(group_arn)
    def remove_user_from_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        group, user = self._group(ctx, params["GroupName"]), self._user(ctx, params["UserName"])
        m = iam_group_members.c
        gone = ctx.db.execute(delete(iam_group_members).where(
            m.account_id == ctx.account_id, m.group_name == group.name,
            m.user_name == user.name)).rowcount
        if not gone:
            raise NoSuchEntity(f"The user with name {user.name} cannot be found in group "
                               f"{group.name}.")
        entities.changed(ctx.db)
        return {}

    @acts_on(_user_or_caller_arn)
    def list_groups_for_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        user = self._user(ctx, params["UserName"])
        names = entities.groups_of(ctx.db, ctx.account_id, user.name)
        chunk, out = entities.page(names, params, lambda n: n)
        return {"Groups": [self._group_view(self._group(ctx, n)) for n in chunk], **out}

    # --- roles -----------------------------------------------------------------------------

    @acts_on(_new_arn("role"))
    def create_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        name = params["RoleName"]
        validated(params["AssumeRolePolicyDocument"], "trust", limit=TRUST_SIZE,
                  quota="ACLSizePerRole")
        if entities.role(ctx.db, ctx.account_id, name) is not None:
            raise EntityAlreadyExists(f"Role with name {name} already exists.")
        boundary = self._boundary_param(ctx, params)
        ctx.db.execute(iam_roles.insert().values(
            account_id=ctx.account_id, name=name, path=params.get("Path") or "/",
            unique_id=entities.unique_id("AROA"), created_at=datetime.now(UTC),
            trust_policy=params["AssumeRolePolicyDocument"],
            description=params.get("Description"),
            max_session_duration=params.get("MaxSessionDuration") or 3600,
            boundary_arn=boundary))
        row = entities.role(ctx.db, ctx.account_id, name)
        tag_store.put(ctx.db, entities.arn(ctx.account_id, "role", row.path, name), _tags(params))
        entities.changed(ctx.db)
        return {"Role": self._role_view(ctx, row)}

    def _role(self, ctx, name: str):
        row = entities.role(ctx.db, ctx.account_id, name)
        if row is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        return row

    @acts_on(role_arn)
    def get_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        return {"Role": self._role_view(ctx, self._role(ctx, params["RoleName"]))}

    def list_roles(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        prefix = params.get("PathPrefix") or "/"
        rows = [r for r in ctx.db.execute(select(iam_roles).where(
            iam_roles.c.account_id == ctx.account_id).order_by(iam_roles.c.name))
            if r.path.startswith(prefix)]
        chunk, out = entities.page(rows, params, lambda r: r.name)
        return {"Roles": [self._role_view(ctx, r, tags=False) for r in chunk], **out}

    @acts_on(role_arn)
    def update_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._role(ctx, params["RoleName"])
        values = {}
        if params.get("MaxSessionDuration") is not None:
            values["max_session_duration"] = params["MaxSessionDuration"]
        if params.get("Description") is not None:
            values["description"] = params["Description"]
        if values:
            ctx.db.execute(iam_roles.update().where(
                iam_roles.c.account_id == ctx.account_id, iam_roles.c.name == row.name)
                .values(**values))
        entities.changed(ctx.db)
        return {}

    @acts_on(role_arn)
    def update_assume_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._role(ctx, params["RoleName"])
        validated(params["PolicyDocument"], "trust", limit=TRUST_SIZE, quota="ACLSizePerRole")
        ctx.db.execute(iam_roles.update().where(
            iam_roles.c.account_id == ctx.account_id, iam_roles.c.name == row.name)
            .values(trust_policy=params["PolicyDocument"]))
        entities.changed(ctx.db)
        return {}

    @acts_on(role_arn)
    def delete_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._role(ctx, params["RoleName"])
        a, i = iam_attachments.c, iam_inline_policies.c
        if ctx.db.execute(select(a.policy_arn).where(a.account_id == ctx.account_id,
                                                     a.kind == "role", a.owner == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if ctx.db.execute(select(i.name).where(i.account_id == ctx.account_id,
                                               i.kind == "role", i.owner == row.name)).first():
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        ctx.db.execute(delete(iam_roles).where(iam_roles.c.account_id == ctx.account_id,
                                               iam_roles.c.name == row.name))
        role = entities.arn(ctx.account_id, "role", row.path, row.name)
        tag_store.remove(ctx.db, role, list(tag_store.get(ctx.db, role)))
        entities.changed(ctx.db)
        return {}

    # --- tags ------------------------------------------------------------------------------

    def _tagged(self, ctx, kind: str, name: str) -> str:
        row = self._user(ctx, name) if kind == "user" else self._role(ctx, name)
        return entities.arn(ctx.account_id, kind, row.path, row.name)

    @acts_on(role_arn)
    def tag_role(self, ctx, params):
        tag_store.put(ctx.db, self._tagged(ctx, "role", params["RoleName"]), _tags(params))
        entities.changed(ctx.db)
        return {}

    @acts_on(role_arn)
    def untag_role(self, ctx, params):
        tag_store.remove(ctx.db, self._tagged(ctx, "role", params["RoleName"]), params["TagKeys"])
        entities.changed(ctx.db)
        return {}

    @acts_on(role_arn)
    def list_role_tags(self, ctx, params):
        tags = tag_store.get(ctx.db, self._tagged(ctx, "role", params["RoleName"]))
        return {"Tags": _tag_list(tags), "IsTruncated": False}

    @acts_on(_user_or_caller_arn)
    def tag_user(self, ctx, params):
        tag_store.put(ctx.db, self._tagged(ctx, "user", params["UserName"]), _tags(params))
        entities.changed(ctx.db)
        return {}

    @acts_on(_user_or_caller_arn)
    def untag_user(self, ctx, params):
        tag_store.remove(ctx.db, self._tagged(ctx, "user", params["UserName"]), params["TagKeys"])
        entities.changed(ctx.db)
        return {}

    @acts_on(_user_or_caller_arn)
    def list_user_tags(self, ctx, params):
        tags = tag_store.get(ctx.db, self._tagged(ctx, "user", params["UserName"]))
        return {"Tags": _tag_list(tags), "IsTruncated": False}

    # --- access keys -----------------------------------------------------------------------

    def _key_owner(self, ctx, params: dict[str, Any]):
        """The user whose keys a call manages: UserName, else the calling user."""
        name = params.get("UserName")
        if name is None:
            if ctx.principal.type != "User":
                raise InvalidInput("Must specify userName when calling with non-User "
                                   "credentials")
            name = entities.name_of(ctx.principal.arn)
        row = self._user(ctx, name)
        return row, entities.arn(ctx.account_id, "user", row.path, row.name)

    def _forget_after_commit(self, ctx, key_id: str) -> None:
        self.credentials.forget(key_id)
        event.listen(ctx.db, "commit", lambda _conn: self.credentials.forget(key_id), once=True)

    def _user_key(self, ctx, user_arn: str, key_id: str):
        k = access_keys.c
        row = ctx.db.execute(select(access_keys).where(
            k.access_key_id == key_id, k.principal_arn == user_arn)).first()
        if row is None:
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        return row

    @acts_on(_user_or_caller_arn)
    def create_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row, user_arn = self._key_owner(ctx, params)
        k = access_keys.c
        count = ctx.db.execute(select(func.count()).select_from(access_keys).where(
            k.principal_arn == user_arn, k.session_token.is_(None))).scalar_one()
        if count >= MAX_KEYS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")
        key_id = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(30)[:40]
        now = datetime.now(UTC)
        ctx.db.execute(access_keys.insert().values(
            access_key_id=key_id, secret_access_key=secret, account_id=ctx.account_id,
            principal_arn=user_arn, user_id=row.unique_id, session_token=None, expires_at=None,
            status="Active", created_at=now))
        self._forget_after_commit(ctx, key_id)
        return {"AccessKey": {"UserName": row.name, "AccessKeyId": key_id, "Status": "Active",
                              "SecretAccessKey": secret, "CreateDate": now}}

    @acts_on(_user_or_caller_arn)
    def list_access_keys(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row, user_arn = self._key_owner(ctx, params)
        k = access_keys.c
        keys = list(ctx.db.execute(select(access_keys).where(
            k.principal_arn == user_arn, k.session_token.is_(None)).order_by(k.access_key_id)))
        chunk, out = entities.page(keys, params, lambda r: r.access_key_id)
        return {"AccessKeyMetadata": [{"UserName": row.name, "AccessKeyId": r.access_key_id,
                                       "Status": r.status, "CreateDate": r.created_at}
                                      for r in chunk], **out}

    @acts_on(_user_or_caller_arn)
    def update_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        _, user_arn = self._key_owner(ctx, params)
        key = self._user_key(ctx, user_arn, params["AccessKeyId"])
        ctx.db.execute(access_keys.update().where(
            access_keys.c.access_key_id == key.access_key_id).values(status=params["Status"]))
        self._forget_after_commit(ctx, key.access_key_id)
        return {}

    @acts_on(_user_or_caller_arn)
    def delete_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        _, user_arn = self._key_owner(ctx, params)
        key = self._user_key(ctx, user_arn, params["AccessKeyId"])
        ctx.db.execute(delete(access_keys).where(
            access_keys.c.access_key_id == key.access_key_id))
        self._forget_after_commit(ctx, key.access_key_id)
        return {}

    def get_access_key_last_used(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        k = access_keys.c
        row = ctx.db.execute(select(access_keys).where(
            k.access_key_id == params["AccessKeyId"], k.account_id == ctx.account_id)).first()
        if row is None:
            raise NoSuchEntity(f"The Access Key with id {params['AccessKeyId']} cannot be found.")
        used = self.credentials.last_used(row.access_key_id)
        last: dict[str, Any] = {"ServiceName": "N/A", "Region": "N/A"}
        if used is not None:
            last = {"LastUsedDate": used[0], "ServiceName": used[1], "Region": used[2]}
        return {"UserName": entities.name_of(row.principal_arn), "AccessKeyLastUsed": last}
