"""Small JSON state files, written so that a crash leaves either the old or the new document.

Every record kept on disk as one JSON document goes through these two functions — the
runtime's (a supervisor's ``status.json``, a bundle's ``meta.json``, a sandbox, a network lease)
and ``corral up``'s server file:

    write_json_atomic: temp file beside the target ─ fsync ─> rename over it
    read_json:         the document, or None when there is none

The temp name carries the writer's pid, so two processes writing the same record never
share a temp file; the rename is atomic on one file system. Stdlib only: the supervisor
imports this module and must start in a few milliseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json_atomic(path: Path, doc: dict) -> None:
    """Replace ``path`` with ``doc`` as JSON: temp file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path, *, strict: bool = False) -> dict | None:
    """The document at ``path``, or None when the file does not exist.

    Tolerant by default: an unreadable or unparsable file is also None, for records that are
    rewritten whole and whose absence the caller already handles (a container's status).
    ``strict=True`` lets those errors raise, for state whose corruption must not pass for
    "nothing allocated" (network leases: an address or port would be handed out twice).
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        if strict:
            raise
        return None
