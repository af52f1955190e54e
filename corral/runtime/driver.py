"""The container runtime driver interface: what the ECS task agent needs from a runtime.

Two drivers implement it: ``oci`` (crun or runc, no daemon; a supervisor process per
container) and ``docker`` (the Docker Engine API). Every driver passes the shared conformance
suite in ``tests/runtime/conformance.py``.

    agent ──create_sandbox(task)──> cgroup parent (task-level cpu/memory) + network (awsvpc)
          ──create(container)─────> created, not running (rootfs, cgroup, namespaces ready)
          ──start / kill / exec───> running ... exited (exit code, OOM recorded by the driver)
          ──state(id)─────────────> what the driver recorded, even across Corral restarts
          ──remove / remove_sandbox> nothing left: no mount, cgroup, netns, veth, rule

Contract:
- Every method is idempotent where it can be: ``remove`` of a missing container,
  ``kill`` of an exited one and ``remove_sandbox`` of a missing sandbox do nothing.
- ``state`` never raises for a known id and returns None for an unknown one. The exit code
  and OOM fact of a container that ended while Corral was down are still there (the driver
  keeps them on disk or in its daemon) until ``remove``.
- ``list`` returns the ids of every container the driver holds (running or not), and
  ``sandboxes`` every sandbox: restart adoption and leak checks rely on them.
- Failures raise :class:`RuntimeFailure` with a message a user can act on; ``kind`` says which
  ECS error name it becomes (``CannotCreateContainerError``, ``CannotStartContainerError``, …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

NetworkMode = Literal["host", "none", "bridge", "sandbox"]


class RuntimeFailure(Exception):
    """A runtime operation failed. ``kind`` is the ECS error name the agent reports."""

    def __init__(self, message: str, kind: str = "CannotStartContainerError"):
        super().__init__(message)
        self.kind = kind


class RuntimeUnavailable(RuntimeFailure):
    """The runtime cannot work on this machine at all (binary missing, not root, …); the
    message says what to install or configure."""

    def __init__(self, message: str):
        super().__init__(message, "CannotCreateContainerError")


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int = 0  # 0: a dynamic port from the ephemeral range (bridge mode)
    protocol: str = "tcp"  # tcp | udp


@dataclass(frozen=True)
class PortBinding:
    """A published port, as DescribeTasks' ``networkBindings`` shows it."""

    container_port: int
    host_port: int
    protocol: str = "tcp"
    bind_ip: str = "0.0.0.0"


@dataclass(frozen=True)
class Mount:
    source: Path  # a host path (task volume directory, host sourcePath)
    destination: str  # absolute path in the container
    readonly: bool = False


@dataclass(frozen=True)
class Ulimit:
    name: str  # nofile, nproc, core, … (ECS names, without RLIMIT_)
    soft: int
    hard: int


@dataclass(frozen=True)
class ImageContent:
    """An image resolved to local content (``corral.runtime.images``).

    ``layers`` are the compressed layer blobs on disk, lowest first, with their media types;
    ``reference`` is a pullable reference at Corral's own registry and ``auth`` a registry
    credential (user, password) for drivers with their own image store (Docker)."""

    digest: str  # the manifest digest (what ECS reports as imageDigest)
    config: dict  # the OCI image config document
    layers: tuple[tuple[str, str, Path], ...]  # (digest, media type, blob path)
    reference: str = ""
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class SandboxSpec:
    """What one task shares: a cgroup parent with the task-level limits, and (awsvpc) one
    network namespace all its containers join."""

    id: str  # the task id
    network: Literal["awsvpc", "other"] = "other"
    ports: tuple[PortMapping, ...] = ()  # awsvpc: the ports to publish on the host too
    cpu_units: int | None = None  # task-level cpu (1024 = one core): a CFS quota
    memory_mib: int | None = None  # task-level memory: a hard limit for all containers


@dataclass(frozen=True)
class Sandbox:
    id: str
    cgroup_parent: str  # e.g. /corral/<task id>
    netns: str | None = None  # path of the awsvpc network namespace
    ipv4: str | None = None
    mac: str | None = None
    gateway: str | None = None
    subnet: str | None = None  # CIDR of the Corral bridge
    bindings: tuple[PortBinding, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    """One container, already merged with its image config by the agent (entrypoint + cmd
    as ``args``, env, working dir, user)."""

    id: str  # runtime id, unique on this host
    name: str  # the container definition's name
    image: ImageContent
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "/"
    user: str | None = None  # "uid", "uid:gid", "name", "name:group" (resolved in the rootfs)
    hostname: str | None = None
    sandbox: Sandbox | None = None
    network: NetworkMode = "bridge"  # sandbox: join sandbox.netns (awsvpc)
    ports: tuple[PortMapping, ...] = ()  # bridge mode: published on the host
    mounts: tuple[Mount, ...] = ()
    memory_mib: int | None = None  # hard limit
    memory_reservation_mib: int | None = None  # soft limit
    cpu_shares: int = 2  # ECS: unset/0/1 ⇒ 2
    pids_limit: int | None = None
    ulimits: tuple[Ulimit, ...] = ()
    readonly_rootfs: bool = False
    init: bool = False  # linuxParameters.initProcessEnabled
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    stop_signal: str = "SIGTERM"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerState:
    status: Literal["created", "running", "exited"]
    pid: int | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None  # why it could not start, when the runtime said so
    bindings: tuple[PortBinding, ...] = ()  # bridge mode: what was published
    ipv4: str | None = None  # bridge mode: the container's own address


@dataclass(frozen=True)
class ExecResult:
    exit_code: int  # -1 when it timed out
    output: str  # stdout + stderr, truncated to 1024 characters (ECS health output)
    timed_out: bool = False


@dataclass(frozen=True)
class ContainerStats:
    """cgroup counters, read at ``read_at``."""

    read_at: datetime
    cpu_usage_ns: int
    memory_usage_bytes: int
    memory_max_usage_bytes: int
    memory_limit_bytes: int | None
    pids: int
    rx_bytes: int = 0
    tx_bytes: int = 0


class RuntimeDriver(Protocol):
    name: str

    def check(self) -> None:
        """Raise RuntimeUnavailable, saying what to do, when this driver cannot run here.
        Does idempotent host set-up (cgroup hierarchies, sysctls) on the way."""

    def create_sandbox(self, spec: SandboxSpec) -> Sandbox: ...

    def sandbox(self, id: str) -> Sandbox | None:
        """The sandbox created earlier (also after a Corral restart), or None."""

    def remove_sandbox(self, id: str) -> None: ...

    def sandboxes(self) -> list[str]: ...

    def create(self, spec: ContainerSpec) -> None: ...

    def start(self, id: str) -> None: ...

    def kill(self, id: str, signal: str = "SIGTERM") -> None: ...

    def state(self, id: str) -> ContainerState | None: ...

    def exec(self, id: str, argv: list[str], timeout: float) -> ExecResult:
        """Run argv inside the running container (health checks)."""

    def stats(self, id: str) -> ContainerStats | None: ...

    def log_path(self, id: str) -> Path:
        """The file holding the container's stdout and stderr (rotated: older parts are
        ``<path>.1``, ``<path>.2``, …); each line ``<RFC 3339 time> <stdout|stderr> <text>``."""

    def remove(self, id: str) -> None: ...

    def list(self) -> list[str]: ...
