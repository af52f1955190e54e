"""The OCI runtime spec (``config.json``) of one container, built from scratch.

``build_spec`` turns a ``ContainerSpec`` plus what the driver has already decided (the
resolved user, hostname, ``/etc`` files, network namespace, cgroup, tini) into the document
crun and runc read. Nothing is taken from ``crun spec`` or ``runc spec``: those templates
differ between runtimes and versions, and ECS task definitions are written against Docker's
behaviour, so the defaults here are Docker's (moby's ``oci/defaults.go`` and
``oci/caps/defaults.go``)::

    capabilities   Docker's 14 by default; cap_add / cap_drop ("ALL" on either side);
                   privileged gets every capability this kernel knows
    masked paths   /proc/kcore, /proc/keys, /sys/firmware, … (hidden); /proc/sys, /proc/irq,
    readonly paths … (read-only); neither for a privileged container
    mounts         /proc, a tmpfs /dev with devpts, shm and mqueue, /sys and /sys/fs/cgroup
                   (read-only unless privileged), the bind-mounted /etc files, the task's
                   volumes, and tini as /sbin/docker-init for initProcessEnabled
    devices        deny all, then Docker's allow list (null, zero, full, random, tty, pts, …)
    rlimits        nofile 1048576 (capped at the host's hard limit), then the task's ulimits
    resources      cpu shares (2..262144), memory limit with no extra swap, reservation, pids

The functions are pure but for reading host limits (``/proc/sys/kernel/cap_last_cap``,
``getrlimit``, whether memsw accounting exists); a value the host cannot honour is a
``CannotCreateContainerError`` raised here, before the runtime is involved.
"""

from __future__ import annotations

import resource
from pathlib import Path

from corral.runtime import cgroups, rootfs
from corral.runtime.driver import ContainerSpec, RuntimeFailure

CAPABILITIES = (  # by number: index i is capability i (linux/capability.h)
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
DOCKER_CAPABILITIES = (  # moby's oci/caps/defaults.go
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)
MASKED_PATHS = (  # moby's oci/defaults.go
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = [{"allow": False, "access": "rwm"}] + [  # Docker's default allow list
    {"allow": True, "type": t, "major": ma, "minor": mi, "access": "rwm"}
    for t, ma, mi in (("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9),
                      ("c", 5, 0), ("c", 5, 1), ("c", 5, 2), ("c", 136, None), ("c", 10, 200))
]
DOCKER_NOFILE = 1048576
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _cap_names() -> list[str]:
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = len(CAPABILITIES) - 1
    return list(CAPABILITIES[:last + 1])


def capabilities(spec: ContainerSpec) -> list[str]:
    """Docker's default set + cap_add − cap_drop ("ALL" allowed on both sides)."""
    known = _cap_names()
    if spec.privileged:
        return [f"CAP_{c}" for c in known]

    def norm(names: tuple[str, ...]) -> set[str]:
        out = {n.upper().removeprefix("CAP_") for n in names}
        unknown = out - set(known) - {"ALL"}
        if unknown:
            raise RuntimeFailure(f"unknown capability: {sorted(unknown)[0]}",
                                 "CannotCreateContainerError")
        return set(known) if "ALL" in out else out

    caps = (set(DOCKER_CAPABILITIES) | norm(spec.cap_add)) - norm(spec.cap_drop)
    if "ALL" in {n.upper() for n in spec.cap_drop}:
        caps = norm(spec.cap_add)  # Docker: drop ALL, then add back what is named
    return [f"CAP_{c}" for c in known if c in caps]


def check_ulimits(ulimits: tuple) -> dict[str, tuple[int, int]]:
    """``RLIMIT_*`` → (soft, hard): Docker's nofile default, then the task's ulimits, each
    within the host's hard limit (raising a hard limit beyond it needs a host change)."""
    host_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = DOCKER_NOFILE if host_nofile == resource.RLIM_INFINITY else min(DOCKER_NOFILE,
                                                                             host_nofile)
    limits = {"RLIMIT_NOFILE": (nofile, nofile)}
    for u in ulimits:
        key = f"RLIMIT_{u.name.upper()}"
        if not hasattr(resource, key):
            raise RuntimeFailure(f"ulimit {u.name}: unknown limit", "CannotCreateContainerError")
        host_hard = resource.getrlimit(getattr(resource, key))[1]
        if u.soft > u.hard:
            raise RuntimeFailure(f"ulimit {u.name}: soft limit {u.soft} is above its hard "
                                 f"limit {u.hard}", "CannotCreateContainerError")
        if host_hard != resource.RLIM_INFINITY and u.hard > host_hard:
            raise RuntimeFailure(
                f"ulimit {u.name}: hard limit {u.hard} is above this host's hard limit "
                f"{host_hard} (lower it in the task definition or raise it on the host)",
                "CannotCreateContainerError")
        limits[key] = (u.soft, u.hard)
    return limits


def _env(spec: ContainerSpec, hostname: str, home: str) -> list[str]:
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH.partition("=")[2])
    env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in env.items()]


def _mounts(spec: ContainerSpec, etc_files: dict[str, Path], tini: Path | None) -> list[dict]:
    ro = [] if spec.privileged else ["ro"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", *ro]},
    ]
    for dest, src in etc_files.items():
        mounts.append({"destination": dest, "type": "bind", "source": str(src),
                       "options": ["rbind", "rprivate"]})
    for m in spec.mounts:
        mounts.append({"destination": m.destination, "type": "bind", "source": str(m.source),
                       "options": ["rbind", "rprivate", *(["ro"] if m.readonly else [])]})
    if tini is not None:
        mounts.append({"destination": "/sbin/docker-init", "type": "bind",
                       "source": str(tini), "options": ["bind", "ro"]})
    return mounts


def _resources(spec: ContainerSpec) -> dict:
    res: dict = {"devices": DEVICES,
                 "cpu": {"shares": min(max(spec.cpu_shares or 2, 2), 262144)}}
    memory: dict = {}
    if spec.memory_mib:
        memory["limit"] = spec.memory_mib * 2**20
        mem_root = cgroups.controller_root("memory")
        if mem_root is not None and (mem_root / "memory.memsw.limit_in_bytes").exists():
            memory["swap"] = memory["limit"]  # no swap beyond the limit: OOM is OOM
    if spec.memory_reservation_mib:
        memory["reservation"] = spec.memory_reservation_mib * 2**20
    if memory:
        res["memory"] = memory
    if spec.pids_limit:
        res["pids"] = {"limit": spec.pids_limit}
    return res


def build_spec(spec: ContainerSpec, *, user: rootfs.User, hostname: str,
               etc_files: dict[str, Path], netns: str | None, cgroup: str,
               tini: Path | None) -> dict:
    """The whole ``config.json``. ``netns`` is the network namespace to join (None: the
    host's); ``network == "host"`` also keeps the host's UTS namespace, so no hostname."""
    caps = capabilities(spec)
    args = ["/sbin/docker-init", "--", *spec.args] if tini is not None else list(spec.args)
    process = {
        "terminal": False, "args": args, "env": _env(spec, hostname, user.home),
        "cwd": spec.cwd or "/",
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": k, "soft": s, "hard": h}
                    for k, (s, h) in check_ulimits(spec.ulimits).items()],
        "noNewPrivileges": False,
    }
    host_net = spec.network == "host"
    namespaces = [{"type": t} for t in ("pid", "ipc", "mount", *([] if host_net else ["uts"]))]
    if netns is not None:
        namespaces.append({"type": "network", "path": netns})
    linux = {"namespaces": namespaces, "cgroupsPath": cgroup, "resources": _resources(spec)}
    if not spec.privileged:
        linux.update(maskedPaths=list(MASKED_PATHS), readonlyPaths=list(READONLY_PATHS))
    doc = {"ociVersion": "1.0.2", "process": process,
           "root": {"path": "rootfs", "readonly": spec.readonly_rootfs},
           "mounts": _mounts(spec, etc_files, tini), "linux": linux,
           "annotations": {"corral.name": spec.name, **spec.labels}}
    if not host_net:
        doc["hostname"] = hostname
    return doc
