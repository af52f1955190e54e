"""Roles for workloads: ``iam:PassRole`` checks and role credentials vended to a consumer.

For the ECS work (task roles, execution roles), two reusable pieces:

- ``check_pass_role(authorizer, ctx, role_arn, service)``: when a caller *names* a role in a
  request (RegisterTaskDefinition's taskRoleArn, RunTask overrides, …) the caller needs
  ``iam:PassRole`` on that role, with ``iam:PassedToService`` (and ``iam:AssociatedResourceArn``)
  in the context (IAM User Guide id_roles_use_passrole). A role of another account can never
  be passed.
- ``CredentialVendor``: issues temporary credentials of a role to one named consumer (a task),
  after the role's trust policy allows the service principal (``ecs-tasks.amazonaws.com``) with
  ``aws:SourceAccount``/``aws:SourceArn``. The consumer gets a credentials URI and an
  authorization token — exactly what botocore's ContainerProvider reads from
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` — and only
  that token fetches that role's credentials (JSON AccessKeyId, SecretAccessKey, Token,
  Expiration, RoleArn). Credentials are rotated when a fetch finds them within 15 minutes of
  expiry (botocore's advisory refresh window), so a long-running task never holds expired keys.

    vend(role, consumer) ─> {uri: /_corral/credentials/<id>, token}
    GET uri, Authorization: <token> ─> fetch(id, token) ─> credentials JSON (rotated if due)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from corral.aws import arns
from corral.aws.context import RequestContext
from corral.aws.errors import AccessDeniedException
from corral.iam import entities
from corral.iam import evaluator as ev
from corral.iam import policy as pol
from corral.iam.authorize import access_denied
from corral.iam.enforce import role_row
from corral.iam.sts import issue_role_session
from corral.store import Store
from corral.store.schema import access_keys, iam_vended_credentials

LIFETIME = timedelta(hours=6)  # what the ECS agent hands out (reference §10.2)
REFRESH_BEFORE = timedelta(minutes=15)
PATH = "/_corral/credentials/"


def check_pass_role(authorizer, ctx: RequestContext, role_arn: str, service: str,
                    associated_resource: str | None = None) -> None:
    """Raise the protocol's AccessDenied unless the caller may pass ``role_arn`` to
    ``service`` (e.g. ``ecs-tasks.amazonaws.com``)."""
    parsed = arns.parse(role_arn)
    query = ctx.extras.get("protocol") == "query"
    if parsed is None or parsed.service != "iam" or not parsed.resource.startswith("role/") \
            or parsed.account != ctx.account_id:
        raise access_denied(ctx, "iam:PassRole", role_arn,
                            "because a role of another account cannot be passed"
                            if parsed is not None and parsed.account != ctx.account_id
                            else "because it is not a role ARN", query_protocol=query)
    keys = {"iam:passedtoservice": service}
    if associated_resource:
        keys["iam:associatedresourcearn"] = associated_resource
    saved = ctx.extras.get("context_keys")
    ctx.extras["context_keys"] = {**(saved or {}), **keys}
    try:
        authorizer.authorize(ctx, "iam:PassRole", [role_arn])
    finally:
        if saved is None:
            ctx.extras.pop("context_keys", None)
        else:
            ctx.extras["context_keys"] = saved


def trust_allows(role, service: str, source_account: str | None = None,
                 source_arn: str | None = None) -> bool:
    """Whether ``role``'s trust policy lets the service principal ``service`` assume it, as
    the service does on a consumer's behalf: ``aws:SourceAccount`` (the role's own account
    unless given) and ``aws:SourceArn`` in the context (the confused-deputy keys). A trust
    policy that no longer parses trusts nobody."""
    role_arn = entities.arn(role.account_id, "role", role.path, role.name)
    context = {"aws:SourceAccount": source_account or role.account_id}
    if source_arn:
        context["aws:SourceArn"] = source_arn
    caller = ev.Caller(service, role.account_id, "Service", name=service)
    req = ev.Request("sts:AssumeRole", role_arn, caller, ev.context_of(context),
                     role.account_id)
    try:
        trust = ev.Named(role_arn, pol.parse_cached(role.trust_policy, "trust"))
    except pol.MalformedPolicy:
        return False
    return ev.evaluate(req, resource=trust, trust=True).allowed


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CredentialVendor:
    def __init__(self, store: Store, endpoint: str):
        # Sessions come from ``sts.issue_role_session`` (module level), in this vendor's own
        # transactions: no STS provider is needed.
        self.store = store
        self.endpoint = endpoint.rstrip("/")

    def vend(self, role_arn: str, consumer: str, *, service: str = "ecs-tasks.amazonaws.com",
             source_account: str | None = None, source_arn: str | None = None,
             db=None) -> dict[str, Any]:
        """Credentials of ``role_arn`` for ``consumer``: {"id", "uri", "token", "expiration"}.
        Raises AccessDeniedException when the role does not trust ``service``."""
        if db is None:
            with self.store.transaction() as own:
                return self.vend(role_arn, consumer, service=service,
                                 source_account=source_account, source_arn=source_arn, db=own)
        role = role_row(db, role_arn)
        if role is None or not trust_allows(role, service, source_account, source_arn):
            raise AccessDeniedException(
                f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
        session = consumer.rsplit("/", 1)[-1][:64] or "corral"
        out = issue_role_session(db, role, session_name(session),
                                          int(LIFETIME.total_seconds()))
        cred_id = secrets.token_hex(16)
        token = secrets.token_urlsafe(32)
        db.execute(iam_vended_credentials.insert().values(
            id=cred_id, account_id=role.account_id, consumer=consumer, role_arn=role_arn,
            token_hash=_hash(token), access_key_id=out["Credentials"]["AccessKeyId"],
            created_at=datetime.now(UTC)))
        return {"id": cred_id, "uri": f"{self.endpoint}{PATH}{cred_id}", "token": token,
                "expiration": out["Credentials"]["Expiration"]}

    def fetch(self, cred_id: str, token: str | None, *, now: datetime | None = None
              ) -> dict[str, Any] | None:
        """The container-credentials JSON for ``cred_id`` if ``token`` is its consumer's."""
        now = now or datetime.now(UTC)
        with self.store.transaction() as db:
            row = db.execute(select(iam_vended_credentials).where(
                iam_vended_credentials.c.id == cred_id)).first()
            if row is None or token is None or not hmac.compare_digest(row.token_hash,
                                                                       _hash(token)):
                return None
            key = db.execute(select(access_keys).where(
                access_keys.c.access_key_id == row.access_key_id)).first()
            if key is None or key.expires_at - now < REFRESH_BEFORE:
                role = role_row(db, row.role_arn)
                if role is None:
                    return None
                out = issue_role_session(
                    db, role, session_name(row.consumer.rsplit("/", 1)[-1]),
                    int(LIFETIME.total_seconds()), now=now)
                db.execute(iam_vended_credentials.update().where(
                    iam_vended_credentials.c.id == cred_id).values(
                    access_key_id=out["Credentials"]["AccessKeyId"]))
                key = db.execute(select(access_keys).where(
                    access_keys.c.access_key_id == out["Credentials"]["AccessKeyId"])).first()
        return {"RoleArn": row.role_arn, "AccessKeyId": key.access_key_id,
                "SecretAccessKey": key.secret_access_key, "Token": key.session_token,
                "Expiration": key.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def revoke(self, consumer: str) -> int:
        """Forget a consumer's credential URIs (the task stopped); returns how many."""
        with self.store.transaction() as db:
            return db.execute(delete(iam_vended_credentials).where(
                iam_vended_credentials.c.consumer == consumer)).rowcount


def session_name(text: str) -> str:
    """A valid RoleSessionName (2 to 64 of letters, digits and ``=,.@-_``) made from ``text``;
    other characters become ``-``."""
    name = "".join(c if c.isalnum() or c in "=,.@-_" else "-" for c in text)[:64]
    return name if len(name) >= 2 else f"{name}-session"

