"""OCI digests: ``algorithm:encoded``, sha256 and sha512 (OCI image-spec descriptor rules)."""

from __future__ import annotations

import hashlib
import re

ALGORITHMS = {"sha256": 64, "sha512": 128}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class InvalidDigest(ValueError):
    pass


def parse(digest: str) -> tuple[str, str]:
    """(algorithm, hex) of a supported digest; InvalidDigest otherwise."""
    # Messages never open with "invalid digest": registry clients print the error code's
    # words first ("digest invalid: <message>").
    if not _GRAMMAR.match(digest or ""):
        raise InvalidDigest(f"{digest!r} is not a digest of the form <algorithm>:<hex>")
    alg, hexpart = digest.split(":", 1)
    if alg not in ALGORITHMS:
        raise InvalidDigest(f"digest algorithm {alg!r} is not supported (sha256, sha512)")
    if len(hexpart) != ALGORITHMS[alg] or not re.fullmatch(r"[a-f0-9]+", hexpart):
        raise InvalidDigest(f"{digest!r} is not a {alg} digest: that takes "
                            f"{ALGORITHMS[alg]} lowercase hex digits")
    return alg, hexpart


def is_digest(text: str) -> bool:
    try:
        parse(text)
    except InvalidDigest:
        return False
    return True


def hasher(algorithm: str = "sha256"):
    return hashlib.new(algorithm)


def of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
