"""OSV affected-range evaluation, exactly as the OSV schema defines it (ossf/osv-schema
docs/schema.md, "Evaluation"):

    vulnerable(v) = v in affected.versions
                 or any range: BeforeLimits(v) and the walk over the sorted events
                    (introduced <= v -> true; fixed <= v -> false; last_affected < v -> false)
                    ends true

``introduced: "0"`` sorts before every version; ``limit: "*"`` is infinity and an absent limit
is an implicit ``"*"``. ECOSYSTEM ranges use the ecosystem's own order; SEMVER ranges SemVer;
GIT ranges name commits and never match an installed version.

An installed version that is not valid in its ecosystem's scheme (PyPI ``dev`` or ``5.x``, npm
``latest``, Maven ``${project.version}``) matches no range: it has no place in the order, and
giving it one (before everything) is what made a Django ``dev`` install hit every range that
starts at 0. It still matches an entry's ``versions`` list by exact string equality — that
list enumerates affected versions literally, so an equal string needs no parsing to be named.
:func:`invalid_version` says why a package was not range-matched, for the scan to report it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from corral.scan import versions
from corral.scan.packages import normalize_pypi
from corral.scan.versions import Compare


def package_key(ecosystem: str, name: str) -> str:
    """How a package name is indexed and compared in an ecosystem (PyPI: PEP 503)."""
    return normalize_pypi(name) if ecosystem == "PyPI" else name


def _validity_scheme(range_type: str, ecosystem: str) -> str | None:
    """The scheme whose rule an installed version must satisfy for this range."""
    return versions.scheme_for(ecosystem) or ("semver" if range_type == "SEMVER" else None)


def invalid_version(ecosystem: str, version: str) -> str | None:
    """Why ``version`` cannot be compared with ``ecosystem``'s advisory ranges, or None when it
    can (or when the ecosystem has no known scheme, whose ECOSYSTEM ranges never match)."""
    scheme = versions.scheme_for(ecosystem)
    if scheme is None or versions.is_valid(scheme, version):
        return None
    return (f"{version!r} is not a valid {versions.NAMES[scheme]} version, so it matches no "
            f"{ecosystem} advisory range (only versions an advisory lists exactly)")


def _comparator(range_type: str, ecosystem: str) -> Compare | None:
    if range_type == "SEMVER":
        return versions.semver.compare
    if range_type == "ECOSYSTEM":
        scheme = versions.scheme_for(ecosystem)
        return versions.SCHEMES[scheme] if scheme else None
    return None


def _event_version(event: dict) -> tuple[str, str]:
    for kind in ("introduced", "fixed", "last_affected", "limit"):
        if kind in event:
            return kind, str(event[kind])
    return "", ""


def range_affects(rng: dict, version: str, ecosystem: str) -> bool:
    cmp = _comparator(rng.get("type", ""), ecosystem)
    scheme = _validity_scheme(rng.get("type", ""), ecosystem)
    if cmp is None or scheme is None or not versions.is_valid(scheme, version):
        return False
    events = [_event_version(e) for e in rng.get("events") or [] if isinstance(e, dict)]
    events = [(k, v) for k, v in events if k]
    try:
        limits = [v for k, v in events if k == "limit"]
        if limits and not any(v == "*" or cmp(version, v) < 0 for v in limits):
            return False

        def order(a: tuple[str, str], b: tuple[str, str]) -> int:
            if a[1] == b[1]:
                return 0
            if a[1] == "0" and a[0] == "introduced":
                return -1
            if b[1] == "0" and b[0] == "introduced":
                return 1
            return cmp(a[1], b[1])

        vulnerable = False
        for kind, v in sorted(events, key=functools.cmp_to_key(order)):
            if kind == "introduced" and (v == "0" or cmp(version, v) >= 0):
                vulnerable = True
            elif kind == "fixed" and cmp(version, v) >= 0 or kind == "last_affected" and cmp(version, v) > 0:
                vulnerable = False
        return vulnerable
    except ValueError:  # a version the scheme cannot read never matches
        return False


def entry_affects(entry: dict, version: str, ecosystem: str) -> bool:
    if version in (entry.get("versions") or ()):
        return True
    return any(range_affects(r, version, ecosystem) for r in entry.get("ranges") or ()
               if isinstance(r, dict))


def fixed_in(entries: Iterable[dict], version: str, ecosystem: str) -> str | None:
    """The lowest ``fixed`` version above ``version`` in the matching entries' ranges; None
    when there is none or ``version`` is invalid (no fix can be said to lie above it)."""
    if invalid_version(ecosystem, version):
        return None
    scheme = versions.scheme_for(ecosystem)
    cmp = versions.SCHEMES.get(scheme or "", versions.semver.compare)
    candidates = []
    for entry in entries:
        for rng in entry.get("ranges") or ():
            for event in rng.get("events") or ():
                fixed = event.get("fixed") if isinstance(event, dict) else None
                if fixed is None:
                    continue
                try:
                    if cmp(str(fixed), version) > 0:
                        candidates.append(str(fixed))
                except ValueError:
                    continue
    if not candidates:
        return None
    return min(candidates, key=functools.cmp_to_key(lambda a, b: _safe(cmp, a, b)))


def _safe(cmp: Compare, a: str, b: str) -> int:
    try:
        return cmp(a, b)
    except ValueError:
        return (a > b) - (a < b)


def matching_entries(record: dict, ecosystem: str, name: str, version: str) -> list[dict]:
    """The record's ``affected`` entries for this package that cover ``version``."""
    key = package_key(ecosystem, name)
    out = []
    for entry in record.get("affected") or ():
        pkg = entry.get("package") or {}
        if pkg.get("ecosystem") != ecosystem or package_key(ecosystem, pkg.get("name", "")) != key:
            continue
        if entry_affects(entry, version, ecosystem):
            out.append(entry)
    return out
