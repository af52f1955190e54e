"""Registry credentials as ECR issues them.

GetAuthorizationToken hands out ``base64("AWS:<password>")`` valid 12 hours. The password is
random URL-safe text (never a ``:``, which the aws CLI would split on) and is stored only as
its sha256, bound to the principal that asked, so every registry call acts as that principal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select

from corral.aws.context import Principal
from corral.store.schema import ecr_auth_tokens

LIFETIME = timedelta(hours=12)


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def issue(db: Connection, principal: Principal, now: datetime) -> tuple[str, datetime]:
    password = secrets.token_urlsafe(64)
    expires = now + LIFETIME
    db.execute(delete(ecr_auth_tokens).where(ecr_auth_tokens.c.expires_at < now))
    db.execute(ecr_auth_tokens.insert().values(
        token_hash=_hash(password), access_key_id=principal.access_key_id,
        account_id=principal.account_id, principal_arn=principal.arn, user_id=principal.user_id,
        principal_type=principal.type, expires_at=expires,
    ))
    return base64.b64encode(f"AWS:{password}".encode()).decode(), expires


def principal_for(db: Connection, basic_credentials: str, now: datetime) -> Principal | None:
    """The principal behind ``Authorization: Basic <credentials>``; None if unknown/expired."""
    try:
        user, _, password = base64.b64decode(basic_credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if user != "AWS" or not password:
        return None
    row = db.execute(select(ecr_auth_tokens).where(
        ecr_auth_tokens.c.token_hash == _hash(password))).first()
    if row is None or row.expires_at <= now:
        return None
    return Principal(row.account_id, row.principal_arn, row.user_id, row.access_key_id,
                     row.principal_type)
