from __future__ import annotations

import pytest

from tests import leaks
from tests.server import CorralServer


@pytest.fixture(scope="session", autouse=True)
def no_leaks():
    """The whole run leaves no container, mount, cgroup, namespace or rule behind."""
    before = leaks.snapshot()
    yield
    left = leaks.leaked(before, leaks.snapshot())
    assert not left, f"tests left these behind: {left}"


@pytest.fixture(scope="session")
def server(tmp_path_factory, no_leaks):
    srv = CorralServer(tmp_path_factory.mktemp("corral")).start()
    yield srv
    srv.stop(stop_tasks=True)


@pytest.fixture
def fresh_server(tmp_path, no_leaks):
    """A server of the test's own, for tests that restart or kill it."""
    srv = CorralServer(tmp_path / "data")
    yield srv
    srv.stop(stop_tasks=True)


@pytest.fixture
def ecr(server):
    return server.client("ecr")


@pytest.fixture
def repo_name(request):
    """A repository name unique to the test."""
    name = request.node.name.lower()
    return "t/" + "".join(c if c.isalnum() else "-" for c in name).strip("-")[:80]
