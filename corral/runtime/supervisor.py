"""The per-container supervisor (Corral's conmon): a small detached process that is the
container's parent, holds its stdout/stderr, and writes down how it ended.

    driver.create ──spawn (new session)──> supervisor ──<runtime> create──> container init
                 <──sync pipe: "created"──      │ (subreaper: init is reparented to us)
    driver.start ──<runtime> start──────────────┼──> init execs the user's process
                                                │ pipes ─> log file (one line per line)
                                                │ waitpid ─> exit code, OOM counters
                                                └─> status.json = exited; the supervisor exits

``status.json`` (written atomically: temp + fsync + rename) is the single record the driver
reads, so Corral can be stopped, restarted or killed -9 at any time without losing an exit
code. The supervisor imports only the stdlib, ``cgroups`` and ``files`` so it starts in a few ms.

Log lines: ``<RFC 3339 UTC, nanoseconds> <stdout|stderr> <text>``; the file rotates at
10 MiB and keeps three files in all (``<path>``, ``<path>.1``, ``<path>.2``), like Docker's
json-file driver with ``max-file=3``. A line longer than 16 KiB is split, as Docker does.

Usage (by the OCI driver only)::

    python -m corral.runtime.supervisor --runtime crun --state-root DIR --bundle DIR \
        --id ID --cgroup /corral/t/c [--parent-cgroup /corral/t] --sync-fd N
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from corral.runtime import cgroups
from corral.runtime.files import write_json_atomic

PR_SET_CHILD_SUBREAPER = 36
MAX_LOG_BYTES = 10 * 1024 * 1024
LOG_FILES = 3
MAX_LINE = 16 * 1024
DRAIN_AFTER_EXIT_S = 1.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def rfc3339_nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: with the pid it names one process, reuse-proof."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


class RotatingLog:
    """Appends timestamped lines; rotates ``path`` → ``path.1`` → … at ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int = MAX_LOG_BYTES, files: int = LOG_FILES):
        self.path, self.max_bytes, self.files = path, max_bytes, files
        self.f = open(path, "ab")  # noqa: SIM115 - held for the container's lifetime
        self.size = self.f.tell()
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._line(stream, line)
        while len(rest) >= MAX_LINE:
            self._line(stream, rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self.partial[stream] = rest

    def close(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self._line(stream, rest)
        self.partial = {"stdout": b"", "stderr": b""}
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()

    def _line(self, stream: str, text: bytes) -> None:
        record = f"{rfc3339_nano(time.time_ns())} {stream} ".encode() + text + b"\n"
        if self.size and self.size + len(record) > self.max_bytes:
            self._rotate()
        self.f.write(record)
        self.f.flush()
        self.size += len(record)

    def _rotate(self) -> None:
        self.f.close()
        for i in range(self.files - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i}"))
        self.f, self.size = open(self.path, "ab"), 0  # noqa: SIM115 - as above


def runtime_error(log: Path, fallback: str) -> str:
    """The last error the OCI runtime logged (``--log-format json``), else ``fallback``."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return fallback
    for line in reversed(lines):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("level") in ("error", "fatal") and doc.get("msg"):
            return str(doc["msg"])
    return fallback


class Supervisor:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.bundle = Path(args.bundle)
        self.status_path = self.bundle / "status.json"
        self.status: dict = {"status": "creating", "supervisor_pid": os.getpid(),
                             "supervisor_start": proc_start_time(os.getpid()),
                             "created_at": now_iso()}

    def save(self, **changes: object) -> None:
        self.status.update(changes)
        write_json_atomic(self.status_path, self.status)

    def run(self) -> int:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = self.create(out_w, err_w)
        os.close(out_w)
        os.close(err_w)
        if pid is None:
            return 1
        code = self.wait(pid, {out_r: "stdout", err_r: "stderr"}, wake_r)
        return 0 if code is not None else 1

    def create(self, out_w: int, err_w: int) -> int | None:
        a = self.args
        runtime_log = self.bundle / "runtime.log"
        pid_file = self.bundle / "container.pid"
        argv = [a.runtime, "--root", a.state_root, "--log", str(runtime_log), "--log-format",
                "json", "create", "--bundle", str(self.bundle), "--pid-file", str(pid_file), a.id]
        self.parent_ooms = cgroups.oom_kills(a.parent_cgroup) if a.parent_cgroup else 0
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w).returncode
        try:
            pid = int(pid_file.read_text().strip()) if rc == 0 else None
        except (OSError, ValueError):
            pid = None
        if pid is None:
            msg = runtime_error(runtime_log, f"{Path(a.runtime).name} create exited with {rc}")
            self.save(status="failed", error=msg, finished_at=now_iso())
        else:
            self.save(status="created", pid=pid)
        self.signal_driver()
        return pid

    def signal_driver(self) -> None:
        if self.args.sync_fd >= 0:
            with contextlib.suppress(OSError):  # the driver went away: status.json says it
                os.write(self.args.sync_fd, b"1")
            os.close(self.args.sync_fd)
            self.args.sync_fd = -1

    def wait(self, pid: int, streams: dict[int, str], wake_r: int) -> int | None:
        log = RotatingLog(self.bundle / "container.log")
        exit_code: int | None = None
        oom = False
        deadline = None
        while streams or exit_code is None:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([*streams, wake_r], [], [], timeout)
            if not ready and deadline is not None:
                break  # output still open after the exit (a leaked fd): stop waiting
            for fd in ready:
                if fd == wake_r:
                    _drain(wake_r)
                    status = _reap(pid)
                    if status is not None and exit_code is None:
                        exit_code, oom = self.exited(status)
                        deadline = time.monotonic() + DRAIN_AFTER_EXIT_S
                    continue
                data = os.read(fd, 65536)
                if data:
                    log.feed(streams[fd], data)
                else:
                    os.close(fd)
                    del streams[fd]
        log.close()
        self.save(status="exited", exit_code=exit_code, oom_killed=oom, finished_at=now_iso())
        return exit_code

    def exited(self, status: int) -> tuple[int, bool]:
        """Exit code as Docker reports it (128+n for signal n) and whether the kernel's OOM
        killer did it: read now, before the driver's remove deletes the cgroup."""
        code = os.waitstatus_to_exitcode(status)
        killed = code < 0
        code = 128 - code if killed else code
        oom = cgroups.oom_kills(self.args.cgroup) > 0
        if not oom and killed and code == 128 + signal.SIGKILL and self.args.parent_cgroup:
            # the task-level limit: the kill is counted on the parent, not on this container
            oom = cgroups.oom_kills(self.args.parent_cgroup) > self.parent_ooms
        return code, oom


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _reap(pid: int) -> int | None:
    """Reap every exited child (runtime helpers reparented to us too); ``pid``'s status."""
    found = None
    while True:
        try:
            child, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if child == 0:
            return found
        if child == pid:
            found = status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral.runtime.supervisor")
    p.add_argument("--runtime", required=True)
    p.add_argument("--state-root", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--cgroup", required=True)
    p.add_argument("--parent-cgroup", default="")
    p.add_argument("--sync-fd", type=int, default=-1)
    args = p.parse_args(argv)
    if os.fork() > 0:
        os._exit(0)  # the driver reaps this half at once; the other half is nobody's zombie
    return Supervisor(args).run()


if __name__ == "__main__":
    sys.exit(main())
