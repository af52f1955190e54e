"""Issue 17 item 8: the TLS listener, the advertised registry host, and real Docker clients.

One Corral (``--tls`` on 443, registry host ``000000000000.dkr.ecr.us-east-1.amazonaws.com``)
bound to this machine's non-loopback address, and one private dockerd that runs in its own
mount namespace, where two bind mounts replace

    /etc/hosts     with the lines `corral up` printed (nothing else resolves these names)
    /etc/docker    with an empty dir whose certs.d the test fills

so the host's files are never touched. The docker CLI and the credential helper run in the same
namespace (``nsenter -m``). The address is deliberately not loopback: dockerd treats registries
on loopback as insecure (HTTPS without verification, then HTTP), so only a non-loopback one
proves that `docker login` verifies Corral's certificate and needs no --insecure-registry.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.runtime.dockerd import Dockerd
from tests.server import OTHER_KEY, OTHER_SECRET, CorralServer

REGISTRY = "000000000000.dkr.ecr.us-east-1.amazonaws.com"
OTHER_LOCALHOST = "111111111111.dkr.ecr.us-east-1.localhost"


def _global_ipv4() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout
    found = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    if not found:
        raise RuntimeError("these tests need a non-loopback IPv4 address on this machine")
    return found[0]


def _require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"missing {missing}: apt-get install -y docker.io util-linux "
                           "amazon-ecr-credential-helper (the Makefile's apt target)")


class _BoundServer(CorralServer):
    def __init__(self, data_dir: Path, ip: str, **env: str):
        super().__init__(data_dir, **env)
        self.ip = ip

    @property
    def endpoint(self) -> str:
        return f"http://{self.ip}:{self.port}"


def _port_free(ip: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((ip, port))
        except OSError as e:
            raise RuntimeError(f"{ip}:{port} is taken ({e}); the credential helper only "
                               "talks to port 443") from None


@pytest.fixture(scope="module")
def env(tmp_path_factory, no_leaks):
    _require("dockerd", "docker", "unshare", "nsenter", "docker-credential-ecr-login")
    ip = _global_ipv4()
    _port_free(ip, 443)
    base = tmp_path_factory.mktemp("tls")
    srv = _BoundServer(base / "corral", ip, CORRAL_HOST=ip, CORRAL_TLS="1",
                       CORRAL_TLS_PORT="443", CORRAL_REGISTRY_HOST=REGISTRY).start()
    etc = base / "etc"
    (etc / "docker" / "certs.d").mkdir(parents=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n" + "".join(
        f"{line}\n" for line in _printed_hosts_lines(srv)))
    wrapper = base / "bin" / "dockerd"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec unshare --mount --propagation private sh -c 'mount --bind {etc}/hosts /etc/hosts"
        f" && mount --bind {etc}/docker /etc/docker && exec {shutil.which('dockerd')} \"$@\"'"
        " dockerd \"$@\"\n")
    wrapper.chmod(0o755)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{wrapper.parent}:{path}"
    try:
        daemon = Dockerd(base / "dockerd").start()
    finally:
        os.environ["PATH"] = path
    try:
        yield {"server": srv, "daemon": daemon, "etc": etc, "base": base, "ip": ip}
    finally:
        daemon.stop()
        srv.stop()


def _printed_hosts_lines(srv: CorralServer) -> list[str]:
    text = srv.log.read_text()
    return re.findall(r"^\s+(\d+\.\d+\.\d+\.\d+ \S+)$", text, re.MULTILINE)


def _docker(env: dict, *args: str, stdin: bytes | None = None, config: Path,
            extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """The docker CLI inside dockerd's mount namespace (its /etc/hosts)."""
    pid = env["daemon"].proc.pid
    run_env = {**os.environ, "DOCKER_CONFIG": str(config), "HOME": str(config),
               **(extra_env or {})}
    cmd = ["nsenter", "-t", str(pid), "-m", "--", shutil.which("docker"),
           "-H", f"unix://{env['daemon'].socket}", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, env=run_env, timeout=120)


def _trust(env: dict, host: str) -> None:
    ca = env["server"].data_dir / "tls" / "ca.crt"
    target = env["etc"] / "docker" / "certs.d" / host
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca, target / "ca.crt")


def _password(srv: CorralServer, **keys: str) -> str:
    token = srv.client("ecr", **keys).get_authorization_token()["authorizationData"][0]
    return base64.b64decode(token["authorizationToken"]).decode().partition(":")[2]


def _tiny_image_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"hello from the TLS test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_corral_up_prints_hosts_lines_for_registry_hosts(env):
    lines = _printed_hosts_lines(env["server"])
    ip = env["ip"]
    for name in (REGISTRY, "api.ecr.us-east-1.amazonaws.com", OTHER_LOCALHOST,
                 "111111111111.dkr.ecr.us-east-1.amazonaws.com"):
        assert f"{ip} {name}" in lines


def test_advertised_registry_host_in_repository_uri_and_proxy_endpoint(env):
    ecr = env["server"].client("ecr")
    repo = ecr.create_repository(repositoryName="tls/uri")["repository"]
    try:
        assert repo["repositoryUri"] == f"{REGISTRY}/tls/uri"
        data = ecr.get_authorization_token()["authorizationData"][0]
        assert data["proxyEndpoint"] == f"https://{REGISTRY}"
        other = env["server"].client("ecr", key=OTHER_KEY, secret=OTHER_SECRET)
        assert other.get_authorization_token()["authorizationData"][0]["proxyEndpoint"] == \
            "https://111111111111.dkr.ecr.us-east-1.amazonaws.com"
    finally:
        ecr.delete_repository(repositoryName="tls/uri", force=True)


def test_docker_login_over_tls_without_insecure_registry(env, tmp_path):
    srv = env["server"]
    password = _password(srv)
    login = ("login", "-u", "AWS", "--password-stdin", REGISTRY)
    untrusted = _docker(env, *login, stdin=password.encode(), config=tmp_path)
    assert untrusted.returncode != 0  # a secure registry: an unknown CA is refused
    assert b"certificate" in untrusted.stderr, untrusted.stderr
    _trust(env, REGISTRY)
    done = _docker(env, *login, stdin=password.encode(), config=tmp_path)
    assert done.returncode == 0, done.stderr
    srv.client("ecr").create_repository(repositoryName="tls/pushed")
    try:
        image = f"{REGISTRY}/tls/pushed:v1"
        imported = _docker(env, "import", "-", image, stdin=_tiny_image_tar(), config=tmp_path)
        assert imported.returncode == 0, imported.stderr
        pushed = _docker(env, "push", image, config=tmp_path)
        assert pushed.returncode == 0, pushed.stderr
        tags = srv.client("ecr").list_images(repositoryName="tls/pushed")["imageIds"]
        assert [t.get("imageTag") for t in tags] == ["v1"]
    finally:
        srv.client("ecr").delete_repository(repositoryName="tls/pushed", force=True)
        _docker(env, "rmi", "-f", f"{REGISTRY}/tls/pushed:v1", config=tmp_path)


def test_other_account_localhost_registry_host_resolves_for_docker(env, tmp_path):
    """``<acct>.dkr.ecr.<region>.localhost`` reached by dockerd through the hosts lines
    `corral up` printed, over verified TLS, logged in as that account."""
    _trust(env, OTHER_LOCALHOST)
    password = _password(env["server"], key=OTHER_KEY, secret=OTHER_SECRET)
    done = _docker(env, "login", "-u", "AWS", "--password-stdin", OTHER_LOCALHOST,
                   stdin=password.encode(), config=tmp_path)
    assert done.returncode == 0, done.stderr


def test_ecr_credential_helper_end_to_end(env, tmp_path):
    """amazon-ecr-credential-helper (Debian 0.6.0) gets the token from Corral's ECR API at
    api.ecr.us-east-1.amazonaws.com:443 and docker pushes and pulls with no `docker login`."""
    srv = env["server"]
    _trust(env, REGISTRY)
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {REGISTRY: "ecr-login"}}))
    helper_env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                  "AWS_REGION": "us-east-1", "AWS_ECR_DISABLE_CACHE": "1",
                  "AWS_CA_BUNDLE": str(srv.data_dir / "tls" / "ca.crt")}
    srv.client("ecr").create_repository(repositoryName="tls/helper")
    image = f"{REGISTRY}/tls/helper:v1"
    try:
        imported = _docker(env, "import", "-", image, stdin=_tiny_image_tar(), config=tmp_path)
        assert imported.returncode == 0, imported.stderr
        pushed = _docker(env, "push", image, config=tmp_path, extra_env=helper_env)
        assert pushed.returncode == 0, pushed.stderr
        assert _docker(env, "rmi", image, config=tmp_path).returncode == 0
        pulled = _docker(env, "pull", image, config=tmp_path, extra_env=helper_env)
        assert pulled.returncode == 0, pulled.stderr
    finally:
        srv.client("ecr").delete_repository(repositoryName="tls/helper", force=True)
        _docker(env, "rmi", "-f", image, config=tmp_path)
