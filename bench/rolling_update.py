#!/usr/bin/env python3
"""Zero downtime, measured: constant load through an ALB listener while an ECS service rolls
from one revision to the other, several times in a row (issue 11).

Setup (tests/e2e/albsvc.py, the same stack the e2e test builds with the real aws CLI): a
server of our own, a 3-task awsvpc service of busybox ``httpd`` behind an ALB (target group
health checks every 5 s, healthy after 2, deregistration delay 5 s), deployments at
maximumPercent 200 / minimumHealthyPercent 100.

1. Overhead, same run: ``--clients`` keep-alive clients, unpaced, for ``--window`` seconds,
   GET /rev straight at one task (its ENI address) — the baseline — then through the listener.
   Prints requests/s and p50/p99 latency of each and the ratios.
2. Rollouts: ``--rollouts`` UpdateService calls alternating revision 2 and 1, each waited to
   the ServicesStable condition, while ``--threads`` × ``--rate`` requests/s (≥ 200) go through
   the listener. Any non-2xx answer or connection error is a failed request. Prints per rollout
   the time to stable, requests sent and failed, and the revision mix second by second.

    sudo .venv/bin/python bench/rolling_update.py [--rollouts 3] [--threads 4 --rate 60]
        [--clients 8 --window 10] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repo's tests/ and bench/ are not installed

from bench.tasks import pct, remove_workdir, require_prerequisites, say  # noqa: E402
from tests.e2e import albsvc  # noqa: E402
from tests.server import CorralServer  # noqa: E402

SERVICE = "bench-roll"


def stable(ecs, task_def: str) -> bool:
    svc = ecs.describe_services(services=[SERVICE])["services"][0]
    deps = svc["deployments"]
    return (len(deps) == 1 and deps[0]["taskDefinition"] == task_def
            and deps[0].get("rolloutState") == "COMPLETED"
            and svc["runningCount"] == svc["desiredCount"])


def wait(what: str, check, timeout: float = 600, every: float = 0.2) -> float:
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{what}: not reached after {timeout:.0f}s")
        time.sleep(every)
    return time.perf_counter() - t0


def hammer(host: str, port: int, clients: int, window: float) -> dict:
    """Unpaced keep-alive GETs from ``clients`` threads for ``window`` seconds."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.perf_counter() + window

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = []
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/rev")
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rps": len(latencies) / window, "p50_ms": pct(latencies, 0.50),
            "p99_ms": pct(latencies, 0.99), "errors": errors[0]}


def timeline(answers: list[tuple[float, int, str]], t0: float) -> list[str]:
    """The revision mix per second: ``+3s 1:180 2:60``."""
    by_second: dict[int, Counter] = {}
    for at, status, body in answers:
        key = body if 200 <= status < 300 else f"fail({status})"
        by_second.setdefault(math.floor(at - t0), Counter())[key] += 1
    return [f"{s:+4d}s " + " ".join(f"{k}:{n}" for k, n in sorted(c.items()))
            for s, c in sorted(by_second.items())]


def rollout(server, alb, td: str, threads: int, rate: float) -> dict:
    ecs = server.client("ecs")
    load = albsvc.Load(alb.url, threads=threads, rate=rate).start()
    time.sleep(2)  # load is flowing before the update
    t0 = time.time()
    try:
        ecs.update_service(service=SERVICE, taskDefinition=td)
        took = wait("ServicesStable", lambda: stable(ecs, td))
        time.sleep(2)
    finally:
        load.stop()
    duration = load.answers[-1][0] - load.answers[0][0] if load.answers else 0
    return {"stable_s": took, "sent": len(load.answers), "failed": len(load.failed),
            "rate": len(load.answers) / duration if duration else 0,
            "failures": load.failed[:5], "timeline": timeline(load.answers, t0)}


def run(args: argparse.Namespace, work: Path) -> dict:
    server = CorralServer(work / "data").start()
    try:
        image = albsvc.push_image(server, "bench/roll")
        alb = albsvc.create_alb(server, "bench-roll")
        revs = [albsvc.register_revision(server, "bench-roll", image, r) for r in ("1", "2")]
        albsvc.create_service(server, SERVICE, alb, revs[0], 3)
        ecs = server.client("ecs")
        say("waiting for 3 healthy tasks behind the listener")
        wait("first deployment stable", lambda: stable(ecs, revs[0]))
        arns = ecs.list_tasks(serviceName=SERVICE)["taskArns"]
        task_ip = ecs.describe_tasks(tasks=arns[:1])["tasks"][0]["containers"][0][
            "networkInterfaces"][0]["privateIpv4Address"]
        say(f"overhead: {args.clients} clients × {args.window:.0f}s, direct then via listener")
        direct = hammer(task_ip, 8080, args.clients, args.window)
        proxied = hammer("127.0.0.1", alb.port, args.clients, args.window)
        rollouts = []
        for i in range(args.rollouts):
            td = revs[(i + 1) % 2]
            say(f"rollout {i + 1}/{args.rollouts} to revision {(i + 1) % 2 + 1}")
            rollouts.append(rollout(server, alb, td, args.threads, args.rate))
        albsvc.delete_all(server, SERVICE, alb)
        return {"direct": direct, "proxied": proxied, "rollouts": rollouts}
    finally:
        server.stop(stop_tasks=True)


def report(res: dict) -> None:
    d, p = res["direct"], res["proxied"]
    print("\nALB proxy overhead (GET /rev, keep-alive, same clients, same run)")
    print(f"  direct to a task   {d['rps']:8.0f} req/s  p50 {d['p50_ms']:6.2f} ms  "
          f"p99 {d['p99_ms']:6.2f} ms  errors {d['errors']}")
    print(f"  via the listener   {p['rps']:8.0f} req/s  p50 {p['p50_ms']:6.2f} ms  "
          f"p99 {p['p99_ms']:6.2f} ms  errors {p['errors']}")
    print(f"  ratio              {p['rps'] / d['rps']:8.2f}×        added p50 "
          f"{p['p50_ms'] - d['p50_ms']:+.2f} ms, p99 {p['p99_ms'] - d['p99_ms']:+.2f} ms")
    print("\nRolling updates under load (3 tasks, max 200 %, min 100 %, drain 5 s)")
    for i, r in enumerate(res["rollouts"], 1):
        print(f"  rollout {i}: stable after {r['stable_s']:5.1f}s  sent {r['sent']:6d}  "
              f"failed {r['failed']}  ({r['rate']:.0f} req/s)")
        for line in r["timeline"]:
            print(f"      {line}")
        for f in r["failures"]:
            print(f"      FAILED {f}")
    total = sum(r["failed"] for r in res["rollouts"])
    sent = sum(r["sent"] for r in res["rollouts"])
    print(f"\n  {len(res['rollouts'])} consecutive rollouts: {sent} requests, {total} failed")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rollouts", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4, help="paced load clients")
    ap.add_argument("--rate", type=float, default=60.0, help="requests/s per load client")
    ap.add_argument("--clients", type=int, default=8, help="unpaced clients (overhead)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds per overhead run")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    require_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-roll-"))
    try:
        res = run(args, work)
    finally:
        remove_workdir(work, keep=args.keep)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        report(res)
    return 0 if all(r["failed"] == 0 for r in res["rollouts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
