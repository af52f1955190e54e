#!/usr/bin/env python3
"""ECS tasks: RunTask→RUNNING latency and 50 concurrent tasks, against raw crun (and Docker).

Three measurements, each with its baseline in the same run, on the same busybox content:

1. Latency, N sequential tasks (networkMode none, one container ``sleep 600``, 16 MiB,
   stopTimeout 1). Corral: t0; RunTask; DescribeTasks every 5 ms until lastStatus RUNNING.
   Baseline: ``crun --root R run --detach --bundle B ID`` of the same layer flattened once into
   a rootfs (``crun spec`` + args, terminal false, a 16 MiB limit), then ``crun delete -f``.
   The two are taken interleaved (one Corral task, one raw container, …), so load that comes
   and goes on the machine hits both alike. Prints p50/p95, the overhead (Corral − raw) and
   the aim: overhead under 100 ms at p50.
2. N concurrent tasks: ceil(N/10) RunTask calls of count 10, timed until all are RUNNING, beside
   N raw ``crun run --detach`` back to back; then the Corral server's RSS growth and CPU time
   (``/proc/<pid>/status`` VmRSS, ``/proc/<pid>/stat`` utime+stime, and the crun/ip children it
   reaped: cutime+cstime) per task, and the per-container supervisors' RSS and PSS.
3. ``docker run -d`` of the same image (``docker load`` of a docker-archive built from the same
   layer) 20 times against a private dockerd (tests/runtime/dockerd.py: its own socket and
   data root, no bridge, no iptables); skipped with a note when docker.io is missing.

Everything the run creates lives under one temp dir and is removed at the end — tasks stopped
(the server restarted first if a Ctrl-C took it down, so it adopts and stops them), raw crun
containers deleted, their cgroups removed, dockerd stopped, leftover mounts unmounted — also on
errors, Ctrl-C and SIGTERM.

    sudo .venv/bin/python bench/tasks.py [--tasks 50] [--docker-runs 20] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repo's tests/ helpers are not installed

from corral.client import ServerUnreachable  # noqa: E402
from corral.runtime import cgroups  # noqa: E402
from tests.runtime import imagebuild  # noqa: E402
from tests.server import CorralServer  # noqa: E402

CLUSTER, FAMILY, REPO, TAG = "bench-tasks", "bench-sleep", "bench/busybox", "v1"
ARGS = ["sleep", "600"]
MEMORY_MIB = 16
POLL_S = 0.005  # DescribeTasks poll interval while timing one task
BATCH = 10  # RunTask count per call in the concurrent section
READY_TIMEOUT_S = 120.0
AIM_MS = 100.0  # the aim: Corral's overhead over raw crun at p50
RAW_CGROUP = "/corral-bench-raw"  # outside /corral, so Corral's own leak checks never see it
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile of seconds, in ms."""
    s = sorted(xs)
    return s[max(0, math.ceil(p * len(s)) - 1)] * 1000 if s else float("nan")


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50_ms": pct(xs, 0.50), "p95_ms": pct(xs, 0.95),
            "mean_ms": sum(xs) / len(xs) * 1000 if xs else float("nan")}


def require_prerequisites() -> None:
    """The benchmark runs containers: it needs root, crun and busybox-static."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (containers need it: run with sudo)")
    if shutil.which("crun") is None:
        missing.append("crun (apt-get install crun)")
    if not os.path.exists(imagebuild.BUSYBOX):
        missing.append("busybox (apt-get install busybox-static)")
    if missing:
        raise SystemExit("bench/tasks.py needs: " + "; ".join(missing))


# ── process accounting (/proc) ───────────────────────────────────────────────────────────────

@dataclass
class ProcSample:
    rss_kib: int
    cpu_s: float  # utime + stime of the process itself
    children_cpu_s: float  # cutime + cstime: the children it waited for (crun, ip, …)


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: RSS with shared pages (the interpreter, libc) divided among the
    processes sharing them — what N supervisors really cost together."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def sample(pid: int) -> ProcSample:
    # fields after "(comm)": state is field 3, so utime (14) is index 11 of the rest
    rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return ProcSample(rss_kib(pid), (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK)


def supervisors(marker: str) -> list[int]:
    """Pids of Corral's per-container supervisors whose command line names ``marker`` (our
    data dir), so other servers' supervisors on the machine are not counted."""
    out = subprocess.run(["pgrep", "-f", "corral.runtime.supervisor"], capture_output=True,
                         text=True).stdout.split()
    pids = []
    for pid in map(int, out):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                pids.append(pid)
    return pids


# ── Corral ───────────────────────────────────────────────────────────────────────────────────

PHASES = (  # (name, from, to): consecutive timestamps DescribeTasks reports
    ("created→pullStarted", "createdAt", "pullStartedAt"),
    ("pull", "pullStartedAt", "pullStoppedAt"),
    ("pullStopped→started", "pullStoppedAt", "startedAt"),
    ("started→seen RUNNING", "startedAt", "seen"),
)


def phases(task: dict, seen: float) -> dict[str, float]:
    """Seconds spent between the task's own timestamps (same host clock as ours)."""
    at = {k: v.timestamp() for k, v in task.items() if k.endswith("At") and hasattr(v, "year")}
    at["seen"] = seen
    return {name: at[b] - at[a] for name, a, b in PHASES if a in at and b in at}


class CorralBench:
    """A Corral server of our own in ``data``, the image pushed, one task definition."""

    def __init__(self, data: Path, image: imagebuild.Image):
        self.data = data
        self.server = CorralServer(data).start()
        self.arns: set[str] = set()  # every task we ran, to stop at the end
        self.phases: list[dict[str, float]] = []  # where each timed task's latency went
        ecr = self.server.client("ecr")
        imagebuild.push(ecr, REPO, TAG, image)
        uri = ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0]
        self.ecs = self.server.client("ecs")
        self.ecs.create_cluster(clusterName=CLUSTER)
        self.td = self.ecs.register_task_definition(
            family=FAMILY, networkMode="none", containerDefinitions=[{
                "name": "sleep", "image": f"{uri['repositoryUri']}:{TAG}", "command": ARGS,
                "memory": MEMORY_MIB, "stopTimeout": 1, "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def run(self, count: int = 1) -> list[str]:
        out = self.ecs.run_task(cluster=CLUSTER, taskDefinition=self.td, count=count)
        if out.get("failures"):
            raise RuntimeError(f"RunTask failures: {out['failures']}")
        arns = [t["taskArn"] for t in out["tasks"]]
        self.arns.update(arns)
        return arns

    def time_one(self) -> float:
        """Seconds from RunTask to the first DescribeTasks that shows RUNNING."""
        t0 = time.perf_counter()
        (arn,) = self.run()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            task = self.ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
            if task["lastStatus"] == "RUNNING":
                took = time.perf_counter() - t0
                self.phases.append(phases(task, time.time()))
                return took
            if task["lastStatus"] in ("DEPROVISIONING", "STOPPED"):
                raise RuntimeError(f"task stopped before RUNNING: {task.get('stoppedReason')} "
                                   f"{[c.get('reason') for c in task['containers']]}")
            time.sleep(POLL_S)
        raise RuntimeError(f"task not RUNNING after {READY_TIMEOUT_S:.0f}s")

    def wait(self, arns: list[str], status: str, timeout: float = READY_TIMEOUT_S,
             every: float = 0.02) -> None:
        pending, deadline = list(arns), time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} tasks not {status} after {timeout:.0f}s")
            seen = []
            for i in range(0, len(pending), 100):  # DescribeTasks takes up to 100
                seen += self.ecs.describe_tasks(cluster=CLUSTER,
                                                tasks=pending[i:i + 100])["tasks"]
            stopped = [t for t in seen if t["lastStatus"] == "STOPPED"]
            if status == "RUNNING" and stopped:
                raise RuntimeError(f"a task stopped: {stopped[0].get('stoppedReason')}")
            pending = [t["taskArn"] for t in seen if t["lastStatus"] != status]
            time.sleep(every)

    def stop(self, arns: list[str]) -> None:
        for arn in arns:
            self.ecs.stop_task(cluster=CLUSTER, task=arn, reason="bench done")
        self.wait(arns, "STOPPED", every=0.2)
        self.arns.difference_update(arns)

    def close(self) -> None:
        """Stop every task, then the server. A Ctrl-C reaches the server too (same process
        group) and it shuts down leaving its tasks running, as `corral down` does: then wait
        for it to exit, start it again on the same data dir — it adopts the tasks — and stop
        them through it."""
        try:
            self.server.stop(stop_tasks=True)
            return
        except (ServerUnreachable, OSError, RuntimeError) as e:
            say(f"could not stop the tasks ({type(e).__name__}: {e}); restarting the server "
                f"on its data dir to stop them")
        if self.server.proc is not None:
            self.server.stop()  # SIGTERM (it may be shutting down already), SIGKILL after 15 s
        self.server = CorralServer(self.data).start()
        self.server.stop(stop_tasks=True)


# ── raw crun ─────────────────────────────────────────────────────────────────────────────────

def flatten(layer: imagebuild.Layer, rootfs: Path) -> None:
    """Unpack our own busybox layer (trusted content) into ``rootfs``."""
    rootfs.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(layer.tar)) as tar:
        tar.extractall(rootfs, filter="tar")


class RawCrun:
    """``crun run --detach`` of the same content: one shared rootfs, a bundle per container
    (only config.json differs: its cgroup), a private state root."""

    def __init__(self, base: Path, layer: imagebuild.Layer):
        cgroups.ensure_hugetlb()  # crun 1.8 on cgroup v1 needs the hierarchy (idempotent)
        self.base, self.state = base, base / "state"
        self.rootfs = base / "rootfs"
        flatten(layer, self.rootfs)
        subprocess.run(["crun", "spec"], cwd=base, check=True, capture_output=True)
        self.spec = json.loads((base / "config.json").read_text())
        self.live: set[str] = set()
        self.serial = 0

    def bundle(self) -> tuple[str, Path]:
        """A fresh container id and its bundle, written before any timing starts."""
        self.serial += 1
        cid = f"bench-raw-{os.getpid()}-{self.serial}"
        spec = json.loads(json.dumps(self.spec))
        spec["process"].update(args=ARGS, terminal=False)
        spec["root"] = {"path": str(self.rootfs), "readonly": True}
        spec["linux"]["resources"] = {"memory": {"limit": MEMORY_MIB << 20}}
        spec["linux"]["cgroupsPath"] = f"{RAW_CGROUP}/{cid}"
        bundle = self.base / cid
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(spec))
        return cid, bundle

    def run(self, cid: str, bundle: Path) -> float:
        err = bundle / "crun.err"
        t0 = time.perf_counter()
        with open(err, "wb") as f:  # not a pipe: the container inherits it and keeps it open
            rc = subprocess.run(["crun", "--root", str(self.state), "run", "--detach",
                                 "--bundle", str(bundle), cid], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=f).returncode
        took = time.perf_counter() - t0
        self.live.add(cid)
        if rc != 0:
            raise RuntimeError(f"crun run {cid} failed ({rc}): {err.read_text()[-500:]}")
        return took

    def delete(self, cid: str) -> None:
        subprocess.run(["crun", "--root", str(self.state), "delete", "-f", cid],
                       capture_output=True, timeout=30)
        self.live.discard(cid)

    def time_one(self) -> float:
        cid, bundle = self.bundle()
        try:
            return self.run(cid, bundle)
        finally:
            self.delete(cid)

    def close(self) -> None:
        for cid in list(self.live):
            self.delete(cid)
        cgroups.remove(RAW_CGROUP)


# ── Docker ───────────────────────────────────────────────────────────────────────────────────

def docker_archive(image: imagebuild.Image, layer_gz: Path, out: Path, tag: str) -> None:
    """A ``docker load`` tar of the same image, built by the docker driver's own loader."""
    from corral.runtime.docker import load_archive
    from corral.runtime.driver import ImageContent

    layer_gz.write_bytes(image.layers[0].gz)
    content = ImageContent(image.digest, json.loads(image.config_bytes()),
                           ((image.layers[0].digest, imagebuild.OCI_LAYER, layer_gz),))
    with open(out, "wb") as f:
        for chunk in load_archive(content, tag):
            f.write(chunk)


def bench_docker(base: Path, image: imagebuild.Image, runs: int) -> dict:
    """p50/p95 of ``docker run -d`` against a private dockerd, or {"skipped": why}."""
    docker = shutil.which("docker")
    if docker is None or shutil.which("dockerd") is None:
        return {"skipped": "docker.io is not installed (apt-get install docker.io)"}
    from tests.runtime.dockerd import Dockerd

    base.mkdir()
    tag = "corral-bench/busybox:v1"
    docker_archive(image, base / "layer.tar.gz", base / "image.tar", tag)
    with Dockerd(base / "daemon") as daemon:
        cli = [docker, "-H", f"unix://{daemon.socket}"]
        subprocess.run([*cli, "load", "-i", str(base / "image.tar")], check=True,
                       capture_output=True, timeout=120)
        latencies = []
        for i in range(runs):
            name = f"bench-{os.getpid()}-{i}"
            t0 = time.perf_counter()
            r = subprocess.run([*cli, "run", "-d", "--network", "none", "-m", f"{MEMORY_MIB}m",
                                "--name", name, tag, *ARGS], capture_output=True, text=True,
                               timeout=120)
            latencies.append(time.perf_counter() - t0)
            subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"docker run failed: {r.stderr.strip()[-500:]}")
        return {**summary(latencies), "storage_driver": daemon.storage_driver}


# ── the run ──────────────────────────────────────────────────────────────────────────────────

def bench_latency(corral: CorralBench, raw: RawCrun, n: int) -> dict:
    corral_s, raw_s = [], []
    for i in range(n):
        corral_s.append(corral.time_one())
        raw_s.append(raw.time_one())
        if (i + 1) % 10 == 0:
            say(f"  latency: {i + 1}/{n}")
    say("  stopping the sequential tasks")
    corral.stop(sorted(corral.arns))
    breakdown = {name: pct([p[name] for p in corral.phases if name in p], 0.5)
                 for name, _a, _b in PHASES}
    return {"corral": summary(corral_s), "crun": summary(raw_s), "corral_phases_p50_ms":
            breakdown}


def bench_concurrent(corral: CorralBench, raw: RawCrun, n: int) -> dict:
    marker = str(corral.data)
    before = sample(corral.pid)
    t0 = time.perf_counter()
    arns: list[str] = []
    for first in range(0, n, BATCH):
        arns += corral.run(min(BATCH, n - first))
    corral.wait(arns, "RUNNING")
    took = time.perf_counter() - t0
    after = sample(corral.pid)
    sup_pids = supervisors(marker)
    sup, sup_pss = [rss_kib(p) for p in sup_pids], [pss_kib(p) for p in sup_pids]
    say(f"  {n} Corral tasks RUNNING after {took:.2f}s; stopping them")
    corral.stop(arns)
    bundles = [raw.bundle() for _ in range(n)]
    t0 = time.perf_counter()
    for cid, bundle in bundles:
        raw.run(cid, bundle)
    raw_took = time.perf_counter() - t0
    for cid, _ in bundles:
        raw.delete(cid)
    return {
        "tasks": n, "corral_all_running_s": took, "crun_all_running_s": raw_took,
        "server_rss_growth_kib": after.rss_kib - before.rss_kib,
        "server_rss_after_kib": after.rss_kib,
        "server_cpu_s": after.cpu_s - before.cpu_s,
        "server_children_cpu_s": after.children_cpu_s - before.children_cpu_s,
        "supervisors": len(sup), "supervisor_rss_kib": sum(sup),
        "supervisor_pss_kib": sum(sup_pss),
    }


def report(res: dict) -> None:
    report_latency(res["latency"], res["docker"])
    report_concurrent(res["concurrent"])


def report_latency(lat: dict, dock: dict) -> None:
    c, r = lat["corral"], lat["crun"]
    over50, over95 = c["p50_ms"] - r["p50_ms"], c["p95_ms"] - r["p95_ms"]
    rows = [("corral RunTask→RUNNING", c), ("raw crun run --detach", r)]
    if "skipped" not in dock:
        rows.append((f"docker run -d ({dock['storage_driver']})", dock))
    print(f"\n1. RunTask→RUNNING, {c['n']} sequential tasks (networkMode none, busybox "
          f"{' '.join(ARGS)}, {MEMORY_MIB} MiB)")
    print(f"   {'':30} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    for name, s in rows:
        print(f"   {name:30} {s['n']:>4} {s['p50_ms']:>9.1f} {s['p95_ms']:>9.1f} "
              f"{s['mean_ms']:>9.1f}")
    verdict = "met" if over50 < AIM_MS else "NOT met"
    print(f"   overhead corral − crun: p50 {over50:.1f} ms, p95 {over95:.1f} ms "
          f"(aim < {AIM_MS:.0f} ms at p50: {verdict}); corral/crun p50 ×"
          f"{c['p50_ms'] / r['p50_ms']:.1f}")
    print("   corral p50 by phase (task timestamps): " + ", ".join(
        f"{k} {v:.0f} ms" for k, v in lat["corral_phases_p50_ms"].items()))
    if "skipped" in dock:
        print(f"   docker run -d: skipped — {dock['skipped']}")
    else:
        print(f"   corral/docker p50 ×{c['p50_ms'] / dock['p50_ms']:.2f}, "
              f"p95 ×{c['p95_ms'] / dock['p95_ms']:.2f}")


def report_concurrent(conc: dict) -> None:
    n = conc["tasks"]
    counts = "/".join(str(min(BATCH, n - i)) for i in range(0, n, BATCH))
    print(f"\n2. {n} concurrent tasks ({math.ceil(n / BATCH)} RunTask calls, count {counts}) "
          f"on {os.cpu_count()} cores")
    print(f"   all RUNNING after          {conc['corral_all_running_s']:8.2f} s   (raw crun, "
          f"{n} back to back: {conc['crun_all_running_s']:.2f} s; ratio ×"
          f"{conc['corral_all_running_s'] / conc['crun_all_running_s']:.1f})")
    print(f"   server RSS growth          {conc['server_rss_growth_kib'] / 1024:8.1f} MiB  "
          f"({conc['server_rss_growth_kib'] / n:.0f} KiB per task; "
          f"{conc['server_rss_after_kib'] / 1024:.0f} MiB after)")
    print(f"   server CPU (user+sys)      {conc['server_cpu_s']:8.2f} s    "
          f"({conc['server_cpu_s'] / n * 1000:.0f} ms per task; + reaped children "
          f"{conc['server_children_cpu_s'] / n * 1000:.0f} ms per task)")
    print(f"   supervisors                {conc['supervisors']:8d}      RSS "
          f"{conc['supervisor_rss_kib'] / 1024:.1f} MiB in all, "
          f"{conc['supervisor_rss_kib'] / max(1, n):.0f} KiB per task; PSS "
          f"{conc['supervisor_pss_kib'] / 1024:.1f} MiB, "
          f"{conc['supervisor_pss_kib'] / max(1, n):.0f} KiB per task (raw crun: none)")


def unmount_under(base: Path) -> None:
    """Lazily unmount anything still mounted under ``base`` (deepest first) before removal,
    so rmtree never walks into an overlay or the like."""
    prefix = str(base.resolve()) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        say(f"unmounting leftover {point}")
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_workdir(work: Path, *, keep: bool) -> None:
    """Remove the temp dir — unless a container of ours still runs from it (its supervisor
    names it): then say so and keep it, rather than pull a rootfs from under a live task."""
    alive = supervisors(str(work))
    if alive:
        say(f"WARNING: {len(alive)} task containers still run from {work} (supervisor pids "
            f"{alive[:5]}…); kept it. Start `corral up --data-dir {work / 'corral'}` and "
            f"`corral down --stop-tasks` to stop them.")
        return
    unmount_under(work)
    if keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + ln for ln in text[-lines:]) or "    (empty log)"


INTERRUPTED = threading.Event()


def _interrupt(_sig: int, _frame: object) -> None:
    """Ctrl-C and SIGTERM: one clean-up path. Later signals are ignored while it runs."""
    if not INTERRUPTED.is_set():
        INTERRUPTED.set()
        raise KeyboardInterrupt
    say("cleaning up; please wait")


def run(args: argparse.Namespace, work: Path, cleanup: contextlib.ExitStack) -> dict:
    layer = imagebuild.busybox_layer()
    image = imagebuild.Image([layer], imagebuild.config(cmd=ARGS))
    say("raw crun: flattening the busybox layer into a rootfs")
    raw = RawCrun(work / "crun", layer)
    cleanup.callback(raw.close)
    say("corral: starting a server, pushing the image, registering the task definition")
    corral = CorralBench(work / "corral", image)
    cleanup.callback(corral.close)
    say(f"1. latency over {args.tasks} sequential tasks (interleaved with raw crun)")
    res = {"latency": bench_latency(corral, raw, args.tasks)}
    say(f"2. {args.tasks} concurrent tasks")
    res["concurrent"] = bench_concurrent(corral, raw, args.tasks)
    say(f"3. docker run -d x{args.docker_runs}")
    res["docker"] = bench_docker(work / "docker", image, args.docker_runs)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=50, help="tasks per section (default 50)")
    ap.add_argument("--docker-runs", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (server.log, bundles) for a post-mortem")
    args = ap.parse_args()
    require_prerequisites()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="corral-bench-tasks-"))
    try:
        with contextlib.ExitStack() as cleanup:  # runs in reverse: tasks, then raw crun
            res = run(args, work, cleanup)
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
        remove_workdir(work, keep=args.keep)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
