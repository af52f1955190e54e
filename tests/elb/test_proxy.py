"""The listener proxy against real HTTP backends on loopback (reference §8.1 for ALB's 502/503/
504 semantics, fail-open, draining). The proxy runs on its own event-loop thread, as in the
server; the tests are plain blocking HTTP clients."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import tracemalloc

import pytest

from corral.elb import rules
from corral.elb.loop import LoopThread
from corral.elb.pool import GroupRuntime, Member
from corral.elb.proxy import ListenerServer, Routing
from tests.elb.backends import MIB, Backend
from tests.server import free_port

TG = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"
TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$")


@pytest.fixture
def loop():
    thread = LoopThread().start()
    yield thread
    thread.stop()


@pytest.fixture
def backends():
    started = [Backend(f"b{i}").start() for i in range(3)]
    yield started
    for backend in started:
        backend.stop()


@pytest.fixture
def listen(loop):
    """Start a listener forwarding to a group of targets: ``listen(group, **routing)``."""
    servers: list[ListenerServer] = []

    def start(group: GroupRuntime, *, docs: list[dict] | None = None,
              idle: float = 60.0, **kw) -> ListenerServer:
        docs = docs or [{"RuleArn": "default", "Priority": "default", "IsDefault": True,
                         "Actions": [{"Type": "forward", "TargetGroupArn": group.arn}]}]
        server = ListenerServer("127.0.0.1", free_port(),
                                Routing(rules.compile_rules(docs), {group.arn: group}, idle), **kw)
        loop.call(server.start())
        servers.append(server)
        return server

    yield start
    for server in servers:
        loop.call(server.stop())


def group_of(*ports: int, algorithm: str = "round_robin", state: str = "healthy"):
    group = GroupRuntime(TG, algorithm)
    for port in ports:
        member = Member("127.0.0.1", port, "127.0.0.1")
        member.set_state(state)
        group.members[member.key] = member
    return group


def get(server: ListenerServer, path: str = "/", headers: dict | None = None,
        conn: http.client.HTTPConnection | None = None, timeout: float = 15):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        if own:
            conn.close()


def served_by(server: ListenerServer, path: str = "/") -> str:
    status, body, _ = get(server, path)
    assert status == 200, body
    return json.loads(body)["backend"]


def raw(server: ListenerServer, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_round_robin_spreads_requests_evenly_across_three_targets(backends, listen):
    server = listen(group_of(*(b.port for b in backends)))
    seen = [served_by(server) for _ in range(9)]
    assert sorted(seen) == ["b0"] * 3 + ["b1"] * 3 + ["b2"] * 3


def test_keep_alive_reuses_client_and_target_connections(backends, listen):
    server = listen(group_of(backends[0].port))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(10):
            assert get(server, conn=conn)[0] == 200
    finally:
        conn.close()
    for _ in range(5):  # new client connections still reuse the pooled target connection
        assert served_by(server) == "b0"
    assert backends[0].requests == 15
    assert backends[0].connections == 1


def test_forwarded_headers_and_a_new_trace_id(backends, listen):
    server = listen(group_of(backends[0].port))
    _, body, _ = get(server, "/x?y=1", {"X-Forwarded-For": "203.0.113.9",
                                        "X-Forwarded-Proto": "https"})
    seen = json.loads(body)["headers"]
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"  # the listener's, not the client's claim
    assert seen["x-forwarded-port"] == str(server.port)
    assert TRACE.match(seen["x-amzn-trace-id"]), seen["x-amzn-trace-id"]
    assert seen["host"] == f"127.0.0.1:{server.port}"
    assert json.loads(body)["path"] == "/x?y=1"


def test_incoming_trace_root_is_kept_and_self_inserted(backends, listen):
    """ALB request tracing: a present Root is kept, a Self field inserted (an old Self
    replaced), custom fields preserved."""
    server = listen(group_of(backends[0].port))
    incoming = "Root=1-67891233-abcdef012345678912345678;Self=1-1-1;CalledFrom=app"
    _, body, _ = get(server, "/", {"X-Amzn-Trace-Id": incoming})
    fields = json.loads(body)["headers"]["x-amzn-trace-id"].split(";")
    assert re.match(r"^Self=1-[0-9a-f]{8}-[0-9a-f]{24}$", fields[0])
    assert fields[1:] == ["Root=1-67891233-abcdef012345678912345678", "CalledFrom=app"]


def test_large_chunked_upload_streams_without_buffering(backends, listen):
    server = listen(group_of(backends[0].port))
    block = b"u" * MIB

    def body():
        for _ in range(50):
            yield block

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    tracemalloc.start()
    try:
        conn.request("POST", "/upload", body=body(), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        doc = json.loads(response.read())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        conn.close()
    assert response.status == 200
    assert doc["received"] == 50 * MIB
    assert peak < 20 * MIB, f"{peak / MIB:.1f} MiB traced: the body was buffered"


def test_large_chunked_download_streams(backends, listen):
    server = listen(group_of(backends[0].port))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", "/stream?mb=50")
        response = conn.getresponse()
        total = 0
        while piece := response.read(MIB):
            total += len(piece)
    finally:
        conn.close()
    assert (response.status, total) == (200, 50 * MIB)


def test_response_chunks_reach_the_client_before_the_target_finishes(backends, listen):
    server = listen(group_of(backends[0].port))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        start = time.monotonic()
        conn.request("GET", "/drip?s=1.5")
        response = conn.getresponse()
        first = response.read1(5)
        first_at = time.monotonic() - start
        rest = response.read()
    finally:
        conn.close()
    assert (first, rest) == (b"first", b"second")
    assert first_at < 1.2


def test_no_targets_gives_503_with_alb_page(listen):
    server = listen(group_of())
    status, body, response = get(server)
    assert status == 503
    assert b"<title>503 Service Temporarily Unavailable</title>" in body
    assert response.getheader("Server") == "awselb/2.0"


def test_refused_target_port_gives_502(listen):
    server = listen(group_of(free_port()))
    status, body, _ = get(server)
    assert status == 502 and b"502 Bad Gateway" in body
    assert server.counts.codes[502] == 1


def test_idle_timeout_waiting_for_the_target_gives_504(backends, listen):
    server = listen(group_of(backends[0].port), idle=1.0)
    start = time.monotonic()
    status, body, _ = get(server, "/slow?s=3")
    assert status == 504 and b"504 Gateway Time-out" in body
    assert time.monotonic() - start < 2.5


def test_connect_timeout_gives_504(listen):
    """A target whose accept queue is full never completes the handshake (Linux drops the
    SYN): the connect timeout (10 s on ALB, shortened here) ends in a 504."""
    with socket.socket() as stuck, socket.socket() as filler:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(0)
        filler.connect(stuck.getsockname())  # takes the one place in the queue
        server = listen(group_of(stuck.getsockname()[1]), connect_timeout=0.5)
        start = time.monotonic()
        status, body, _ = get(server)
    assert status == 504 and b"504 Gateway Time-out" in body
    assert 0.4 < time.monotonic() - start < 3


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"\x16\x03\x01garbage\r\n\r\n", id="garbage"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", id="bad-length"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
                 id="header-too-large"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"a" * 15000) for i in range(5)) + b"\r\n",
        id="header-block-too-large"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                 id="conflicting-length"),
])
def test_malformed_request_gets_400_and_the_proxy_keeps_serving(backends, listen,
                                                                request_bytes):
    server = listen(group_of(backends[0].port))
    answer = raw(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:100]
    assert b"<title>400 Bad Request</title>" in answer
    assert served_by(server) == "b0"


def test_draining_target_finishes_in_flight_and_gets_no_new_requests(backends, listen, loop):
    group = group_of(backends[0].port, backends[1].port)
    server = listen(group)
    slow: dict = {}

    def slow_request() -> None:
        slow["result"] = get(server, "/slow?s=2")

    thread = threading.Thread(target=slow_request)
    thread.start()
    while backends[0].in_flight + backends[1].in_flight == 0:
        time.sleep(0.02)
    busy = 0 if backends[0].in_flight else 1
    member = group.members[("127.0.0.1", backends[busy].port)]
    loop.loop.call_soon_threadsafe(member.set_state, "draining")
    time.sleep(0.1)
    assert {served_by(server) for _ in range(6)} == {f"b{1 - busy}"}
    thread.join(10)
    status, body, _ = slow["result"]
    assert status == 200 and json.loads(body)["backend"] == f"b{busy}"


def test_least_outstanding_requests_prefers_the_idle_target(backends, listen):
    group = group_of(backends[0].port, backends[1].port, algorithm="least_outstanding_requests")
    server = listen(group)
    thread = threading.Thread(target=get, args=(server, "/slow?s=1.5"))
    thread.start()
    while backends[0].in_flight + backends[1].in_flight == 0:
        time.sleep(0.02)
    idle = "b1" if backends[0].in_flight else "b0"
    assert [served_by(server) for _ in range(4)] == [idle] * 4
    thread.join(10)


def test_fail_open_routes_to_unhealthy_targets_when_none_is_healthy(backends, listen):
    server = listen(group_of(backends[0].port, backends[1].port, state="unhealthy"))
    assert {served_by(server) for _ in range(4)} == {"b0", "b1"}


def test_fixed_response_and_redirect_rules(backends, listen):
    group = group_of(backends[0].port)
    docs = [
        {"RuleArn": "r1", "Priority": "1",
         "Conditions": [{"Field": "path-pattern", "Values": ["/health"]}],
         "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {
             "StatusCode": "418", "ContentType": "application/json", "MessageBody": "{}"}}]},
        {"RuleArn": "r2", "Priority": "2",
         "Conditions": [{"Field": "path-pattern", "Values": ["/old/*"]}],
         "Actions": [{"Type": "redirect", "RedirectConfig": {
             "Path": "/new/#{path}", "StatusCode": "HTTP_301"}}]},
        {"RuleArn": "d", "Priority": "default", "IsDefault": True,
         "Actions": [{"Type": "forward", "TargetGroupArn": TG}]},
    ]
    server = listen(group, docs=docs)
    status, body, response = get(server, "/health")
    assert (status, body, response.getheader("Content-Type")) == (418, b"{}",
                                                                  "application/json")
    status, _, response = get(server, "/old/page?q=1", {"Host": "shop.example"})
    assert status == 301
    assert response.getheader("Location") == f"http://shop.example:{server.port}/new/old/page?q=1"
    assert served_by(server, "/other") == "b0"


def test_a_pooled_connection_the_target_closed_while_idle_is_not_reused(backends, listen):
    server = listen(group_of(backends[0].port))
    assert served_by(server) == "b0"
    with backends[0].lock:  # the target drops its idle keep-alive connection
        for sock in backends[0].sockets:
            sock.shutdown(socket.SHUT_RDWR)
    time.sleep(0.1)  # the proxy sees the EOF before the next request: no retry is needed
    assert served_by(server) == "b0"


def test_slow_start_ramps_a_newly_healthy_target_up():
    """slow_start.duration_seconds: a target healthy for 1 s of a 30 s window gets a small
    share; one past its window gets the rest."""
    group = group_of(1, 2)
    group.slow_start = 30.0
    group.members[("127.0.0.1", 1)].healthy_since = time.monotonic() - 100
    group.members[("127.0.0.1", 2)].healthy_since = time.monotonic() - 1
    picks = [group.choose().port for _ in range(2000)]
    assert 0 < picks.count(2) < 2000 * 0.1


# --- review fixes: framing, retries, 100-continue, failures ---------------------------------

class RawTarget:
    """A target written against the socket, for behaviour http.server cannot show: per
    connection it answers ``answers`` requests (``c<n>``: which connection served), then reads
    one more request and closes without answering; it records every request head received and
    when each connection saw EOF from the proxy."""

    def __init__(self, answers: int | None = None):
        self.answers = answers  # None: answer every request
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.eof = threading.Event()  # some connection was closed by the proxy
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections),
                             daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            try:
                self._answer(conn, number)
            except OSError:  # reset: the proxy closed while we were answering
                self.eof.set()

    def _answer(self, conn: socket.socket, number: int) -> None:
        buffered, served = b"", 0
        while True:
            while b"\r\n\r\n" not in buffered:
                chunk = conn.recv(65536)
                if not chunk:
                    self.eof.set()
                    return
                buffered += chunk
            head, _, buffered = buffered.partition(b"\r\n\r\n")
            self.heads.append(head)
            if self.answers is not None and served >= self.answers:
                return  # read the request, then close: a keep-alive race lost
            served += 1
            body = b"c%d" % number
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_target():
    made: list[RawTarget] = []

    def make(answers: int | None = None) -> RawTarget:
        made.append(RawTarget(answers))
        return made[-1]

    yield make
    for target in made:
        target.close()


def test_content_length_with_transfer_encoding_is_refused_as_desync(backends, listen):
    """Both framings in one request is the smuggling shape: 400, never forwarded."""
    server = listen(group_of(backends[0].port))
    answer = raw(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:100]
    assert backends[0].requests == 0
    assert served_by(server) == "b0"


@pytest.mark.parametrize("listed", ["content-length", "transfer-encoding", "host"])
def test_connection_header_cannot_strip_framing_or_host(backends, listen, listed):
    server = listen(group_of(backends[0].port))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        if listed == "transfer-encoding":
            conn.request("POST", "/upload", body=iter([b"hello"]), encode_chunked=True,
                         headers={"Connection": listed, "Host": "shop.example"})
        else:
            conn.request("POST", "/upload", body=b"hello",
                         headers={"Connection": listed, "Host": "shop.example"})
        response = conn.getresponse()
        doc = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200
    assert doc["received"] == 5
    assert doc["headers"]["host"] == "shop.example"


def test_target_closing_a_reused_connection_on_the_next_request_is_retried(raw_target, listen):
    """The keep-alive race: the target reads the request on a pooled connection and closes.
    A bodyless request is sent again on a fresh connection, without reading the client
    again (which has nothing more to send)."""
    target = raw_target(answers=1)
    server = listen(group_of(target.port), idle=5.0)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        assert get(server, conn=conn)[:2] == (200, b"c1")
        start = time.monotonic()
        assert get(server, conn=conn)[:2] == (200, b"c2")  # same client connection, retried
        assert time.monotonic() - start < 2
    finally:
        conn.close()
    assert len(target.heads) == 3 and target.connections == 2


def test_retry_with_a_pipelined_request_behind_it_answers_both(raw_target, listen):
    target = raw_target(answers=1)
    server = listen(group_of(target.port), idle=5.0)
    assert get(server)[:2] == (200, b"c1")  # pools connection 1
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\n\r\n")
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert out.count(b"HTTP/1.1 200 OK") == 2, out
    assert out.endswith(b"c2") or out.endswith(b"c3"), out


def test_expect_100_continue_is_answered_before_the_body_is_sent(backends, listen):
    server = listen(group_of(backends[0].port))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = sock.recv(65536)  # times out (the test fails) if no 100 comes
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        sock.sendall(b"hello")
        out = b""
        while b"}" not in out:
            out += sock.recv(65536)
    assert out.startswith(b"HTTP/1.1 200 ")
    assert json.loads(out.partition(b"\r\n\r\n")[2])["received"] == 5


@pytest.mark.parametrize("tail", [
    pytest.param(b"zz\r\n", id="broken-chunk"),
    pytest.param(b"", id="client-stalls"),
])
def test_target_connection_is_closed_when_the_client_body_fails(raw_target, listen, tail):
    target = raw_target()
    server = listen(group_of(target.port), idle=0.5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhel" + (b"lo\r\n" + tail if tail else b""))
        answer = sock.recv(65536)
        assert target.eof.wait(3), "the target connection was left open"
    if tail:
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]


def test_an_unexpected_error_in_an_exchange_gets_a_500_not_a_dropped_connection(listen):
    def broken(_request):
        raise RuntimeError("a rule that cannot be evaluated")

    group = group_of()
    server = listen(group)
    server.routing = Routing([rules.CompiledRule("r", 1, (broken,), {"Type": "forward"})],
                             {}, 60.0)
    status, body, response = get(server)
    assert status == 500 and b"500 Internal Server Error" in body
    assert response.getheader("Server") == "awselb/2.0"


def test_stopping_a_listener_with_open_clients_logs_no_callback_error(backends, listen, loop,
                                                                     caplog):
    server = listen(group_of(backends[0].port))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")  # the client stays connected
        with caplog.at_level("ERROR", logger="asyncio"):
            loop.call(server.stop())
            time.sleep(0.1)
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
