"""The HTTP/1.1 reverse proxy one ALB listener runs on its host port.

    client ──h11 server──> ListenerServer ──rules.route──> action
                               │ forward: GroupRuntime.choose() -> Member
                               v
                           Member.acquire() (pooled keep-alive) ──h11 client──> target

Both sides are parsed by h11 state machines, so a malformed request (garbage, a bad
Content-Length, headers over 64 KiB — ALB's limit for the whole header block) costs only its own
connection a ``400`` and never the server. Bodies stream chunk by chunk in both directions with
``drain()`` back-pressure; nothing buffers a whole body. The request body is sent before the
response is read (HTTP/1.1 without pipelining to targets).

ALB semantics (reference §8.1, ALB load-balancer-troubleshooting / x-forwarded-headers /
load-balancer-request-tracing):
- no target to take the request -> 503; connect refused/reset or a broken response -> 502;
  connect over 10 s, or no byte from the target within the idle timeout -> 504;
- ``X-Forwarded-For`` appends the client address, ``X-Forwarded-Proto``/``-Port`` are the
  listener's; ``X-Amzn-Trace-Id`` gets a ``Root`` if it has none, otherwise the load balancer
  inserts (or replaces) a ``Self`` field and keeps the rest;
- a client connection idle for ``idle_timeout.timeout_seconds`` is closed;
- a request with both ``Content-Length`` and ``Transfer-Encoding`` is refused with a ``400``
  (ALB's desync mitigation: the smuggling shape), and ``Connection`` cannot make the framing
  headers or ``Host`` hop-by-hop; ``Expect: 100-continue`` is answered once the target
  connection is open; an unexpected failure of the proxy itself answers ``500``.

The routing table (:class:`Routing`) is replaced as a whole by assignment, so a request sees
either the old rules or the new ones; it is only touched on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11

from corral.elb import http_errors, rules
from corral.elb.pool import GroupRuntime, Member, Upstream

log = logging.getLogger("corral.elb.proxy")

MAX_HEADERS = 64 * 1024  # ALB quotas: the whole header block 64 KiB; the request line and
MAX_LINE = 16 * 1024  # each header line 16 KiB
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 10.0  # ALB: a target that takes longer to accept gets a 504
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
              "expect", "proxy-authenticate", "proxy-authorization"}
# A name in ``Connection`` is hop-by-hop, except these: dropping them would change how the
# message is framed or where it goes (``Connection: content-length`` must not strip the body)
NEVER_HOP_BY_HOP = {"content-length", "transfer-encoding", "host"}
_TRACE_SELF = re.compile(r"^self=", re.IGNORECASE)


class Abort(Exception):
    """The exchange cannot go on; ``status`` is the error to answer if nothing was sent yet."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


@dataclass
class Routing:
    """One listener's routing table: compiled rules and the target groups they forward to."""

    rules: list[rules.CompiledRule]
    groups: dict[str, GroupRuntime]
    idle_timeout: float = 60.0
    protocol: str = "HTTP"


@dataclass
class Counts:
    requests: int = 0
    codes: Counter[int] = field(default_factory=Counter)


def trace_id(incoming: str | None, now: float) -> str:
    new = f"1-{int(now):08x}-{secrets.token_hex(12)}"
    fields = [f.strip() for f in (incoming or "").split(";") if f.strip()]
    if not any(f.lower().startswith("root=") for f in fields):
        return ";".join([f"Root={new}", *fields])
    return ";".join([f"Self={new}", *(f for f in fields if not _TRACE_SELF.match(f))])


def _hop_by_hop(headers: list[tuple[bytes, bytes]]) -> set[str]:
    """The fixed hop-by-hop names and those the message's ``Connection`` header lists."""
    listed = {v.strip().lower() for k, v in headers if k == b"connection"
              for v in v.decode("latin-1").split(",")}
    return HOP_BY_HOP | (listed - NEVER_HOP_BY_HOP)


def ambiguous_framing(request: h11.Request) -> bool:
    """Both ``Content-Length`` and ``Transfer-Encoding``: the request-smuggling shape (RFC 9112
    §6.3). ALB's desync mitigation refuses it rather than pick one framing for the target."""
    names = {k for k, _ in request.headers}
    return b"content-length" in names and b"transfer-encoding" in names


def forwarded_headers(headers: list[tuple[bytes, bytes]], client_ip: str, port: int,
                      protocol: str, default_host: str) -> list[tuple[bytes, bytes]]:
    """The request headers as the target receives them."""
    drop = _hop_by_hop(headers) | {"x-forwarded-proto", "x-forwarded-port", "x-amzn-trace-id"}
    out = [(k, v) for k, v in headers
           if k.decode("latin-1") not in drop and k != b"x-forwarded-for"]
    xff = [v for k, v in headers if k == b"x-forwarded-for"]
    trace = next((v.decode("latin-1") for k, v in headers if k == b"x-amzn-trace-id"), None)
    if not any(k == b"host" for k, _ in out):
        out.append((b"host", default_host.encode()))
    out += [(b"x-forwarded-for", b", ".join([*xff, client_ip.encode()])),
            (b"x-forwarded-proto", protocol.lower().encode()),
            (b"x-forwarded-port", str(port).encode()),
            (b"x-amzn-trace-id", trace_id(trace, time.time()).encode())]
    return out


def _response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    drop = _hop_by_hop(headers)
    return [(k, v) for k, v in headers if k.decode("latin-1") not in drop]


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k == b"transfer-encoding" or (k == b"content-length" and v.strip() != b"0")
               for k, v in headers)


def too_large(request: h11.Request) -> bool:
    """Over ALB's header quotas (h11 only bounds an event while it is incomplete)."""
    lines = [len(request.target) + 16] + [len(k) + len(v) + 4 for k, v in request.headers]
    return max(lines) > MAX_LINE or sum(lines) > MAX_HEADERS


async def next_event(conn: h11.Connection, reader: asyncio.StreamReader, timeout: float):
    """The next h11 event, reading as needed; raises TimeoutError after ``timeout`` of
    silence and h11.RemoteProtocolError on malformed input.

    Reads are bounded with ``asyncio.timeout``, never ``wait_for``: on Python 3.11, a
    ``wait_for`` cancelled just as its read completes returns the data and swallows the
    cancellation, so a listener's ``stop()`` could wait forever for that connection (it also
    costs a task per read)."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        async with asyncio.timeout(timeout):
            conn.receive_data(await reader.read(CHUNK))


class ListenerServer:
    """The proxy of one listener: ``await start()``, swap ``routing``, ``await stop()``."""

    def __init__(self, host: str, port: int, routing: Routing, *,
                 connect_timeout: float = CONNECT_TIMEOUT, rng: random.Random | None = None):
        self.host, self.port, self.routing = host, port, routing
        self.connect_timeout = connect_timeout
        self.rng = rng or random.Random()
        self.counts = Counts()
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port,
                                                  reuse_address=True, limit=CHUNK)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # --- one client connection ----------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        assert task is not None  # asyncio.start_server runs each connection in a task
        self._clients.add(task)
        peer = (writer.get_extra_info("peername") or ("0.0.0.0", 0))[0]
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        try:
            await self._serve(conn, reader, writer, peer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # idle client, or it went away: just close
        except asyncio.CancelledError:
            pass  # the listener stops; finishing normally keeps asyncio's stream callback quiet
        except h11.ProtocolError as e:  # e.g. a target response h11 cannot relay as sent
            log.info("listener %d: closing a client connection: %s", self.port, e)
        except Exception:  # a bug: this connection closes, the listener keeps serving
            log.exception("listener %d: client connection failed", self.port)
        finally:
            self._clients.discard(task)
            writer.close()

    async def _serve(self, conn: h11.Connection, reader, writer, peer: str) -> None:
        while True:
            try:
                event = await next_event(conn, reader, self.routing.idle_timeout)
            except h11.RemoteProtocolError:
                self._count(400)
                writer.write(http_errors.raw_response(400))
                await writer.drain()
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed
            if too_large(event) or ambiguous_framing(event):
                self._count(400)
                writer.write(http_errors.raw_response(400))
                await writer.drain()
                return
            if not await self._exchange(conn, reader, writer, event, peer):
                return
            if h11.MUST_CLOSE in (conn.our_state, conn.their_state):
                return
            conn.start_next_cycle()

    async def _exchange(self, conn, reader, writer, request: h11.Request, peer: str) -> bool:
        """Answer one request; False when the client connection must close."""
        routing = self.routing  # one table for the whole exchange, even if swapped meanwhile
        view = self._view(request, peer, routing)
        try:
            action = rules.route(routing.rules, view, self.rng)
            if isinstance(action, rules.Forward):
                group = routing.groups.get(action.target_group_arn)
                member = group.choose() if group is not None else None
                if member is None:
                    raise Abort(503)
                return await self._forward(conn, reader, writer, request, view, member,
                                           group, routing)
            await self._drain_body(conn, reader, writer, routing.idle_timeout)
            if isinstance(action, rules.FixedResponse):
                body = action.body.encode()
                return await self._send_own(conn, writer, action.status, body, [
                    ("Content-Type", action.content_type)])
            if isinstance(action, rules.Redirect):
                return await self._send_own(conn, writer, action.status, b"", [
                    ("Location", action.location)])
            raise Abort(503)  # a forward to nothing, or a listener with no default rule
        except Abort as failed:
            return await self._send_error(conn, writer, failed.status)
        except h11.RemoteProtocolError:  # the body broke its framing
            return await self._send_error(conn, writer, 400)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                h11.LocalProtocolError):
            raise  # the client stalled or left, or a response cannot be relayed: close
        except Exception:  # a bug (say, a rule that cannot be evaluated): ALB still answers
            log.exception("listener %d: %s %r failed", self.port, view.method, view.path)
            return await self._send_error(conn, writer, 500)

    def _view(self, request: h11.Request, peer: str, routing: Routing) -> rules.Request:
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        host = next((v for k, v in headers if k == "host"), "")
        return rules.Request(request.method.decode("latin-1"), path, query, host, headers,
                             peer, routing.protocol, self.port)

    async def _drain_body(self, conn: h11.Connection, reader, writer, timeout: float) -> None:
        await self._continue(conn, writer)
        while not isinstance(await next_event(conn, reader, timeout), h11.EndOfMessage):
            pass

    @staticmethod
    async def _continue(conn: h11.Connection, writer) -> None:
        """``Expect: 100-continue``: tell the client to send its body now."""
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            await writer.drain()

    async def _send_own(self, conn, writer, status: int, body: bytes,
                        extra: list[tuple[str, str]]) -> bool:
        headers = [("Server", http_errors.SERVER), ("Content-Length", str(len(body))), *extra]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers))
                     + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        self._count(status)
        return True

    async def _send_error(self, conn: h11.Connection, writer, status: int) -> bool:
        self._count(status)
        if conn.our_state is not h11.SEND_RESPONSE:
            return False  # the response already started: all we can do is close
        body = http_errors.page(status)
        close = conn.their_state is not h11.DONE  # the request body was not read to its end
        writer.write(conn.send(h11.Response(status_code=status, headers=http_errors.headers(
            status, body, close=close))) + conn.send(h11.Data(data=body))
            + conn.send(h11.EndOfMessage()))
        await writer.drain()
        return not close

    def _count(self, status: int) -> None:
        self.counts.requests += 1
        self.counts.codes[status] += 1

    # --- forwarding -----------------------------------------------------------------------

    async def _forward(self, conn, reader, writer, request: h11.Request, view: rules.Request,
                       member: Member, group: GroupRuntime, routing: Routing) -> bool:
        member.in_flight += 1
        member.requests += 1
        upstream: Upstream | None = None
        try:
            headers = forwarded_headers(list(request.headers), view.source_ip, self.port,
                                        routing.protocol, f"{self.host}:{self.port}")
            upstream, response = await self._send_request(conn, reader, writer, request,
                                                          headers, member, routing.idle_timeout)
            status = response.status_code
            head = conn.send(h11.Response(status_code=status, reason=response.reason,
                                          headers=_response_headers(response.headers)))
            await self._relay_response(conn, writer, upstream, routing.idle_timeout, head)
            member.release(upstream, keep=True)
            upstream = None
            self._count(status)
            group.counts[status] += 1
            return True
        finally:
            member.in_flight -= 1
            if upstream is not None:
                upstream.close()

    async def _send_request(self, conn, reader, writer, request: h11.Request, headers,
                            member: Member, timeout: float) -> tuple[Upstream, h11.Response]:
        """Send the request (head and streamed body) and read the response head; the target
        connection is closed on any failure. A request without a body is complete before the
        target is contacted, so when a pooled connection turns out closed by the target it is
        sent once more on a fresh connection — without reading the client again."""
        head = h11.Request(method=request.method, headers=headers, target=request.target)
        if _has_body(headers):
            upstream = await self._connect(member)
            return upstream, await self._attempt(upstream, head, timeout, lambda: (
                self._relay_body(conn, reader, writer, upstream, timeout)))
        await self._drain_body(conn, reader, writer, timeout)  # no read: h11 has its end
        upstream = await self._connect(member)
        try:
            return upstream, await self._attempt(upstream, head, timeout)
        except Abort as failed:
            if not (failed.status == 502 and upstream.reused):
                raise
        upstream = await self._connect(member, fresh=True)
        return upstream, await self._attempt(upstream, head, timeout)

    async def _attempt(self, upstream: Upstream, head: h11.Request, timeout: float,
                       body: Callable[[], Awaitable[None]] | None = None) -> h11.Response:
        """Head, then the body (``body`` relays the client's; None: there is none), then the
        response head. Any failure closes the target connection."""
        try:
            await self._write(upstream, head)
            if body is None:
                await self._write(upstream, h11.EndOfMessage())
            else:
                await body()
            return await self._response_head(upstream, timeout)
        except BaseException:
            upstream.close()
            raise

    async def _connect(self, member: Member, *, fresh: bool = False) -> Upstream:
        try:
            if fresh:
                return await Upstream.open(member.host, member.port, self.connect_timeout)
            return await member.acquire(self.connect_timeout)
        except TimeoutError:
            raise Abort(504) from None
        except OSError:
            raise Abort(502) from None

    async def _write(self, upstream: Upstream, event) -> None:
        data = upstream.conn.send(event)
        try:
            if data:
                upstream.writer.write(data)
                await upstream.writer.drain()
        except (ConnectionError, OSError):
            raise Abort(502) from None

    async def _relay_body(self, conn, reader, writer, upstream: Upstream,
                          timeout: float) -> None:
        await self._continue(conn, writer)  # once the target connection is open
        while True:
            event = await next_event(conn, reader, timeout)
            if isinstance(event, h11.Data):
                await self._write(upstream, event)
            elif isinstance(event, h11.EndOfMessage):
                await self._write(upstream, h11.EndOfMessage())
                return

    async def _response_head(self, upstream: Upstream, timeout: float) -> h11.Response:
        while True:
            try:
                event = await next_event(upstream.conn, upstream.reader, timeout)
            except TimeoutError:
                raise Abort(504) from None
            except (h11.RemoteProtocolError, ConnectionError, OSError):
                raise Abort(502) from None
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise Abort(502)  # closed before answering

    async def _relay_response(self, conn, writer, upstream: Upstream, timeout: float,
                              head: bytes) -> None:
        """Relay the body. Bytes are written when the next read from the target would wait,
        so a small response leaves in one send and a large one streams as it arrives."""
        pending = [head]  # bytes objects: the transport may keep a view of what it was given
        while True:
            event = self._upstream_event(upstream)
            if event is h11.NEED_DATA:
                writer.write(b"".join(pending))
                pending.clear()
                await writer.drain()
                try:
                    async with asyncio.timeout(timeout):
                        data = await upstream.reader.read(CHUNK)
                    upstream.conn.receive_data(data)
                except (TimeoutError, ConnectionError, OSError):
                    raise ConnectionAbortedError("target failed mid-response") from None
            elif isinstance(event, h11.Data):
                pending.append(conn.send(event))
            elif isinstance(event, h11.EndOfMessage):
                writer.write(b"".join([*pending, conn.send(h11.EndOfMessage())]))
                await writer.drain()
                return
            else:
                raise ConnectionAbortedError("target closed mid-response")

    @staticmethod
    def _upstream_event(upstream: Upstream):
        try:
            return upstream.conn.next_event()
        except h11.RemoteProtocolError:
            raise ConnectionAbortedError("target broke HTTP mid-response") from None
