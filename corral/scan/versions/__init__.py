"""Version schemes, one module per ecosystem family, behind two functions:
``compare(scheme, a, b)`` and ``is_valid(scheme, text)``.

Each scheme is a pure ``cmp(a, b) -> -1 | 0 | 1`` tested against its upstream project's own
test vectors (tests/scan/vectors, tests/scan/test_versions.py), plus that scheme's own rule for
what a version is (PEP 440 via ``packaging``; node-semver's loose ``valid``; Go's
x/mod/semver; Maven's model validator; NuGet.Versioning; dpkg's and apk's parsers; rpm, which
accepts nearly anything). Ordering stays tolerant because advisories' range events are not
always clean; validity is what OSV range evaluation (corral.scan.osv) demands of an *installed*
version before it compares anything. :func:`scheme_for` maps an advisory's ecosystem to a scheme.
"""

from __future__ import annotations

from collections.abc import Callable

from corral.scan.versions import apk, dpkg, maven, nuget, pep440, rpm, semver

Compare = Callable[[str, str], int]

SCHEMES: dict[str, Compare] = {
    "dpkg": dpkg.compare,
    "apk": apk.compare,
    "rpm": rpm.compare_evr,
    "pep440": pep440.compare,
    "semver": semver.compare,
    "go": semver.compare_go,
    "maven": maven.compare,
    "nuget": nuget.compare,
}

VALIDATORS: dict[str, Callable[[str], bool]] = {
    "dpkg": dpkg.is_valid,
    "apk": apk.is_valid,
    "rpm": rpm.is_valid,
    "pep440": pep440.is_valid,
    "semver": semver.is_valid,
    "go": semver.is_valid_go,
    "maven": maven.is_valid,
    "nuget": nuget.is_valid,
}

# How a scheme is named in a message ("'dev' is not a valid PEP 440 version").
NAMES = {"dpkg": "Debian (dpkg)", "apk": "Alpine (apk)", "rpm": "RPM", "pep440": "PEP 440",
         "semver": "SemVer", "go": "Go module", "maven": "Maven", "nuget": "NuGet"}

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
    "Pub": "semver",
    "NuGet": "nuget",
    "Go": "go",
    "Maven": "maven",
}


def scheme_for(ecosystem: str) -> str | None:
    return _BY_ECOSYSTEM.get(ecosystem.split(":", 1)[0])


def compare(scheme: str, a: str, b: str) -> int:
    return SCHEMES[scheme](a, b)


def is_valid(scheme: str, text: str) -> bool:
    return VALIDATORS[scheme](text)
