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
    endpoint: str = "http://localhost:4566"
    log_level: str = "info"

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
        }
        changes = {name: conv(env[var]) for name, (var, conv) in pick.items() if env.get(var)}
        return replace(s, **changes).validated()

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()

    def validated(self) -> Settings:
        if self.auth_mode not in ("strict", "open"):
            raise ValueError(f"CORRAL_AUTH must be 'strict' or 'open', not {self.auth_mode!r}")
        if not (len(self.account_id) == 12 and self.account_id.isdigit()):
            raise ValueError(f"account id must be 12 digits, not {self.account_id!r}")
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def public_endpoint(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"
