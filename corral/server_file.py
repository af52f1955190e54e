"""Which Corral server a client command talks to, and how ``corral up`` says where it is.

``corral up`` writes ``<data_dir>/server.json`` once it listens::

    {"pid": 4242, "endpoint": "http://127.0.0.1:4571", "tls_endpoint": "https://…",
     "public_endpoint": "…", "started_at": "2025-01-01T00:00:00+00:00"}

(``corral ca`` reads ``public_endpoint`` and ``tls_endpoint`` from it, to name the running
server's registry host and TLS endpoint) and removes it on a clean exit (only if it is still its own: a second ``up`` on the same data
dir may have replaced it). A file whose pid is not alive is stale (``kill -9``) and ignored.

Client commands (status, gc, lifecycle, vulndb, tasks, …) find the server in this order,
first match wins:

    1. --endpoint / CORRAL_ENDPOINT, when given
    2. the server file of the data dir (CORRAL_DATA_DIR or the default), when its pid is alive
    3. http://localhost:4566
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from corral.files import read_json, write_json_atomic

FALLBACK_ENDPOINT = "http://localhost:4566"
FILE_NAME = "server.json"


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    endpoint: str
    started_at: str
    tls_endpoint: str | None = None
    public_endpoint: str | None = None


def write(data_dir: Path, info: ServerInfo) -> Path:
    """Atomically (temp file + fsync + rename): readers never see half a file."""
    path = data_dir / FILE_NAME
    write_json_atomic(path, asdict(info))
    return path


def starting(pid: int, endpoint: str, **extra: str | None) -> ServerInfo:
    return ServerInfo(pid, endpoint, datetime.now(UTC).isoformat(), **extra)


def read(data_dir: Path) -> ServerInfo | None:
    """The running server of ``data_dir``; None when there is none, the file is unreadable
    or its process is gone."""
    raw = read_json(data_dir / FILE_NAME)
    try:
        info = ServerInfo(int(raw["pid"]), str(raw["endpoint"]), str(raw["started_at"]),
                          raw.get("tls_endpoint"), raw.get("public_endpoint"))
    except (ValueError, KeyError, TypeError, AttributeError):  # None, or not a server file
        return None
    return info if _alive(info.pid) else None


def remove(data_dir: Path, pid: int) -> None:
    """Remove the file if it is still ``pid``'s."""
    path = data_dir / FILE_NAME
    try:
        if int((read_json(path) or {})["pid"]) == pid:
            path.unlink()
    except (OSError, ValueError, KeyError, TypeError):
        pass  # already gone, or not ours to remove


def find_endpoint(explicit: str | None, data_dir: Path) -> str:
    """The endpoint a client command uses (the module docstring's order)."""
    if explicit:
        return explicit
    info = read(data_dir)
    return info.endpoint if info is not None else FALLBACK_ENDPOINT


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
