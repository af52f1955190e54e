"""Enforcement: the Authorizer the gateway and the registry call before every operation.

    ctx.principal ─> Bundle (identity policies, boundary, session policy, principal context;
                     cached per access key and IAM generation)
    resource ARN  ─> resource policy (ECR repository policy; cached per generation)
    request       ─> context keys (aws:*, ecr:ResourceTag/*, request tags)
                  ─> evaluator.evaluate ─> allow, or AccessDenied(Exception) with AWS's message

Everything the evaluator needs is gathered here; the decision itself is the pure evaluator.
Parsed policies are cached (``policy.parse_cached``) and a principal's policy set is rebuilt
only after an IAM write (``entities.GENERATION``), so a request costs a dict lookup plus the
evaluation itself.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from corral.aws import arns
from corral.aws.context import Principal, RequestContext
from corral.aws.errors import AccessDenied, AccessDeniedException
from corral.iam import entities
from corral.iam import evaluator as ev
from corral.iam import policy as pol
from corral.iam.authorize import access_denied
from corral.store import Store
from corral.store import tags as tag_store
from corral.store.schema import access_keys, ecr_repository_policies, iam_roles


@dataclass
class Bundle:
    """What a principal brings to every decision."""

    caller: ev.Caller
    identity: list[ev.Named] = field(default_factory=list)
    boundary: list[ev.Named] | None = None
    session: list[ev.Named] | None = None
    context: dict[str, ev.ContextValue] = field(default_factory=dict)
    needs_resource_tags: bool = False
    expires_at: datetime | None = None  # temporary credentials: registry tokens die with them


def _named(docs: list[entities.PolicyDoc], kind: str = "identity") -> list[ev.Named]:
    out = []
    for d in docs:
        try:
            out.append(ev.Named(d.name, pol.parse_cached(d.text, kind)))
        except pol.MalformedPolicy:
            continue  # stored documents were validated; never fail a request on one
    return out


def _uses_resource_tags(named: list[ev.Named] | None) -> bool:
    return any("resourcetag/" in c.key for n in named or () for s in n.policy.statements
               for c in s.conditions)


def _role_of_session(role_arn: str) -> tuple[str, str]:
    parsed = arns.parse(role_arn)
    return parsed.account, entities.name_of(role_arn)


def load_bundle(db: Connection, principal: Principal) -> Bundle:
    """The policies and principal context keys of an authenticated caller."""
    bundle = _load_bundle(db, principal)
    if principal.access_key_id and principal.type != "Account":
        bundle.expires_at = db.execute(select(access_keys.c.expires_at).where(
            access_keys.c.access_key_id == principal.access_key_id)).scalar()
    return bundle


def _load_bundle(db: Connection, principal: Principal) -> Bundle:
    account = principal.account_id
    ctx: dict[str, ev.ContextValue] = {
        "aws:principalarn": principal.arn, "aws:principalaccount": account,
        "aws:userid": principal.user_id, "aws:principaltype": principal.type,
    }
    if principal.type == "Account":
        return Bundle(ev.Caller(principal.arn, account, "Account"), context=ctx)
    if principal.type == "User":
        name = entities.name_of(principal.arn)
        ctx["aws:username"] = name
        found = entities.user_identity(db, account, name)
        bundle = Bundle(ev.Caller(principal.arn, account, "User"), context=ctx)
        if found is None:
            return bundle
        docs, row = found
        bundle.identity = _named(docs)
        if row.boundary_arn:
            text = entities.managed_document(db, row.boundary_arn)
            bundle.boundary = _named([entities.PolicyDoc(row.boundary_arn, text, "managed")]
                                     if text else [])
        for k, v in tag_store.get(db, principal.arn).items():
            ctx[f"aws:principaltag/{k.lower()}"] = v
        _finish(bundle)
        return bundle
    session = entities.session(db, principal.access_key_id)
    if principal.type == "AssumedRole" and session is not None and session.role_arn:
        role_account, role_name = _role_of_session(session.role_arn)
        caller = ev.Caller(principal.arn, account, "AssumedRole", role_arn=session.role_arn)
        bundle = Bundle(caller, context=ctx)
        role = entities.role(db, role_account, role_name)
        if role is not None:
            bundle.identity = _named(entities.policies_of(db, role_account, "role", role_name))
            if role.boundary_arn:
                text = entities.managed_document(db, role.boundary_arn)
                bundle.boundary = _named(
                    [entities.PolicyDoc(role.boundary_arn, text, "managed")] if text else [])
            for k, v in tag_store.get(db, session.role_arn).items():
                ctx[f"aws:principaltag/{k.lower()}"] = v
        if session.session_policy:
            texts = json.loads(session.session_policy)
            names = ["session"] + list(session.policy_arns or [])
            bundle.session = _named([entities.PolicyDoc(n, t, "inline")
                                     for n, t in zip(names, texts, strict=False)])
        for k, v in (session.tags or {}).items():
            ctx[f"aws:principaltag/{k.lower()}"] = v
        if session.source_identity:
            ctx["aws:sourceidentity"] = session.source_identity
        ctx["aws:tokenissuetime"] = session.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        _finish(bundle)
        return bundle
    # GetSessionToken sessions and anything unknown: no policies (implicit deny).
    return Bundle(ev.Caller(principal.arn, account, principal.type), context=ctx)


def _finish(bundle: Bundle) -> None:
    bundle.needs_resource_tags = any(_uses_resource_tags(x) for x in
                                     (bundle.identity, bundle.boundary, bundle.session))


# Actions AWS also authorizes for some requests (Service Authorization Reference, "dependent
# actions"): CreateRepository with tags needs ecr:TagResource too.
DEPENDENT_ACTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "ecr:CreateRepository": ("ecr:TagResource", lambda params: bool(params.get("tags"))),
}


@functools.lru_cache(maxsize=4)
def _times(epoch: int) -> tuple[str, str]:
    """aws:CurrentTime and aws:EpochTime of a second (formatted once per second)."""
    return (datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), str(epoch))


def request_tags(params: dict[str, Any] | None) -> dict[str, str]:
    """aws:RequestTag values: ECR/ECS ``tags`` ([{key|Key, value|Value}]), IAM ``Tags``."""
    if not params:
        return {}
    raw = params.get("tags") or params.get("Tags") or []
    out = {}
    if isinstance(raw, list):
        for t in raw:
            if isinstance(t, dict):
                key = t.get("Key", t.get("key"))
                if key is not None:
                    out[key] = t.get("Value", t.get("value", ""))
    return out


class PolicyAuthorizer:
    """IAM policy enforcement for every API call and registry request."""

    def __init__(self, store: Store):
        self.store = store
        self._bundles: dict[tuple[str, str], Bundle] = {}
        self._repo_policies: dict[str, ev.Named | None] = {}
        self._generation = -1
        self._lock = threading.Lock()

    @contextmanager
    def _db(self, ctx: RequestContext) -> Iterator[Callable[[], Connection]]:
        """The request's transaction, or a read transaction opened only if a cache misses
        (registry requests arrive without one)."""
        if ctx.db is not None:
            yield lambda: ctx.db
            return
        with ExitStack() as stack:
            opened: list[Connection] = []

            def get() -> Connection:
                if not opened:
                    opened.append(stack.enter_context(self.store.transaction(write=False)))
                return opened[0]

            yield get

    def _fresh(self) -> None:
        gen = entities.GENERATION.value
        if gen != self._generation:
            with self._lock:
                self._bundles.clear()
                self._repo_policies.clear()
                self._generation = gen

    def bundle(self, db: Connection | Callable[[], Connection], principal: Principal) -> Bundle:
        key = (principal.access_key_id, principal.arn)
        found = self._bundles.get(key)
        if found is None:
            found = load_bundle(db() if callable(db) else db, principal)
            self._bundles[key] = found
        return found

    def resource_policy(self, db: Callable[[], Connection], resource: str) -> ev.Named | None:
        """The resource-based policy of an ECR repository ARN (None for anything else)."""
        if not resource.startswith("arn:aws:ecr:") or "*" in resource:
            return None
        if resource in self._repo_policies:
            return self._repo_policies[resource]
        arn = arns.parse(resource)
        named = None
        if arn is not None and arn.resource_type == "repository":
            t = ecr_repository_policies.c
            text = db().execute(select(t.policy).where(
                t.account_id == arn.account, t.region == arn.region,
                t.name == arn.resource_id)).scalar()
            if text:
                try:
                    named = ev.Named(resource, pol.parse_cached(text, "resource"))
                except pol.MalformedPolicy:
                    named = None
        self._repo_policies[resource] = named
        return named

    def context(self, ctx: RequestContext, bundle: Bundle, db: Callable[[], Connection],
                resource: str,
                resource_policy: ev.Named | None, now: datetime) -> dict[str, ev.ContextValue]:
        out = dict(bundle.context)
        out["aws:currenttime"], out["aws:epochtime"] = _times(int(now.timestamp()))
        out["aws:requestedregion"] = ctx.region
        out["aws:securetransport"] = "true" if ctx.extras.get("secure") else "false"
        if ctx.extras.get("source_ip"):
            out["aws:sourceip"] = ctx.extras["source_ip"]
        tags = request_tags(ctx.extras.get("params"))
        if tags:
            out["aws:tagkeys"] = tuple(tags)
            for k, v in tags.items():
                out[f"aws:requesttag/{k.lower()}"] = v
        if resource.startswith("arn:") and "*" not in resource and (
                bundle.needs_resource_tags or _uses_resource_tags(
                    [resource_policy] if resource_policy else None)):
            service = resource.split(":", 3)[2]
            for k, v in tag_store.get(db(), resource).items():
                out[f"aws:resourcetag/{k.lower()}"] = v
                out[f"{service}:resourcetag/{k.lower()}"] = v
        out.update(ctx.extras.get("context_keys") or {})
        return out

    def decide(self, ctx: RequestContext, action: str, resource: str,
               db: Callable[[], Connection]) -> ev.Decision:
        self._fresh()
        bundle = self.bundle(db, ctx.principal)
        res_policy = self.resource_policy(db, resource)
        arn = arns.parse(resource) if resource != "*" else None
        resource_account = arn.account if arn is not None and arn.account not in ("", "aws") else None
        if bundle.caller.kind == "Account" and res_policy is None and resource_account in (
                None, bundle.caller.account):
            return ev.Decision(ev.ALLOWED)  # the account root, in its own account
        req = ev.Request(action, resource, bundle.caller,
                         self.context(ctx, bundle, db, resource, res_policy, datetime.now(UTC)),
                         resource_account)
        return ev.evaluate(req, bundle.identity, boundary=bundle.boundary,
                           session=bundle.session, resource=res_policy)

    def _check_expiry(self, ctx: RequestContext, db) -> None:
        """A registry token obtained with temporary credentials ends with them (API calls are
        refused earlier, by authentication)."""
        self._fresh()
        expires = self.bundle(db, ctx.principal).expires_at
        if expires is not None and expires <= datetime.now(UTC):
            cls = AccessDenied if ctx.extras.get("protocol") == "query" else AccessDeniedException
            raise cls("The security token included in the request is expired")

    def authorize(self, ctx: RequestContext, action: str, resources: list[str]) -> None:
        with self._db(ctx) as db:
            if resources:
                self._check_expiry(ctx, db)
            actions = [action]
            dependent = DEPENDENT_ACTIONS.get(action)
            if dependent is not None and dependent[1](ctx.extras.get("params") or {}):
                actions.append(dependent[0])
            for action, resource in ((a, r) for a in actions for r in resources):
                decision = self.decide(ctx, action, resource, db)
                if not decision.allowed:
                    err = access_denied(ctx, action, resource, decision.why(action),
                                        query_protocol=ctx.extras.get("protocol") == "query")
                    if ctx.extras.get("protocol") == "rest-json":
                        err.status = 403  # Inspector2 and other REST-JSON services
                    raise err


def role_row(db: Connection, role_arn: str):
    """The role an ARN names (None when it does not exist)."""
    parsed = arns.parse(role_arn)
    if parsed is None or parsed.service != "iam" or not parsed.resource.startswith("role/"):
        return None
    return db.execute(select(iam_roles).where(
        iam_roles.c.account_id == parsed.account,
        iam_roles.c.name == entities.name_of(role_arn))).first()
