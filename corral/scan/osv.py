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
from collections.abc import Callable, Iterable

from corral.scan import versions
from corral.scan.packages import normalize_pypi
from corral.scan.versions import Compare


def package_key(ecosystem: str, name: str) -> str:
    """How a package name is indexed and compared in an ecosystem (PyPI: PEP 503)."""
    return normalize_pypi(name) if ecosystem == "PyPI" else name


def _scheme(ecosystem: str, range_type: str = "ECOSYSTEM"
            ) -> tuple[Compare | None, Callable[[str], bool]]:
    """(compare, is_valid) for ranges of ``range_type`` in ``ecosystem``: the order their events
    are compared in (None: such ranges never match an installed version), and the rule an
    installed version must satisfy to be compared at all — the ecosystem's own scheme, or
    SemVer's for the SEMVER ranges of an ecosystem without one."""
    scheme = versions.scheme_for(ecosystem)
    valid = versions.VALIDATORS[scheme or "semver"]
    if range_type == "SEMVER":
        return versions.semver.compare, valid
    if range_type == "ECOSYSTEM" and scheme:
        return versions.SCHEMES[scheme], valid
    return None, valid


def is_valid(ecosystem: str, version: str) -> bool:
    """Whether an installed ``version`` can be compared with ``ecosystem``'s ranges at all."""
    return _scheme(ecosystem)[1](version)


def invalid_version(ecosystem: str, version: str) -> str | None:
    """Why ``version`` cannot be compared with ``ecosystem``'s advisory ranges, or None when it
    can (or when the ecosystem has no known scheme, whose ECOSYSTEM ranges never match)."""
    scheme = versions.scheme_for(ecosystem)
    if scheme is None or is_valid(ecosystem, version):
        return None
    return (f"{version!r} is not a valid {versions.NAMES[scheme]} version, so it matches no "
            f"{ecosystem} advisory range (only versions an advisory lists exactly)")


def _event_version(event: dict) -> tuple[str, str]:
    for kind in ("introduced", "fixed", "last_affected", "limit"):
        if kind in event:
            return kind, str(event[kind])
    return "", ""


def range_affects(rng: dict, version: str, ecosystem: str) -> bool:
    """Whether one range covers ``version``, which must be valid (:func:`is_valid`)."""
    cmp = _scheme(ecosystem, rng.get("type", ""))[0]
    if cmp is None:
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


def entry_affects(entry: dict, version: str, ecosystem: str, *,
                  valid: bool | None = None) -> bool:
    """Whether an ``affected`` entry covers ``version``. ``valid`` is :func:`is_valid` of it,
    worked out once per package by the caller (None: worked out here); an invalid version is
    matched only by the literal ``versions`` list."""
    if version in (entry.get("versions") or ()):
        return True
    if not (is_valid(ecosystem, version) if valid is None else valid):
        return False
    return any(range_affects(r, version, ecosystem) for r in entry.get("ranges") or ()
               if isinstance(r, dict))


def fixed_in(entries: Iterable[dict], version: str, ecosystem: str, *,
             valid: bool | None = None) -> str | None:
    """The lowest ``fixed`` version above ``version`` in the matching entries' ranges; None
    when there is none or ``version`` is invalid (no fix can be said to lie above it)."""
    if not (is_valid(ecosystem, version) if valid is None else valid):
        return None
    cmp = _scheme(ecosystem)[0] or versions.semver.compare
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


def matching_entries(record: dict, ecosystem: str, name: str, version: str, *,
                     valid: bool | None = None) -> list[dict]:
    """The record's ``affected`` entries for this package that cover ``version`` (``valid``:
    as for :func:`entry_affects`)."""
    key = package_key(ecosystem, name)
    out = []
    for entry in record.get("affected") or ():
        pkg = entry.get("package") or {}
        if pkg.get("ecosystem") != ecosystem or package_key(ecosystem, pkg.get("name", "")) != key:
            continue
        if entry_affects(entry, version, ecosystem, valid=valid):
            out.append(entry)
    return out
