"""The docker driver against a private dockerd (tests/runtime/dockerd.py): the shared driver
conformance suite, then what only this driver has — images loaded into dockerd once, labels
that keep two Corral servers on one dockerd apart.

Needs root, docker.io, busybox-static, iproute2 and iptables; a missing one FAILS the test
with what to install.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from corral.runtime import cgroups
from corral.runtime.docker import DockerDriver
from corral.runtime.dockerapi import Engine, image_tag, pause_image
from corral.runtime.driver import (
    ContainerSpec,
    ImageContent,
    PortMapping,
    RuntimeFailure,
    RuntimeUnavailable,
    SandboxSpec,
)
from corral.runtime.network import HostNetwork
from tests.runtime.conformance import DriverConformance
from tests.runtime.conftest import require_root
from tests.runtime.dockerd import Dockerd


@pytest.fixture(scope="session")
def dockerd():
    require_root()
    # A short base path: unix socket paths are limited to 108 bytes.
    daemon = Dockerd(Path(tempfile.mkdtemp(prefix="corral-dockerd-"))).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def test_network(tmp_path_factory):
    """Like conftest's, on a bridge of this module's own: the OCI suite's session may set up
    and tear down its bridge while this one runs (parallel CI jobs, pytest-xdist)."""
    require_root()
    net = HostNetwork(state_dir=tmp_path_factory.mktemp("dockernet"), bridge="crldk0",
                      subnet="10.238.0.0/24")
    yield net
    for name in net.names():
        net.remove(name)
    net.teardown_host()


def _driver(root: Path, dockerd: Dockerd, network: HostNetwork) -> DockerDriver:
    drv = DockerDriver(root, socket=dockerd.socket, network=network)
    drv.check()
    return drv


def _clean(drv: DockerDriver) -> None:
    for cid in drv.list():
        drv.remove(cid)
    for sid in drv.sandboxes():
        drv.remove_sandbox(sid)


@pytest.fixture
def driver(tmp_path, dockerd, test_network):
    drv = _driver(tmp_path / "runtime", dockerd, test_network)
    assert drv.list() == [] and drv.sandboxes() == []
    yield drv
    _clean(drv)


class TestDocker(DriverConformance):
    @pytest.fixture
    def reopen(self, driver, dockerd, test_network):
        return lambda: DockerDriver(driver.root, socket=dockerd.socket, network=test_network)


def _spec(id: str, image: ImageContent, *args: str, **kw) -> ContainerSpec:
    return ContainerSpec(id=id, name=kw.pop("name", "app"), image=image, args=args,
                         network=kw.pop("network", "none"), **kw)


def _wait_exit(drv: DockerDriver, id: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = drv.state(id)
        if st is not None and st.status == "exited":
            return st
        time.sleep(0.05)
    raise AssertionError(f"{id} did not exit within {timeout}s: {drv.state(id)}")


def _load_events(engine: Engine, since: float) -> list[dict]:
    query = urlencode({"since": f"{since:.9f}", "until": f"{time.time():.9f}",
                       "filters": json.dumps({"type": ["image"], "event": ["load"]})})
    conn, resp = engine.open("GET", f"/events?{query}")
    try:
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    finally:
        conn.close()


# -- docker-specific --------------------------------------------------------------------------

def test_check_without_a_daemon_says_what_to_do(tmp_path):
    drv = DockerDriver(tmp_path, socket=str(tmp_path / "missing.sock"))
    with pytest.raises(RuntimeUnavailable, match="CORRAL_DOCKER_HOST"):
        drv.check()


def test_image_is_loaded_once_and_tagged(driver, busybox):
    since = time.time()
    for n in range(3):
        driver.create(_spec(f"once{n}", busybox, "true"))
    assert len(_load_events(driver.engine, since - 1)) <= 1  # 0: an earlier test loaded it
    tags = driver.engine.call("GET", f"/images/{driver.ensure_image(busybox)}/json")["RepoTags"]
    assert image_tag(busybox) in tags
    since = time.time()
    driver.ensure_image(busybox)
    assert _load_events(driver.engine, since - 0.001) == []


def test_containers_carry_name_and_labels(driver, busybox):
    driver.create(_spec("labelled", busybox, "true", labels={"team": "a"}))
    doc = driver.engine.call("GET", "/containers/corral-labelled/json")
    labels = doc["Config"]["Labels"]
    assert labels["corral.id"] == "labelled" and labels["team"] == "a"
    assert labels["corral.root"] == str(driver.root) and labels["corral.role"] == "container"
    assert doc["Name"] == "/corral-labelled"


def test_list_sees_only_this_roots_containers(driver, busybox, tmp_path, dockerd,
                                              test_network):
    other = _driver(tmp_path / "other", dockerd, test_network)
    try:
        driver.create(_spec("mine", busybox, "true"))
        other.create(_spec("theirs", busybox, "true"))
        assert driver.list() == ["mine"] and other.list() == ["theirs"]
        assert driver.state("theirs") is None
    finally:
        _clean(other)


def test_exit_code_times_and_logs(driver, busybox):
    driver.create(_spec("logs", busybox, "sh", "-c", "echo out; echo err >&2; exit 3"))
    assert driver.state("logs").status == "created"
    driver.start("logs")
    st = _wait_exit(driver, "logs")
    assert (st.exit_code, st.oom_killed, st.error) == (3, False, None)
    assert st.started_at is not None and st.finished_at >= st.started_at
    time.sleep(0.2)  # dockerd's log copier may trail the exit by a moment
    lines = driver.log_path("logs").read_text().splitlines()
    assert sorted(line.split(" ", 1)[1] for line in lines) == ["stderr err", "stdout out"]
    assert all(line.split(" ")[0].endswith("Z") for line in lines)
    driver.log_path("logs")  # incremental: a second call appends nothing
    assert driver.log_path("logs").read_text().splitlines() == lines


def test_missing_executable_fails_start(driver, busybox):
    driver.create(_spec("noexec", busybox, "/no/such/binary"))
    with pytest.raises(RuntimeFailure) as failure:
        driver.start("noexec")
    assert failure.value.kind == "CannotStartContainerError"
    st = driver.state("noexec")
    assert st.status == "exited" and "/no/such/binary" in st.error


def test_oom_kill_is_reported(driver, busybox):
    driver.create(_spec("oom", busybox, "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr "
                        "'\\0' x); echo survived", memory_mib=16))
    driver.start("oom")
    st = _wait_exit(driver, "oom", 60)
    assert st.oom_killed and st.exit_code == 137


def test_exec_output_exit_code_and_timeout(driver, busybox):
    driver.create(_spec("exec", busybox, "sleep", "600", init=True))
    driver.start("exec")
    res = driver.exec("exec", ["sh", "-c", "echo healthy; exit 4"], timeout=10)
    assert (res.exit_code, res.output.strip(), res.timed_out) == (4, "healthy", False)
    begun = time.monotonic()
    slow = driver.exec("exec", ["sleep", "30"], timeout=0.5)
    assert slow.timed_out and slow.exit_code == -1 and time.monotonic() - begun < 5
    stats = driver.stats("exec")
    assert stats.pids >= 1 and stats.memory_usage_bytes > 0 and stats.cpu_usage_ns > 0
    driver.kill("exec", "SIGKILL")
    assert _wait_exit(driver, "exec").exit_code == 137
    driver.kill("exec")  # idempotent on an exited container


def test_awsvpc_sandbox_shares_localhost_and_limits(driver, busybox):
    box = driver.create_sandbox(SandboxSpec("task1", network="awsvpc", cpu_units=512,
                                            memory_mib=64, ports=(PortMapping(8080),)))
    assert box.ipv4 and box.netns and driver.sandboxes() == ["task1"]
    assert cgroups.read_int("memory", box.cgroup_parent, "memory.limit_in_bytes") == 64 * 2**20
    assert cgroups.read_int("cpu", box.cgroup_parent, "cpu.cfs_quota_us") == 50_000
    driver.create(_spec("web", busybox, "httpd", "-f", "-p", "8080", "-h", "/etc",
                        network="sandbox", sandbox=box))
    driver.create(_spec("probe", busybox, "sleep", "600", network="sandbox", sandbox=box))
    driver.start("web")
    driver.start("probe")
    deadline, res = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        res = driver.exec("probe", ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/group"], 5)
        if res.exit_code == 0:
            break
        time.sleep(0.1)
    assert res is not None and "nogroup" in res.output
    assert driver.sandbox("task1") == box
    driver.remove_sandbox("task1")  # takes its containers and pause with it
    assert driver.list() == [] and driver.sandboxes() == []
    assert cgroups.leftovers(box.cgroup_parent) == [] and not Path(box.netns).exists()


def test_bridge_port_answers_on_the_host(driver, busybox):
    driver.create(_spec("br", busybox, "httpd", "-f", "-p", "8080", "-h", "/etc",
                        network="bridge", ports=(PortMapping(8080, 0),), hostname="webhost"))
    driver.start("br")
    st = driver.state("br")
    (binding,) = st.bindings
    assert binding.container_port == 8080 and binding.host_port > 0 and st.ipv4
    body, deadline = "", time.monotonic() + 10
    while time.monotonic() < deadline and "nogroup" not in body:
        try:
            url = f"http://127.0.0.1:{binding.host_port}/group"
            body = urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            time.sleep(0.1)
    assert "nogroup" in body
    assert driver.exec("br", ["hostname"], 5).output.strip() == "webhost"
    driver.remove("br")
    assert driver.state("br") is None and "corral-br" not in driver.network.names()


def test_pause_image_is_self_contained(tmp_path):
    if shutil.which("busybox") is None:
        pytest.fail("busybox is missing: apt-get install busybox-static")
    image = pause_image(tmp_path)
    assert image.config["config"]["Cmd"][0] == "/busybox"
    assert pause_image(tmp_path) == image  # stable: loaded into dockerd once
