"""Fixtures for registry tests: an authenticated /v2/ client, a repository per test, and a
skopeo logged in through the real ``aws ecr get-login-password | skopeo login`` pipeline."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registry.v2 import V2


def get_token(srv) -> str:
    """GetAuthorizationToken's ``authorizationToken``: base64("AWS:<password>")."""
    data = srv.client("ecr").get_authorization_token()["authorizationData"][0]
    return data["authorizationToken"]


def blob_files(data_dir: Path, digest: str) -> list[Path]:
    """Paths of ``digest`` anywhere under the blob store (one copy per digest expected)."""
    hexpart = digest.split(":", 1)[1]
    return [p for p in (data_dir / "registry" / "blobs").rglob("*") if hexpart in p.parts]


@pytest.fixture(scope="session")
def token(server) -> str:
    return get_token(server)


@pytest.fixture
def v2(server, token) -> V2:
    return V2(server.endpoint, token)


@pytest.fixture
def repo(ecr, repo_name) -> str:
    """A repository created for this test (ECR answers NAME_UNKNOWN for pushes elsewhere)."""
    ecr.create_repository(repositoryName=repo_name)
    return repo_name


@dataclass
class Skopeo:
    authfile: Path
    host: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
        return r

    def push(self, src: str, repo: str, tag: str, *extra: str) -> None:
        self.run("copy", "--authfile", str(self.authfile), "--dest-tls-verify=false",
                 "--preserve-digests", *extra, src, f"docker://{self.host}/{repo}:{tag}")

    def pull(self, repo: str, ref: str, dst: str, *extra: str) -> None:
        sep = "@" if ":" in ref else ":"
        self.run("copy", "--authfile", str(self.authfile), "--src-tls-verify=false",
                 "--preserve-digests", *extra, f"docker://{self.host}/{repo}{sep}{ref}", dst)


def skopeo_login(srv, authfile: Path) -> Skopeo:
    """``aws ecr get-login-password`` piped into ``skopeo login --password-stdin``."""
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: apt-get install skopeo (`make test` does it as "
                    "root; see Makefile APT_PACKAGES)")
    password = srv.aws("ecr", "get-login-password")
    assert password.returncode == 0, password.stderr
    host = f"127.0.0.1:{srv.port}"
    sk = Skopeo(authfile, host)
    r = subprocess.run(
        ["skopeo", "login", "--authfile", str(authfile), "--tls-verify=false",
         "--username", "AWS", "--password-stdin", host],
        input=password.stdout, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return sk


@pytest.fixture
def skopeo(server, tmp_path) -> Skopeo:
    return skopeo_login(server, tmp_path / "auth.json")
