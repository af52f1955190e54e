"""OpenID Connect web identity tokens for AssumeRoleWithWebIdentity (reference §11.2).

    token ─> unverified ``iss`` ─> the OIDC provider registered in the role's account
          ─> its signing keys (``<issuer>/.well-known/openid-configuration`` → ``jwks_uri``,
             cached for five minutes)
          ─> signature, ``exp``/``nbf``/``iss``, ``aud`` ∈ the provider's client ids
          ─> Claims(issuer host/path, sub, aud, amr)

Thumbprints are stored but not checked (AWS stopped relying on them for well-known CAs); an
``http://`` issuer is accepted so local identity providers work.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass

import jwt
from jwt import PyJWKSet

from corral.iam.errors import ExpiredTokenException, IDPRejectedClaim, InvalidIdentityToken

JWKS_TTL = 300.0
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class IDPCommunicationError(InvalidIdentityToken):
    code = "IDPCommunicationError"


@dataclass(frozen=True)
class Claims:
    issuer: str  # host/path, as condition keys and provider ARNs spell it
    subject: str
    audience: str
    amr: tuple[str, ...]


def issuer_of(token: str) -> str:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidIdentityToken("Couldn't parse the web identity token") from None
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise InvalidIdentityToken("The web identity token has no issuer (iss)")
    return iss


def host_path(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


class KeyCache:
    def __init__(self) -> None:
        self._keys: dict[str, tuple[float, PyJWKSet]] = {}
        self._lock = threading.Lock()

    def keys(self, issuer_url: str) -> PyJWKSet:
        now = time.monotonic()
        found = self._keys.get(issuer_url)
        if found and now - found[0] < JWKS_TTL:
            return found[1]
        try:
            config = _get_json(f"{issuer_url.rstrip('/')}/.well-known/openid-configuration")
            jwks = PyJWKSet.from_dict(_get_json(config["jwks_uri"]))
        except (OSError, ValueError, KeyError, jwt.PyJWTError):
            raise IDPCommunicationError(
                "Couldn't retrieve verification key from your identity provider, please "
                "reference AssumeRoleWithWebIdentity documentation for requirements") from None
        with self._lock:
            self._keys[issuer_url] = (now, jwks)
        return jwks


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def verify(token: str, issuer_url: str, client_ids: list[str], cache: KeyCache) -> Claims:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise InvalidIdentityToken("Couldn't parse the web identity token") from None
    jwks = cache.keys(issuer_url)
    candidates = [k for k in jwks.keys if kid is None or k.key_id == kid]
    if not candidates:
        raise InvalidIdentityToken("No matching key found for the web identity token's kid")
    try:
        claims = jwt.decode(token, candidates[0].key, algorithms=_ALGORITHMS,
                            audience=client_ids or None, issuer=issuer_url,
                            options={"require": ["exp", "iss", "sub", "aud"]})
    except jwt.ExpiredSignatureError:
        raise ExpiredTokenException("Token expired: the web identity token is past its "
                                    "expiration date/time") from None
    except jwt.InvalidAudienceError:
        raise InvalidIdentityToken("Incorrect token audience") from None
    except jwt.InvalidIssuerError:
        raise IDPRejectedClaim("Token issuer does not match the identity provider") from None
    except jwt.PyJWTError as e:
        raise InvalidIdentityToken(f"The web identity token is not valid: {e}") from None
    aud = claims["aud"]
    audience = next((a for a in aud if a in client_ids), aud[0]) if isinstance(aud, list) else aud
    amr = claims.get("amr") or ()
    return Claims(host_path(issuer_url), str(claims["sub"]), str(audience),
                  tuple(amr) if isinstance(amr, list) else (str(amr),))
