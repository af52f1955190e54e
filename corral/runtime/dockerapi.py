"""The Docker Engine API (v1.41) as the docker driver speaks it: the transport, the image
archive it loads, and the parsing of what dockerd answers. No driver logic lives here.

    Engine.call ── HTTP/1.1 over dockerd's unix socket, one connection per call
    load_archive ── a ``docker load`` tar, streamed: no registry, no temp file
    container_state / parse_time / demux ── inspect documents and exec streams → driver types

The archive holds the config (its sha256 is the image id dockerd reports: ``image_id``),
``manifest.json`` and the layer blobs exactly as Corral stores them (dockerd decompresses
gzip layers itself). The pause image is one uncompressed layer with the host's static
busybox at ``/busybox``, so a pause never depends on what the task's images contain.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import tarfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from corral.runtime.driver import (
    ContainerState,
    ImageContent,
    PortBinding,
    RuntimeFailure,
    RuntimeUnavailable,
)

API = "/v1.41"
MIN_API = (1, 41)
PAUSE_BINARY = Path("/usr/bin/busybox")
PAUSE_CMD = ["/busybox", "sleep", "2147483647"]
_START = "CannotStartContainerError"


class EngineError(RuntimeFailure):
    """dockerd answered with an error status; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str, kind: str = _START):
        super().__init__(message, kind)
        self.status = status


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: the only transport dockerd needs here."""

    def __init__(self, path: str, timeout: float | None = 60.0):
        super().__init__("localhost", timeout=timeout)
        self.path = path
        self.unix_sock: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        # http.client drops ``self.sock`` once a response will close the connection; exec
        # streams still need it for per-read timeouts.
        self.sock = self.unix_sock = sock


class Engine:
    """A minimal Engine API client: one connection per call, so threads never share one."""

    def __init__(self, path: str):
        self.path = path

    def open(self, method: str, url: str, body: Any = None, *, timeout: float | None = 60.0,
             headers: dict[str, str] | None = None) -> tuple[UnixHTTPConnection,
                                                             http.client.HTTPResponse]:
        conn = UnixHTTPConnection(self.path, timeout)
        hdrs = dict(headers or {})
        chunked = isinstance(body, Iterator)
        if isinstance(body, (dict, list)):
            body, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
        try:
            conn.request(method, API + url, body=body, headers=hdrs, encode_chunked=chunked)
            return conn, conn.getresponse()
        except OSError as e:
            conn.close()
            raise RuntimeUnavailable(f"dockerd is not answering on {self.path}: {e} (start "
                                     "dockerd, or set CORRAL_DOCKER_HOST)") from e

    def call(self, method: str, url: str, body: Any = None, *, ok: Iterable[int] = (200,),
             timeout: float | None = 60.0, kind: str = _START, **headers: str) -> Any:
        """The decoded JSON answer (None when empty); EngineError on any other status."""
        conn, resp = self.open(method, url, body, timeout=timeout, headers=headers)
        try:
            data = resp.read()
        finally:
            conn.close()
        if resp.status not in set(ok):
            raise EngineError(resp.status, _message(data) or resp.reason, kind)
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode(errors="replace")


def _message(data: bytes) -> str:
    try:
        return str(json.loads(data).get("message", ""))
    except (ValueError, AttributeError):
        return data.decode(errors="replace").strip()


def socket_path(host: str) -> str:
    """``unix:///run/docker.sock`` or a plain path (CORRAL_DOCKER_HOST takes either)."""
    return host.removeprefix("unix://")


# -- images ----------------------------------------------------------------------------------

def config_bytes(image: ImageContent) -> bytes:
    """The config document we load; its sha256 is the image id dockerd will report."""
    return json.dumps(image.config, sort_keys=True, separators=(",", ":")).encode()


def image_id(image: ImageContent) -> str:
    """The id dockerd gives the image we load: the sha256 of its config bytes."""
    return "sha256:" + _sha256(config_bytes(image))


def image_tag(image: ImageContent) -> str:
    return f"corral-image:{image.digest.partition(':')[2][:12]}"


def _tar_member(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(tarfile.USTAR_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % 512)


def load_archive(image: ImageContent, tag: str) -> Iterator[bytes]:
    """A ``docker load`` tar, streamed: config, the layer blobs as they are, manifest.json."""
    cfg = config_bytes(image)
    cfg_name = f"{_sha256(cfg)}.json"
    layers = [f"{digest.partition(':')[2]}/layer.tar" for digest, _m, _p in image.layers]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": layers}]).encode()
    for name, data in ((cfg_name, cfg), ("manifest.json", manifest)):
        yield _tar_member(name, len(data)) + data + _padding(len(data))
    for name, (_digest, _media, blob) in zip(layers, image.layers, strict=True):
        size = blob.stat().st_size
        yield _tar_member(name, size)
        with open(blob, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk
        yield _padding(size)
    yield b"\0" * 1024


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pause_image(directory: Path) -> ImageContent:
    """The pause image: one uncompressed layer with the host's static busybox at /busybox."""
    if not PAUSE_BINARY.exists():
        raise RuntimeUnavailable(f"{PAUSE_BINARY} is missing: apt-get install busybox-static "
                                 "(the docker driver builds its pause image from it)")
    directory.mkdir(parents=True, exist_ok=True)
    layer = directory / "layer.tar"
    if not layer.exists():
        tmp = directory / f".layer.{os.getpid()}.tmp"
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            info = tar.gettarinfo(str(PAUSE_BINARY), "busybox")
            info.uid = info.gid = info.mtime = 0
            info.uname = info.gname = ""
            with open(PAUSE_BINARY, "rb") as f:
                tar.addfile(info, f)
        os.replace(tmp, layer)
    diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": PAUSE_CMD},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    digest = "sha256:" + _sha256(json.dumps(config, sort_keys=True).encode())
    return ImageContent(digest, config, ((diff_id, "application/vnd.oci.image.layer.v1.tar",
                                          layer),))


# -- inspect → driver types --------------------------------------------------------------------

def parse_time(value: str | None) -> datetime | None:
    """dockerd's RFC 3339 nano times; the zero time means never."""
    if not value or value.startswith("0001-01-01"):
        return None
    head, dot, frac = value.rstrip("Z").partition(".")
    zone = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, zone = frac.split(sign, 1)[0], sign + frac.split(sign, 1)[1]
    text = head + (dot + frac[:6] if frac else "") + (zone or "+00:00")
    return datetime.fromisoformat(text)


def container_state(doc: dict, bindings: tuple[PortBinding, ...] = (),
                    ipv4: str | None = None) -> ContainerState:
    """Inspect → ContainerState. A start that failed leaves dockerd's status "created" with
    an Error and exit code 127: for the agent that container has ended."""
    st = doc["State"]
    status = st.get("Status", "")
    error = st.get("Error") or None
    if status in ("running", "paused", "restarting"):
        phase = "running"
    elif status == "created" and not error:
        phase = "created"
    else:
        phase = "exited"
    started = parse_time(st.get("StartedAt"))
    finished = parse_time(st.get("FinishedAt")) if phase == "exited" else None
    if started and finished and finished < started:
        finished = started  # dockerd stamps StartedAt after a quick process may have ended
    return ContainerState(
        phase, pid=st.get("Pid") or None,
        exit_code=st.get("ExitCode") if phase == "exited" else None,
        oom_killed=bool(st.get("OOMKilled")), created_at=parse_time(doc.get("Created")),
        started_at=started, finished_at=finished,
        error=error, bindings=bindings, ipv4=ipv4)


def demux(data: bytes) -> str:
    """The multiplexed stdout/stderr stream (8-byte frame headers) as one text."""
    out, i = bytearray(), 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i + 4:i + 8], "big")
        out += data[i + 8:i + 8 + size]
        i += 8 + size
    return out.decode(errors="replace")
