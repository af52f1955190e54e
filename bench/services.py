#!/usr/bin/env python3
"""ECS services: update-service → steady state against the health-check floor, and the
scheduler's CPU per 100 service tasks against the agent's own cost.

Every service runs the same web task: awsvpc, busybox ``httpd``, a ``CMD-SHELL wget`` health
check on localhost (interval 5 s, retries 1), stopTimeout 2, initProcessEnabled, deployments at
maximumPercent 200 / minimumHealthyPercent 100. Each measurement has its baseline in the same
run, on the same server and image:

1. Rolling update, services of 3 and 10 tasks. t0; UpdateService to the other revision;
   DescribeServices every 0.2 s until the ServicesStable condition holds (exactly one
   deployment, on the new revision, rolloutState COMPLETED, runningCount == desiredCount —
   what ``aws ecs wait services-stable`` checks, without its 15 s poll). Also the time to the
   first and to the last new task reported HEALTHY. Floor: with 200 % surge every new task
   starts at once, and its first health check runs ``interval`` seconds after it starts
   (reference §2.1), so nothing can be stable before ``interval`` + the raw start of N tasks.
   That start is measured in the same round, just before the update: RunTask count N of the
   new revision (standalone, same cluster) → all RUNNING, then stopped. Prints time, floor,
   ratio, and the one-task start for comparison.
2. CPU. S services × T tasks at steady state: the server process's utime+stime
   (``/proc/<pid>/stat``) over a quiet window (no polling from us), beside the same window
   with the same number of standalone RunTask tasks of the same definition (health checks and
   all) and no services. The difference is the scheduler's share; reported as CPU seconds per
   minute per 100 tasks, plus the children the server reaped (cutime+cstime: health-check
   execs and the like).

Everything lives under one temp dir and is removed at the end: services deleted with force,
tasks stopped, the server stopped with ``stop_tasks`` (restarted on its data dir first if a
Ctrl-C took it down, so it adopts and stops the tasks); then a leak check — no supervisor,
mount, netns or cgroup named after anything we ran may be left — also on errors, Ctrl-C and
SIGTERM.

    sudo .venv/bin/python bench/services.py [--sizes 3,10] [--rounds 2]
        [--cpu-services 3 --cpu-tasks 10] [--window 30] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repo's tests/ and bench/ are not installed

from bench.tasks import (  # noqa: E402 - same /proc accounting and clean-up as the tasks bench
    log_tail,
    remove_workdir,
    require_prerequisites,
    sample,
    say,
    supervisors,
)
from corral.client import ServerUnreachable  # noqa: E402
from tests.runtime import imagebuild  # noqa: E402
from tests.server import CorralServer  # noqa: E402

CLUSTER, REPO, TAG = "bench-services", "bench/web", "v1"
INTERVAL_S = 5  # the health check's interval: the floor's main term
HEALTH = {"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/rev"],
          "interval": INTERVAL_S, "timeout": 2, "retries": 1}
DEPLOYMENT = {"maximumPercent": 200, "minimumHealthyPercent": 100}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"]}}
MEMORY_MIB = 32
POLL_S = 0.2  # DescribeServices poll while timing an update
START_POLL_S = 0.02  # DescribeTasks poll while timing the raw start (as bench/tasks.py)
STABLE_TIMEOUT_S = 300.0
SETTLE_S = 2 * INTERVAL_S  # before a CPU window: every task past its first health check
BATCH = 10  # RunTask takes count ≤ 10


def stable(svc: dict, task_def: str) -> bool:
    """The ServicesStable waiter's condition, on the revision we updated to."""
    deps = svc["deployments"]
    return (len(deps) == 1 and deps[0]["taskDefinition"] == task_def
            and deps[0].get("rolloutState") == "COMPLETED"
            and svc["runningCount"] == svc["desiredCount"])


def until(what: str, check: Callable[[], bool], timeout: float, every: float) -> float:
    """Poll ``check`` until true; seconds it took. Fails loudly on timeout."""
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{what}: not reached after {timeout:.0f}s")
        time.sleep(every)
    return time.perf_counter() - t0


class ServicesBench:
    """A Corral server of our own in ``data``, the web image pushed, a cluster."""

    def __init__(self, data: Path, image: imagebuild.Image):
        self.data = data
        self.server = CorralServer(data).start()
        self.task_ids: set[str] = set()  # everything we ran, for the leak check
        self.services: set[str] = set()
        ecr = self.server.client("ecr")
        imagebuild.push(ecr, REPO, TAG, image)
        repo = ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0]
        self.image_uri = f"{repo['repositoryUri']}:{TAG}"
        self.ecs = self.server.client("ecs")
        self.ecs.create_cluster(clusterName=CLUSTER)

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def register(self, family: str, rev: str) -> str:
        return self.ecs.register_task_definition(
            family=family, networkMode="awsvpc", containerDefinitions=[{
                "name": "web", "image": self.image_uri, "memory": MEMORY_MIB, "stopTimeout": 2,
                "essential": True, "linuxParameters": {"initProcessEnabled": True},
                "environment": [{"name": "REV", "value": rev}],
                "command": ["sh", "-c", "echo $REV > /www/rev; exec httpd -f -p 8080 -h /www"],
                "portMappings": [{"containerPort": 8080}], "healthCheck": HEALTH}],
        )["taskDefinition"]["taskDefinitionArn"]

    # -- services ----------------------------------------------------------------------------
    def describe(self, name: str) -> dict:
        return self.ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]

    def create_service(self, name: str, task_def: str, count: int) -> None:
        self.services.add(name)
        self.ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=task_def,
                                desiredCount=count, deploymentConfiguration=DEPLOYMENT,
                                networkConfiguration=NETWORK)

    def wait_stable(self, name: str, task_def: str) -> float:
        def check() -> bool:
            svc = self.describe(name)
            primary = svc["deployments"][0]
            if primary.get("rolloutState") == "FAILED":
                raise RuntimeError(f"service {name}: {primary.get('rolloutStateReason')}")
            return stable(svc, task_def)
        return until(f"service {name} stable", check, STABLE_TIMEOUT_S, POLL_S)

    def service_tasks(self, name: str, desired: str = "RUNNING") -> list[dict]:
        arns = self.ecs.list_tasks(cluster=CLUSTER, serviceName=name,
                                   desiredStatus=desired)["taskArns"]
        found = self.describe_tasks(arns)
        self.task_ids.update(t["taskArn"].rsplit("/", 1)[1] for t in found)
        return found

    def delete_service(self, name: str) -> None:
        """DeleteService with force, then wait until it is INACTIVE and its tasks stopped."""
        self.ecs.delete_service(cluster=CLUSTER, service=name, force=True)

        def gone() -> bool:  # INACTIVE, and every task it ran really STOPPED
            if self.describe(name)["status"] != "INACTIVE" or self.service_tasks(name):
                return False
            return all(t["lastStatus"] == "STOPPED" for t in self.service_tasks(name, "STOPPED"))
        until(f"service {name} inactive", gone, STABLE_TIMEOUT_S, 0.5)
        self.services.discard(name)

    # -- standalone tasks --------------------------------------------------------------------
    def describe_tasks(self, arns: list[str]) -> list[dict]:
        out: list[dict] = []
        for i in range(0, len(arns), 100):  # DescribeTasks takes up to 100
            out += self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])["tasks"]
        return out

    def run_tasks(self, task_def: str, n: int) -> list[str]:
        arns: list[str] = []
        for first in range(0, n, BATCH):
            out = self.ecs.run_task(cluster=CLUSTER, taskDefinition=task_def,
                                    count=min(BATCH, n - first), networkConfiguration=NETWORK)
            if out.get("failures"):
                raise RuntimeError(f"RunTask failures: {out['failures']}")
            arns += [t["taskArn"] for t in out["tasks"]]
        self.task_ids.update(a.rsplit("/", 1)[1] for a in arns)
        return arns

    def wait_tasks(self, arns: list[str], done: Callable[[dict], bool], what: str,
                   every: float = START_POLL_S) -> float:
        def check() -> bool:
            seen = self.describe_tasks(arns)
            if what != "STOPPED" and any(t["lastStatus"] == "STOPPED" for t in seen):
                bad = next(t for t in seen if t["lastStatus"] == "STOPPED")
                raise RuntimeError(f"a task stopped: {bad.get('stoppedReason')}")
            return all(done(t) for t in seen)
        return until(f"{len(arns)} tasks {what}", check, STABLE_TIMEOUT_S, every)

    def time_start(self, task_def: str, n: int) -> float:
        """RunTask of ``n`` tasks → all RUNNING (the raw start), then stop them."""
        t0 = time.perf_counter()
        arns = self.run_tasks(task_def, n)
        self.wait_tasks(arns, lambda t: t["lastStatus"] == "RUNNING", "RUNNING")
        took = time.perf_counter() - t0
        self.stop_tasks(arns)
        return took

    def stop_tasks(self, arns: list[str]) -> None:
        for arn in arns:
            self.ecs.stop_task(cluster=CLUSTER, task=arn, reason="bench done")
        self.wait_tasks(arns, lambda t: t["lastStatus"] == "STOPPED", "STOPPED", every=0.2)

    # -- clean-up ----------------------------------------------------------------------------
    def close(self) -> None:
        """Delete our services with force and stop every task, then the server. A Ctrl-C
        reaches the server too (same process group) and it shuts down leaving its tasks
        running: then start it again on the same data dir — it adopts them — and stop them
        through it (``stop_tasks`` pauses the scheduler, so no service replaces them)."""
        try:
            self._remember_all_tasks()
            for name in sorted(self.services):
                self.delete_service(name)
            self.server.stop(stop_tasks=True)
            return
        except (ServerUnreachable, OSError, RuntimeError) as e:
            say(f"could not clean up through the server ({type(e).__name__}: {e}); "
                f"restarting it on its data dir to stop the tasks")
        if self.server.proc is not None:
            self.server.stop()  # SIGTERM (it may be shutting down already), SIGKILL after 15 s
        self.server = CorralServer(self.data).start()
        self.ecs = self.server.client("ecs")
        with contextlib.suppress(ServerUnreachable, OSError, RuntimeError):
            self._remember_all_tasks()
        self.server.stop(stop_tasks=True)

    def _remember_all_tasks(self) -> None:
        for status in ("RUNNING", "STOPPED"):
            arns = self.ecs.list_tasks(cluster=CLUSTER, desiredStatus=status)["taskArns"]
            self.task_ids.update(a.rsplit("/", 1)[1] for a in arns)


# ── 1. rolling update ────────────────────────────────────────────────────────────────────────

def time_update(b: ServicesBench, name: str, task_def: str) -> dict[str, float]:
    """UpdateService → stable, polling every 0.2 s; also first/last new task HEALTHY."""
    t0 = time.perf_counter()
    b.ecs.update_service(cluster=CLUSTER, service=name, taskDefinition=task_def)
    first = last = None
    while True:
        svc = b.describe(name)
        now = time.perf_counter() - t0
        if svc["deployments"][0].get("rolloutState") == "FAILED":
            raise RuntimeError(f"update of {name} failed: "
                               f"{svc['deployments'][0].get('rolloutStateReason')}")
        if last is None:
            new = [t for t in b.service_tasks(name) if t["taskDefinitionArn"] == task_def]
            healthy = [t for t in new if t.get("healthStatus") == "HEALTHY"]
            if healthy and first is None:
                first = now
            if len(healthy) >= svc["desiredCount"]:
                last = now
        if stable(svc, task_def):
            return {"stable_s": now, "first_healthy_s": first or now,
                    "all_healthy_s": last or now}
        if now > STABLE_TIMEOUT_S:
            raise RuntimeError(f"service {name} not stable {STABLE_TIMEOUT_S:.0f}s after update")
        time.sleep(POLL_S)


def bench_update(b: ServicesBench, n: int, rounds: int) -> dict:
    """``rounds`` updates of a service of ``n`` tasks, alternating revisions, each beside the
    raw start of ``n`` (and of 1) tasks of the revision it moves to."""
    family = name = f"bench-web-{n}"
    revs = [b.register(family, "1"), b.register(family, "2")]
    b.create_service(name, revs[0], n)
    b.wait_stable(name, revs[0])
    samples = []
    for r in range(rounds):
        target = revs[(r + 1) % 2]
        start_one, start_n = b.time_start(target, 1), b.time_start(target, n)
        got = time_update(b, name, target)
        samples.append({**got, "start_1_s": start_one, "start_n_s": start_n,
                        "floor_s": INTERVAL_S + start_n})
        say(f"  {n} tasks, round {r + 1}: stable after {got['stable_s']:.2f}s "
            f"(floor {INTERVAL_S + start_n:.2f}s)")
    b.delete_service(name)
    keys = samples[0].keys()
    return {"tasks": n, "rounds": samples,
            "median": {k: statistics.median(s[k] for s in samples) for k in keys}}


# ── 2. CPU at steady state ───────────────────────────────────────────────────────────────────

def cpu_window(b: ServicesBench, window: float) -> dict[str, float]:
    """The server's own and its reaped children's CPU seconds over ``window`` quiet seconds."""
    before = sample(b.pid)
    t0 = time.perf_counter()
    time.sleep(window)
    after, took = sample(b.pid), time.perf_counter() - t0
    return {"window_s": took, "cpu_s": after.cpu_s - before.cpu_s,
            "children_cpu_s": after.children_cpu_s - before.children_cpu_s}


def bench_cpu(b: ServicesBench, n_services: int, per_service: int, window: float) -> dict:
    task_def = b.register("bench-cpu", "1")
    names = [f"bench-cpu-{i}" for i in range(n_services)]
    for name in names:
        b.create_service(name, task_def, per_service)
    for name in names:
        b.wait_stable(name, task_def)
    total = n_services * per_service
    say(f"  {n_services} services × {per_service} tasks stable; settling {SETTLE_S}s, "
        f"then {window:.0f}s of quiet")
    time.sleep(SETTLE_S)
    with_services = cpu_window(b, window)
    running = sum(b.describe(name)["runningCount"] for name in names)
    if running != total:
        raise RuntimeError(f"services lost tasks during the window: {running}/{total} running")
    for name in names:
        b.delete_service(name)
    say(f"  {total} standalone tasks; settling {SETTLE_S}s, then {window:.0f}s of quiet")
    arns = b.run_tasks(task_def, total)
    b.wait_tasks(arns, lambda t: t.get("healthStatus") == "HEALTHY", "HEALTHY", every=0.5)
    time.sleep(SETTLE_S)
    standalone = cpu_window(b, window)
    b.stop_tasks(arns)
    return {"tasks": total, "services": n_services, "services_window": with_services,
            "standalone_window": standalone}


# ── report ───────────────────────────────────────────────────────────────────────────────────

def per_100(w: dict[str, float], tasks: int, key: str = "cpu_s") -> float:
    """CPU seconds per minute per 100 tasks."""
    return w[key] / w["window_s"] * 60 * 100 / tasks


def report(res: dict) -> None:
    print(f"\n1. update-service → steady state (ServicesStable, polled every {POLL_S} s); "
          f"awsvpc busybox httpd, health check every {INTERVAL_S} s, max 200 % / min 100 %")
    print(f"   {'tasks':>5} {'rounds':>6} {'stable s':>9} {'floor s':>8} {'ratio':>6} "
          f"{'1st healthy s':>13} {'all healthy s':>13} {'start N s':>9} {'start 1 s':>9}")
    for u in res["updates"]:
        m = u["median"]
        print(f"   {u['tasks']:>5} {len(u['rounds']):>6} {m['stable_s']:>9.2f} "
              f"{m['floor_s']:>8.2f} {m['stable_s'] / m['floor_s']:>5.2f}× "
              f"{m['first_healthy_s']:>13.2f} {m['all_healthy_s']:>13.2f} "
              f"{m['start_n_s']:>9.2f} {m['start_1_s']:>9.2f}")
    print(f"   (medians; floor = health-check interval {INTERVAL_S} s + RunTask of N tasks → "
          f"all RUNNING, measured in the same round)")
    c = res["cpu"]
    n, svc, alone = c["tasks"], c["services_window"], c["standalone_window"]
    print(f"\n2. server CPU at steady state, {n} tasks, {svc['window_s']:.0f} s windows, "
          f"{os.cpu_count()} cores (CPU s per minute per 100 tasks)")
    print(f"   {'':38} {'server':>8} {'+reaped children':>17}")
    rows = [(f"{c['services']} services × {n // c['services']} tasks", svc),
            (f"{n} standalone RunTask tasks (baseline)", alone)]
    for label, w in rows:
        print(f"   {label:38} {per_100(w, n):>8.2f} {per_100(w, n, 'children_cpu_s'):>17.2f}")
    share = per_100(svc, n) - per_100(alone, n)
    ratio = per_100(svc, n) / per_100(alone, n) if alone["cpu_s"] else float("nan")
    print(f"   {'scheduler share (difference)':38} {share:>8.2f} "
          f"{per_100(svc, n, 'children_cpu_s') - per_100(alone, n, 'children_cpu_s'):>17.2f}")
    print(f"   services/standalone ×{ratio:.2f}")


# ── the run ──────────────────────────────────────────────────────────────────────────────────

def leftovers(work: Path, task_ids: set[str]) -> list[str]:
    """Anything on the host still named after a task we ran, or a supervisor of our data dir."""
    found = [f"supervisor pid {p}" for p in supervisors(str(work))]
    with open("/proc/self/mounts") as f:
        found += [line.split()[1] for line in f
                  if line.split()[1].startswith(str(work.resolve()) + "/")
                  or any(t in line.split()[1] for t in task_ids)]
    netns = Path("/run/netns")
    if netns.is_dir():
        found += [str(p) for p in netns.iterdir() if p.name.removeprefix("corral-") in task_ids]
    for root in Path("/sys/fs/cgroup").glob("*/corral"):
        found += [str(p) for p in root.rglob("*") if p.is_dir() and p.name in task_ids]
    return found


INTERRUPTED = threading.Event()


def _interrupt(_sig: int, _frame: object) -> None:
    """Ctrl-C and SIGTERM: one clean-up path. Later signals are ignored while it runs."""
    if not INTERRUPTED.is_set():
        INTERRUPTED.set()
        raise KeyboardInterrupt
    say("cleaning up; please wait")


def run(args: argparse.Namespace, work: Path, cleanup: contextlib.ExitStack,
        bench: list[ServicesBench]) -> dict:
    layer = imagebuild.busybox_layer({"/www/index.html": b"web\n"})
    image = imagebuild.Image([layer], imagebuild.config(cmd=["sh"]))
    say("starting a server, pushing the image")
    b = ServicesBench(work / "corral", image)
    bench.append(b)
    cleanup.callback(b.close)
    res: dict = {"updates": []}
    for n in args.sizes:
        say(f"1. update-service, {n} tasks × {args.rounds} rounds")
        res["updates"].append(bench_update(b, n, args.rounds))
    say(f"2. CPU: {args.cpu_services} services × {args.cpu_tasks} tasks vs standalone")
    res["cpu"] = bench_cpu(b, args.cpu_services, args.cpu_tasks, args.window)
    return res


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="3,10", help="service sizes to update (default 3,10)")
    ap.add_argument("--rounds", type=int, default=2, help="updates per size (default 2)")
    ap.add_argument("--cpu-services", type=int, default=3)
    ap.add_argument("--cpu-tasks", type=int, default=10, help="tasks per service (default 10)")
    ap.add_argument("--window", type=float, default=30.0, help="CPU window seconds (30)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (server.log) for a post-mortem")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    return args


def main() -> int:
    args = parse_args()
    require_prerequisites()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="corral-bench-services-"))
    bench: list[ServicesBench] = []
    try:
        with contextlib.ExitStack() as cleanup:
            res = run(args, work, cleanup, bench)
    except Exception:  # noqa: BLE001 - the edge: show the server's side, then fail loudly
        if INTERRUPTED.is_set():  # the server saw the Ctrl-C too: its connection error
            say(f"interrupted ({traceback.format_exc(limit=1).splitlines()[-1]}); cleaned up")
            return 130
        say(f"FAILED; server log tail ({work / 'corral' / 'server.log'}):\n"
            f"{log_tail(work / 'corral' / 'server.log')}")
        raise
    except KeyboardInterrupt:
        say("interrupted; cleaned up")
        return 130
    finally:
        left = leftovers(work, bench[0].task_ids if bench else set())
        if left:
            say(f"WARNING: left behind: {left[:10]}")
        remove_workdir(work, keep=args.keep)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        report(res)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
