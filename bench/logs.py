#!/usr/bin/env python3
"""CloudWatch Logs: PutLogEvents ingest and FilterLogEvents search, Corral against MiniStack
and moto in one run, with the same boto3 code (issue 12).

Servers are started as bench/api_throughput.py starts them (free loopback ports, their own
processes; MiniStack and moto from BENCH_BASELINE_PYTHON, e.g. .venv-bench). Per server:

1. Ingest. One client, sequential PutLogEvents of batches of 1, 100 and 10,000 events (each
   message ~100 bytes, timestamps increasing) into one stream for ``--seconds`` per batch size
   (or until ``--max-events``): events/s and MB/s (message bytes + 26 per event, the size
   CloudWatch bills).
2. Search. ``--stored`` events (default 1,000,000) across 10 streams of one group, 1 in 1,000
   carrying ``ERROR code=<n>``; then FilterLogEvents with the pattern ``"ERROR code=7"`` (a
   phrase: 1 in 10,000 events matches) over the whole group, following nextToken to the end:
   seconds for the full search, events returned (the same on every server, or the run says
   which differs). Loading is not timed.

Prints a table and the ratios Corral/MiniStack and Corral/moto. A baseline that fails to start
or answers an error is reported and skipped. Every server is stopped at the end.

    BENCH_BASELINE_PYTHON=.venv-bench/bin/python .venv/bin/python bench/logs.py \
        [--stored 1000000] [--seconds 5] [--servers corral,ministack,moto] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_throughput import (  # noqa: E402 - same server handling as the API bench
    REGION,
    free_port,
    module_available,
    server_specs,
    start_server,
    stop_server,
    wait_ready,
)

GROUP = "/bench/logs"
BATCHES = (1, 100, 10_000)
MESSAGE = "GET /api/items/{n} 200 bytes=1534 rid={n:016x}"  # ~60 B: 10,000 fit in 1 MiB


def client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "logs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=300))


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def events(start: int, count: int, t0: int, error_every: int | None = None) -> list[dict]:
    out = []
    for n in range(start, start + count):
        text = MESSAGE.format(n=n)
        if error_every and n % error_every == 0:
            text = f"ERROR code={n // error_every % 10} {text}"
        out.append({"timestamp": t0 + n // 100, "message": text})
    return out


def ingest(logs, batch: int, seconds: float, max_events: int) -> dict:
    stream = f"ingest-{batch}"
    logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    t0 = int(time.time() * 1000) - 3_600_000
    sent = nbytes = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds and sent < max_events:
        batch_events = events(sent, batch, t0)
        logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=batch_events)
        sent += batch
        nbytes += sum(len(e["message"].encode()) + 26 for e in batch_events)
    took = time.perf_counter() - started
    return {"events": sent, "seconds": took, "events_per_s": sent / took,
            "mb_per_s": nbytes / took / 1e6}


def load(logs, stored: int) -> None:
    t0 = int(time.time() * 1000) - 6 * 3_600_000
    per_stream = stored // 10
    for s in range(10):
        name = f"search-{s}"
        logs.create_log_stream(logGroupName=GROUP, logStreamName=name)
        for start in range(s * per_stream, (s + 1) * per_stream, 10_000):
            count = min(10_000, (s + 1) * per_stream - start)
            logs.put_log_events(logGroupName=GROUP, logStreamName=name,
                                logEvents=events(start, count, t0 + s, error_every=1000))


def search(logs) -> dict:
    found, pages, token = 0, 0, None
    started = time.perf_counter()
    while True:
        kw = {"nextToken": token} if token else {}
        page = logs.filter_log_events(logGroupName=GROUP, filterPattern='"ERROR code=7"', **kw)
        found += len(page["events"])
        pages += 1
        token = page.get("nextToken")
        if not token or pages > 100_000:
            break
    return {"seconds": time.perf_counter() - started, "found": found, "pages": pages}


def bench_server(name: str, args: argparse.Namespace, work: Path) -> dict:
    why = module_available(server_specs(0, name, work).module)
    if why:
        return {"error": why}
    port = free_port()
    srv = start_server(server_specs(port, name, work), port, work)
    try:
        wait_ready(srv)
        logs = client(srv.endpoint)
        logs.create_log_group(logGroupName=GROUP)
        out: dict = {"ingest": {}}
        for batch in BATCHES:
            say(f"{name}: PutLogEvents, batches of {batch}")
            out["ingest"][batch] = ingest(logs, batch, args.seconds, args.max_events)
        say(f"{name}: loading {args.stored:,} events for the search")
        load(logs, args.stored)
        say(f"{name}: FilterLogEvents over {args.stored:,} events")
        out["search"] = search(logs)
        return out
    except Exception as e:  # noqa: BLE001 - a baseline that cannot do the job is reported
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        stop_server(srv)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}×" if a and b else "—"


def report(res: dict[str, dict], stored: int) -> None:
    names = list(res)
    print("\nPutLogEvents (sequential, one client)   events/s (MB/s)")
    for batch in BATCHES:
        cells = []
        for n in names:
            r = res[n].get("ingest", {}).get(batch)
            cells.append(f"{n} {r['events_per_s']:9.0f} ({r['mb_per_s']:5.2f})" if r
                         else f"{n} {'failed':>17}")
        print(f"  batch {batch:>6}: " + "  ".join(cells))
    print(f"\nFilterLogEvents '\"ERROR code=7\"' over {stored:,} events (whole group, all pages)")
    for n in names:
        s = res[n].get("search")
        print(f"  {n:10} " + (f"{s['seconds']:8.2f} s  {s['found']} events  {s['pages']} pages"
                              if s else f"failed: {res[n].get('error')}"))
    if "corral" in res:
        c = res["corral"]
        for base in names[1:]:
            b = res[base]
            ing = [ratio(c.get("ingest", {}).get(k, {}).get("events_per_s"),
                         b.get("ingest", {}).get(k, {}).get("events_per_s")) for k in BATCHES]
            srch = ratio((b.get("search") or {}).get("seconds"),
                         (c.get("search") or {}).get("seconds"))
            print(f"\n  Corral/{base}: ingest {' / '.join(ing)} (batches {BATCHES}); "
                  f"search {srch} faster")
    founds = {n: r["search"]["found"] for n, r in res.items() if r.get("search")}
    if len(set(founds.values())) > 1:
        print(f"\n  NOTE: the servers found different numbers of events: {founds}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="corral,ministack,moto")
    ap.add_argument("--stored", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="per ingest batch size")
    ap.add_argument("--max-events", type=int, default=200_000, help="per ingest batch size")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = {}
    with tempfile.TemporaryDirectory(prefix="corral-bench-logs-") as tmp:
        for name in args.servers.split(","):
            work = Path(tmp) / name
            work.mkdir()
            with contextlib.suppress(KeyboardInterrupt):
                res[name] = bench_server(name, args, work)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        report(res, args.stored)
    return 0 if all("error" not in r for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
