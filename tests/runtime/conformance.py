"""The runtime driver conformance suite: what every ``RuntimeDriver`` must do, observably.

A driver's test module subclasses :class:`DriverConformance` and provides the fixtures

- ``driver``: a checked, clean driver (``list()`` and ``sandboxes()`` empty);
- ``reopen``: a callable returning a *new* driver object over the same state, as Corral
  builds after a restart (the suite drops the old object first);

``busybox`` (an ``ImageContent`` of the busybox-static image, no registry involved) and
``leaks`` (the ids the leak checker watches) come from ``tests/runtime/conftest.py``.

The suite only uses the Protocol, the host's /proc, /run/netns and /sys/fs/cgroup, and the
container's own output: no driver files are read, so Docker and OCI run the same tests.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.runtime.driver import (
    ContainerSpec,
    ContainerState,
    ImageContent,
    Mount,
    PortMapping,
    RuntimeDriver,
    RuntimeFailure,
    SandboxSpec,
    Ulimit,
)

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (.*)$")
WWW = "hello from corral\n"  # /www/index.html of the busybox image (conftest)


def wait_exited(driver: RuntimeDriver, id: str, timeout: float = 20.0) -> ContainerState:
    deadline = time.monotonic() + timeout
    while True:
        st = driver.state(id)
        assert st is not None, f"{id} vanished"
        if st.status == "exited":
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"{id} did not exit within {timeout}s: {st}")
        time.sleep(0.02)


def read_log(driver: RuntimeDriver, id: str) -> list[tuple[str, str]]:
    """(stream, text) of every line, oldest rotated part first."""
    path = driver.log_path(id)
    parts = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    out = []
    for part in [*parts, path]:
        for line in part.read_text().splitlines():
            m = LINE.match(line)
            assert m, f"bad log line {line!r}"
            out.append((m[1], m[2]))
    return out


def stdout_of(driver: RuntimeDriver, id: str) -> list[str]:
    return [text for stream, text in read_log(driver, id) if stream == "stdout"]


class Containers:
    """Makes containers and sandboxes for one test and removes them all afterwards."""

    def __init__(self, driver: RuntimeDriver, image: ImageContent, leaks: set[str]):
        self.driver, self.image, self.leaks = driver, image, leaks
        self.ids: list[str] = []
        self.sandbox_ids: list[str] = []

    def spec(self, *args: str, **kw) -> ContainerSpec:
        id = kw.pop("id", None) or f"ct{uuid.uuid4().hex[:16]}"
        self.ids.append(id)
        self.leaks.add(id)
        kw.setdefault("network", "host")  # fastest; network tests say what they need
        return ContainerSpec(id=id, name=kw.pop("name", "app"), image=self.image,
                             args=args, **kw)

    def start(self, *args: str, **kw) -> str:
        spec = self.spec(*args, **kw)
        self.driver.create(spec)
        self.driver.start(spec.id)
        return spec.id

    def run(self, *args: str, **kw) -> tuple[str, ContainerState]:
        id = self.start(*args, **kw)
        return id, wait_exited(self.driver, id)

    def sandbox(self, **kw):
        id = kw.pop("id", None) or f"tk{uuid.uuid4().hex[:16]}"
        self.sandbox_ids.append(id)
        self.leaks.add(id)
        return self.driver.create_sandbox(SandboxSpec(id=id, **kw))

    def close(self) -> None:
        for id in self.ids:
            self.driver.remove(id)
        for id in self.sandbox_ids:
            self.driver.remove_sandbox(id)
        assert not set(self.driver.list()) & set(self.ids)
        assert not set(self.driver.sandboxes()) & set(self.sandbox_ids)


def host_leftovers(id: str) -> list[str]:
    """Anything on the host still naming ``id``: mounts, netns, cgroup directories."""
    found = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
             if id in line.split()[1]]
    netns = Path("/run/netns")
    found += [str(p) for p in netns.glob(f"*{id}*")] if netns.is_dir() else []
    found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/corral/**/{id}")]
    return found


class DriverConformance:
    @pytest.fixture
    def reopen(self) -> Callable[[], RuntimeDriver]:
        pytest.fail("the driver's test module must provide a `reopen` fixture: a new driver "
                    "object over the same state, as after a Corral restart")

    @pytest.fixture
    def ct(self, driver, busybox, leaks) -> Iterator[Containers]:
        made = Containers(driver, busybox, leaks)
        yield made
        made.close()

    # -- exit codes --------------------------------------------------------------------------

    @pytest.mark.parametrize("code", [0, 3], ids=["exit-0", "exit-3"])
    def test_exit_code_recorded(self, ct, code):
        id, st = ct.run("sh", "-c", f"exit {code}")
        assert st.exit_code == code and not st.oom_killed
        assert st.created_at <= st.started_at <= st.finished_at

    def test_state_before_start_is_created(self, ct, driver):
        spec = ct.spec("true")
        driver.create(spec)
        assert driver.state(spec.id).status == "created"
        assert driver.state("no-such-container") is None
        assert spec.id in driver.list()

    def test_missing_executable_fails_to_start(self, ct, driver):
        with pytest.raises(RuntimeFailure) as e:
            spec = ct.spec("/no/such/binary")
            driver.create(spec)
            driver.start(spec.id)
        assert e.value.kind == "CannotStartContainerError"
        assert "no/such/binary" in str(e.value)

    def test_sigkill_gives_137(self, ct, driver):
        id = ct.start("sleep", "60")
        driver.kill(id, "SIGKILL")
        assert wait_exited(driver, id).exit_code == 137
        driver.kill(id, "SIGKILL")  # already exited: no error

    def test_sigterm_through_init_gives_143(self, ct, driver):
        """Docker's --init (tini) forwards SIGTERM; the child dies of it; 128 + 15."""
        id = ct.start("sleep", "60", init=True)
        time.sleep(0.2)
        driver.kill(id, "SIGTERM")
        assert wait_exited(driver, id).exit_code == 143

    def test_sigterm_trapped_by_the_process(self, ct, driver):
        id = ct.start("sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; "
                                  "while true; do sleep 0.05; done")
        _wait_for_line(driver, id, "ready")
        driver.kill(id, "SIGTERM")
        assert wait_exited(driver, id).exit_code == 7
        assert "got TERM" in stdout_of(driver, id)

    # -- output ------------------------------------------------------------------------------

    def test_stdout_and_stderr_lines(self, ct, driver):
        """Lines keep their order within each stream, the last one even without a newline.
        Order *across* the two streams is not part of the contract: dockerd copies stdout
        and stderr in two goroutines and stamps a line when its copier reads it."""
        id, _ = ct.run("sh", "-c", "echo one; echo two >&2; printf 'no newline'")
        lines = read_log(driver, id)
        assert sorted(lines) == [("stderr", "two"), ("stdout", "no newline"), ("stdout", "one")]
        assert [t for s, t in lines if s == "stdout"] == ["one", "no newline"]
        assert [t for s, t in lines if s == "stderr"] == ["two"]

    # -- process settings --------------------------------------------------------------------

    def test_env_cwd_and_named_user(self, ct, driver):
        id, st = ct.run("sh", "-c", "id; pwd; env", user="app", cwd="/home/app",
                        env=(("GREETING", "hello world"),))
        out = stdout_of(driver, id)
        assert st.exit_code == 0
        assert out[0].startswith("uid=1000(app) gid=1000(app)")
        assert out[1] == "/home/app"
        assert "GREETING=hello world" in out

    def test_numeric_user_and_group(self, ct, driver):
        id, _ = ct.run("sh", "-c", "id -u; id -g", user="1234:4321")
        assert stdout_of(driver, id) == ["1234", "4321"]

    def test_unknown_user_is_refused(self, ct, driver):
        spec = ct.spec("true", user="nobody-here")
        with pytest.raises(RuntimeFailure) as e:
            driver.create(spec)
        assert e.value.kind == "CannotCreateContainerError"
        assert "unable to find user nobody-here" in str(e.value)
        assert driver.state(spec.id) is None and not host_leftovers(spec.id)

    def test_missing_working_directory_is_created(self, ct, driver):
        id, _ = ct.run("pwd", cwd="/srv/app")
        assert stdout_of(driver, id) == ["/srv/app"]

    # -- limits ------------------------------------------------------------------------------

    def test_memory_limit_oom_kills(self, ct, driver):
        id, st = ct.run("sh", "-c", "head -c 200m /dev/zero | tail", memory_mib=32)
        assert st.oom_killed, st

    def test_task_memory_limit_oom_kills(self, ct, driver):
        box = ct.sandbox(memory_mib=32)
        id, st = ct.run("sh", "-c", "head -c 200m /dev/zero | tail", sandbox=box)
        assert st.oom_killed, st

    def test_pids_limit(self, ct, driver):
        id, st = ct.run("sh", "-c", "for i in $(seq 20); do sleep 1 & done; wait",
                        pids_limit=8)
        assert any("fork" in text for _s, text in read_log(driver, id))

    def test_ulimit_nofile(self, ct, driver):
        id, _ = ct.run("sh", "-c", "ulimit -n; ulimit -Hn",
                       ulimits=(Ulimit("nofile", 1000, 2000),))
        assert stdout_of(driver, id) == ["1000", "2000"]

    def test_ulimit_beyond_host_hard_limit_is_refused(self, ct, driver):
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        spec = ct.spec("true", ulimits=(Ulimit("nofile", 1024, hard + 1),))
        with pytest.raises(RuntimeFailure) as e:
            driver.create(spec)
        assert e.value.kind == "CannotCreateContainerError" and "nofile" in str(e.value)

    def test_readonly_rootfs(self, ct, driver):
        id, st = ct.run("sh", "-c", "touch /x", readonly_rootfs=True)
        assert st.exit_code != 0
        assert any("Read-only file system" in t for _s, t in read_log(driver, id))

    def test_capability_drop(self, ct, driver):
        id, st = ct.run("chown", "1:1", "/tmp", cap_drop=("CHOWN",))
        assert st.exit_code != 0
        id, st = ct.run("chown", "1:1", "/tmp")
        assert st.exit_code == 0

    # -- mounts (sidecar pattern) ------------------------------------------------------------

    def test_mount_shared_between_containers(self, ct, driver, tmp_path):
        vol = Mount(source=tmp_path, destination="/data")
        app, st = ct.run("sh", "-c", "echo from-app > /data/msg", mounts=(vol,))
        assert st.exit_code == 0
        side, _ = ct.run("cat", "/data/msg", mounts=(Mount(tmp_path, "/data", readonly=True),))
        assert stdout_of(driver, side) == ["from-app"]
        _, st = ct.run("touch", "/data/x", mounts=(Mount(tmp_path, "/data", readonly=True),))
        assert st.exit_code != 0

    # -- exec --------------------------------------------------------------------------------

    def test_exec_output_and_exit_code(self, ct, driver):
        id = ct.start("sleep", "60")
        res = driver.exec(id, ["sh", "-c", "echo healthy; exit 4"], timeout=10)
        assert (res.exit_code, res.output, res.timed_out) == (4, "healthy\n", False)
        res = driver.exec(id, ["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a"], timeout=10)
        assert res.output == "a" * 1024

    def test_exec_times_out(self, ct, driver):
        id = ct.start("sleep", "60")
        began = time.monotonic()
        res = driver.exec(id, ["sleep", "30"], timeout=0.5)
        assert res.timed_out and res.exit_code == -1
        assert time.monotonic() - began < 5

    # -- networking --------------------------------------------------------------------------

    def test_network_none_has_only_loopback(self, ct, driver):
        id, _ = ct.run("sh", "-c", "ls /sys/class/net", network="none")
        assert stdout_of(driver, id) == ["lo"]

    def test_awsvpc_containers_share_localhost(self, ct, driver):
        box = ct.sandbox(network="awsvpc")
        assert box.netns and box.ipv4
        ct.start("httpd", "-f", "-p", "8080", "-h", "/www", sandbox=box, network="sandbox")
        id, st = ct.run("sh", "-c", "for i in $(seq 100); do wget -q -O - "
                        "http://127.0.0.1:8080/ && exit 0; sleep 0.05; done; exit 1",
                        sandbox=box, network="sandbox", name="client")
        assert st.exit_code == 0 and stdout_of(driver, id) == [WWW.strip()]

    def test_bridge_dynamic_port_answers_on_the_host(self, ct, driver):
        id = ct.start("httpd", "-f", "-p", "8080", "-h", "/www", network="bridge",
                      ports=(PortMapping(8080),))
        st = driver.state(id)
        assert st.ipv4 and len(st.bindings) == 1
        b = st.bindings[0]
        assert b.container_port == 8080 and b.host_port > 0
        assert _get(f"http://127.0.0.1:{b.host_port}/") == WWW

    # -- stats, removal, restart -------------------------------------------------------------

    def test_stats(self, ct, driver):
        id = ct.start("sleep", "60", memory_mib=64)
        stats = driver.stats(id)
        assert stats.memory_usage_bytes > 0
        assert stats.memory_limit_bytes == 64 * 2**20
        assert stats.pids >= 1
        assert driver.stats("no-such-container") is None

    def test_remove_leaves_nothing(self, ct, driver, tmp_path):
        box = ct.sandbox(network="awsvpc", memory_mib=64)
        running = ct.start("sleep", "60", sandbox=box, network="sandbox")
        bridged = ct.start("sleep", "60", network="bridge", ports=(PortMapping(80),))
        created = ct.spec("true")
        driver.create(created)
        for id in (running, bridged, created.id):
            driver.remove(id)
            driver.remove(id)  # idempotent
            assert driver.state(id) is None and id not in driver.list()
            assert not host_leftovers(id), host_leftovers(id)
        driver.remove_sandbox(box.id)
        driver.remove_sandbox(box.id)
        assert driver.sandbox(box.id) is None and box.id not in driver.sandboxes()
        assert not host_leftovers(box.id), host_leftovers(box.id)

    def test_state_survives_a_new_driver_object(self, ct, driver, reopen):
        box = ct.sandbox(network="awsvpc")
        running = ct.start("sleep", "60", sandbox=box, network="sandbox")
        done, _ = ct.run("sh", "-c", "exit 9")
        before = {id: driver.state(id) for id in (running, done)}
        again = reopen()
        assert {id: again.state(id) for id in (running, done)} == before
        assert again.sandbox(box.id) == box
        assert {running, done} <= set(again.list()) and box.id in again.sandboxes()

    def test_exit_recorded_while_no_driver_exists(self, ct, driver, reopen):
        id = ct.start("sh", "-c", "sleep 0.5; exit 5")
        del driver  # Corral is down: from here on only what the driver left running counts
        time.sleep(1.5)
        st = reopen().state(id)
        assert st.status == "exited" and st.exit_code == 5


def _wait_for_line(driver: RuntimeDriver, id: str, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in stdout_of(driver, id):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {id}'s log"
        time.sleep(0.02)


def _get(url: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
