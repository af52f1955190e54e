"""The ``docker`` runtime driver: the Docker Engine API (v1.41) over dockerd's unix socket.

No registry is involved: an image's layer blobs and config, already local in Corral, are
streamed into dockerd as a ``docker load`` archive built on the fly (``dockerapi``, which
also holds the Engine client and the parsing of inspect documents), tagged
``corral-image:<manifest digest hex[:12]>``, and only when the image id (the sha256 of the
config bytes we send) is not in dockerd yet.

Networks are Corral's, not Docker's, so both drivers put tasks on the same bridge::

    sandbox (awsvpc task)   pause container "corral-sandbox-<task>"  NetworkMode none
                              └─ HostNetwork.create("corral-<task>", pid=<pause pid>) wires
                                 its netns; each container: NetworkMode container:<pause>
    bridge container        its own pause "corral-bridge-<id>" + attachment "corral-<id>"
    host / none             NetworkMode host / none

The pause image is one layer holding the host's static busybox at ``/busybox``; a pause runs
``/busybox sleep 2147483647`` under docker-init (``Init``: tini, shipped with docker.io), so
SIGTERM ends it and orphans are reaped. It never depends on what the task's images contain.

Task-level cpu/memory limits live on the cgroup parent ``/corral/<task id>`` (written by
``cgroups.create_parent``, as the OCI driver does); containers set ``CgroupParent`` to it,
which needs dockerd's cgroupfs driver (``--exec-opt native.cgroupdriver=cgroupfs``).

Every object carries ``corral.root=<this driver's root>``, so two Corral servers can share
one dockerd and ``list()`` sees only its own containers; ``corral.role`` tells containers
from pause containers. Sandboxes are recorded in ``<root>/sandboxes/<id>.json``
(``sandboxes``, shared with the OCI driver).

Logs: ``log_path(id)`` converts dockerd's json-file log (``LogPath`` from inspect, readable
because dockerd is local and we are root) into ``<root>/containers/<id>/output.log``
incrementally: the byte offset reached is kept in ``log.json``, each json record (dockerd
already splits lines at 16 KiB) becomes one ``<time> <stream> <text>`` line, and the file
rotates like the supervisor's (``output.log.1``, ``.2``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal as signals
import tarfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from corral.runtime import cgroups
from corral.runtime.dockerapi import (
    MIN_API,
    PAUSE_CMD,
    Engine,
    EngineError,
    container_state,
    demux,
    image_id,
    image_tag,
    load_archive,
    parse_time,
    pause_image,
    socket_path,
)
from corral.runtime.driver import (
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ExecResult,
    ImageContent,
    PortMapping,
    RuntimeFailure,
    RuntimeUnavailable,
    Sandbox,
    SandboxSpec,
)
from corral.runtime.files import read_json, write_json_atomic
from corral.runtime.oci_spec import check_ulimits
from corral.runtime.sandboxes import SandboxRecords
from corral.runtime.supervisor import LOG_FILES, MAX_LOG_BYTES

if TYPE_CHECKING:
    from corral.runtime.network import Attachment, HostNetwork

EXEC_OUTPUT_CHARS = 1024
_SAFE_ID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_CREATE, _START = "CannotCreateContainerError", "CannotStartContainerError"


def _net_bytes(pid: int | None) -> tuple[int, int]:
    """rx/tx of the container's netns (all but lo), read through its init's /proc view."""
    rx = tx = 0
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:] if pid else []
    except OSError:
        return 0, 0
    for line in lines:
        name, _, counters = line.partition(":")
        if name.strip() != "lo":
            fields = counters.split()
            rx, tx = rx + int(fields[0]), tx + int(fields[8])
    return rx, tx


class DockerDriver:
    name = "docker"

    def __init__(self, root: Path, socket: str = "/var/run/docker.sock",
                 network: HostNetwork | None = None):
        self.root = Path(root).resolve()
        self.engine = Engine(socket_path(socket))
        self._network = network
        self._image_lock = threading.Lock()  # one image load at a time
        self._log_lock = threading.Lock()  # one log conversion at a time
        self.label = str(self.root)
        self._sandboxes = SandboxRecords(self.root / "sandboxes", self._name)  # same id rules

    @property
    def network(self) -> HostNetwork:
        if self._network is None:
            from corral.runtime.network import HostNetwork  # lazily: only when a task needs it

            self._network = HostNetwork()
        return self._network

    def check(self) -> None:
        try:
            version = self.engine.call("GET", "/version")
            info = self.engine.call("GET", "/info")
        except EngineError as e:
            raise RuntimeUnavailable(f"dockerd at {self.engine.path} answered {e.status}: {e} "
                                     "(start dockerd, or set CORRAL_DOCKER_HOST)") from e
        have = tuple(int(x) for x in str(version.get("ApiVersion", "0.0")).split(".")[:2])
        if have < MIN_API:
            raise RuntimeUnavailable(f"dockerd speaks Engine API {version.get('ApiVersion')}; "
                                     "the docker driver needs 1.41 or later (Docker 20.10+)")
        if info.get("CgroupDriver") != "cgroupfs":
            raise RuntimeUnavailable("dockerd must use the cgroupfs cgroup driver for task "
                                     "cgroup parents: start it with --exec-opt "
                                     "native.cgroupdriver=cgroupfs")
        for d in ("containers", "sandboxes", "pause"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    # -- names and labels ------------------------------------------------------------------

    @staticmethod
    def _name(id: str) -> str:
        if not id or not set(id) <= _SAFE_ID or id.startswith((".", "-")):
            raise RuntimeFailure(f"invalid container id {id!r}", _CREATE)
        return f"corral-{id}"

    def _labels(self, role: str, id: str, extra: dict[str, str] | None = None) -> dict:
        return {**(extra or {}), "corral.root": self.label, "corral.role": role, "corral.id": id}

    def _inspect(self, name: str) -> dict | None:
        """Inspect of our own container ``name``; None when missing or another root's."""
        try:
            doc = self.engine.call("GET", f"/containers/{quote(name)}/json")
        except EngineError as e:
            if e.status == 404:
                return None
            raise
        labels = doc.get("Config", {}).get("Labels") or {}
        return doc if labels.get("corral.root") == self.label else None

    def _find(self, **labels: str) -> list[dict]:
        wanted = [f"corral.root={self.label}", *(f"{k}={v}" for k, v in labels.items())]
        query = urlencode({"all": "1", "filters": json.dumps({"label": wanted})})
        return self.engine.call("GET", f"/containers/json?{query}")

    def _delete(self, name: str) -> None:
        try:
            self.engine.call("DELETE", f"/containers/{quote(name)}?force=1&v=1",
                             ok=(204,), timeout=120)
        except EngineError as e:
            if e.status not in (404, 409):  # missing, or its removal is already under way
                raise

    # -- images ----------------------------------------------------------------------------

    def ensure_image(self, image: ImageContent) -> str:
        """Load ``image`` into dockerd unless it is there already; the image id."""
        loaded = image_id(image)
        with self._image_lock:
            try:
                self.engine.call("GET", f"/images/{loaded}/json")
                return loaded
            except EngineError as e:
                if e.status != 404:
                    raise
            archive = load_archive(image, image_tag(image))
            answer = self.engine.call("POST", "/images/load?quiet=1", archive, timeout=600,
                                      kind=_CREATE, **{"Content-Type": "application/x-tar"})
        if (isinstance(answer, dict) and answer.get("error")) or \
                (isinstance(answer, str) and '"error"' in answer):  # load errors arrive as 200
            raise RuntimeFailure(f"dockerd could not load {image.digest}: {answer}", _CREATE)
        return loaded

    # -- pause containers and sandboxes --------------------------------------------------------

    def _pause(self, name: str, role: str, owner: str, ports: tuple[PortMapping, ...],
               cgroup_parent: str, hostname: str | None = None) -> Attachment:
        """Start the pause container ``name`` and wire its netns as attachment corral-<owner>."""
        image_id = self.ensure_image(pause_image(self.root / "pause"))
        body = {"Image": image_id, "Cmd": PAUSE_CMD, "Labels": self._labels(role, owner),
                "HostConfig": {"NetworkMode": "none", "Init": True,
                               "CgroupParent": cgroup_parent}}
        if hostname:
            body["Hostname"] = hostname  # a container: joiner takes its hostname from here
        try:
            created = self.engine.call("POST", f"/containers/create?name={name}", body,
                                       ok=(201,), kind=_CREATE)
            self.engine.call("POST", f"/containers/{created['Id']}/start", ok=(204, 304))
            pid = self.engine.call("GET", f"/containers/{created['Id']}/json")["State"]["Pid"]
            return self.network.create(f"corral-{owner}", ports, pid=pid)
        except BaseException:
            self._delete(name)
            raise

    def create_sandbox(self, spec: SandboxSpec) -> Sandbox:
        def attach(spec: SandboxSpec, cgroup: str) -> Attachment:  # the pause's netns
            return self._pause(f"corral-sandbox-{spec.id}", "sandbox", spec.id, spec.ports,
                               cgroup)

        return self._sandboxes.create(spec, attach, self._teardown_sandbox)

    def sandbox(self, id: str) -> Sandbox | None:
        return self._sandboxes.load(id)

    def remove_sandbox(self, id: str) -> None:
        box = self.sandbox(id)
        for row in self._find(**{"corral.sandbox": id}):  # its containers go first
            self.remove(row["Labels"]["corral.id"])
        self._teardown_sandbox(id, box.cgroup_parent if box else f"/corral/{id}")
        self._sandboxes.delete(id)

    def _teardown_sandbox(self, id: str, cg: str) -> None:
        self._delete(f"corral-sandbox-{id}")
        if f"corral-{id}" in self.network.names():
            self.network.remove(f"corral-{id}")
        cgroups.remove(cg)

    def sandboxes(self) -> list[str]:
        recorded = set(self._sandboxes.ids())
        pauses = {row["Labels"]["corral.id"] for row in self._find(**{"corral.role": "sandbox"})}
        return sorted(recorded | pauses)

    # -- containers ----------------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> None:
        name = self._name(spec.id)
        if not spec.args:
            raise RuntimeFailure(f"container {spec.name} has no command", _CREATE)
        check_ulimits(spec.ulimits)
        image_id = self.ensure_image(spec.image)
        parent = spec.sandbox.cgroup_parent if spec.sandbox else "/corral"
        try:
            mode = self._network_mode(spec, parent)
            body = self._create_body(spec, image_id, parent, mode)
            self.engine.call("POST", f"/containers/create?name={name}", body, ok=(201,),
                             kind=_CREATE)
            if spec.user:
                self._check_user(name, spec.user)
        except BaseException as e:
            if not (isinstance(e, EngineError) and e.status == 409):  # not someone else's
                self._remove_bridge(spec.id)
            if isinstance(e, EngineError) and e.status == 409:
                raise RuntimeFailure(f"container {spec.id} already exists", _CREATE) from e
            raise

    def _check_user(self, name: str, user: str) -> None:
        """dockerd resolves a user name only at start; ECS reports it at create, as the OCI
        driver does, so read the container's /etc/passwd and /etc/group now."""
        who, _, group = user.partition(":")
        for wanted, path, what in ((who, "/etc/passwd", "user"), (group, "/etc/group", "group")):
            if not wanted or wanted.isdigit():
                continue
            names = {line.split(":", 1)[0] for line in self._read_file(name, path).splitlines()}
            if wanted not in names:
                self._delete(name)
                raise RuntimeFailure(f"unable to find {what} {wanted}: no matching entries "
                                     f"in {Path(path).name} file", _CREATE)

    def _read_file(self, name: str, path: str) -> str:
        """A small file of the container's rootfs ("" when missing), via the archive API."""
        conn, resp = self.engine.open("GET", f"/containers/{name}/archive?path={quote(path)}")
        try:
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            return ""
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            f = tar.extractfile(member) if member is not None else None
            return f.read().decode(errors="replace") if f is not None else ""

    def _network_mode(self, spec: ContainerSpec, parent: str) -> str:
        if spec.network in ("host", "none"):
            return spec.network
        if spec.network == "sandbox":
            if spec.sandbox is None or spec.sandbox.netns is None:
                raise RuntimeFailure(f"container {spec.name} joins the task network but the "
                                     "task has no awsvpc sandbox", _CREATE)
            return f"container:corral-sandbox-{spec.sandbox.id}"
        pause = f"corral-bridge-{spec.id}"
        self._pause(pause, "bridge", spec.id, spec.ports, parent, spec.hostname)
        return f"container:{pause}"

    def _create_body(self, spec: ContainerSpec, image_id: str, parent: str, mode: str) -> dict:
        memory = spec.memory_mib * 2**20 if spec.memory_mib else 0
        host = {
            "NetworkMode": mode, "CgroupParent": parent, "Init": spec.init,
            "Memory": memory, "MemorySwap": memory or 0,  # no swap beyond the limit
            "MemoryReservation": (spec.memory_reservation_mib or 0) * 2**20,
            "CpuShares": min(max(spec.cpu_shares or 2, 2), 262144),
            "PidsLimit": spec.pids_limit or 0, "ReadonlyRootfs": spec.readonly_rootfs,
            "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits],
            "CapAdd": list(spec.cap_add), "CapDrop": list(spec.cap_drop),
            "Privileged": spec.privileged,
            "Binds": [f"{m.source}:{m.destination}:{'ro' if m.readonly else 'rw'}"
                      for m in spec.mounts],
            "LogConfig": {"Type": "json-file", "Config": {}},
            "RestartPolicy": {"Name": "no"},
        }
        labels = {"corral.name": spec.name, "corral.network": spec.network}
        if spec.sandbox:
            labels["corral.sandbox"] = spec.sandbox.id
        body = {"Image": image_id, "Entrypoint": list(spec.args[:1]), "Cmd": list(spec.args[1:]),
                "Env": [f"{k}={v}" for k, v in spec.env], "WorkingDir": spec.cwd or "/",
                "User": spec.user or "", "StopSignal": spec.stop_signal,
                "Labels": self._labels("container", spec.id, {**spec.labels, **labels}),
                "HostConfig": host}
        if spec.hostname and mode in ("none", "host"):  # container: modes inherit the pause's
            body["Hostname"] = spec.hostname
        return body

    def start(self, id: str) -> None:
        try:
            self.engine.call("POST", f"/containers/{quote(self._name(id))}/start", ok=(204, 304))
        except EngineError as e:
            if e.status == 404:
                raise RuntimeFailure(f"Container not found: {id}", _START) from e
            raise

    def kill(self, id: str, signal: str = "SIGTERM") -> None:
        try:
            self.engine.call("POST", f"/containers/{quote(self._name(id))}/kill?signal={signal}",
                             ok=(204,), kind="CannotStopContainerError")
        except EngineError as e:
            if e.status not in (404, 409):  # gone, or not running: nothing to do
                raise

    def state(self, id: str) -> ContainerState | None:
        doc = self._inspect(self._name(id))
        if doc is None:
            return None
        if doc["Config"]["Labels"].get("corral.network") == "bridge":
            att = self.network.get(f"corral-{id}")
            if att is not None:
                return container_state(doc, tuple(att.bindings), att.ipv4)
        return container_state(doc)

    def exec(self, id: str, argv: list[str], timeout: float) -> ExecResult:
        name = quote(self._name(id))
        try:
            ex = self.engine.call("POST", f"/containers/{name}/exec", {
                "AttachStdout": True, "AttachStderr": True, "Cmd": list(argv)}, ok=(201,),
                kind="CannotInspectContainerError")
        except EngineError as e:
            raise RuntimeFailure(f"container {id} is not running: {e}",
                                 "CannotInspectContainerError") from e
        output, finished = self._exec_stream(ex["Id"], timeout)
        if not finished:
            self._kill_exec(ex["Id"])
            return ExecResult(-1, demux(output)[:EXEC_OUTPUT_CHARS], timed_out=True)
        for _ in range(50):  # the stream ends a moment before dockerd records the exit
            info = self.engine.call("GET", f"/exec/{ex['Id']}/json")
            if not info.get("Running") and info.get("ExitCode") is not None:
                return ExecResult(info["ExitCode"], demux(output)[:EXEC_OUTPUT_CHARS])
            time.sleep(0.02)
        return ExecResult(-1, demux(output)[:EXEC_OUTPUT_CHARS], timed_out=True)

    def _exec_stream(self, exec_id: str, timeout: float) -> tuple[bytes, bool]:
        """Read the exec's output until it ends (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        conn, resp = self.engine.open("POST", f"/exec/{exec_id}/start",
                                      {"Detach": False, "Tty": False}, timeout=timeout)
        data = bytearray()
        try:
            while (left := deadline - time.monotonic()) > 0:
                conn.unix_sock.settimeout(left)
                chunk = resp.read1(65536)
                if not chunk:
                    return bytes(data), True
                data += chunk
        except TimeoutError:
            pass
        finally:
            conn.close()
        return bytes(data), False

    def _kill_exec(self, exec_id: str) -> None:
        """Docker has no call to stop an exec: kill its process (a host pid) ourselves."""
        pid = self.engine.call("GET", f"/exec/{exec_id}/json").get("Pid")
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signals.SIGKILL)

    def stats(self, id: str) -> ContainerStats | None:
        doc = self._inspect(self._name(id))
        if doc is None or not doc["State"].get("Running"):
            return None
        s = self.engine.call("GET", f"/containers/{doc['Id']}/stats?stream=false&one-shot=true")
        mem = s.get("memory_stats") or {}
        nets = s.get("networks") or {}
        if nets:
            rx = sum(n.get("rx_bytes", 0) for n in nets.values())
            tx = sum(n.get("tx_bytes", 0) for n in nets.values())
        else:  # container: network mode: dockerd does not count the pause's namespace
            rx, tx = _net_bytes(doc["State"].get("Pid"))
        return ContainerStats(
            read_at=parse_time(s.get("read")) or datetime.now().astimezone(),
            cpu_usage_ns=int(s.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0)),
            memory_usage_bytes=int(mem.get("usage", 0)),
            memory_max_usage_bytes=int(mem.get("max_usage", 0)),
            memory_limit_bytes=doc["HostConfig"].get("Memory") or None,
            pids=int((s.get("pids_stats") or {}).get("current", 0)), rx_bytes=rx, tx_bytes=tx)

    def remove(self, id: str) -> None:
        self._delete(self._name(id))
        self._remove_bridge(id)
        shutil.rmtree(self.root / "containers" / id, ignore_errors=True)

    def _remove_bridge(self, id: str) -> None:
        self._delete(f"corral-bridge-{id}")
        if f"corral-{id}" in self.network.names():
            self.network.remove(f"corral-{id}")

    def list(self) -> list[str]:
        return sorted(row["Labels"]["corral.id"] for row in self._find(
            **{"corral.role": "container"}))

    # -- logs ----------------------------------------------------------------------------------

    def log_path(self, id: str) -> Path:
        out = self.root / "containers" / id / "output.log"
        doc = self._inspect(self._name(id))
        if doc is None:
            return out
        with self._log_lock:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.touch()  # exists from create on, as the OCI driver's does
            if doc.get("LogPath"):
                _convert_log(Path(doc["LogPath"]), out)
        return out


def _convert_log(source: Path, out: Path) -> None:
    """Append the json-file records written since the last call to ``out`` (rotating)."""
    state_file = out.with_name("log.json")
    offset = (read_json(state_file) or {}).get("offset", 0)
    try:
        with open(source, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return
    complete = data[:data.rfind(b"\n") + 1]  # a record still being written waits its turn
    if not complete:
        return
    lines = []
    for raw in complete.splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        text = rec.get("log", "").removesuffix("\n")
        stamp = _nano(rec.get("time", ""))
        lines.append(f"{stamp} {rec.get('stream', 'stdout')} {text}\n".encode())
    _append_rotating(out, b"".join(lines))
    write_json_atomic(state_file, {"offset": offset + len(complete)})


def _nano(stamp: str) -> str:
    """dockerd's RFC3339Nano drops trailing zeros; Corral's log lines always carry nine."""
    head, _, frac = stamp.removesuffix("Z").partition(".")
    return f"{head}.{frac[:9]:0<9}Z"


def _append_rotating(path: Path, data: bytes) -> None:
    size = path.stat().st_size if path.exists() else 0
    if size and size + len(data) > MAX_LOG_BYTES:
        for i in range(LOG_FILES - 1, 0, -1):
            older = path.with_name(f"{path.name}.{i - 1}") if i > 1 else path
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{i}"))
    with open(path, "ab") as f:
        f.write(data)
