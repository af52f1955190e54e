"""One typed settings object, read from CORRAL_* environment variables.

The CLI overrides fields from its flags; nothing else reads the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

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
        return self

    @property
    def root_keys(self) -> list[tuple[str, str, str]]:
        """(account, access key, secret) of every configured account's root."""
        return [(self.account_id, self.root_access_key, self.root_secret_key),
                *self.extra_accounts]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def public_endpoint(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"
