#!/usr/bin/env python3
"""ALB listener proxy overhead: requests/s and p50/p99 latency through Corral's listener
proxy against hitting the same backend directly, in one run.

Three processes on loopback, so the client, the proxy and the backend do not share a GIL:

  backend   this script --backend PORT          a minimal asyncio HTTP/1.1 keep-alive server
                                                answering a fixed 2 KiB body
  proxy     this script --proxy PORT BACKEND    corral.elb.proxy.ListenerServer forwarding to
                                                it (round robin, one healthy target)
  client    this process                        asyncio, N concurrent keep-alive connections

The timed loop alternates slices against the backend ("direct") and the proxy ("alb"), so
load that comes and goes on the machine hits both alike. Prints requests/s, p50/p99 and the
ratios alb/direct. A bounded loop: --requests per target per round, --rounds rounds.
Run: .venv/bin/python bench/alb_proxy.py [--connections 32] [--requests 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
BODY = b"x" * 2048
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
            % len(BODY)) + BODY
REQUEST = b"GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: alb-bench\r\n\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --- the backend and proxy processes ----------------------------------------------------------

async def serve_backend(port: int) -> None:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                await reader.readuntil(b"\r\n\r\n")  # bodyless GETs only
                writer.write(RESPONSE)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(client, LOOPBACK, port, backlog=1024)
    await server.serve_forever()


async def serve_proxy(port: int, backend: int) -> None:
    from corral.elb import rules
    from corral.elb.pool import GroupRuntime, Member
    from corral.elb.proxy import ListenerServer, Routing

    group = GroupRuntime("bench")
    member = Member(LOOPBACK, backend, LOOPBACK, state="healthy")
    group.members[member.key] = member
    docs = [{"RuleArn": "default", "Priority": "default",
             "Actions": [{"Type": "forward", "TargetGroupArn": "bench"}]}]
    server = ListenerServer(LOOPBACK, port, Routing(rules.compile_rules(docs), {"bench": group}))
    await server.start()
    await asyncio.Event().wait()


# --- the client --------------------------------------------------------------------------------

async def _read_response(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:60]!r}")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)


async def drive(port: int, connections: int, requests: int) -> tuple[float, list[float]]:
    """``requests`` GETs over ``connections`` keep-alive connections: (seconds, latencies)."""
    latencies: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            while left > 0:
                left -= 1
                start = time.perf_counter()
                writer.write(REQUEST)
                await _read_response(reader)
                latencies.append(time.perf_counter() - start)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - start, latencies


def report(name: str, seconds: float, latencies: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(latencies, n=100)
    rps, p50, p99 = len(latencies) / seconds, q[49] * 1000, q[98] * 1000
    print(f"{name:8} {len(latencies):8d} req  {rps:10.0f} req/s  p50 {p50:7.2f} ms  "
          f"p99 {p99:7.2f} ms")
    return rps, p50, p99


async def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def bench(args: argparse.Namespace) -> None:
    backend_port, proxy_port = free_port(), free_port()
    me = [sys.executable, __file__]
    procs = [subprocess.Popen([*me, "--backend", str(backend_port)]),
             subprocess.Popen([*me, "--proxy", str(proxy_port), str(backend_port)])]
    try:
        await wait_port(backend_port)
        await wait_port(proxy_port)
        await drive(proxy_port, args.connections, 500)  # warm up pools
        totals = {"direct": [0.0, []], "alb": [0.0, []]}
        for _ in range(args.rounds):
            for name, port in (("direct", backend_port), ("alb", proxy_port)):
                seconds, lat = await drive(port, args.connections, args.requests)
                totals[name][0] += seconds
                totals[name][1] += lat
        print(f"{args.connections} keep-alive connections, {args.rounds} rounds x "
              f"{args.requests} requests per target")
        direct = report("direct", *totals["direct"])
        alb = report("alb", *totals["alb"])
        print(f"ratio alb/direct: throughput {alb[0] / direct[0]:.2f}x, "
              f"p50 {alb[1] / direct[1]:.2f}x, p99 {alb[2] / direct[2]:.2f}x; "
              f"added p50 latency {alb[1] - direct[1]:.2f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--proxy", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if args.backend:
            asyncio.run(serve_backend(args.backend))
        elif args.proxy:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from corral.elb.loop import new_loop  # the loop the data plane runs on

            loop = new_loop()
            loop.run_until_complete(serve_proxy(*args.proxy))
        else:
            asyncio.run(bench(args))


if __name__ == "__main__":
    main()
