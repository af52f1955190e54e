"""Access keys and the authentication of a signed request.

    signed request ─ sigv4.parse ─> key lookup ─> token/expiry checks ─> sigv4.verify ─> Principal

Strict mode (default): only stored keys, with their secret. Open mode (``CORRAL_AUTH=open``):
a stored key is still verified, and any other well-formed signature is taken as the root of the
default account, for tools that sign with arbitrary keys.
"""

from __future__ import annotations

import hmac
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from corral.aws import arns, sigv4
from corral.aws.context import Principal
from corral.aws.protocols.base import HttpRequest
from corral.aws.sigv4 import AuthFailure, SignatureInfo
from corral.config import Settings
from corral.store import Store
from corral.store.schema import access_keys, accounts

INVALID_TOKEN = "The security token included in the request is invalid."


def root_principal(account_id: str, access_key_id: str) -> Principal:
    return Principal(account_id, arns.account_root(account_id), account_id, access_key_id)


class Credentials:
    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings
        # Keys are read on every request and written only through this object (or before
        # it starts): a read-through cache, dropped on every write here.
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()
        # GetAccessKeyLastUsed: (time, service, region) per key, kept in memory only.
        self._last_used: dict[str, tuple[datetime, str, str]] = {}

    def _key(self, access_key_id: str):
        row = self._keys.get(access_key_id)
        if row is None:
            with self.store.transaction(write=False) as db:
                row = db.execute(select(access_keys).where(
                    access_keys.c.access_key_id == access_key_id)).first()
            if row is not None:
                with self._lock:
                    self._keys[access_key_id] = row
        return row

    def _forget(self, access_key_id: str) -> None:
        with self._lock:
            self._keys.pop(access_key_id, None)

    def forget(self, access_key_id: str) -> None:
        """Drop a key from the cache: IAM calls this when it creates, deactivates or deletes
        a key (before and after its transaction commits)."""
        self._forget(access_key_id)

    def last_used(self, access_key_id: str) -> tuple[datetime, str, str] | None:
        return self._last_used.get(access_key_id)

    def bootstrap(self) -> None:
        """Create the configured accounts and their root keys (idempotent)."""
        for account_id, access_key, secret in self.settings.root_keys:
            self.ensure_root_key(account_id, access_key, secret)

    def ensure_root_key(self, account_id: str, access_key: str, secret: str) -> None:
        now = datetime.now(UTC)
        with self.store.transaction() as db:
            if db.execute(select(accounts.c.account_id).where(
                    accounts.c.account_id == account_id)).first() is None:
                db.execute(accounts.insert().values(account_id=account_id, created_at=now))
            row = db.execute(select(access_keys).where(
                access_keys.c.access_key_id == access_key)).first()
            values = dict(
                secret_access_key=secret, account_id=account_id,
                principal_arn=arns.account_root(account_id), user_id=account_id,
                session_token=None, expires_at=None, status="Active",
            )
            if row is None:
                db.execute(access_keys.insert().values(
                    access_key_id=access_key, created_at=now, **values))
            elif tuple(row._mapping[k] for k in values) != tuple(values.values()):
                db.execute(access_keys.update().where(
                    access_keys.c.access_key_id == access_key).values(**values))
        self._forget(access_key)

    def issue_session(self, principal: Principal, duration: timedelta, *,
                      db=None, now: datetime | None = None) -> dict[str, object]:
        """Temporary credentials (``ASIA…`` key, secret, session token) acting as ``principal``
        until they expire — what STS hands out, minted by ``sts.issue_session``. ``db``: write
        in the caller's transaction (an operation already holding the write lock must not
        open a second one)."""
        from corral.iam.sts import issue_session  # sts imports the IAM modules: import late

        if db is not None:
            return issue_session(db, principal, duration.total_seconds(), now=now)
        with self.store.transaction() as own:
            return issue_session(own, principal, duration.total_seconds(), now=now)

    def authenticate(self, request: HttpRequest, info: SignatureInfo, now: datetime) -> Principal:
        key = self._key(info.access_key)
        if key is None or key.status != "Active":
            if self.settings.auth_mode == "open":
                sigv4.check_scope_and_time(info, now)
                return root_principal(self.settings.account_id, info.access_key)
            raise AuthFailure("unknown_key", INVALID_TOKEN)
        if key.session_token is not None:
            if info.security_token is None or not hmac.compare_digest(
                    info.security_token, key.session_token):
                raise AuthFailure("unknown_key", INVALID_TOKEN)
            if key.expires_at is not None and key.expires_at <= now:
                raise AuthFailure("expired_token",
                                  "The security token included in the request is expired")
        elif info.security_token is not None:
            raise AuthFailure("unknown_key", INVALID_TOKEN)
        sigv4.verify(request, info, key.secret_access_key, now)
        self._last_used[key.access_key_id] = (now, info.service, info.region)
        return Principal(
            key.account_id, key.principal_arn, key.user_id, key.access_key_id,
            _principal_type(key.principal_arn), key.session_token,
        )


def _principal_type(arn: str) -> str:
    resource = arns.parse(arn).resource if arns.parse(arn) else ""
    if resource == "root":
        return "Account"
    return {"user": "User", "assumed-role": "AssumedRole", "federated-user": "FederatedUser"}.get(
        resource.split("/", 1)[0], "User"
    )
