"""Fixtures for runtime tests: the busybox image as local content, a test bridge, and a leak
checker that runs after every test module.

Prerequisites (root, busybox-static, crun/runc, tini) are checked where they are used and
fail the test with what to install: never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.runtime.driver import ImageContent
from tests.runtime import imagebuild

INDEX_HTML = b"hello from corral\n"
# A bridge of this session's own (not corral0, which a running Corral keeps): sessions that
# run side by side each tear theirs down at the end without pulling the other's away.
_N = os.getpid() % 250
TEST_BRIDGE = (f"crlrt{_N}", f"10.237.{_N}.0/24")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("runtime tests need root (containers, mounts, cgroups, namespaces): "
                    "run them as root, as CI does")


@pytest.fixture(scope="session")
def busybox(tmp_path_factory) -> ImageContent:
    """busybox-static with /www/index.html, as a local blob: no registry involved."""
    try:
        layer = imagebuild.busybox_layer(extra={"/www/index.html": INDEX_HTML})
    except RuntimeError as e:
        pytest.fail(str(e))
    blob = tmp_path_factory.mktemp("busybox-image") / "layer.tar.gz"
    blob.write_bytes(layer.gz)
    cfg = imagebuild.config(cmd=["sh"])
    cfg["rootfs"]["diff_ids"] = [layer.diff_id]
    return ImageContent(digest=imagebuild.sha256(layer.gz), config=cfg,
                        layers=((layer.digest, imagebuild.OCI_LAYER, blob),))


@pytest.fixture(scope="session")
def test_network(tmp_path_factory):
    """A HostNetwork on a bridge of the tests' own, torn down at the end of the session."""
    require_root()
    from corral.runtime.network import HostNetwork

    net = HostNetwork(state_dir=tmp_path_factory.mktemp("net"), bridge=TEST_BRIDGE[0],
                      subnet=TEST_BRIDGE[1])
    yield net
    for name in net.names():
        net.remove(name)
    net.teardown_host()


@pytest.fixture(scope="session")
def leaks_registry() -> set[str]:
    return set()


@pytest.fixture
def leaks(leaks_registry) -> set[str]:
    """Add the ids (containers, sandboxes) a test makes; the module's leak check looks for
    anything on the host still named after them."""
    return leaks_registry


def _mounts_under(root: Path) -> list[str]:
    base = os.path.realpath(root)
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(base + os.sep)]


def _leftovers(ids: set[str]) -> list[str]:
    found = []
    netns = Path("/run/netns")
    if netns.is_dir():
        found += [str(p) for p in netns.iterdir()
                  if p.name.startswith("corral-") and p.name[len("corral-"):] in ids]
    for root in Path("/sys/fs/cgroup").glob("*/corral"):
        found += [str(p) for p in root.rglob("*") if p.is_dir() and p.name in ids]
    return found


@pytest.fixture(scope="module", autouse=True)
def leak_check(request, tmp_path_factory, leaks_registry):
    """After each module: no new mounts under the test roots (containers of other modules'
    servers may still run), no netns and no cgroups named after anything the tests made."""
    before = set(_mounts_under(tmp_path_factory.getbasetemp()))
    yield
    problems = [m for m in _mounts_under(tmp_path_factory.getbasetemp()) if m not in before]
    problems += _leftovers(leaks_registry)
    assert not problems, f"left behind by {request.module.__name__}: {problems}"
