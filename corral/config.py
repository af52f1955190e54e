"""One typed settings object, read from CORRAL_* environment variables.

The CLI overrides fields from its flags; nothing else reads the environment.

Three addresses come out of it, for three audiences:

    host:port                 where the plain-HTTP listener binds (always on)
    tls_listen_port           the optional TLS listener (``tls``), same host, same app
    public_endpoint           what clients are told: repositoryUri, proxyEndpoint, the
                              registry's WWW-Authenticate realm — the advertised registry host
                              (``registry_host``) or the bind host, https when TLS is on
    local_endpoint            plain HTTP on loopback: how this machine's own tools reach it
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from corral.ecr.scope import registry_of_host

DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "corral"


def _parse_accounts(text: str) -> tuple[tuple[str, str, str], ...]:
    out = []
    for item in filter(None, (p.strip() for p in text.split(";"))):
        parts = item.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(
                f"CORRAL_EXTRA_ACCOUNTS entries are ACCOUNT:ACCESS_KEY:SECRET, got {item!r}"
            )
        out.append((parts[0], parts[1], parts[2]))
    return tuple(out)


def _seconds(text: str) -> float:
    """CORRAL_LIFECYCLE_INTERVAL, CORRAL_GC_GRACE, CORRAL_UPLOAD_MAX_AGE: seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"CORRAL_LIFECYCLE_INTERVAL, CORRAL_GC_GRACE and CORRAL_UPLOAD_MAX_AGE "
                         f"are seconds >= 0, not {text!r}")
    return value


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: Path = field(default_factory=_default_data_dir)
    # strict: only known access keys with the right secret; open: any well-formed signature
    # is accepted as the root of the default account (drop-in use by tools with arbitrary keys).
    auth_mode: str = "strict"
    account_id: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    root_access_key: str = "test"
    root_secret_key: str = "test"
    # SQLAlchemy URL; empty means SQLite in the data dir.
    database_url: str = ""
    # More accounts with their root keys: "111111111111:AKID:SECRET;222222222222:…"
    extra_accounts: tuple[tuple[str, str, str], ...] = ()
    endpoint: str = "http://localhost:4566"
    # A push to a repository that does not exist creates it (ECR answers NAME_UNKNOWN).
    create_on_push: bool = False
    log_level: str = "info"
    # Lifecycle policies are applied every this many seconds (AWS: within 24 hours).
    lifecycle_interval: float = 3600.0
    # Garbage collection keeps unreferenced blobs and links younger than this (in-flight
    # pushes), and cancels uploads idle for longer than upload_max_age.
    gc_grace: float = 3600.0
    upload_max_age: float = 86400.0
    # The container runtime tasks run on: crun (default) or runc (OCI, daemonless), or docker
    # (the Docker Engine at docker_host).
    runtime: str = "crun"
    docker_host: str = "unix:///var/run/docker.sock"
    # Seconds between SIGTERM and SIGKILL when a container sets no stopTimeout
    # (the ECS agent's ECS_CONTAINER_STOP_TIMEOUT).
    ecs_stop_timeout: float = 30.0
    # Process limit per container (ECS has none; this keeps a fork bomb off the host); 0: none.
    ecs_pids_limit: int = 4096
    # A second listener speaking TLS (local CA in the data dir); 0: the plain port + 1.
    tls: bool = False
    tls_port: int = 0
    # The registry host clients are told (repositoryUri, proxyEndpoint), with or without a
    # port, e.g. 000000000000.dkr.ecr.us-east-1.amazonaws.com for the ECR credential helper.
    registry_host: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        s = cls()
        pick = {
            "host": ("CORRAL_HOST", str),
            "port": ("CORRAL_PORT", int),
            "data_dir": ("CORRAL_DATA_DIR", lambda v: Path(v).expanduser()),
            "auth_mode": ("CORRAL_AUTH", str.lower),
            "account_id": ("CORRAL_ACCOUNT_ID", str),
            "region": ("CORRAL_REGION", str),
            "root_access_key": ("CORRAL_ACCESS_KEY_ID", str),
            "root_secret_key": ("CORRAL_SECRET_ACCESS_KEY", str),
            "database_url": ("CORRAL_DATABASE_URL", str),
            "endpoint": ("CORRAL_ENDPOINT", str),
            "log_level": ("CORRAL_LOG_LEVEL", str.lower),
            "extra_accounts": ("CORRAL_EXTRA_ACCOUNTS", _parse_accounts),
            "create_on_push": ("CORRAL_CREATE_ON_PUSH", _flag),
            "lifecycle_interval": ("CORRAL_LIFECYCLE_INTERVAL", _seconds),
            "gc_grace": ("CORRAL_GC_GRACE", _seconds),
            "upload_max_age": ("CORRAL_UPLOAD_MAX_AGE", _seconds),
            "runtime": ("CORRAL_RUNTIME", str.lower),
            "docker_host": ("CORRAL_DOCKER_HOST", str),
            "ecs_stop_timeout": ("CORRAL_ECS_STOP_TIMEOUT", _seconds),
            "ecs_pids_limit": ("CORRAL_ECS_PIDS_LIMIT", int),
            "tls": ("CORRAL_TLS", _flag),
            "tls_port": ("CORRAL_TLS_PORT", int),
            "registry_host": ("CORRAL_REGISTRY_HOST", str.lower),
        }
        changes = {name: conv(env[var]) for name, (var, conv) in pick.items() if env.get(var)}
        return replace(s, **changes).validated()

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()

    def validated(self) -> Settings:
        if self.runtime not in ("crun", "runc", "docker"):
            raise ValueError(f"CORRAL_RUNTIME must be crun, runc or docker, not {self.runtime!r}")
        if self.auth_mode not in ("strict", "open"):
            raise ValueError(f"CORRAL_AUTH must be 'strict' or 'open', not {self.auth_mode!r}")
        for account in (self.account_id, *(a for a, _, _ in self.extra_accounts)):
            if not (len(account) == 12 and account.isdigit()):
                raise ValueError(f"account id must be 12 digits, not {account!r}")
        for name, port in (("CORRAL_PORT", self.port), ("CORRAL_TLS_PORT", self.tls_port)):
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be a port number, not {port}")
        if self.tls and self.tls_listen_port == self.port:
            raise ValueError(f"the TLS port must differ from the plain port {self.port}")
        if self.registry_host:
            self._check_registry_host()
        return self

    def _check_registry_host(self) -> None:
        m = _HOST.match(self.registry_host)
        if m is None or (m.group(1) is not None and not 1 <= int(m.group(1)) <= 65535):
            raise ValueError("CORRAL_REGISTRY_HOST is a host name with an optional :port "
                             f"(1-65535), not {self.registry_host!r}")
        named = registry_of_host(self.registry_host)
        if named is not None and named != (self.account_id, self.region):
            _, _, ecr, _, domain = self.registry_host.split(".", 4)
            raise ValueError(
                f"CORRAL_REGISTRY_HOST {self.registry_host!r} names account {named[0]} in "
                f"{named[1]}, but this server's default registry is account {self.account_id} "
                f"in {self.region}: pushes to that host would land in another registry than "
                f"its repositoryUri says. Use {self.account_id}.dkr.{ecr}.{self.region}."
                f"{domain}, or set CORRAL_ACCOUNT_ID and CORRAL_REGION to match")

    @property
    def root_keys(self) -> list[tuple[str, str, str]]:
        """(account, access key, secret) of every configured account's root."""
        return [(self.account_id, self.root_access_key, self.root_secret_key),
                *self.extra_accounts]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def tls_listen_port(self) -> int:
        return self.tls_port or self.port + 1

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def served_port(self) -> int:
        """The port clients are sent to: the TLS listener's when TLS is on."""
        return self.tls_listen_port if self.tls else self.port

    @property
    def advertised_host(self) -> str:
        """The registry host name (no port) clients see: the configured registry host, else
        the host the server was told to listen on — 127.0.0.1 stays 127.0.0.1, so credentials
        saved for the address the user typed apply — with a wildcard bind shown as localhost."""
        if self.registry_host:
            return split_host(self.registry_host)[0]
        return "localhost" if self.host in WILDCARDS else self.host

    @property
    def public_port(self) -> int | None:
        """The port of the registry host clients are told (the one given with the registry
        host, else the served one); None when it is the scheme's default (``…amazonaws.com``
        on 443 looks exactly like ECR)."""
        given = split_host(self.registry_host)[1] if self.registry_host else None
        port = given or self.served_port
        return None if port == _DEFAULT_PORTS[self.scheme] else port

    @property
    def public_netloc(self) -> str:
        """``host[:port]`` of the default registry."""
        host = self.advertised_host
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{self.public_port}" if self.public_port else shown

    @property
    def public_endpoint(self) -> str:
        return f"{self.scheme}://{self.public_netloc}"

    @property
    def local_endpoint(self) -> str:
        """Plain HTTP on loopback (a wildcard bind is reachable there too)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.port}"

    @property
    def local_tls_endpoint(self) -> str:
        return f"https://{self.local_endpoint.removeprefix('http://').rsplit(':', 1)[0]}:" \
               f"{self.tls_listen_port}"


WILDCARDS = ("0.0.0.0", "::", "")  # bind hosts that mean every interface
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
                   r"(?::(\d{1,5}))?$")


def split_host(netloc: str) -> tuple[str, int | None]:
    """``host[:port]`` as (host, port or None)."""
    host, colon, port = netloc.rpartition(":")
    return (host, int(port)) if colon and port.isdigit() else (netloc, None)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
