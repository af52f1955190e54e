"""SigV4 verification of a request as received (header and presigned-query forms).

Checklist (shared/reference/iam-and-sigv4.md §8.4): parse the Authorization header or the
``X-Amz-*`` query parameters; check the credential scope (date, region, service, terminator)
and the clock (±15 minutes, or the presigned validity window); rebuild the canonical request
from the raw path, query, signed headers and payload; compare in constant time.
Key lookup and session-token checks belong to the caller (``iam.credentials``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from botocore.utils import normalize_url_path

from corral.aws.errors import AwsError, error_class
from corral.aws.protocols.base import HttpRequest

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<sh>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_SPACES = re.compile(r"\s+")
_UNRESERVED = "-_.~"


# Error codes differ between JSON-family services and query services (IAM, STS).
_CODES = {
    "missing": ("MissingAuthenticationTokenException", "MissingAuthenticationToken"),
    "incomplete": ("IncompleteSignatureException", "IncompleteSignature"),
    "signature": ("InvalidSignatureException", "SignatureDoesNotMatch"),
    "unknown_key": ("UnrecognizedClientException", "InvalidClientTokenId"),
    "expired_token": ("ExpiredTokenException", "ExpiredToken"),
}
_CLASSES = {code: error_class(code, 403) for pair in _CODES.values() for code in pair}


def auth_error(kind: str, message: str, *, query_protocol: bool) -> AwsError:
    return _CLASSES[_CODES[kind][1 if query_protocol else 0]](message)


class AuthFailure(Exception):
    """Raised by this module; the gateway renders it with :func:`auth_error`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


@dataclass(frozen=True)
class SignatureInfo:
    access_key: str
    date: str  # YYYYMMDD of the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # the request time as sent (X-Amz-Date or Date)
    presigned: bool
    expires: int | None
    security_token: str | None

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse(request: HttpRequest) -> SignatureInfo | None:
    """The signature a request carries, or None when it carries none."""
    auth = request.header("authorization")
    query = dict(request.query_params)
    if auth is not None:
        return _parse_header(request, auth)
    if "X-Amz-Algorithm" in query or "X-Amz-Signature" in query:
        return _parse_query(query)
    return None


def _split_credential(cred: str) -> tuple[str, str, str, str]:
    parts = cred.split("/")
    if len(parts) != 5 or not all(parts):
        raise AuthFailure(
            "incomplete", "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{cred}'"
        )
    if parts[4] != "aws4_request":
        raise AuthFailure(
            "signature", f"Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{parts[4]}'."
        )
    return parts[0], parts[1], parts[2], parts[3]


def _parse_header(request: HttpRequest, auth: str) -> SignatureInfo:
    if not auth.startswith(ALGORITHM):
        raise AuthFailure("incomplete", f"Unsupported authorization type: {auth.split(' ', 1)[0]}")
    m = _AUTH_RE.match(auth)
    if not m:
        missing = [k for k in ("Credential", "SignedHeaders", "Signature") if f"{k}=" not in auth]
        detail = ", ".join(f"Authorization header requires '{k}' parameter." for k in missing)
        raise AuthFailure(
            "incomplete", detail or f"Authorization header is malformed: '{auth}'."
        )
    akid, date, region, service = _split_credential(m["cred"])
    amz_date = request.header("x-amz-date") or request.header("date")
    if not amz_date:
        raise AuthFailure(
            "incomplete", "Authorization header requires existence of either a 'X-Amz-Date' "
            "or a 'Date' header."
        )
    return SignatureInfo(
        akid, date, region, service, tuple(m["sh"].split(";")), m["sig"].lower(), amz_date,
        False, None, request.header("x-amz-security-token"),
    )


def _parse_query(q: dict[str, str]) -> SignatureInfo:
    need = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders",
            "X-Amz-Signature")
    missing = [k for k in need if not q.get(k)]
    if missing:
        raise AuthFailure(
            "incomplete", "AWS query-string parameters must include "
            + ", ".join(f"'{k}'" for k in missing) + ". Re-examine the query-string parameters."
        )
    if q["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthFailure("incomplete", f"Unsupported algorithm: {q['X-Amz-Algorithm']}")
    akid, date, region, service = _split_credential(q["X-Amz-Credential"])
    try:
        expires = int(q.get("X-Amz-Expires", "3600"))
    except ValueError:
        raise AuthFailure("incomplete", "X-Amz-Expires must be a number of seconds") from None
    if not 1 <= expires <= 604800:
        raise AuthFailure(
            "incomplete", "X-Amz-Expires must be between 1 and 604800 seconds (7 days)"
        )
    sig = q["X-Amz-Signature"]
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sig):
        raise AuthFailure("incomplete", "X-Amz-Signature must be 64 hexadecimal characters")
    return SignatureInfo(
        akid, date, region, service, tuple(q["X-Amz-SignedHeaders"].split(";")), sig.lower(),
        q["X-Amz-Date"], True, expires, q.get("X-Amz-Security-Token"),
    )


@lru_cache(maxsize=256)
def _basic_iso8601(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def request_time(info: SignatureInfo) -> datetime:
    text = info.amz_date
    try:
        return _basic_iso8601(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).astimezone(UTC)
    except (TypeError, ValueError):
        raise AuthFailure(
            "incomplete", f"Date must be in ISO-8601 'basic format'. Got '{text}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def check_scope_and_time(info: SignatureInfo, now: datetime) -> None:
    when = request_time(info)
    stamp = when.strftime("%Y%m%d")
    if info.date != stamp:
        raise AuthFailure(
            "signature", f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: '{info.date}' != '{stamp}', from '{info.amz_date}'."
        )
    if not _REGION_RE.match(info.region):
        raise AuthFailure(
            "signature", f"Credential should be scoped to a valid region, not '{info.region}'. "
        )
    fmt = "%Y%m%dT%H%M%SZ"
    if info.presigned:
        if now < when - MAX_SKEW:
            raise AuthFailure("signature", f"Request is not yet valid: {when.strftime(fmt)}")
        if now > when + timedelta(seconds=info.expires or 0):
            raise AuthFailure("signature", "Request has expired")
        return
    if when < now - MAX_SKEW:
        raise AuthFailure(
            "signature", f"Signature expired: {when.strftime(fmt)} is now earlier than "
            f"{(now - MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} - 15 min.)"
        )
    if when > now + MAX_SKEW:
        raise AuthFailure(
            "signature", f"Signature not yet current: {when.strftime(fmt)} is still later than "
            f"{(now + MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} + 15 min.)"
        )


# --- canonical request -----------------------------------------------------------------------


def canonical_uri(raw_path: str) -> str:
    """Non-S3 rule: normalize (dot segments, repeated slashes), then encode once more."""
    path = raw_path.split("?", 1)[0] or "/"
    byte_path = path.encode("utf-8", "surrogateescape").decode("latin-1")
    normalized = normalize_url_path(byte_path) or "/"
    return quote(normalized.encode("latin-1"), safe="/~")


def canonical_query(raw_query: str, *, drop_signature: bool) -> str:
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        key = quote(unquote_to_bytes(k), safe=_UNRESERVED)
        if drop_signature and key == "X-Amz-Signature":
            continue
        pairs.append((key, quote(unquote_to_bytes(v), safe=_UNRESERVED)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(request: HttpRequest, signed: tuple[str, ...]) -> str:
    lines = []
    for name in signed:
        values = request.header_values(name)
        if not values:
            raise AuthFailure("signature", MISMATCH)
        joined = ",".join(_SPACES.sub(" ", v.strip()) for v in values)
        lines.append(f"{name}:{joined}\n")
    return "".join(lines)


def payload_hash(request: HttpRequest) -> str:
    claimed = request.header("x-amz-content-sha256")
    actual = hashlib.sha256(request.body).hexdigest()
    if claimed is None or claimed == "UNSIGNED-PAYLOAD":
        return claimed or actual
    if claimed.lower() != actual:
        # A signed hash of some other body would let the body be swapped after signing.
        raise AuthFailure(
            "signature", "The provided 'x-amz-content-sha256' header does not match what was "
            "computed."
        )
    return claimed


def canonical_request(request: HttpRequest, info: SignatureInfo) -> str:
    signed = info.signed_headers
    return "\n".join((
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query, drop_signature=info.presigned),
        canonical_headers(request, signed),
        ";".join(signed),
        EMPTY_SHA256 if info.presigned and not request.body else payload_hash(request),
    ))


def string_to_sign(info: SignatureInfo, creq: str, when: datetime) -> str:
    return "\n".join((
        ALGORITHM,
        when.strftime("%Y%m%dT%H%M%SZ"),
        info.scope,
        hashlib.sha256(creq.encode("utf-8", "surrogateescape")).hexdigest(),
    ))


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_signed_headers(info: SignatureInfo) -> None:
    signed = info.signed_headers
    if list(signed) != sorted(signed) or any(h != h.lower() for h in signed):
        raise AuthFailure("signature", MISMATCH)
    if "host" not in signed:
        raise AuthFailure("signature", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if not info.presigned and "x-amz-date" not in signed and "date" not in signed:
        raise AuthFailure(
            "signature", "'X-Amz-Date' or 'Date' must be a 'SignedHeader' in the AWS Authorization."
        )


def verify(request: HttpRequest, info: SignatureInfo, secret: str, now: datetime) -> None:
    """Raise AuthFailure unless ``info`` is a valid signature of ``request`` under ``secret``."""
    check_scope_and_time(info, now)
    check_signed_headers(info)
    creq = canonical_request(request, info)
    sts = string_to_sign(info, creq, request_time(info))
    key = signing_key(secret, info.date, info.region, info.service)
    expected = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, info.signature):
        raise AuthFailure("signature", MISMATCH)
