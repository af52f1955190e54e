"""Issue 17 items 8 and 10: advertised endpoints, the local CA, and finding the running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from corral import server_file, tls
from corral.config import Settings
from corral.ecr.provider import EcrProvider

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
]


@pytest.mark.parametrize("changes,endpoint,other", [e[1:] for e in ENDPOINTS],
                         ids=[e[0] for e in ENDPOINTS])
def test_repository_uri_uses_the_configured_host(changes, endpoint, other):
    s = Settings().with_(**changes)
    assert s.public_endpoint == endpoint
    provider = EcrProvider(s, blobs=None)
    assert provider.registry_host("000000000000", "us-east-1") == endpoint.split("://")[1]
    assert provider.registry_host("111111111111", "us-east-1") == other


BAD_SETTINGS = [
    ("tls-port-equals-port", {"tls": True, "port": 5000, "tls_port": 5000}, "must differ"),
    ("registry-host-with-scheme", {"registry_host": "https://x.test"}, "CORRAL_REGISTRY_HOST"),
    ("port-out-of-range", {"tls_port": 70000}, "CORRAL_TLS_PORT"),
]


@pytest.mark.parametrize("changes,message", [b[1:] for b in BAD_SETTINGS],
                         ids=[b[0] for b in BAD_SETTINGS])
def test_bad_tls_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        Settings().with_(**changes)


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
    assert tls.ensure(tmp_path, names).cert.read_bytes() == cert  # valid: kept
    more = tls.names_for(Settings().with_(
        registry_host="000000000000.dkr.ecr.us-east-1.amazonaws.com"), ["us-east-1"])
    assert {"api.ecr.us-east-1.amazonaws.com", "*.dkr.ecr.us-east-1.amazonaws.com"} <= set(more)
    again = tls.ensure(tmp_path, more)
    assert again.cert.read_bytes() != cert and _sans(again.cert) == sorted(more)
    assert again.ca_cert.read_bytes() == ca  # the CA users trusted stays


REISSUE = [  # (id, days from now, names differ, expected reason)
    ("valid", 0, False, None),
    ("near-expiry", 380, False, "near expiry"),
    ("names-changed", 0, True, "names changed"),
]


@pytest.mark.parametrize("days,differ,reason", [r[1:] for r in REISSUE],
                         ids=[r[0] for r in REISSUE])
def test_leaf_reissue_reason(tmp_path, days, differ, reason):
    names = ["localhost", "127.0.0.1"]
    files = tls.ensure(tmp_path, names)
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    now = datetime.now(UTC) + timedelta(days=days)
    assert tls.reissue_reason(leaf, ca, names + (["x.test"] if differ else []), now) == reason


def test_corral_ca_prints_the_ca_and_how_to_trust_it(tmp_path):
    out = _corral("ca", env={"CORRAL_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    ca = tmp_path / "tls" / "ca.crt"
    assert out.stdout.splitlines()[0] == str(ca) and ca.exists()
    assert "/etc/docker/certs.d/127.0.0.1:4567/ca.crt" in out.stdout
    assert f"AWS_CA_BUNDLE={ca}" in out.stdout and f"SSL_CERT_FILE={ca}" in out.stdout
    assert _corral("ca", "--path", env={"CORRAL_DATA_DIR": str(tmp_path)}).stdout == f"{ca}\n"


# --- finding the running server ------------------------------------------------------------


def _corral(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True,
                          text=True, env={**run_env, **env}, timeout=60)


def test_status_finds_running_server_port(fresh_server):
    srv = fresh_server.start()
    info = json.loads((srv.data_dir / "server.json").read_text())
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
