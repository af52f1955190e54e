"""SemVer 2.0.0 precedence (§11), as npm's node-semver compares versions, plus Go module
versions (``v`` prefix, pseudo-versions and ``+incompatible`` are plain SemVer underneath).

Loose parsing accepts a leading ``v``/``=`` and spaces (node-semver's loose mode); build
metadata is ignored; versions that are not SemVer fall back to a tolerant numeric-dot parse
(crates.io and npm advisories are SemVer, but installed metadata is not always clean).
"""

from __future__ import annotations

import re
from functools import lru_cache

_SEMVER = re.compile(
    r"^\s*[v=\s]*(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.\d+)*"
    r"(?:-?([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?\s*$")


@lru_cache(maxsize=65536)
def parse(text: str) -> tuple[tuple[int, int, int], tuple]:
    m = _SEMVER.match(text)
    if not m:
        raise ValueError(f"not a semantic version: {text!r}")
    major, minor, patch, pre = m.groups()
    core = (int(major), int(minor or 0), int(patch or 0))
    ids: tuple = ()
    if pre:
        # numeric identifiers sort before alphanumeric ones (§11.4.3)
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return core, ids


def compare(a: str, b: str) -> int:
    (ca, pa), (cb, pb) = parse(a), parse(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if pa == pb:
        return 0
    if not pa:  # a release outranks its pre-releases
        return 1
    if not pb:
        return -1
    return -1 if pa < pb else 1


def compare_go(a: str, b: str) -> int:
    return compare(a.removesuffix("+incompatible"), b.removesuffix("+incompatible"))


def is_valid(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True
