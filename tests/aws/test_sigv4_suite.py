"""The official SigV4 test suite (botocore sdist copy of aws-c-auth's suite).

For every case: our canonical request equals ``.creq``, our string to sign equals ``.sts``,
and the signature in ``.authz`` verifies with the suite's secret — while a changed secret,
header, body or time is rejected. Verified against ``.authz`` because ``.sreq`` of
get-vanilla-with-session-token carries a stale signature (reference §8.1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral.aws import sigv4
from corral.aws.protocols.base import HttpRequest

SUITE = Path(__file__).parent / "data" / "aws4_testsuite"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
CASES = sorted(p.parent for p in SUITE.rglob("*.req"))


def load_request(case: Path) -> HttpRequest:
    """The signed request (``.sreq``) with the Authorization header from ``.authz``."""
    raw = (case / f"{case.name}.sreq").read_bytes().decode("utf-8")
    head, _, body = raw.partition("\n\n")
    lines = head.split("\n")
    # The request line keeps spaces in the path for get-space; everything before " HTTP/" is target.
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" HTTP/", 1)[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, _, value = line.partition(":")
        if name.lower() != "authorization":
            headers.append((name.lower(), value))
    headers.append(("authorization", (case / f"{case.name}.authz").read_text().strip()))
    path, _, query = target.partition("?")
    raw_path = path.encode("utf-8").decode("utf-8", "surrogateescape")
    return HttpRequest(method, raw_path, query, headers, body.encode())


@pytest.mark.parametrize("case", CASES, ids=lambda p: str(p.relative_to(SUITE)))
def test_canonical_request_string_to_sign_and_signature(case: Path):
    request = load_request(case)
    info = sigv4.parse(request)
    assert info is not None
    creq = sigv4.canonical_request(request, info)
    assert creq == (case / f"{case.name}.creq").read_text()
    sts = sigv4.string_to_sign(info, creq, sigv4.request_time(info))
    assert sts == (case / f"{case.name}.sts").read_text()
    sigv4.verify(request, info, SECRET, NOW)


@pytest.mark.parametrize("case", CASES, ids=lambda p: str(p.relative_to(SUITE)))
def test_wrong_secret_is_rejected(case: Path):
    request = load_request(case)
    info = sigv4.parse(request)
    with pytest.raises(sigv4.AuthFailure) as exc:
        sigv4.verify(request, info, SECRET + "x", NOW)
    assert exc.value.kind == "signature"


@pytest.mark.parametrize("case", CASES[:6], ids=lambda p: str(p.relative_to(SUITE)))
def test_tampered_body_or_header_is_rejected(case: Path):
    request = load_request(case)
    info = sigv4.parse(request)
    tampered = HttpRequest(request.method, request.path, request.query,
                           [(n, v + "x" if n == "x-amz-date" else v) for n, v in request.header_list],
                           request.body + b"!")
    with pytest.raises(sigv4.AuthFailure):
        sigv4.verify(tampered, info, SECRET, NOW)


@pytest.mark.parametrize("skew,ok", [(timedelta(minutes=14), True), (timedelta(minutes=16), False),
                                     (timedelta(minutes=-14), True), (timedelta(minutes=-16), False)],
                         ids=["14min-late", "16min-late", "14min-early", "16min-early"])
def test_fifteen_minute_clock_skew(skew, ok):
    case = SUITE / "get-vanilla"
    request = load_request(case)
    info = sigv4.parse(request)
    if ok:
        sigv4.verify(request, info, SECRET, NOW + skew)
    else:
        with pytest.raises(sigv4.AuthFailure, match="Signature (expired|not yet current)"):
            sigv4.verify(request, info, SECRET, NOW + skew)
