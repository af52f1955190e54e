"""STS API (query protocol): GetCallerIdentity, AssumeRole, GetSessionToken,
AssumeRoleWithWebIdentity.

STS operations need no identity permission of their own in the gateway's sense (AWS:
GetCallerIdentity and GetSessionToken cannot be denied; AssumeRole is decided by the role's
trust policy together with the caller's policies), so they declare no resources
(``@acts_on(_none)``) and AssumeRole evaluates its own decision here:

    caller bundle (identity, boundary, session) + trust policy (must allow explicitly)
    + context (sts:ExternalId, sts:RoleSessionName, sts:SourceIdentity, aws:RequestTag/*)
    ─> evaluator.evaluate(trust=True) ─> temporary credentials (ASIA…) + iam_sessions row

A session's permissions are only the role's (∩ boundary ∩ session policy); the caller's own
policies are not evaluated again (id_credentials_temp_control-access_assumerole).

Sessions are issued by two module-level functions, in the caller's transaction, so that code
outside the STS API issues the very same sessions: ``issue_session`` (an ``ASIA…`` key) and
``issue_role_session`` (a key plus the ``iam_sessions`` row naming the role), used by
AssumeRole*, ``iam.vending`` (task-role credentials) and ``runtime.images`` (execution-role
pulls).
"""

from __future__ import annotations

import json
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from corral.aws import arns
from corral.aws.context import Principal, RequestContext
from corral.aws.errors import AccessDenied
from corral.aws.provider import Provider, acts_on
from corral.iam import entities
from corral.iam import evaluator as ev
from corral.iam import policy as pol
from corral.iam.errors import (
    InvalidIdentityToken,
    MalformedPolicyDocument,
    PackedPolicyTooLarge,
    StsValidationError,
)
from corral.store.schema import access_keys, iam_oidc_providers, iam_sessions

SESSION_POLICY_MAX = 2048
MAX_SESSION_POLICY_ARNS = 10
CHAINED_MAX = 3600  # role chaining caps a session at one hour
_KEY_ALPHABET = string.ascii_uppercase + string.digits  # of an ``ASIA…`` key's 16 characters


_NO_BUNDLE = object()  # a caller without IAM policies (a web identity)


def _none(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return []


def _denied(principal: Principal, action: str, resource: str, why: str = "") -> AccessDenied:
    tail = f" {why}" if why else ""
    return AccessDenied(f"User: {principal.arn} is not authorized to perform: {action} on "
                        f"resource: {resource}{tail}")


# --- sessions: shared by the STS operations, the credential vendor and image pulls ----------


def issue_session(db: Connection, principal: Principal, seconds: float, *,
                  now: datetime | None = None) -> dict[str, Any]:
    """Temporary credentials (``ASIA…`` key, secret, session token) acting as ``principal``
    for ``seconds``, written in the caller's transaction ``db`` (an operation already holding
    the write lock must not open a second one). New keys need no cache invalidation: the
    authenticator caches only keys it found."""
    now = now or datetime.now(UTC)
    key = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    secret, token = secrets.token_urlsafe(30), secrets.token_urlsafe(96)
    expires = now + timedelta(seconds=seconds)
    db.execute(access_keys.insert().values(
        access_key_id=key, secret_access_key=secret, account_id=principal.account_id,
        principal_arn=principal.arn, user_id=principal.user_id, session_token=token,
        expires_at=expires, status="Active", created_at=now))
    return {"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token,
            "Expiration": expires}


def issue_role_session(db: Connection, role, session_name: str, seconds: int, *,
                       session_policy: str | None = None, policy_arns: list[str] | None = None,
                       tags: dict[str, str] | None = None, source_identity: str | None = None,
                       now: datetime | None = None) -> dict[str, Any]:
    """A session of ``role`` (an ``iam_roles`` row) named ``session_name``: temporary
    credentials plus the ``iam_sessions`` row through which the authorizer finds the role's
    policies. Returns AssumeRole's ``Credentials`` and ``AssumedRoleUser``. Trust is the
    caller's to decide first (AssumeRole*, ``vending.trust_allows``)."""
    now = now or datetime.now(UTC)
    role_arn = entities.arn(role.account_id, "role", role.path, role.name)
    session_arn = arns.build("sts", "", role.account_id,
                             f"assumed-role/{role.name}/{session_name}")
    principal = Principal(role.account_id, session_arn, f"{role.unique_id}:{session_name}",
                          "", "AssumedRole")
    creds = issue_session(db, principal, seconds, now=now)
    db.execute(iam_sessions.insert().values(
        access_key_id=creds["AccessKeyId"], account_id=role.account_id, role_arn=role_arn,
        session_name=session_name, session_policy=session_policy,
        policy_arns=policy_arns or [], tags=tags or {}, source_identity=source_identity,
        issued_at=now))
    return {"Credentials": creds,
            "AssumedRoleUser": {"AssumedRoleId": principal.user_id, "Arn": session_arn}}


class StsProvider(Provider):
    service = "sts"

    def __init__(self, authorizer=None):
        # Sessions are written in the operation's transaction by the module-level
        # issue_session / issue_role_session: the provider holds no credentials store.
        self.authorizer = authorizer  # PolicyAuthorizer (set by app.build), for caller bundles
        from corral.iam.oidc import KeyCache

        self._jwks = KeyCache()

    @acts_on(_none)
    def get_caller_identity(self, ctx: RequestContext, params: dict) -> dict:
        p = ctx.principal
        return {"UserId": p.user_id, "Account": p.account_id, "Arn": p.arn}

    # --- helpers ---------------------------------------------------------------------------

    def _session_policies(self, ctx: RequestContext, params: dict[str, Any]) -> tuple[str | None,
                                                                                       list[str]]:
        """Validated session policy text (inline + PolicyArns' documents, as one JSON list)."""
        docs: list[str] = []
        inline = params.get("Policy")
        if inline is not None:
            if pol.size(inline) > SESSION_POLICY_MAX:
                raise PackedPolicyTooLarge(
                    "Packed policy consumes more than 100% of the allotted space; the session "
                    f"policy may hold up to {SESSION_POLICY_MAX} characters.")
            try:
                pol.parse(inline)
            except pol.MalformedPolicy as e:
                raise MalformedPolicyDocument(e.reason) from None
            docs.append(inline)
        policy_arns = [p["arn"] for p in params.get("PolicyArns") or [] if p.get("arn")]
        if len(policy_arns) > MAX_SESSION_POLICY_ARNS:
            raise StsValidationError(f"PolicyArns may list at most {MAX_SESSION_POLICY_ARNS}.")
        for arn in policy_arns:
            text = entities.managed_document(ctx.db, arn)
            if text is None:
                raise StsValidationError(f"Policy {arn} does not exist or is not attachable.")
            docs.append(text)
        if inline is None and not policy_arns:
            return None, []
        return json.dumps(docs), policy_arns

    def _duration(self, params: dict[str, Any], maximum: int, default: int = 3600) -> int:
        seconds = params.get("DurationSeconds") or default
        if seconds > maximum:
            raise StsValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                "role." if maximum != CHAINED_MAX else
                "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                "assumed by role chaining.")
        if seconds < 900:
            raise StsValidationError(
                f"1 validation error detected: Value '{seconds}' at 'durationSeconds' failed "
                "to satisfy constraint: Member must have value greater than or equal to 900")
        return seconds

    def _trust_decision(self, ctx: RequestContext, role, role_arn: str, action: str,
                        context: dict[str, Any], caller: ev.Caller | None = None,
                        bundle=None) -> ev.Decision:
        trust = pol.parse_cached(role.trust_policy, "trust")
        if bundle is None:
            bundle = self.authorizer.bundle(ctx.db, ctx.principal)
        elif bundle is _NO_BUNDLE:
            bundle = None
        base = dict(bundle.context) if bundle is not None else {}
        now = datetime.now(UTC)
        base.update({"aws:currenttime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "aws:epochtime": str(int(now.timestamp())),
                     "aws:requestedregion": ctx.region})
        if ctx.extras.get("source_ip"):
            base["aws:sourceip"] = ctx.extras["source_ip"]
        base.update(ev.context_of(context))
        req = ev.Request(action, role_arn, caller or bundle.caller, base, role.account_id)
        if bundle is None:
            return ev.evaluate(req, resource=ev.Named(role_arn, trust), trust=True)
        return ev.evaluate(req, bundle.identity, boundary=bundle.boundary, session=bundle.session,
                           resource=ev.Named(role_arn, trust), trust=True)

    # --- AssumeRole ------------------------------------------------------------------------

    @acts_on(_none)
    def assume_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        role_arn = params["RoleArn"]
        from corral.iam.enforce import role_row

        role = role_row(ctx.db, role_arn)
        if role is None:
            raise _denied(ctx.principal, "sts:AssumeRole", role_arn)
        role_arn = entities.arn(role.account_id, "role", role.path, role.name)
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        context: dict[str, Any] = {"sts:RoleSessionName": params["RoleSessionName"]}
        if params.get("ExternalId") is not None:
            context["sts:ExternalId"] = params["ExternalId"]
        if params.get("SourceIdentity") is not None:
            context["sts:SourceIdentity"] = params["SourceIdentity"]
        if tags:
            context["aws:TagKeys"] = list(tags)
            context.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
        decision = self._trust_decision(ctx, role, role_arn, "sts:AssumeRole", context)
        if decision.allowed and tags:
            decision = self._trust_decision(ctx, role, role_arn, "sts:TagSession", context)
            if not decision.allowed:
                raise _denied(ctx.principal, "sts:TagSession", role_arn)
        if not decision.allowed:
            raise _denied(ctx.principal, "sts:AssumeRole", role_arn)
        chained = ctx.principal.type == "AssumedRole"
        seconds = self._duration(params, CHAINED_MAX if chained else role.max_session_duration)
        session_policy, policy_arns = self._session_policies(ctx, params)
        out = issue_role_session(ctx.db, role, params["RoleSessionName"], seconds,
                                      session_policy=session_policy, policy_arns=policy_arns,
                                      tags=tags, source_identity=params.get("SourceIdentity"))
        if session_policy is not None:
            out["PackedPolicySize"] = min(100, pol.size(session_policy) * 100
                                          // SESSION_POLICY_MAX)
        if params.get("SourceIdentity"):
            out["SourceIdentity"] = params["SourceIdentity"]
        return out

    # --- GetSessionToken -------------------------------------------------------------------

    @acts_on(_none)
    def get_session_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        p = ctx.principal
        if p.session_token is not None:
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        maximum = 3600 if p.type == "Account" else 129600
        seconds = self._duration(params, maximum, default=3600 if p.type == "Account" else 43200)
        now = datetime.now(UTC)
        creds = issue_session(ctx.db, Principal(p.account_id, p.arn, p.user_id, "", p.type),
                              seconds, now=now)
        ctx.db.execute(iam_sessions.insert().values(
            access_key_id=creds["AccessKeyId"], account_id=p.account_id, role_arn=None,
            session_name=None, session_policy=None, policy_arns=[], tags={},
            source_identity=None, issued_at=now))
        return {"Credentials": creds}

    # --- AssumeRoleWithWebIdentity ---------------------------------------------------------

    @acts_on(_none)
    def assume_role_with_web_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        from corral.iam import oidc
        from corral.iam.enforce import role_row

        role_arn = params["RoleArn"]
        role = role_row(ctx.db, role_arn)
        issuer = oidc.issuer_of(params["WebIdentityToken"])
        if role is None:
            raise AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
        provider_arn = f"arn:aws:iam::{role.account_id}:oidc-provider/{oidc.host_path(issuer)}"
        t = iam_oidc_providers.c
        provider = ctx.db.execute(select(iam_oidc_providers).where(t.arn == provider_arn)).first()
        if provider is None:
            raise InvalidIdentityToken(
                f"No OpenIDConnect provider found in your account for {issuer}")
        claims = oidc.verify(params["WebIdentityToken"], issuer, provider.client_ids,
                             self._jwks)
        context: dict[str, Any] = {
            f"{claims.issuer}:sub": claims.subject, f"{claims.issuer}:aud": claims.audience,
            "aws:FederatedProvider": provider_arn,
            "sts:RoleSessionName": params["RoleSessionName"]}
        if claims.amr:
            context[f"{claims.issuer}:amr"] = list(claims.amr)
        role_arn = entities.arn(role.account_id, "role", role.path, role.name)
        caller = ev.Caller(provider_arn, role.account_id, "WebIdentity", name=provider_arn)
        decision = self._trust_decision(ctx, role, role_arn, "sts:AssumeRoleWithWebIdentity",
                                        context, caller=caller, bundle=_NO_BUNDLE)
        if not decision.allowed:
            raise AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
        seconds = self._duration(params, role.max_session_duration)
        session_policy, policy_arns = self._session_policies(ctx, params)
        out = issue_role_session(ctx.db, role, params["RoleSessionName"], seconds,
                                      session_policy=session_policy, policy_arns=policy_arns)
        return {**out, "SubjectFromWebIdentityToken": claims.subject,
                "Provider": claims.issuer, "Audience": claims.audience}
