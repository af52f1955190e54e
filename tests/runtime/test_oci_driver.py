"""The OCI driver (crun and runc) against the conformance suite, plus what only it has: the
supervisor, the overlay/copy rootfs, host set-up, log rotation and start-up speed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from corral.runtime import cgroups, rootfs
from corral.runtime.driver import ContainerSpec, RuntimeUnavailable
from corral.runtime.files import read_json
from corral.runtime.oci import OciDriver
from corral.runtime.supervisor import RotatingLog
from tests.runtime.conformance import DriverConformance, stdout_of, wait_exited
from tests.runtime.conftest import require_root


def _make(root: Path, runtime: str, network) -> OciDriver:
    require_root()
    if shutil.which(runtime) is None:
        pytest.fail(f"{runtime} is not installed: apt-get install {runtime} (make apt)")
    if not Path("/usr/bin/tini-static").exists():
        pytest.fail("tini-static is missing: apt-get install tini (make apt)")
    driver = OciDriver(root, runtime, network)
    driver.check()
    assert driver.list() == [] and driver.sandboxes() == []
    return driver


class _Oci(DriverConformance):
    runtime = "crun"

    @pytest.fixture
    def driver(self, tmp_path, test_network):
        return _make(tmp_path / "runtime", self.runtime, test_network)

    @pytest.fixture
    def reopen(self, driver, test_network):
        return lambda: OciDriver(driver.root, self.runtime, test_network)


class TestCrun(_Oci):
    runtime = "crun"


class TestRunc(_Oci):
    runtime = "runc"


# -- OCI-only behaviour ------------------------------------------------------------------------

@pytest.fixture
def oci(tmp_path, test_network):
    return _make(tmp_path / "runtime", "crun", test_network)


@pytest.fixture
def made(oci, leaks):
    ids: list[str] = []
    yield ids
    for id in ids:
        oci.remove(id)


def _spec(image, id: str, *args: str, **kw) -> ContainerSpec:
    return ContainerSpec(id=id, name="app", image=image, args=args, network="host", **kw)


def test_supervisor_killed_container_keeps_running(oci, made, busybox, leaks):
    id = "oci-lost-supervisor"
    made.append(id)
    leaks.add(id)
    oci.create(_spec(busybox, id, "sleep", "60"))
    oci.start(id)
    status = read_json(oci.root / "containers" / id / "status.json")
    os.kill(status["supervisor_pid"], signal.SIGKILL)
    time.sleep(0.2)
    st = oci.state(id)
    assert st.status == "running" and st.exit_code is None
    oci.kill(id, "SIGKILL")
    deadline = time.monotonic() + 10
    while oci.state(id).status != "exited":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    st = oci.state(id)
    assert st.exit_code is None and st.error == "supervisor lost"
    oci.remove(id)
    assert oci.list() == [] and not cgroups.leftovers(f"/corral/{id}")


def test_copy_rootfs_when_overlay_is_refused(tmp_path, oci, busybox):
    """overlayfs needs upper and work dirs on one filesystem: a tmpfs work dir makes the
    kernel refuse the mount, and the rootfs is a flattened copy instead."""
    from corral.runtime.unpack import LayerCache

    layer = LayerCache(tmp_path / "layers").unpack(*busybox.layers[0])
    bundle = tmp_path / "bundle"
    (bundle / "work").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(bundle / "work")], check=True)
    try:
        assert rootfs.prepare([layer], bundle) == "copy"
    finally:
        subprocess.run(["umount", str(bundle / "work")], check=True)
    assert (bundle / "rootfs" / "bin" / "busybox").is_file()
    assert not rootfs.is_mounted(bundle / "rootfs")
    (tmp_path / "b2").mkdir()
    assert rootfs.prepare([layer], tmp_path / "b2") == "overlay"
    assert rootfs.is_mounted(tmp_path / "b2" / "rootfs")
    rootfs.remove_bundle(tmp_path / "b2")
    assert not (tmp_path / "b2").exists()


def test_overlay_rootfs_writes_stay_in_the_container(oci, made, busybox, leaks):
    ids = ["oci-writer", "oci-reader"]
    made.extend(ids)
    leaks.update(ids)
    oci.create(_spec(busybox, ids[0], "sh", "-c", "echo x > /bin/new; cat /bin/new"))
    oci.start(ids[0])
    assert wait_exited(oci, ids[0]).exit_code == 0
    oci.create(_spec(busybox, ids[1], "ls", "/bin/new"))
    oci.start(ids[1])
    assert wait_exited(oci, ids[1]).exit_code != 0
    assert read_json(oci.root / "containers" / ids[0] / "meta.json")["rootfs"] == "overlay"


def test_hugetlb_check_is_idempotent(oci):
    cgroups.ensure_hugetlb()
    cgroups.ensure_hugetlb()
    oci.check()
    assert cgroups.controller_root("hugetlb") is not None
    mounts = Path("/proc/self/mounts").read_text()
    assert sum(1 for line in mounts.splitlines()
               if line.split()[2] == "cgroup" and "hugetlb" in line.split()[3]) == 1


def test_missing_runtime_says_what_to_install(tmp_path):
    with pytest.raises(RuntimeUnavailable) as e:
        OciDriver(tmp_path, "no-such-runtime").check()
    assert "no-such-runtime is not installed: apt-get install" in str(e.value)


def test_log_rotation_keeps_three_files(tmp_path):
    log = RotatingLog(tmp_path / "c.log", max_bytes=1000)
    for i in range(100):
        log.feed("stdout", f"line {i:04d} {'x' * 40}\n".encode())
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["c.log", "c.log.1", "c.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert "line 0099" in (tmp_path / "c.log").read_text()


def test_long_line_is_split_at_16k(tmp_path):
    log = RotatingLog(tmp_path / "c.log")
    log.feed("stderr", b"a" * 40000)
    log.close()
    lines = (tmp_path / "c.log").read_text().splitlines()
    assert [len(line.split(" ", 2)[2]) for line in lines] == [16384, 16384, 40000 - 32768]


def test_create_and_start_are_fast(oci, made, busybox, leaks):
    """Corral's own cost over the runtime: printed for the record, bounded loosely."""
    took = []
    for i in range(5):
        id = f"oci-speed-{i}"
        made.append(id)
        leaks.add(id)
        began = time.perf_counter()
        oci.create(_spec(busybox, id, "echo", "hi"))
        oci.start(id)
        took.append(time.perf_counter() - began)
        wait_exited(oci, id)
        assert stdout_of(oci, id) == ["hi"]
    took.sort()
    print(f"create+start p50 {took[2] * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms")
    assert took[2] < 0.5
