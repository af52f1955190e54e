from __future__ import annotations

import pytest

from tests.server import CorralServer


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = CorralServer(tmp_path_factory.mktemp("corral")).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, for tests that restart or kill it."""
    srv = CorralServer(tmp_path / "data")
    yield srv
    srv.stop()


@pytest.fixture
def ecr(server):
    return server.client("ecr")


@pytest.fixture
def repo_name(request):
    """A repository name unique to the test."""
    name = request.node.name.lower()
    return "t/" + "".join(c if c.isalnum() else "-" for c in name).strip("-")[:80]
