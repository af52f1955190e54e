"""cgroup v1 (cgroupfs) helpers for the OCI driver: host set-up, task-level parents, counters.

Corral lays its cgroups out the same way in every v1 hierarchy the host mounts::

    /sys/fs/cgroup/<controller>/corral/<task id>/<container id>   (sandbox containers)
    /sys/fs/cgroup/<controller>/corral/<container id>             (containers without one)

The OCI runtime creates the leaf (``linux.cgroupsPath``) and applies the container's own
limits; this module creates the task-level parent with its limits, reads the counters that
``stats`` and the supervisor's OOM check need, and removes whole subtrees deepest first.

Controllers are found through ``/proc/self/mounts`` rather than assumed at
``/sys/fs/cgroup/<name>``: some hosts co-mount ``cpu,cpuacct`` in one hierarchy.
Only the cgroup v1 (hybrid) layout is handled: that is what this host (and the CI) run.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from functools import cache
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


def _mounts(types: tuple[str, ...] = ("cgroup",)) -> list[tuple[str, set[str]]]:
    """(mount point, options) of every cgroup hierarchy of the given filesystem types."""
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            _dev, point, fstype, opts, *_ = line.split()
            if fstype in types:
                found.append((point, set(opts.split(","))))
    return found


@cache
def controller_root(controller: str) -> Path | None:
    """Where the v1 hierarchy holding ``controller`` is mounted, or None."""
    for point, opts in _mounts():
        if controller in opts:
            return Path(point)
    return None


def hierarchies() -> list[Path]:
    """Every mounted hierarchy (named v1 ones and a hybrid host's v2 "unified" one too): the
    OCI runtime creates the container's cgroup in all of them, so removal visits them all."""
    return [Path(point) for point, _opts in _mounts(("cgroup", "cgroup2"))]


def ensure_hugetlb() -> None:
    """crun 1.8 refuses to create containers on a v1 host without the hugetlb hierarchy;
    mount it when missing (idempotent; safe to call from every ``check``)."""
    if controller_root("hugetlb") is not None:
        return
    target = CGROUP_ROOT / "hugetlb"
    try:
        target.mkdir(exist_ok=True)
    except OSError as e:
        raise _unavailable(f"cannot create {target} for the hugetlb cgroup: {e}") from e
    run = subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(target)],
                         capture_output=True, text=True)
    controller_root.cache_clear()
    if run.returncode != 0 and controller_root("hugetlb") is None:
        raise _unavailable(
            f"crun needs the cgroup v1 hugetlb hierarchy and mounting it failed: "
            f"{run.stderr.strip()} (run: mount -t cgroup -o hugetlb cgroup {target})")


def path_in(controller: str, cgroup: str) -> Path | None:
    root = controller_root(controller)
    return None if root is None else root / cgroup.strip("/")


def create_parent(cgroup: str, *, memory_bytes: int | None, cpu_units: int | None) -> None:
    """The task-level parent in the controllers whose limits it carries (the runtime creates
    it in the other hierarchies when it creates the first container below it)."""
    for controller in ("memory", "cpu", "cpuacct", "pids"):
        p = path_in(controller, cgroup)
        if p is not None:
            p.mkdir(parents=True, exist_ok=True)
    if memory_bytes is not None:
        _write(path_in("memory", cgroup), "memory.limit_in_bytes", memory_bytes)
    if cpu_units is not None:
        cpu = path_in("cpu", cgroup)
        _write(cpu, "cpu.cfs_period_us", CFS_PERIOD_US)
        # ECS task cpu: 1024 units = one core = a quota of one full period.
        _write(cpu, "cpu.cfs_quota_us", max(1000, cpu_units * CFS_PERIOD_US // 1024))


def _write(directory: Path | None, name: str, value: int) -> None:
    if directory is None:
        raise _unavailable(f"the cgroup controller for {name} is not mounted")
    (directory / name).write_text(str(value))


def read_int(controller: str, cgroup: str, name: str) -> int | None:
    p = path_in(controller, cgroup)
    try:
        return int((p / name).read_text().split()[0]) if p is not None else None
    except (OSError, ValueError, IndexError):
        return None


def oom_kills(cgroup: str) -> int:
    """The ``oom_kill`` counter of ``memory.oom_control`` (0 when unreadable)."""
    p = path_in("memory", cgroup)
    try:
        text = (p / "memory.oom_control").read_text() if p is not None else ""
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def remove(cgroup: str, attempts: int = 50) -> None:
    """Remove ``cgroup`` and everything below it in every hierarchy, deepest first.
    rmdir of a cgroup whose last task just died can briefly fail with EBUSY: retry."""
    for root in hierarchies():
        top = root / cgroup.strip("/")
        if not top.is_dir():
            continue
        dirs = sorted((Path(d) for d, _s, _f in os.walk(top)), key=lambda d: -len(d.parts))
        for d in dirs:
            _rmdir(d, attempts)


def _rmdir(d: Path, attempts: int) -> None:
    for i in range(attempts):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or i == attempts - 1:
                raise
            time.sleep(0.02)


def leftovers(cgroup: str) -> list[Path]:
    """Directories of ``cgroup`` still present in any hierarchy (leak checks)."""
    return [root / cgroup.strip("/") for root in hierarchies()
            if (root / cgroup.strip("/")).exists()]


def _unavailable(message: str) -> Exception:
    """The driver's RuntimeUnavailable, imported only when needed: the supervisor imports this
    module at every container start, and the driver module costs it ~20 ms of start-up."""
    from corral.runtime.driver import RuntimeUnavailable

    return RuntimeUnavailable(message)
