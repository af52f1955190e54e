"""SemVer 2.0.0 precedence (§11), as npm's node-semver compares versions, plus Go module
versions (``v`` prefix, pseudo-versions and ``+incompatible`` are plain SemVer underneath).

Ordering is tolerant, because advisory range events are not always clean: a leading ``v``/``=``
and spaces (node-semver's loose mode), a missing minor/patch (``1.2`` is ``1.2.0``), build
metadata ignored. Validity is not: an *installed* version must pass :func:`is_valid` (what
node-semver's ``valid(v, {loose: true})`` accepts: three numeric parts) or, for Go,
:func:`is_valid_go` (golang.org/x/mod/semver ``IsValid``, the ``v`` optional because OSV Go
records drop it) before any range is evaluated (corral.scan.osv), so ``latest``, ``5.x`` or
``(devel)`` match nothing.
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


# node-semver's LOOSE regex (src/re.js): MAINVERSIONLOOSE, PRERELEASELOOSE, BUILD.
_ID = r"(?:\d+|\d*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD = r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
_NODE_LOOSE = re.compile(rf"^[v=\s]*\d+\.\d+\.\d+(?:-?{_ID}(?:\.{_ID})*)?{_BUILD}$",
                         re.ASCII)
# golang.org/x/mod/semver: no leading zeros; vMAJOR and vMAJOR.MINOR only without pre/build.
_NUM = r"(?:0|[1-9]\d*)"
_GO_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_GO = re.compile(rf"^v?(?:{_NUM}(?:\.{_NUM})?|{_NUM}\.{_NUM}\.{_NUM}"
                 rf"(?:-{_GO_ID}(?:\.{_GO_ID})*)?{_BUILD})$", re.ASCII)


def is_valid(text: str) -> bool:
    return bool(_NODE_LOOSE.match(text.strip()))


def is_valid_go(text: str) -> bool:
    return bool(_GO.match(text))
