"""The ``oci`` runtime driver: crun (default) or runc, no daemon, a supervisor per container.

Layout under ``root`` (Corral's ``<data dir>/runtime``)::

    layers/                     the shared, content-addressed layer cache (unpack.LayerCache)
    <runtime>-state/            the runtime's own state (``--root``): two Corral servers on
                                one host never see each other's containers
    sandboxes/<task id>.json    each Sandbox, so ``sandbox(id)`` survives a restart
    containers/<id>/            the OCI bundle:
        config.json             the runtime spec, built from scratch (``oci_spec``)
        rootfs/ upper/ work/    overlayfs over the cached layers (or a copy: rootfs.py)
        etc/                    hosts, hostname, resolv.conf (bind-mounted)
        meta.json               what the driver decided: cgroup, attachment, bindings
        status.json             what the supervisor recorded: pid, exit code, OOM
        started.json            when ``start`` succeeded
        container.log[.N]       stdout/stderr lines

Errors before the runtime is involved (an unknown user, a ulimit above the host's, a
missing tini) are ``CannotCreateContainerError``; errors the OCI runtime reports while
creating or starting the process (a missing executable) are ``CannotStartContainerError``,
because that is the Docker call (start) in which ECS sees them.

Not done here: seccomp and AppArmor profiles (Docker's defaults are not applied).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal as signals
import subprocess
import sys
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from corral.runtime import cgroups, rootfs
from corral.runtime.driver import (
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ExecResult,
    PortBinding,
    RuntimeFailure,
    RuntimeUnavailable,
    Sandbox,
    SandboxSpec,
)
from corral.runtime.files import read_json, write_json_atomic
from corral.runtime.oci_spec import build_spec, check_ulimits
from corral.runtime.sandboxes import SandboxRecords
from corral.runtime.supervisor import proc_start_time
from corral.runtime.unpack import LayerCache

if TYPE_CHECKING:
    from corral.runtime.network import Attachment, HostNetwork

TINI = Path("/usr/bin/tini-static")
CREATE_TIMEOUT_S = 60.0
EXEC_OUTPUT_CHARS = 1024
_SAFE_ID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _bindings(rows: list) -> tuple[PortBinding, ...]:
    return tuple(PortBinding(**row) for row in rows or ())


class OciDriver:
    name = "oci"

    def __init__(self, root: Path, runtime: str = "crun",
                 network: HostNetwork | None = None):
        self.root = Path(root)
        self.runtime = runtime
        self.binary = shutil.which(runtime) or runtime
        self.state_root = self.root / f"{Path(runtime).name}-state"
        self._network = network
        self._sandboxes = SandboxRecords(self.root / "sandboxes", self._bundle)  # same id rules
        self.layers = LayerCache(self.root / "layers")  # shared by every container

    # -- set-up ------------------------------------------------------------------------------

    @property
    def network(self) -> HostNetwork:
        if self._network is None:
            from corral.runtime.network import HostNetwork  # lazily: only when a task needs it

            self._network = HostNetwork()
        return self._network

    def check(self) -> None:
        if shutil.which(self.runtime) is None:
            raise RuntimeUnavailable(
                f"{self.runtime} is not installed: apt-get install {self.runtime} "
                f"(or set CORRAL_RUNTIME={'runc' if self.runtime != 'runc' else 'crun'})")
        if os.geteuid() != 0:
            raise RuntimeUnavailable("the oci runtime driver needs root (run Corral as root "
                                     "or configure the docker driver)")
        if Path(self.binary).name == "crun":
            cgroups.ensure_hugetlb()
        for d in ("containers", "sandboxes", "layers", self.state_root.name):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    def _run(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self.binary, "--root", str(self.state_root), *args],
                                  capture_output=True, text=True, timeout=timeout)
        except (subprocess.TimeoutExpired, OSError) as e:
            raise RuntimeFailure(f"{Path(self.binary).name} {args[0]} failed: {e}",
                                 "CannotInspectContainerError") from e

    def _bundle(self, id: str) -> Path:
        if not id or not set(id) <= _SAFE_ID or id.startswith("."):
            raise RuntimeFailure(f"invalid container id {id!r}", "CannotCreateContainerError")
        return self.root / "containers" / id

    # -- sandboxes ---------------------------------------------------------------------------

    def create_sandbox(self, spec: SandboxSpec) -> Sandbox:
        def attach(spec: SandboxSpec, _cgroup: str) -> Attachment:  # a netns of its own
            return self.network.create(f"corral-{spec.id}", spec.ports)

        return self._sandboxes.create(spec, attach, self._teardown_sandbox)

    def sandbox(self, id: str) -> Sandbox | None:
        return self._sandboxes.load(id)

    def remove_sandbox(self, id: str) -> None:
        box = self.sandbox(id)
        cg = box.cgroup_parent if box else f"/corral/{id}"
        for cid in self.list():  # its containers go first: the cgroup parent must be empty
            meta = read_json(self.root / "containers" / cid / "meta.json") or {}
            if meta.get("parent_cgroup") == cg:
                self.remove(cid)
        self._teardown_sandbox(id, cg, networked=box is None or box.netns is not None)
        self._sandboxes.delete(id)

    def _teardown_sandbox(self, id: str, cg: str, networked: bool = True) -> None:
        if networked and self._network_known(f"corral-{id}"):
            self.network.remove(f"corral-{id}")
        cgroups.remove(cg)

    def _network_known(self, name: str) -> bool:
        try:
            return name in self.network.names()
        except ImportError:
            return False

    def sandboxes(self) -> list[str]:
        return self._sandboxes.ids()

    # -- containers --------------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> None:
        bundle = self._bundle(spec.id)
        if bundle.exists():
            raise RuntimeFailure(f"container {spec.id} already exists",
                                 "CannotCreateContainerError")
        bundle.mkdir(parents=True)
        try:
            self._prepare(spec, bundle)
            self._supervise(spec, bundle)
        except RuntimeFailure:
            self.remove(spec.id)
            raise
        except Exception as e:  # a malformed /etc/passwd, a full disk, …: the contract's kind
            self.remove(spec.id)
            raise RuntimeFailure(f"cannot create container {spec.name}: {e}",
                                 "CannotCreateContainerError") from e
        except BaseException:
            self.remove(spec.id)
            raise

    def _prepare(self, spec: ContainerSpec, bundle: Path) -> None:
        check_ulimits(spec.ulimits)
        if spec.init and not TINI.exists():
            raise RuntimeFailure(f"initProcessEnabled needs {TINI}: apt-get install tini",
                                 "CannotCreateContainerError")
        layers = [self.layers.unpack(digest, media, blob) for digest, media, blob in spec.image.layers]
        mode = rootfs.prepare(layers, bundle)
        user = rootfs.resolve_user(bundle / "rootfs", spec.user)
        rootfs.make_dirs_confined(bundle / "rootfs", spec.cwd or "/", user.uid, user.gid)
        parent = spec.sandbox.cgroup_parent if spec.sandbox else "/corral"
        meta = {"id": spec.id, "name": spec.name, "rootfs": mode, "created_at":
                datetime.now(UTC).isoformat(), "cgroup": f"{parent}/{spec.id}",
                "parent_cgroup": spec.sandbox.cgroup_parent if spec.sandbox else "",
                "attachment": None, "bindings": [], "ipv4": None}
        write_json_atomic(bundle / "meta.json", meta)  # before the network: remove() finds it
        netns, ipv4 = self._attach(spec, bundle, meta)
        hostname = spec.hostname or spec.id[:12]
        etc = rootfs.write_etc(bundle, hostname, ipv4)
        doc = build_spec(spec, user=user, hostname=hostname, etc_files=etc, netns=netns,
                         cgroup=meta["cgroup"], tini=TINI if spec.init else None)
        write_json_atomic(bundle / "config.json", doc)

    def _attach(self, spec: ContainerSpec, bundle: Path,
                meta: dict) -> tuple[str | None, str | None]:
        """The network namespace to join: the sandbox's, a new attachment of the container's
        own (bridge, none), or none at all (host)."""
        if spec.network == "host":
            return None, None
        if spec.network == "sandbox":
            if spec.sandbox is None or spec.sandbox.netns is None:
                raise RuntimeFailure(f"container {spec.name} joins the task network but the "
                                     "task has no awsvpc sandbox", "CannotCreateContainerError")
            return spec.sandbox.netns, spec.sandbox.ipv4
        name = f"corral-{spec.id}"
        meta["attachment"] = name
        write_json_atomic(bundle / "meta.json", meta)
        if spec.network == "none":
            att = self.network.create(name, (), connected=False)
        else:
            att = self.network.create(name, spec.ports)
        meta.update(bindings=[asdict(b) for b in att.bindings], ipv4=att.ipv4)
        write_json_atomic(bundle / "meta.json", meta)
        return str(att.netns), att.ipv4

    def _supervise(self, spec: ContainerSpec, bundle: Path) -> None:
        """Start the detached supervisor and wait until it says the container is created."""
        sync_r, sync_w = os.pipe()
        meta = read_json(bundle / "meta.json") or {}
        argv = [sys.executable, "-S", "-m", "corral.runtime.supervisor",
                "--runtime", self.binary, "--state-root", str(self.state_root),
                "--bundle", str(bundle), "--id", spec.id, "--cgroup", meta["cgroup"],
                "--parent-cgroup", meta["parent_cgroup"], "--sync-fd", str(sync_w)]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        with open(bundle / "supervisor.log", "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    cwd="/", env=env, start_new_session=True,
                                    pass_fds=(sync_w,))
        os.close(sync_w)
        try:
            ready, _, _ = select.select([sync_r], [], [], CREATE_TIMEOUT_S)
            os.read(sync_r, 1) if ready else None
        finally:
            os.close(sync_r)
        proc.wait()  # the supervisor forks once more and its first half exits at once
        status = read_json(bundle / "status.json") or {}
        if status.get("status") != "created":
            error = status.get("error") or (bundle / "supervisor.log").read_text()[-500:]
            raise RuntimeFailure(error or "the container supervisor did not start",
                                 "CannotStartContainerError")

    def start(self, id: str) -> None:
        st = self.state(id)
        if st is None:
            raise RuntimeFailure(f"Container not found: {id}", "CannotStartContainerError")
        if st.status != "created":
            raise RuntimeFailure(f"container {id} is {st.status}, not created",
                                 "CannotStartContainerError")
        started = self._bundle(id) / "started.json"
        # recorded first: the process may print and exit before ``start`` returns
        write_json_atomic(started, {"started_at": datetime.now(UTC).isoformat()})
        run = self._run("start", id)
        if run.returncode != 0:
            started.unlink(missing_ok=True)
            raise RuntimeFailure(run.stderr.strip() or f"{self.runtime} start failed",
                                 "CannotStartContainerError")

    def kill(self, id: str, signal: str = "SIGTERM") -> None:
        st = self.state(id)
        if st is None or st.status == "exited":
            return
        sig = signal if signal.startswith("SIG") or signal.isdigit() else f"SIG{signal}"
        run = self._run("kill", id, sig)
        if run.returncode != 0 and self._runtime_status(id) not in ("exited", "stopped", None):
            raise RuntimeFailure(run.stderr.strip(), "CannotStopContainerError")

    def _runtime_status(self, id: str) -> str | None:
        run = self._run("state", id)
        if run.returncode != 0:
            return None
        try:
            return json.loads(run.stdout).get("status")
        except ValueError:
            return None

    def state(self, id: str) -> ContainerState | None:
        bundle = self._bundle(id)
        meta = read_json(bundle / "meta.json")
        if meta is None:
            return None
        status = read_json(bundle / "status.json") or {}
        started = (read_json(bundle / "started.json") or {}).get("started_at")
        common = {"pid": status.get("pid"), "created_at": _parse_time(meta.get("created_at")),
                  "started_at": _parse_time(started), "bindings": _bindings(meta["bindings"]),
                  "ipv4": meta.get("ipv4")}
        phase = status.get("status", "creating")
        if phase in ("exited", "failed"):
            return ContainerState("exited", exit_code=status.get("exit_code"),
                                  oom_killed=bool(status.get("oom_killed")),
                                  finished_at=_parse_time(status.get("finished_at")),
                                  error=status.get("error"), **common)
        if not self._supervisor_alive(status) and phase != "creating":
            return self._lost(id, started, common)
        return ContainerState("running" if started else "created", **common)

    def _lost(self, id: str, started: str | None, common: dict) -> ContainerState:
        """The supervisor died (kill -9) before the container ended: ask the runtime. An
        exit nobody could record has no exit code."""
        live = self._runtime_status(id)
        if live == "running":
            return ContainerState("running", **common)
        if live == "created" and not started:
            return ContainerState("created", **common)
        return ContainerState("exited", error="supervisor lost", **common)

    @staticmethod
    def _supervisor_alive(status: dict) -> bool:
        pid = status.get("supervisor_pid")
        return bool(pid) and proc_start_time(pid) == status.get("supervisor_start")

    def exec(self, id: str, argv: list[str], timeout: float) -> ExecResult:
        st = self.state(id)
        if st is None or st.status != "running":
            raise RuntimeFailure(f"container {id} is not running", "CannotInspectContainerError")
        pid_file = self._bundle(id) / f"exec-{uuid.uuid4().hex}.pid"
        proc = subprocess.Popen([self.binary, "--root", str(self.state_root), "exec",
                                 "--pid-file", str(pid_file), id, *argv],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate(timeout=timeout)
            result = ExecResult(proc.returncode, out.decode(errors="replace")[:EXEC_OUTPUT_CHARS])
        except subprocess.TimeoutExpired:
            self._kill_exec(pid_file)
            proc.kill()
            try:  # a child of the check (curl under sh) may still hold the pipe
                out, _ = proc.communicate(timeout=1)
            except subprocess.TimeoutExpired:
                out = b""
                proc.stdout.close()
            result = ExecResult(-1, out.decode(errors="replace")[:EXEC_OUTPUT_CHARS], True)
        finally:
            pid_file.unlink(missing_ok=True)
        return result

    @staticmethod
    def _kill_exec(pid_file: Path) -> None:
        """The exec'd process outlives its runtime client: kill it by the pid recorded."""
        with contextlib.suppress(OSError, ValueError):  # not started yet or already gone
            os.kill(int(pid_file.read_text()), signals.SIGKILL)

    def stats(self, id: str) -> ContainerStats | None:
        meta = read_json(self._bundle(id) / "meta.json")
        if meta is None:
            return None
        cg = meta["cgroup"]
        usage = cgroups.read_int("memory", cg, "memory.usage_in_bytes")
        if usage is None:
            return None
        limit = cgroups.read_int("memory", cg, "memory.limit_in_bytes")
        rx, tx = self._net_bytes((read_json(self._bundle(id) / "status.json") or {}).get("pid"))
        return ContainerStats(
            read_at=datetime.now(UTC),
            cpu_usage_ns=cgroups.read_int("cpuacct", cg, "cpuacct.usage") or 0,
            memory_usage_bytes=usage,
            memory_max_usage_bytes=cgroups.read_int("memory", cg,
                                                    "memory.max_usage_in_bytes") or usage,
            memory_limit_bytes=limit if limit is not None and limit < 2**62 else None,
            pids=cgroups.read_int("pids", cg, "pids.current") or 0, rx_bytes=rx, tx_bytes=tx)

    @staticmethod
    def _net_bytes(pid: int | None) -> tuple[int, int]:
        """rx/tx of the container's network namespace, through its init's /proc view."""
        try:
            lines = Path(f"/proc/{int(pid)}/net/dev").read_text().splitlines()[2:]
        except (OSError, TypeError, ValueError):
            return 0, 0
        rx = tx = 0
        for line in lines:
            ifname, _, counters = line.partition(":")
            fields = counters.split()
            if ifname.strip() != "lo" and len(fields) > 8:
                rx, tx = rx + int(fields[0]), tx + int(fields[8])
        return rx, tx

    def log_path(self, id: str) -> Path:
        return self._bundle(id) / "container.log"

    def remove(self, id: str) -> None:
        bundle = self._bundle(id)
        if not bundle.exists():
            return
        meta = read_json(bundle / "meta.json") or {}
        status = read_json(bundle / "status.json") or {}
        self._run("delete", "-f", id)
        if self._supervisor_alive(status):
            with contextlib.suppress(ProcessLookupError):  # it may just have exited
                os.kill(status["supervisor_pid"], signals.SIGKILL)
        rootfs.release(bundle)
        if meta.get("attachment") and self._network_known(meta["attachment"]):
            self.network.remove(meta["attachment"])
        if meta.get("cgroup"):
            cgroups.remove(meta["cgroup"])
        rootfs.remove_bundle(bundle)

    def list(self) -> list[str]:
        d = self.root / "containers"
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
