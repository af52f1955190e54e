"""Where the shared advisory data and inventories live (env CORRAL_VULNDATA, default
../shared/vulndata next to the repository). Tests fail — not skip — when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def vulndata() -> Path:
    root = Path(os.environ.get("CORRAL_VULNDATA") or REPO.parent / "shared" / "vulndata")
    if not (root / "SOURCES.md").is_file():
        pytest.fail(f"vulndata not found at {root}: set CORRAL_VULNDATA to the shared "
                    "vulndata directory (see its SOURCES.md); it is not copied into the repo")
    return root
