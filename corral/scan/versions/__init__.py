"""Version schemes, one module per ecosystem family, behind one function: ``compare(scheme, a, b)``.

Each scheme is a pure ``cmp(a, b) -> -1 | 0 | 1`` tested against its upstream project's own
test vectors (tests/scan/vectors). OSV range evaluation (corral.scan.osv) picks the scheme from
the advisory's ecosystem with :func:`scheme_for`.
"""

from __future__ import annotations

from collections.abc import Callable

from corral.scan.versions import apk, dpkg, maven, pep440, rpm, semver

Compare = Callable[[str, str], int]

SCHEMES: dict[str, Compare] = {
    "dpkg": dpkg.compare,
    "apk": apk.compare,
    "rpm": rpm.compare_evr,
    "pep440": pep440.compare,
    "semver": semver.compare,
    "go": semver.compare_go,
    "maven": maven.compare,
}

# OSV ecosystem (the part before the first ':') -> scheme. Unknown ecosystems fall back to
# semver-ish comparison only for SEMVER ranges; ECOSYSTEM ranges of an unknown scheme never match.
_BY_ECOSYSTEM = {
    "Debian": "dpkg", "Ubuntu": "dpkg",
    "Alpine": "apk", "Wolfi": "apk", "Chainguard": "apk", "MinimOS": "apk",
    "Red Hat": "rpm", "Rocky Linux": "rpm", "AlmaLinux": "rpm", "SUSE": "rpm",
    "openSUSE": "rpm", "Photon OS": "rpm", "Mageia": "rpm", "Azure Linux": "rpm",
    "openEuler": "rpm", "Amazon Linux": "rpm",
    "PyPI": "pep440",
    "npm": "semver", "crates.io": "semver", "Packagist": "semver", "Hex": "semver",
    "Pub": "semver", "NuGet": "semver",
    "Go": "go",
    "Maven": "maven",
}


def scheme_for(ecosystem: str) -> str | None:
    return _BY_ECOSYSTEM.get(ecosystem.split(":", 1)[0])


def compare(scheme: str, a: str, b: str) -> int:
    return SCHEMES[scheme](a, b)
