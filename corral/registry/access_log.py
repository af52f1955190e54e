"""One log line per /v2/ request, and uvicorn's TLS-probe warning turned into an explanation.

    handle(request) ─> AccessRecord(method, path, start) ─> principal set once authenticated
        ─> LoggedResponse(inner) ─ counts the body bytes once ASGI's send took them ─> last
        byte sent ─> "registry GET /v2/… 200 1000 bytes principal=… 3.1 ms"

The line is written when the response is over, not when the handler returns: a blob download
streams for as long as the client reads, and the line gives the bytes actually sent. A
response that did not end says why, first match wins:

    send itself failed, or the app stopped before the last chunk   " (client went away)"
    the app raised while sending (a read error, a bug)             " (server error: <Type>)"
 Only the
method, path, status, byte count, principal ARN and duration are logged; never headers (the
``Authorization`` header carries the registry password) or query strings.

uvicorn logs ``Invalid HTTP request received.`` at WARNING for every connection that does not
speak HTTP. On the plain port that is nearly always a client trying TLS first (docker and
containerd try ``https://`` before ``http://`` for a registry they are not told is insecure),
so every ``docker push`` printed a warning. ``install_log_filters()`` replaces that record with
one DEBUG line on ``corral.registry.access`` that says so; call it once where logging is set up.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("corral.registry.access")

UVICORN_INVALID_REQUEST = "Invalid HTTP request received."
TLS_PROBE_EXPLAINED = (
    "a connection sent bytes that are not HTTP and was answered 400: usually a client probing "
    "for TLS on this plain-HTTP port (docker and containerd try https:// first, then fall back "
    "to http:// for an insecure registry); harmless")


@dataclass
class AccessRecord:
    """What one request's log line says; ``principal`` stays "-" until authentication."""

    method: str
    path: str
    started: float = field(default_factory=time.monotonic)
    principal: str = "-"


class LoggedResponse:
    """An ASGI response wrapper: sends ``inner`` unchanged and logs ``record`` once it is over."""

    def __init__(self, inner, record: AccessRecord):
        self.inner = inner
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, sent, finished, send_failed = 0, 0, False, False

        async def counting(message: Message) -> None:
            nonlocal status, sent, finished, send_failed
            try:
                await send(message)
            except BaseException:
                send_failed = True
                raise
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
                finished = not message.get("more_body", False)
            elif kind == "http.response.pathsend":  # the server sends the whole file itself
                sent += os.path.getsize(message["path"])
                finished = True

        outcome = ""
        try:
            await self.inner(scope, receive, counting)
        except BaseException as e:
            outcome = _CLIENT_GONE if send_failed else f" (server error: {type(e).__name__})"
            raise
        else:  # starlette stops streaming, without raising, when the client disconnects
            outcome = "" if finished else _CLIENT_GONE
        finally:
            log_request(self.record, status, sent, outcome)


_CLIENT_GONE = " (client went away)"


def log_request(record: AccessRecord, status: int, sent: int, outcome: str = "") -> None:
    """The request's one line; ``outcome`` is empty for a response that ended, else why not."""
    ms = (time.monotonic() - record.started) * 1000
    log.info("registry %s %s %s %d bytes principal=%s %.1f ms%s", record.method, record.path,
             status or "-", sent, record.principal, ms, outcome)


class TlsProbeFilter(logging.Filter):
    """On ``uvicorn.error``: swallows the invalid-request warning, logs the explanation instead
    (through Corral's own logger, so it shows only when Corral logs at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != UVICORN_INVALID_REQUEST:
            return True
        log.debug(TLS_PROBE_EXPLAINED)
        return False


def install_log_filters() -> None:
    """Attach the filters to uvicorn's loggers; idempotent. uvicorn's own logging setup keeps
    logger filters (dictConfig replaces handlers, not filters): calling it before
    ``uvicorn.Config`` is built is fine."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, TlsProbeFilter) for f in logger.filters):
        logger.addFilter(TlsProbeFilter())
