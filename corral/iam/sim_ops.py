"""IAM policy simulation (SimulatePrincipalPolicy, SimulateCustomPolicy), the account's
authorization report (GetAccountAuthorizationDetails) and OpenID Connect providers.

Simulation runs the one evaluator enforcement runs (``corral.iam.evaluator.evaluate``) on the
same inputs enforcement gathers (``enforce.load_bundle`` for a user; a role's policies and
boundary for a role), so a simulated decision is the decision a request would get. Results
name the matched statements of the deciding effect (the Allows of an allowed request, the
Denies of a denied one) with their source policy and type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from corral.aws import arns
from corral.aws.context import Principal, RequestContext
from corral.aws.provider import acts_on
from corral.iam import entities
from corral.iam import evaluator as ev
from corral.iam import policy as pol
from corral.iam.errors import (
    EntityAlreadyExists,
    InvalidInput,
    MalformedPolicyDocument,
    NoSuchEntity,
)
from corral.store import tags as tag_store
from corral.store.schema import iam_oidc_providers

_DECISIONS = {ev.ALLOWED: "allowed", ev.EXPLICIT: "explicitDeny", ev.IMPLICIT: "implicitDeny"}


def _source_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [params["PolicySourceArn"]]


def _oidc_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [params["OpenIDConnectProviderArn"]]


def _parse_inputs(texts: list[str] | None, label: str, kind: str = "identity") -> list[ev.Named]:
    out = []
    for i, text in enumerate(texts or [], 1):
        try:
            out.append(ev.Named(f"{label}.{i}", pol.parse(text, kind)))
        except pol.MalformedPolicy as e:
            raise MalformedPolicyDocument(e.reason) from None
    return out


def _context(entries: list[dict[str, Any]] | None) -> dict[str, ev.ContextValue]:
    out: dict[str, ev.ContextValue] = {}
    for e in entries or []:
        values = e.get("ContextKeyValues") or []
        key = e["ContextKeyName"].lower()
        if (e.get("ContextKeyType") or "string").endswith("List"):
            out[key] = tuple(values)
        elif values:
            out[key] = values[0]
    return out


def _source_type(name: str) -> tuple[str, str]:
    """(SourcePolicyId, SourcePolicyType) of a Named policy."""
    if name.startswith("arn:aws:iam::aws:policy/"):
        return entities.name_of(name), "aws-managed"
    if name.startswith("arn:aws:iam::") and ":policy/" in name:
        return entities.name_of(name), "user-managed"
    if name.startswith("arn:aws:ecr:") or name == "ResourcePolicy":
        return "ResourcePolicy", "resource"
    parts = name.split("/")
    if len(parts) == 3 and parts[0] in ("user", "group", "role"):
        return parts[2], parts[0]
    return name, "none"


def _matched_view(decision: ev.Decision) -> list[dict[str, Any]]:
    want = "Deny" if decision.result == ev.EXPLICIT else "Allow"
    if decision.result == ev.IMPLICIT:
        return []
    out = []
    for m in decision.matched:
        if m.statement.effect != want:
            continue
        source, kind = _source_type(m.policy_name)
        out.append({"SourcePolicyId": source, "SourcePolicyType": kind,
                    "StartPosition": {"Line": 1, "Column": m.statement.index + 1},
                    "EndPosition": {"Line": 1, "Column": m.statement.index + 2}})
    return out


class SimulationOperations:
    def _principal_inputs(self, ctx: RequestContext, source: str):
        """(caller, identity, boundary, principal context) of a user, group or role ARN."""
        from corral.iam.enforce import load_bundle

        parsed = arns.parse(source)
        if parsed is None or parsed.service != "iam":
            raise InvalidInput(f"Invalid ARN: {source}")
        kind, name = parsed.resource.split("/", 1)[0], entities.name_of(source)
        account = parsed.account
        if kind == "user":
            row = entities.user(ctx.db, account, name)
            if row is None:
                raise NoSuchEntity(f"The user with name {name} cannot be found.")
            bundle = load_bundle(ctx.db, Principal(account, source, row.unique_id, "", "User"))
            return bundle.caller, bundle.identity, bundle.boundary, bundle.context
        if kind == "role":
            row = entities.role(ctx.db, account, name)
            if row is None:
                raise NoSuchEntity(f"The role with name {name} cannot be found.")
            identity = _named_docs(entities.policies_of(ctx.db, account, "role", name))
            boundary = None
            if row.boundary_arn:
                text = entities.managed_document(ctx.db, row.boundary_arn)
                boundary = _named_docs([entities.PolicyDoc(row.boundary_arn, text, "managed")]
                                       if text else [])
            caller = ev.Caller(source, account, "AssumedRole", role_arn=source)
            context = {"aws:principalarn": source, "aws:principalaccount": account,
                       "aws:userid": row.unique_id, "aws:principaltype": "AssumedRole"}
            for k, v in tag_store.get(ctx.db, source).items():
                context[f"aws:principaltag/{k.lower()}"] = v
            return caller, identity, boundary, context
        if kind == "group":
            if entities.group(ctx.db, account, name) is None:
                raise NoSuchEntity(f"The group with name {name} cannot be found.")
            identity = _named_docs(entities.policies_of(ctx.db, account, "group", name))
            return ev.Caller(source, account, "User"), identity, None, {}
        raise InvalidInput(f"Invalid ARN: {source}")

    def _simulate(self, params: dict[str, Any], caller: ev.Caller, identity: list[ev.Named],
                  boundary: list[ev.Named] | None, base: dict[str, Any]) -> dict:
        resource_policy = None
        if params.get("ResourcePolicy"):
            resource_policy = _parse_inputs([params["ResourcePolicy"]], "ResourcePolicy",
                                            "resource")[0]
            resource_policy = ev.Named("ResourcePolicy", resource_policy.policy)
        if params.get("PermissionsBoundaryPolicyInputList"):
            boundary = _parse_inputs(params["PermissionsBoundaryPolicyInputList"],
                                     "PermissionsBoundaryPolicyInputList")
        now = datetime.now(UTC)
        context = {"aws:currenttime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "aws:epochtime": str(int(now.timestamp())), **base,
                   **_context(params.get("ContextEntries"))}
        owner = params.get("ResourceOwner")
        owner_account = arns.parse(owner).account if owner and arns.parse(owner) else None
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns") or ["*"]:
                parsed = arns.parse(resource) if resource != "*" else None
                account = owner_account or (parsed.account if parsed and parsed.account else None)
                req = ev.Request(action, resource, caller, context, account)
                d = ev.evaluate(req, identity, boundary=boundary, resource=resource_policy)
                result = {"EvalActionName": action, "EvalResourceName": resource,
                          "EvalDecision": _DECISIONS[d.result],
                          "MatchedStatements": _matched_view(d), "MissingContextValues": []}
                if boundary is not None:
                    bd = ev.evaluate(req, boundary)
                    result["PermissionsBoundaryDecisionDetail"] = {
                        "AllowedByPermissionsBoundary": bd.allowed}
                results.append(result)
        return {"EvaluationResults": results, "IsTruncated": False}

    @acts_on(_source_arn)
    def simulate_principal_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        caller, identity, boundary, base = self._principal_inputs(ctx, params["PolicySourceArn"])
        identity = identity + _parse_inputs(params.get("PolicyInputList"), "PolicyInputList")
        if params.get("CallerArn"):
            caller = ev.Caller(params["CallerArn"], caller.account, caller.kind, caller.role_arn)
        return self._simulate(params, caller, identity, boundary, base)

    def simulate_custom_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        identity = _parse_inputs(params["PolicyInputList"], "PolicyInputList")
        caller_arn = params.get("CallerArn") or arns.account_root(ctx.account_id)
        parsed = arns.parse(caller_arn)
        account = parsed.account if parsed else ctx.account_id
        kind = "Account" if caller_arn.endswith(":root") else "User"
        if params.get("ResourcePolicy") and kind == "Account" and not params.get("CallerArn"):
            raise InvalidInput("CallerArn is required when ResourcePolicy is given.")
        caller = ev.Caller(caller_arn, account, "User" if kind == "Account" else kind)
        base = {"aws:principalarn": caller_arn, "aws:principalaccount": account}
        if ":user/" in caller_arn:
            base["aws:username"] = entities.name_of(caller_arn)
        return self._simulate(params, caller, identity, None, base)

    # --- GetAccountAuthorizationDetails ----------------------------------------------------

    def get_account_authorization_details(self, ctx: RequestContext,
                                          params: dict[str, Any]) -> dict:
        from corral.iam import managed
        from corral.iam.policy_ops import encoded
        from corral.store.schema import (
            iam_attachments,
            iam_groups,
            iam_inline_policies,
            iam_policies,
            iam_roles,
            iam_users,
        )

        wanted = set(params.get("Filter") or ["User", "Role", "Group", "LocalManagedPolicy",
                                               "AWSManagedPolicy"])
        acct = ctx.account_id
        inline: dict[tuple[str, str], list] = {}
        for r in ctx.db.execute(select(iam_inline_policies).where(
                iam_inline_policies.c.account_id == acct)):
            inline.setdefault((r.kind, r.owner), []).append(
                {"PolicyName": r.name, "PolicyDocument": encoded(r.document)})
        attached: dict[tuple[str, str], list] = {}
        for r in ctx.db.execute(select(iam_attachments).where(
                iam_attachments.c.account_id == acct)):
            attached.setdefault((r.kind, r.owner), []).append(
                {"PolicyName": entities.name_of(r.policy_arn), "PolicyArn": r.policy_arn})
        out: dict[str, Any] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [],
                               "Policies": [], "IsTruncated": False}
        if "User" in wanted:
            for r in ctx.db.execute(select(iam_users).where(iam_users.c.account_id == acct)
                                    .order_by(iam_users.c.name)):
                view = self._user_view(ctx, r)
                view.update(UserPolicyList=inline.get(("user", r.name), []),
                            GroupList=entities.groups_of(ctx.db, acct, r.name),
                            AttachedManagedPolicies=attached.get(("user", r.name), []))
                out["UserDetailList"].append(view)
        if "Group" in wanted:
            for r in ctx.db.execute(select(iam_groups).where(iam_groups.c.account_id == acct)
                                    .order_by(iam_groups.c.name)):
                view = self._group_view(r)
                view.update(GroupPolicyList=inline.get(("group", r.name), []),
                            AttachedManagedPolicies=attached.get(("group", r.name), []))
                out["GroupDetailList"].append(view)
        if "Role" in wanted:
            for r in ctx.db.execute(select(iam_roles).where(iam_roles.c.account_id == acct)
                                    .order_by(iam_roles.c.name)):
                view = self._role_view(ctx, r)
                view.update(InstanceProfileList=[], RolePolicyList=inline.get(("role", r.name), []),
                            AttachedManagedPolicies=attached.get(("role", r.name), []))
                out["RoleDetailList"].append(view)
        if "LocalManagedPolicy" in wanted:
            for r in ctx.db.execute(select(iam_policies).where(iam_policies.c.account_id == acct)
                                    .order_by(iam_policies.c.arn)):
                view = self._policy_view(ctx, r, with_tags=False)
                view["PolicyVersionList"] = [
                    {"Document": encoded(v.document), "VersionId": v.version_id,
                     "IsDefaultVersion": v.version_id == r.default_version,
                     "CreateDate": v.created_at} for v in self._versions(ctx, r.arn)]
                out["Policies"].append(view)
        if "AWSManagedPolicy" in wanted:
            for p in managed.POLICIES:
                view = self._policy_view(ctx, aws=p)
                if view["AttachmentCount"] or view["PermissionsBoundaryUsageCount"]:
                    view["PolicyVersionList"] = [{"Document": encoded(p.text),
                                                  "VersionId": p.version, "IsDefaultVersion": True,
                                                  "CreateDate": managed.CREATED}]
                    out["Policies"].append(view)
        return out

    # --- OpenID Connect providers ----------------------------------------------------------

    def create_open_id_connect_provider(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        url = params["Url"]
        split = urlsplit(url)
        if split.scheme not in ("https", "http") or not split.netloc:
            raise InvalidInput("Invalid Open ID Connect Provider URL")
        host_path = (split.netloc + split.path).rstrip("/")
        arn = f"arn:aws:iam::{ctx.account_id}:oidc-provider/{host_path}"
        if ctx.db.execute(select(iam_oidc_providers.c.arn).where(
                iam_oidc_providers.c.arn == arn)).first():
            raise EntityAlreadyExists(f"Provider with url {url} already exists.")
        ctx.db.execute(iam_oidc_providers.insert().values(
            arn=arn, account_id=ctx.account_id, url=url.rstrip("/"),
            client_ids=params.get("ClientIDList") or [],
            thumbprints=params.get("ThumbprintList") or [], created_at=datetime.now(UTC)))
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        tag_store.put(ctx.db, arn, tags)
        entities.changed(ctx.db)
        out: dict[str, Any] = {"OpenIDConnectProviderArn": arn}
        if tags:
            out["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return out

    def _oidc(self, ctx: RequestContext, arn: str):
        row = ctx.db.execute(select(iam_oidc_providers).where(
            iam_oidc_providers.c.arn == arn,
            iam_oidc_providers.c.account_id == ctx.account_id)).first()
        if row is None:
            raise NoSuchEntity(f"OpenIDConnect Provider not found for arn {arn}")
        return row

    @acts_on(_oidc_arn)
    def get_open_id_connect_provider(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._oidc(ctx, params["OpenIDConnectProviderArn"])
        tags = tag_store.get(ctx.db, row.arn)
        out = {"Url": row.url.split("://", 1)[-1], "ClientIDList": row.client_ids,
               "ThumbprintList": row.thumbprints, "CreateDate": row.created_at}
        if tags:
            out["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return out

    def list_open_id_connect_providers(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        t = iam_oidc_providers.c
        arns_ = ctx.db.execute(select(t.arn).where(t.account_id == ctx.account_id)
                               .order_by(t.arn)).scalars()
        return {"OpenIDConnectProviderList": [{"Arn": a} for a in arns_]}

    @acts_on(_oidc_arn)
    def delete_open_id_connect_provider(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = self._oidc(ctx, params["OpenIDConnectProviderArn"])
        ctx.db.execute(delete(iam_oidc_providers).where(iam_oidc_providers.c.arn == row.arn))
        entities.changed(ctx.db)
        return {}


def _named_docs(docs: list[entities.PolicyDoc]) -> list[ev.Named]:
    out = []
    for d in docs:
        try:
            out.append(ev.Named(d.name, pol.parse_cached(d.text)))
        except pol.MalformedPolicy:
            continue
    return out
