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


def test_target_closing_a_pooled_connection_is_retried_transparently(backends, listen):
    server = listen(group_of(backends[0].port))
    assert served_by(server) == "b0"
    with backends[0].lock:  # the target drops its idle keep-alive connection
        for sock in backends[0].sockets:
            sock.shutdown(socket.SHUT_RDWR)
    time.sleep(0.1)
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
