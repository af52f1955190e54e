"""Run the ASGI app on its listeners: plain HTTP always, TLS beside it when asked.

    plain  host:port             lifespan on: starts and stops the controllers
    tls    host:tls_listen_port  the same app, lifespan off (one set of controllers)

Why a second port rather than TLS instead of HTTP: everything that works today keeps working
with no CA to trust — the aws CLI and SDKs at ``http://…:4566``, ECS tasks' credentials
endpoint, Docker's own "localhost is insecure" default — while clients that insist on https
(the ECR credential helper, docker for a non-loopback registry, oras-py's ECR auth) use the
TLS port, which may be 443 while the plain one stays unprivileged.

Both ports are bound by ``bind`` before anything starts (no controller, no lifespan): a port
in use is one clear ``ListenerError`` naming the port and what to do, not a listener that exits
half-way through startup. ``X-Forwarded-*`` headers are never trusted (``proxy_headers`` off):
the peer address and the listener are what ``aws:SourceIp`` and ``aws:SecureTransport`` say,
so a local client cannot claim TLS over plain HTTP with a header.

Signals: one SIGINT/SIGTERM stops every listener (a second SIGINT forces, as uvicorn does).
The TLS listener drains first and the plain one — whose lifespan closes the store — after it,
so no request is cut off from the state it needs. ``on_ready`` runs once all of them listen
(``corral up`` writes the server file then).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn

from corral.config import Settings
from corral.tls import TlsFiles

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ListenerError(Exception):
    """A listener's port cannot be bound; the message says which and what to do."""


def configs(app, s: Settings, tls: TlsFiles | None) -> list[uvicorn.Config]:
    common = {"host": s.host, "log_level": "warning", "access_log": False,
              "timeout_graceful_shutdown": 5, "proxy_headers": False}
    out = [uvicorn.Config(app, port=s.port, **common)]
    if tls is not None:
        out.append(uvicorn.Config(app, port=s.tls_listen_port, lifespan="off",
                                  ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key),
                                  **common))
    return out


def bind(s: Settings) -> list[socket.socket]:
    """The listening sockets, plain first then TLS (``s.tls``), bound as uvicorn binds them;
    ``ListenerError`` (nothing left open) when a port is taken or not allowed."""
    wanted = [("plain HTTP", s.port, "--port / CORRAL_PORT")]
    if s.tls:
        wanted.append(("TLS", s.tls_listen_port, "--tls-port / CORRAL_TLS_PORT"))
    bound: list[socket.socket] = []
    try:
        for what, port, option in wanted:
            bound.append(_bind_one(s.host, port, what, option))
    except ListenerError:
        for sock in bound:
            sock.close()
        raise
    return bound


def _bind_one(host: str, port: int, what: str, option: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ListenerError(
            f"cannot listen on {host}:{port} for {what} ({e.strerror or e}): another process "
            f"(perhaps another `corral up`) uses that port, or it needs privileges; stop it "
            f"or choose another port with {option}") from None
    sock.set_inheritable(True)
    return sock


def run(app, s: Settings, tls: TlsFiles | None, sockets: list[socket.socket],
        on_ready: Callable[[], None]) -> None:
    """Serve on ``sockets`` (from ``bind``) until a stop signal; returns normally (no
    re-raised signal) so the caller's cleanup runs."""
    cfgs = configs(app, s, tls)
    listeners = _Listeners([uvicorn.Server(c) for c in cfgs], sockets)
    previous = {sig: signal.signal(sig, listeners.stop) for sig in STOP_SIGNALS}
    try:
        with asyncio.Runner(loop_factory=cfgs[0].get_loop_factory()) as runner:
            runner.run(listeners.serve(on_ready))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in sockets:
            sock.close()


class _Listeners:
    def __init__(self, servers: list[uvicorn.Server], sockets: list[socket.socket]):
        self.main, self.extra = servers[0], servers[1:]
        self.sockets = dict(zip(servers, sockets, strict=True))
        self.stopping = False
        for server in servers:
            # Signals are handled here, once for all listeners: uvicorn's own capture would
            # let the last server started take them, and re-raise them when it exits.
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]

    def stop(self, sig: int, frame: FrameType | None) -> None:
        """The first signal stops the extra listeners (the main one follows once they
        drained); a repeated one goes to every listener, so Ctrl-C twice forces."""
        targets = self.extra if self.extra and not self.stopping else [self.main, *self.extra]
        self.stopping = True
        for server in targets:
            server.handle_exit(sig, frame)

    async def serve(self, on_ready: Callable[[], None]) -> None:
        main = asyncio.create_task(self.main.serve([self.sockets[self.main]]))
        extra = [asyncio.create_task(s.serve([self.sockets[s]])) for s in self.extra]
        everything = [main, *extra]
        while not all(s.started for s in (self.main, *self.extra)):
            if any(t.done() for t in everything):
                break  # a listener failed to start; uvicorn logged why
            await asyncio.sleep(0.05)
        else:
            on_ready()
        await asyncio.wait(everything, return_when=asyncio.FIRST_COMPLETED)
        if extra and not main.done():  # the extra listeners stopped (or failed): main too
            await asyncio.gather(*extra, return_exceptions=True)
            self.main.should_exit = True
        for server in self.extra:  # main stopped first (it failed): stop the others
            server.should_exit = True
        await asyncio.gather(*everything)
