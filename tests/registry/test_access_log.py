"""Issue 17 item 9: the registry logs every /v2/ request, and a TLS probe is no warning.

Read from the server log of a real ``corral up`` (tests/server.py sends its stdout and stderr
to ``<data dir>/server.log``). A line is written when the response is over, so tests wait for
it rather than expect it the moment the client has its answer.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
import socket
import time
from pathlib import Path

import pytest
import requests

from corral.registry.access_log import (
    TLS_PROBE_EXPLAINED,
    UVICORN_INVALID_REQUEST,
    AccessRecord,
    LoggedResponse,
    install_log_filters,
)
from tests.registry.conftest import get_token
from tests.registry.v2 import V2

LINE = re.compile(r" INFO corral\.registry\.access registry (?P<method>[A-Z]+) (?P<path>\S+) "
                  r"(?P<status>\d+) (?P<bytes>\d+) bytes principal=(?P<principal>\S+) "
                  r"(?P<ms>\d+\.\d) ms(?P<gone> \(client went away\))?"
                  r"(?P<error> \(server error: \w+\))?$")

# A TLS 1.2 ClientHello's first bytes (record header, handshake header, client version):
# what docker sends when it tries https:// on the plain port.
CLIENT_HELLO = bytes.fromhex("16030100f1010000ed0303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"


def access_lines(log: Path) -> list[dict]:
    return [m.groupdict() for m in map(LINE.search, log.read_text().splitlines()) if m]


def wait_for(log: Path, pred, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in access_lines(log) if pred(line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_registry_requests_are_logged(server, v2, repo, token):
    data = random.Random(9).randbytes(1000)
    digest = v2.push_blob(repo, data)
    blob = f"/v2/{repo}/blobs/{digest}"
    assert v2.get(blob).content == data
    assert v2.get(blob, headers={"Range": "bytes=0-9"}).status_code == 206
    assert v2.head(blob).status_code == 200
    assert v2.get(f"/v2/{repo}/manifests/missing").status_code == 404
    assert requests.get(f"{server.endpoint}/v2/{repo}/tags/list", timeout=10).status_code == 401
    arn = server.client("sts").get_caller_identity()["Arn"]

    expected = [  # (method, path, status, bytes, principal)
        ("POST", f"/v2/{repo}/blobs/uploads/", "201", "0", arn),
        ("GET", blob, "200", "1000", arn),
        ("GET", blob, "206", "10", arn),
        ("HEAD", blob, "200", "0", arn),
        ("GET", f"/v2/{repo}/manifests/missing", "404", None, arn),
        ("GET", f"/v2/{repo}/tags/list", "401", None, "-"),
    ]
    mine = wait_for(server.log, lambda line: line["path"] == f"/v2/{repo}/tags/list")
    assert mine, "the unauthenticated request's line never appeared"
    lines = [line for line in access_lines(server.log) if repo in line["path"]]
    got = [(x["method"], x["path"], x["status"], x["principal"]) for x in lines]
    assert got == [(m, p, s, who) for m, p, s, _, who in expected]
    for (*_, size, _), line in zip(expected, lines, strict=True):
        if size is None:  # an error's JSON body
            assert int(line["bytes"]) > 0, line
        else:
            assert line["bytes"] == size, line
    text = server.log.read_text()
    password = base64.b64decode(token).decode().split(":", 1)[1]
    assert token not in text and password not in text  # never the Authorization header


def test_an_interrupted_download_is_logged_with_the_bytes_sent(server, v2, repo):
    data = random.Random(10).randbytes(32 << 20)  # far more than loopback socket buffers hold
    digest = v2.push_blob(repo, data)
    with v2.get(f"/v2/{repo}/blobs/{digest}", stream=True) as r:
        assert r.status_code == 200
        assert len(r.raw.read(1 << 20)) == 1 << 20
    lines = wait_for(server.log, lambda line: line["path"].endswith(digest)
                     and line["method"] == "GET")
    assert len(lines) == 1
    assert lines[0]["gone"] and 1 << 20 <= int(lines[0]["bytes"]) < len(data)


@pytest.fixture
def debug_server(fresh_server):
    fresh_server.env["CORRAL_LOG_LEVEL"] = "debug"
    return fresh_server.start()


def test_tls_probe_warning_becomes_debug_line(debug_server):
    with socket.create_connection(("127.0.0.1", debug_server.port), timeout=10) as s:
        s.sendall(CLIENT_HELLO)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer  # uvicorn's refusal, as before
    v2 = V2(debug_server.endpoint, get_token(debug_server))
    assert v2.get("/v2/").status_code == 200  # the server is fine afterwards
    deadline = time.monotonic() + 10
    while TLS_PROBE_EXPLAINED not in (text := debug_server.log.read_text()):
        assert time.monotonic() < deadline, f"no explained debug line in:\n{text[-3000:]}"
        time.sleep(0.05)
    explained = [x for x in text.splitlines() if TLS_PROBE_EXPLAINED in x]
    assert len(explained) == 1
    assert " DEBUG corral.registry.access " in explained[0]
    assert UVICORN_INVALID_REQUEST not in text


def test_tls_probe_filter_rewrites_only_that_warning(caplog):
    """The filter itself, in this process: the one uvicorn warning becomes the explained
    DEBUG line; every other uvicorn message passes untouched."""
    uvicorn_error = logging.getLogger("uvicorn.error")
    before = list(uvicorn_error.filters)
    install_log_filters()
    install_log_filters()  # idempotent
    try:
        assert len(uvicorn_error.filters) == len(before) + 1
        with caplog.at_level(logging.DEBUG):
            uvicorn_error.warning(UVICORN_INVALID_REQUEST)
            uvicorn_error.warning("Unsupported upgrade request.")
        got = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
        assert got == [("corral.registry.access", "DEBUG", TLS_PROBE_EXPLAINED),
                       ("uvicorn.error", "WARNING", "Unsupported upgrade request.")]
    finally:
        uvicorn_error.filters[:] = before


# --- how a response that did not end is told (LoggedResponse on its own) -------------------


def _streaming(chunks: list[bytes], fail_after: int | None = None):
    """An ASGI app streaming ``chunks``; it raises RuntimeError after ``fail_after`` of them."""
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i, chunk in enumerate(chunks):
            if i == fail_after:
                raise RuntimeError("the blob file could not be read")
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": i < len(chunks) - 1})
    return app


def _send_failing_at(n: int):
    """An ASGI send whose ``n``-th body message fails as a vanished client's does."""
    bodies = 0

    async def send(message):
        nonlocal bodies
        if message["type"] == "http.response.body":
            bodies += 1
            if bodies == n:
                raise OSError("Connection reset by peer")
    return send


def _logged(caplog, app, send) -> str:
    async def receive():
        return {"type": "http.disconnect"}

    response = LoggedResponse(app, AccessRecord("GET", "/v2/r/blobs/sha256:x"))
    with caplog.at_level(logging.INFO, logger="corral.registry.access"), \
            pytest.raises((OSError, RuntimeError)):
        asyncio.run(response({"type": "http"}, receive, send))
    [record] = [r for r in caplog.records if r.name == "corral.registry.access"]
    return record.getMessage()


def test_bytes_are_counted_only_once_send_took_them(caplog):
    line = _logged(caplog, _streaming([b"a" * 100, b"b" * 50, b"c" * 10]), _send_failing_at(2))
    assert " 200 100 bytes " in line and line.endswith(" (client went away)"), line


def test_server_error_mid_stream_is_not_a_client_that_went_away(caplog):
    async def send(message):
        pass

    line = _logged(caplog, _streaming([b"a" * 100, b"b" * 50], fail_after=1), send)
    assert " 200 100 bytes " in line, line
    assert line.endswith(" (server error: RuntimeError)") and "client went away" not in line
