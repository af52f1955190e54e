"""Issue 17 items 8 and 10: advertised endpoints, the local CA, and finding the running server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from corral import server_file, tls
from corral.config import Settings
from corral.ecr.provider import EcrProvider
from corral.ecr.scope import registry_host
from corral.runtime.images import ImageRef, ImageResolver
from tests.server import free_port

ENDPOINTS = [  # (id, settings changes, public_endpoint, repositoryUri host of account 1111…)
    ("default-bind", {}, "http://127.0.0.1:4566", "111111111111.dkr.ecr.us-east-1.localhost:4566"),
    ("typed-127", {"host": "127.0.0.1", "port": 5000}, "http://127.0.0.1:5000",
     "111111111111.dkr.ecr.us-east-1.localhost:5000"),
    ("wildcard-v4", {"host": "0.0.0.0"}, "http://localhost:4566",
     "111111111111.dkr.ecr.us-east-1.localhost:4566"),
    ("wildcard-v6", {"host": "::"}, "http://localhost:4566",
     "111111111111.dkr.ecr.us-east-1.localhost:4566"),
    ("tls-second-port", {"tls": True}, "https://127.0.0.1:4567",
     "111111111111.dkr.ecr.us-east-1.localhost:4567"),
    ("tls-port", {"tls": True, "tls_port": 8443}, "https://127.0.0.1:8443",
     "111111111111.dkr.ecr.us-east-1.localhost:8443"),
    ("ecr-shaped-443", {"tls": True, "tls_port": 443,
                        "registry_host": "000000000000.dkr.ecr.us-east-1.amazonaws.com"},
     "https://000000000000.dkr.ecr.us-east-1.amazonaws.com",
     "111111111111.dkr.ecr.us-east-1.amazonaws.com"),
    ("registry-host-with-port", {"registry_host": "registry.example.test:5443", "tls": True},
     "https://registry.example.test:5443", "111111111111.dkr.ecr.us-east-1.localhost:4567"),
    ("ecr-shaped-with-port", {"tls": True,
                              "registry_host": "000000000000.dkr.ecr.us-east-1.amazonaws.com:8443"},
     "https://000000000000.dkr.ecr.us-east-1.amazonaws.com:8443",
     "111111111111.dkr.ecr.us-east-1.amazonaws.com:8443"),
]


@pytest.mark.parametrize("changes,endpoint,other", [e[1:] for e in ENDPOINTS],
                         ids=[e[0] for e in ENDPOINTS])
def test_repository_uri_uses_the_configured_host(changes, endpoint, other):
    s = Settings().with_(**changes)
    assert s.public_endpoint == endpoint
    provider = EcrProvider(s, blobs=None)
    assert provider.registry_host("000000000000", "us-east-1") == endpoint.split("://")[1]
    assert provider.registry_host("111111111111", "us-east-1") == other


@pytest.mark.parametrize("changes,endpoint,other", [e[1:] for e in ENDPOINTS],
                         ids=[e[0] for e in ENDPOINTS])
def test_image_reference_of_another_account_uses_its_registry_host(changes, endpoint, other):
    """What a Docker daemon pulls is the repositoryUri's host, for every account."""
    s = Settings().with_(**changes)
    resolver = ImageResolver(None, None, None, s)
    for account, host in (("000000000000", endpoint.split("://")[1]), ("111111111111", other)):
        ref = ImageRef(host, account, "us-east-1", "app", "v1", None)
        assert resolver._netloc(ref) == host == registry_host(s, account, "us-east-1")


BAD_SETTINGS = [
    ("tls-port-equals-port", {"tls": True, "port": 5000, "tls_port": 5000}, "must differ"),
    ("registry-host-with-scheme", {"registry_host": "https://x.test"}, "CORRAL_REGISTRY_HOST"),
    ("port-out-of-range", {"tls_port": 70000}, "CORRAL_TLS_PORT"),
    ("registry-host-port-too-big", {"registry_host": "reg.test:99999"}, "1-65535"),
    ("registry-host-port-zero", {"registry_host": "reg.test:0"}, "1-65535"),
    ("ecr-host-of-another-account",
     {"registry_host": "123456789012.dkr.ecr.us-east-1.amazonaws.com"}, "account 123456789012"),
    ("ecr-host-of-another-region",
     {"registry_host": "000000000000.dkr.ecr.eu-west-1.amazonaws.com"},
     "Use 000000000000.dkr.ecr.us-east-1.amazonaws.com"),
    ("localhost-ecr-host-of-another-account",
     {"registry_host": "111111111111.dkr.ecr.us-east-1.localhost"}, "account 111111111111"),
]


@pytest.mark.parametrize("changes,message", [b[1:] for b in BAD_SETTINGS],
                         ids=[b[0] for b in BAD_SETTINGS])
def test_bad_tls_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        Settings().with_(**changes)


def test_ecr_host_of_the_configured_account_and_region_is_accepted():
    s = Settings().with_(account_id="123456789012", region="eu-west-1",
                         registry_host="123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert s.public_netloc == "123456789012.dkr.ecr.eu-west-1.amazonaws.com:4566"


def test_settings_read_tls_env():
    s = Settings.from_env({"CORRAL_TLS": "1", "CORRAL_TLS_PORT": "9443",
                           "CORRAL_REGISTRY_HOST": "Reg.Example.Test"})
    assert (s.tls, s.tls_listen_port, s.public_endpoint) == (
        True, 9443, "https://reg.example.test:9443")


# --- the local CA --------------------------------------------------------------------------


def _sans(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return sorted(tls._san_strings(cert))


def test_tls_files_are_reused_and_reissued_when_names_change(tmp_path):
    names = tls.names_for(Settings(), ["us-east-1", "eu-west-1"])
    assert {"localhost", "127.0.0.1", "*.dkr.ecr.us-east-1.localhost",
            "*.dkr.ecr.eu-west-1.localhost"} <= set(names)
    first = tls.ensure(tmp_path, names)
    ca, cert = first.ca_cert.read_bytes(), first.cert.read_bytes()
    assert oct(first.key.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "tls" / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert tls.ensure(tmp_path, names).cert.read_bytes() == cert  # valid: kept
    more = tls.names_for(Settings().with_(
        registry_host="000000000000.dkr.ecr.us-east-1.amazonaws.com"), ["us-east-1"])
    assert {"api.ecr.us-east-1.amazonaws.com", "*.dkr.ecr.us-east-1.amazonaws.com"} <= set(more)
    again = tls.ensure(tmp_path, more)
    assert again.cert.read_bytes() != cert and _sans(again.cert) == sorted(more)
    assert again.ca_cert.read_bytes() == ca  # the CA users trusted stays


REISSUE = [  # (id, days from now, names differ, CA of another data dir, expected reason)
    ("valid", 0, False, False, None),
    ("near-expiry", 380, False, False, "near expiry"),
    ("names-changed", 0, True, False, "names changed"),
    ("issued-by-another-CA", 0, False, True, "issued by another CA"),
]


@pytest.mark.parametrize("days,differ,other_ca,reason", [r[1:] for r in REISSUE],
                         ids=[r[0] for r in REISSUE])
def test_leaf_reissue_reason(tmp_path, days, differ, other_ca, reason):
    names = ["localhost", "127.0.0.1"]
    files = tls.ensure(tmp_path, names)
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca_file = tls.ensure_ca(tmp_path / "other") if other_ca else files.ca_cert
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    now = datetime.now(UTC) + timedelta(days=days)
    assert tls.reissue_reason(leaf, ca, names + (["x.test"] if differ else []), now) == reason


def test_replaced_ca_gets_a_leaf_it_signed(tmp_path):
    names = ["localhost", "127.0.0.1"]
    old = tls.ensure(tmp_path, names).cert.read_bytes()
    for name in ("ca.crt", "ca.key"):
        (tmp_path / "tls" / name).unlink()
    files = tls.ensure(tmp_path, names)
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert files.cert.read_bytes() != old
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))


HOSTS_ADDRESSES = [  # (id, bind host, what the name resolves to, address, a comment line)
    ("wildcard", "0.0.0.0", None, "127.0.0.1", False),
    ("ip", "10.1.2.3", None, "10.1.2.3", False),
    ("localhost", "localhost", None, "127.0.0.1", False),
    ("resolvable-name", "myhost.lan", "192.0.2.7", "192.0.2.7", False),
    ("unresolvable-name", "nowhere.invalid", None, "127.0.0.1", True),
]


@pytest.mark.parametrize("host,resolved,address,note", [h[1:] for h in HOSTS_ADDRESSES],
                         ids=[h[0] for h in HOSTS_ADDRESSES])
def test_hosts_lines_map_names_to_an_address(monkeypatch, host, resolved, address, note):
    def getaddrinfo(name, *args, **kwargs):
        if resolved is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (resolved, 0))]

    monkeypatch.setattr(tls.socket, "getaddrinfo", getaddrinfo)
    lines = tls.hosts_lines(Settings().with_(host=host))
    comments = [line for line in lines if line.startswith("#")]
    assert bool(comments) == note
    entries = [line.split() for line in lines if not line.startswith("#")]
    assert entries == [[address, "000000000000.dkr.ecr.us-east-1.localhost"]]


def test_tls_names_cover_every_accounts_ecr_shaped_host():
    s = Settings().with_(registry_host="000000000000.dkr.ecr.us-east-1.amazonaws.com")
    names = tls.names_for(s, ["us-east-1", "eu-west-1"])
    assert {"000000000000.dkr.ecr.us-east-1.amazonaws.com", "*.dkr.ecr.us-east-1.amazonaws.com",
            "*.dkr.ecr.eu-west-1.amazonaws.com", "api.ecr.us-east-1.amazonaws.com",
            "*.dkr.ecr.eu-west-1.localhost"} <= set(names)


def test_corral_ca_prints_the_ca_and_how_to_trust_it(tmp_path):
    out = _corral("ca", env={"CORRAL_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    ca = tmp_path / "tls" / "ca.crt"
    assert out.stdout.splitlines()[0] == str(ca) and ca.exists()
    assert "/etc/docker/certs.d/127.0.0.1:4567/ca.crt" in out.stdout
    assert f"AWS_CA_BUNDLE={ca}" in out.stdout and f"SSL_CERT_FILE={ca}" in out.stdout
    assert _corral("ca", "--path", env={"CORRAL_DATA_DIR": str(tmp_path)}).stdout == f"{ca}\n"
    assert not (tmp_path / "tls" / "server.crt").exists()  # the leaf is `up`'s to issue


def test_corral_ca_uses_the_running_servers_host_and_leaves_its_certificate(tmp_path):
    cert = tls.ensure(tmp_path, ["localhost", "reg.example.test"]).cert
    issued = cert.read_bytes()
    server_file.write(tmp_path, server_file.starting(
        os.getpid(), "http://127.0.0.1:5000", public_endpoint="https://reg.example.test:5443",
        tls_endpoint="https://127.0.0.1:5443"))
    out = _corral("ca", env={"CORRAL_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "/etc/docker/certs.d/reg.example.test:5443/ca.crt" in out.stdout
    assert "AWS_ENDPOINT_URL=https://127.0.0.1:5443" in out.stdout
    assert cert.read_bytes() == issued


# --- finding the running server ------------------------------------------------------------


def _corral(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True,
                          text=True, env={**run_env, **env}, timeout=60)


def _server_file(data_dir: Path, timeout: float = 10) -> dict:
    """server.json once ``corral up`` wrote it (just after its health check answers)."""
    deadline = time.monotonic() + timeout
    while not (data_dir / "server.json").exists():
        assert time.monotonic() < deadline, "corral up never wrote server.json"
        time.sleep(0.02)
    return json.loads((data_dir / "server.json").read_text())


def test_status_finds_running_server_port(fresh_server):
    srv = fresh_server.start()
    info = _server_file(srv.data_dir)
    assert info["pid"] == srv.proc.pid and info["endpoint"] == srv.endpoint
    out = _corral("status", "--json", env={"CORRAL_DATA_DIR": str(srv.data_dir)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["endpoint"] == srv.endpoint  # not localhost:4566
    gc = _corral("gc", "--json", env={"CORRAL_DATA_DIR": str(srv.data_dir)})
    assert gc.returncode == 0, gc.stderr
    srv.stop()
    assert not (srv.data_dir / "server.json").exists()  # removed on a clean exit


def test_explicit_endpoint_wins_and_stale_server_file_is_ignored(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    server_file.write(tmp_path, server_file.starting(int(dead.stdout), "http://127.0.0.1:1"))
    assert server_file.read(tmp_path) is None
    assert server_file.find_endpoint(None, tmp_path) == "http://localhost:4566"
    assert server_file.find_endpoint("http://x:1", tmp_path) == "http://x:1"
    server_file.write(tmp_path, server_file.starting(os.getpid(), "http://127.0.0.1:2"))
    assert server_file.find_endpoint(None, tmp_path) == "http://127.0.0.1:2"
    server_file.remove(tmp_path, os.getpid() + 1)  # not ours: kept
    assert (tmp_path / "server.json").exists()


# --- the listeners -------------------------------------------------------------------------


def test_taken_tls_port_fails_with_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _corral("up", "--port", str(free_port()), env={
            "CORRAL_DATA_DIR": str(tmp_path), "CORRAL_TLS": "1", "CORRAL_TLS_PORT": str(port)})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"127.0.0.1:{port} for TLS" in errors[0], out.stderr
    assert "CORRAL_TLS_PORT" in errors[0]
    assert not (tmp_path / "server.json").exists()


TRANSPORT_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
    {"Effect": "Deny", "Action": "ecr:GetAuthorizationToken", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.1/32"}}},
]})


def _allowed(call) -> bool:
    try:
        call()
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"), e
        return False
    return True


@pytest.fixture
def tls_server(fresh_server):
    fresh_server.env.update(CORRAL_TLS="1", CORRAL_TLS_PORT=str(free_port()))
    return fresh_server.start()


def test_secure_transport_is_the_listener_not_a_forwarded_header(tls_server):
    """aws:SecureTransport is true over TLS and false over plain HTTP, and neither
    X-Forwarded-Proto nor X-Forwarded-For (aws:SourceIp) is believed."""
    iam = tls_server.client("iam")
    iam.create_user(UserName="transport")
    iam.put_user_policy(UserName="transport", PolicyName="p", PolicyDocument=TRANSPORT_POLICY)
    key = iam.create_access_key(UserName="transport")["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"],
             "aws_secret_access_key": key["SecretAccessKey"], "region_name": "us-east-1"}
    ca = str(tls_server.data_dir / "tls" / "ca.crt")
    tls_port = int(tls_server.env["CORRAL_TLS_PORT"])

    def client(service: str, endpoint: str, **headers: str):
        c = boto3.client(service, endpoint_url=endpoint, verify=ca, **creds)
        c.meta.events.register("before-send", lambda request, **_: request.headers.update(
            headers))
        return c

    secure = client("ecr", f"https://127.0.0.1:{tls_port}")
    plain = client("ecr", tls_server.endpoint)
    forged = client("ecr", tls_server.endpoint, **{"X-Forwarded-Proto": "https"})
    assert _allowed(secure.describe_repositories)
    assert _allowed(secure.get_authorization_token)
    for c in (plain, forged):
        assert not _allowed(c.describe_repositories)  # SecureTransport is not true
        assert not _allowed(c.get_authorization_token)  # it is "false", not missing
    spoofed = client("iam", tls_server.endpoint, **{"X-Forwarded-For": "192.0.2.1"})
    assert not _allowed(spoofed.list_users)
