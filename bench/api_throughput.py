#!/usr/bin/env python3
"""ECR API throughput: Corral against moto's server and MiniStack, in one run.

Starts three servers on free loopback ports and drives each with the same boto3 code:

  corral     python -m corral.cli up --host 127.0.0.1 --port P --data-dir <tmp>
  moto       python -m moto.server -H 127.0.0.1 -p P               (moto[server])
  ministack  GATEWAY_PORT=P BIND_HOST=127.0.0.1 python -m ministack (PyPI "ministack")

Per server: create 50 seed repositories, warm up, then time N sequential DescribeRepositories
calls (no arguments; each must list all 50 seeds) and M sequential CreateRepository calls with
fresh names, from a single boto3 client per server on one thread. The servers run side by side
and the timed calls are taken in interleaved slices (--rounds), so load that comes and goes on
the machine hits every server alike. Prints calls/s, p50/p99 latency and the ratios
Corral/MiniStack and Corral/moto. Every server is stopped at the end (SIGTERM, then
SIGKILL), also on errors and Ctrl-C. A baseline that fails to start or to serve is reported and
skipped; the script then exits non-zero.

Install the baselines in their own venv (MiniStack pins a newer botocore than Corral):
  python3 -m venv .venv-bench && .venv-bench/bin/pip install "moto[server]" ministack
  BENCH_BASELINE_PYTHON=.venv-bench/bin/python .venv/bin/python bench/api_throughput.py
Run:                         python bench/api_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
SEED_REPOS = 50
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
CALL_BUDGET_S = 600.0  # hard cap on the timed loop of one operation on one server
REGION = "us-east-1"
ACCESS_KEY = SECRET_KEY = "test"
SERVER_ORDER = ("corral", "ministack", "moto")


# ── servers ──────────────────────────────────────────────────────────────────────────────────

@dataclass
class ServerSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_path: str
    how: str  # how it was started, for the report
    module: str  # the importable module it needs, checked before starting


@dataclass
class RunningServer:
    spec: ServerSpec
    port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# The baselines pin their own botocore (MiniStack needs a newer one than Corral's pin), so they
# may live in another venv: `make bench` makes .venv-bench and points this at it.
BASELINE_PYTHON = os.path.abspath(os.environ.get("BENCH_BASELINE_PYTHON") or sys.executable)


def server_specs(port: int, name: str, workdir: Path) -> ServerSpec:
    py = sys.executable if name == "corral" else BASELINE_PYTHON
    if name == "corral":
        data_dir = workdir / "corral-data"
        return ServerSpec(
            name, [py, "-m", "corral.cli", "up", "--host", LOOPBACK, "--port", str(port),
                   "--data-dir", str(data_dir)],
            {}, "/_corral/health",
            f"{Path(py).name} -m corral.cli up --host {LOOPBACK} --port {port} "
            f"--data-dir <tmp>/corral-data", "corral")
    if name == "moto":
        return ServerSpec(
            name, [py, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
            {}, "/moto-api/",
            f"{Path(py).name} -m moto.server -H {LOOPBACK} -p {port}", "moto.server")
    if name == "ministack":
        env = {"GATEWAY_PORT": str(port), "BIND_HOST": LOOPBACK}
        return ServerSpec(
            name, [py, "-m", "ministack"], env, "/_ministack/health",
            f"GATEWAY_PORT={port} BIND_HOST={LOOPBACK} {Path(py).name} -m ministack "
            f"(hypercorn, in-memory)", "ministack")
    raise ValueError(name)


def module_available(module: str) -> str | None:
    """None if `module` imports in this interpreter, else the reason it does not."""
    python = sys.executable if module.startswith("corral") else BASELINE_PYTHON
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True,
                           text=True, timeout=120)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["import failed"])[-1]
    return f"cannot import {module!r}: {last}"


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + ln for ln in text[-lines:]) or "    (empty log)"


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_ready(srv: RunningServer, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll the server's health URL until it answers (any status below 500); bounded."""
    url = srv.endpoint + srv.spec.health_path
    deadline = time.monotonic() + timeout
    last_err = "no answer yet"
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"{srv.spec.name} exited with code {srv.proc.returncode} before "
                               f"it was ready; log tail:\n{log_tail(srv.log_path)}")
        try:
            with _NO_PROXY_OPENER.open(url, timeout=2) as resp:
                if resp.status < 500:
                    return
                last_err = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
            last_err = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last_err = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"{srv.spec.name} not ready at {url} after {timeout:.0f}s "
                       f"({last_err}); log tail:\n{log_tail(srv.log_path)}")


def start_server(spec: ServerSpec, port: int, workdir: Path) -> RunningServer:
    log_path = workdir / f"{spec.name}.log"
    env = {**os.environ, **spec.env}
    # the servers must not pick up credentials or endpoints from the caller's shell
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(var, None)
    log = open(log_path, "wb")  # noqa: SIM115 - closed in stop_server
    try:
        proc = subprocess.Popen(spec.argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=workdir,
                                start_new_session=True)
    finally:
        log.close()  # the child holds its own copy of the descriptor
    return RunningServer(spec, port, proc, log_path)


def stop_server(srv: RunningServer) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    proc = srv.proc
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT_S)


# ── workload ─────────────────────────────────────────────────────────────────────────────────

@dataclass
class OpResult:
    calls: int
    seconds: float
    latencies: list[float] = field(repr=False)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else 0.0


@dataclass
class ServerResult:
    name: str
    how: str
    describe: OpResult | None = None
    create: OpResult | None = None
    error: str | None = None


def make_client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "ecr", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        # no retries: a throttled or failing call must show, not be hidden in the timing
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=1,
                      connect_timeout=10, read_timeout=60),
    )


class Target:
    """One server under test: its process, its single boto3 client, and what it measured."""

    def __init__(self, result: ServerResult, srv: RunningServer):
        self.result = result
        self.srv = srv
        self.client = make_client(srv.endpoint)
        self.created = 0
        self.lat: dict[str, list[float]] = {"describe": [], "create": []}
        self.secs: dict[str, float] = {"describe": 0.0, "create": 0.0}

    def describe(self) -> None:
        got = len(self.client.describe_repositories(maxResults=100)["repositories"])
        if got != SEED_REPOS:
            raise RuntimeError(f"DescribeRepositories listed {got} repositories, "
                               f"expected {SEED_REPOS}")

    def create(self, prefix: str = "fresh") -> None:
        self.client.create_repository(repositoryName=f"bench/{prefix}-{self.created:05d}")
        self.created += 1

    def run(self, op: str, n: int, deadline: float) -> None:
        """n timed sequential calls of op, added to this target's totals."""
        call = self.describe if op == "describe" else self.create
        lat = self.lat[op]
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            lat.append(time.perf_counter() - t0)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{op}: over the {CALL_BUDGET_S:.0f}s budget")
        self.secs[op] += time.perf_counter() - start


def chunks(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def run_interleaved(targets: list[Target], op: str, total: int, rounds: int, say) -> None:
    """Time `total` calls of op on every target, in `rounds` slices taken in rotating order,
    so load that comes and goes on the machine falls on every server alike."""
    deadline = time.monotonic() + CALL_BUDGET_S * max(1, len(targets))
    for r, n in enumerate(chunks(total, rounds)):
        k = r % len(targets) if targets else 0
        for t in targets[k:] + targets[:k]:
            if t.result.error or n == 0:
                continue
            try:
                t.run(op, n, deadline)
            except Exception as e:  # noqa: BLE001 - one server's failure must not stop the others
                t.result.error = f"{op} failed: {type(e).__name__}: {e}"
                say(f"[{t.result.name}] FAILED: {t.result.error}")


def bench_all(names: list[str], args, workdir: Path, say) -> dict[str, ServerResult]:
    results: dict[str, ServerResult] = {}
    running: list[RunningServer] = []
    try:
        targets: list[Target] = []
        for name in names:
            port = free_port()
            spec = server_specs(port, name, workdir)
            result = results[name] = ServerResult(name, spec.how)
            reason = module_available(spec.module)
            if reason:
                result.error = f"not installed ({reason}); pip install -e '.[bench]'"
                say(f"[{name}] SKIPPED: {result.error}")
                continue
            srv = None
            try:
                say(f"[{name}] starting: {spec.how}")
                t0 = time.monotonic()
                srv = start_server(spec, port, workdir)
                running.append(srv)
                wait_ready(srv)
                target = Target(result, srv)
                for i in range(SEED_REPOS):
                    target.client.create_repository(repositoryName=f"bench/seed-{i:03d}")
                for _ in range(args.warmup):
                    target.describe()
                targets.append(target)
                say(f"[{name}] ready in {time.monotonic() - t0:.1f}s on {srv.endpoint}, "
                    f"{SEED_REPOS} repositories created")
            except Exception as e:  # noqa: BLE001
                result.error = f"{type(e).__name__}: {e}"
                if srv is not None and "log tail" not in result.error:
                    result.error += f"\n  server log tail:\n{log_tail(srv.log_path)}"
                say(f"[{name}] FAILED: {result.error}")

        say(f"timing {args.calls_describe} DescribeRepositories per server "
            f"({args.rounds} interleaved rounds)")
        run_interleaved(targets, "describe", args.calls_describe, args.rounds, say)
        for t in targets:  # warm up the write path
            if not t.result.error:
                with contextlib.suppress(Exception):
                    for _ in range(max(1, args.warmup // 4)):
                        t.create("warm")
        say(f"timing {args.calls_create} CreateRepository per server")
        run_interleaved(targets, "create", args.calls_create, args.rounds, say)

        for t in targets:
            if t.result.error:
                continue
            t.result.describe = OpResult(args.calls_describe, t.secs["describe"],
                                         t.lat["describe"])
            t.result.create = OpResult(args.calls_create, t.secs["create"], t.lat["create"])
            say(f"[{t.result.name}] describe {t.result.describe.rate:,.1f}/s, "
                f"create {t.result.create.rate:,.1f}/s")
    finally:
        for srv in running:
            stop_server(srv)
    return results


# ── report ───────────────────────────────────────────────────────────────────────────────────

def ratio(a: OpResult | None, b: OpResult | None) -> str:
    if a is None or b is None or b.rate == 0:
        return "n/a"
    return f"{a.rate / b.rate:.2f}x"


def report(results: dict[str, ServerResult], args) -> None:
    ops = (("DescribeRepositories", "describe", args.calls_describe),
           ("CreateRepository", "create", args.calls_create))
    names = [n for n in SERVER_ORDER if n in results]
    corral = results.get("corral")
    headers = ["operation", "server", "calls", "calls/s", "p50 ms", "p99 ms", "corral / server"]
    rows = []
    for label, attr, calls in ops:
        for n in names:
            r: OpResult | None = getattr(results[n], attr)
            cells = ([f"{r.rate:,.1f}", f"{r.pct(0.5):.2f}", f"{r.pct(0.99):.2f}"] if r
                     else ["failed", "-", "-"])
            vs = "-" if n == "corral" or corral is None else ratio(getattr(corral, attr), r)
            rows.append([label, n, str(calls), *cells, vs])

    title = (f"ECR API throughput: one boto3 client, sequential calls; DescribeRepositories "
             f"lists {SEED_REPOS} repositories")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None  # noqa: N806
    if Console is not None:
        table = Table(title=title)
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i < 2 else "right")
        for i, row in enumerate(rows):
            table.add_row(*row, end_section=(i + 1) % len(names) == 0)
        Console(width=110).print(table)
    else:
        print(title)
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))

    if corral:
        for n in (x for x in ("ministack", "moto") if x in results):
            parts = [f"{label} {ratio(getattr(corral, attr), getattr(results[n], attr))}"
                     for label, attr, _ in ops]
            print(f"Corral/{n}: " + ", ".join(parts))
    print("\nhow each server was started:")
    for n in names:
        print(f"  {n:<10} {results[n].how}")
    failed = [r for r in results.values() if r.error]
    if failed:
        print("\nfailures:")
        for r in failed:
            print(f"  {r.name}: {r.error}")


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("corral", "moto", "ministack", "boto3", "botocore"):
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg} (not installed)")
    return ", ".join(out) + f"; python {sys.version.split()[0]}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(
            "Benchmark ECR API throughput of Corral against moto's server and MiniStack. "
            "Starts each server on a free 127.0.0.1 port, creates 50 repositories, then times "
            "sequential DescribeRepositories (listing all 50) and CreateRepository (fresh names) "
            "calls from one boto3 client, and prints calls/s with Corral/baseline ratios. "
            "Exits non-zero if any server failed to start or serve."),
        epilog=("Baselines: `make bench` installs moto[server] and ministack into .venv-bench "
                "and sets BENCH_BASELINE_PYTHON to it. "
                "Example: python bench/api_throughput.py --quick --servers corral,ministack"),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--calls-describe", type=int, default=2000, metavar="N",
                   help="timed DescribeRepositories calls per server")
    p.add_argument("--calls-create", type=int, default=500, metavar="N",
                   help="timed CreateRepository calls per server")
    p.add_argument("--quick", action="store_true",
                   help="smoke-size run: 200 DescribeRepositories and 50 CreateRepository calls "
                        "(overrides --calls-*)")
    p.add_argument("--warmup", type=int, default=40, metavar="N",
                   help="untimed DescribeRepositories calls before timing (CreateRepository "
                        "warms up with N/4)")
    p.add_argument("--rounds", type=int, default=5, metavar="N",
                   help="split each operation's calls into N slices, taken round-robin across "
                        "the servers (all run at once), so changing machine load hits all alike")
    p.add_argument("--servers", default=",".join(SERVER_ORDER),
                   help="comma-separated subset of: " + ", ".join(SERVER_ORDER))
    p.add_argument("--keep-logs", action="store_true",
                   help="keep the temporary directory with server logs and Corral's data dir")
    args = p.parse_args(argv)
    if args.quick:
        args.calls_describe, args.calls_create = 200, 50
        args.warmup = min(args.warmup, 20)
    for opt in ("calls_describe", "calls_create"):
        if getattr(args, opt) < 1:
            p.error(f"--{opt.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must not be negative")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    args.server_list = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in args.server_list if s not in SERVER_ORDER]
    if unknown or not args.server_list:
        p.error(f"--servers takes a subset of {', '.join(SERVER_ORDER)}; got {args.servers!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # loopback traffic must never go through a proxy from the environment
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), LOOPBACK, "localhost"]))
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = no_proxy
    try:
        import boto3  # noqa: F401
    except ImportError:
        print("boto3 is required: pip install -e '.[test]'", file=sys.stderr)
        return 2

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    say(versions())
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    results: dict[str, ServerResult] = {}
    try:
        results = bench_all(args.server_list, args, workdir, say)
    except KeyboardInterrupt:
        say("interrupted; servers stopped")
        return 130
    finally:
        if args.keep_logs:
            say(f"logs and data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(results, args)
    return 1 if any(r.error for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
