"""A private dockerd for the Docker driver's tests: started once per session under a temp
dir, reachable only on its own unix socket, and torn down completely at the end.

    with Dockerd(tmp_path) as daemon:      # dockerd --data-root tmp/data --exec-root tmp/exec
        DockerDriver(root, socket=daemon.socket)

It never touches the host's /var/run/docker.sock or /var/lib/docker, and it is configured so
it cannot reach the network or change the host's firewall: ``--bridge none`` (no docker0),
``--iptables=false --ip6tables=false``. ``native.cgroupdriver=cgroupfs`` is what the driver
needs on this cgroup v1 host without systemd (``CgroupParent`` is a plain path). overlay2 is
tried first; ``vfs`` is the fallback where the temp dir cannot hold overlay mounts.

A missing dockerd is a test failure that says what to install, never a skip.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


def require_dockerd() -> str:
    path = shutil.which("dockerd")
    if path is None:
        raise RuntimeError("dockerd is missing: install Debian's docker.io "
                           "(apt-get install -y docker.io; the Makefile's apt target does)")
    return path


def ping(sock: str, timeout: float = 1.0) -> bool:
    """True when a daemon answers GET /_ping on the unix socket ``sock``."""
    conn = http.client.HTTPConnection("localhost", timeout=timeout)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(sock)
        conn.sock = s
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Dockerd:
    def __init__(self, base: Path):
        self.base = base
        self.data, self.exec_root = base / "data", base / "exec"
        self.socket = str(base / "docker.sock")
        self.pidfile, self.logfile = base / "dockerd.pid", base / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.storage_driver = ""

    def __enter__(self) -> Dockerd:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> Dockerd:
        binary = require_dockerd()
        for driver in ("overlay2", "vfs"):
            if self._try_start(binary, driver):
                self.storage_driver = driver
                return self
        log = self.logfile.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"dockerd did not answer /_ping within {START_TIMEOUT_S}s:\n{log}")

    def _try_start(self, binary: str, storage_driver: str) -> bool:
        self.data.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--data-root", str(self.data), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "-H", f"unix://{self.socket}",
                "--bridge", "none", "--iptables=false", "--ip6tables=false",
                "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--storage-driver", storage_driver]
        with open(self.logfile, "ab") as log:
            # Its own session: a Ctrl-C of pytest must not reach dockerd before we stop it.
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. overlay2 unsupported here: the caller tries vfs
            if ping(self.socket):
                return True
            time.sleep(0.1)
        self._kill()
        return False

    def stop(self) -> None:
        """Stop dockerd (SIGTERM stops its containers and its containerd), then remove
        every mount it left under the base dir and the dirs themselves."""
        self._kill()
        self._unmount_leftovers()
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _unmount_leftovers(self) -> None:
        base = str(self.base.resolve())
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f]
        # Deepest first, so a mount under another mount goes before its parent.
        for point in sorted((p for p in points if p.startswith(base + "/")), key=len,
                            reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
