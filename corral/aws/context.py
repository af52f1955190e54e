"""The request context every operation carries: who, where, which request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, as STS GetCallerIdentity reports it."""

    account_id: str
    arn: str
    user_id: str
    access_key_id: str
    type: str = "Account"  # Account | User | AssumedRole | FederatedUser
    session_token: str | None = None


@dataclass
class RequestContext:
    request_id: str
    service: str  # Corral's service name (the botocore model name): ecr, sts, …
    operation: str
    region: str
    principal: Principal
    endpoint: str  # Corral's public base URL, e.g. http://localhost:4566
    db: Connection | None = None  # the request's transaction, set while the operation runs
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        return self.principal.account_id
