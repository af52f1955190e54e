"""Catalogers: one small module per package format, each a name, the paths it reads and a
parser (file bytes -> packages). ``VERSION`` changes whenever any parser's output changes, so
cached per-layer inventories made by older parsers are not reused.

A parser never raises for bad content: it returns what it could read plus notes (Syft's
"partial results plus what it could not read").

OS package databases also say which files each package installed (dpkg ``info/*.list``, apk
``R:`` lines, rpm file arrays). Of those lists only the paths a language cataloger would read
are kept (``Parsed.owns``): they are what ties a pip or npm package shipped as a .deb, .apk
or .rpm to its OS package (Syft's ownership-by-file-overlap), and they keep the cached layer
inventory small (a Debian image lists ~50,000 files, a few dozen of them language metadata).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from corral.scan.catalogers import apk, dpkg, java, npm, os_release, python, rpm
from corral.scan.packages import Package

# 2: Java archives; 3: Go binaries; 4: OS file ownership, device nodes, refusals;
# 5: Go stdlib versions as x/vuln writes them (v1.21.0-rc.2)
VERSION = 5


@dataclass
class Parsed:
    packages: list[Package] = field(default_factory=list)
    os: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    # [{"type": "deb", "name": owner, "paths": [language metadata paths it installed]}]
    owns: list[dict] = field(default_factory=list)


def defines_language_package(path: str) -> bool:
    """A path a language cataloger reads: the file that defines a language package."""
    return python.matches(path) or npm.matches(path) or java.matches(path)


def _owns(kind: str, by_owner: dict[str, list[str]]) -> list[dict]:
    out = []
    for name, paths in sorted(by_owner.items()):
        kept = sorted({p for p in paths if defines_language_package(p)})
        if kept:
            out.append({"type": kind, "name": name, "paths": kept})
    return out


@dataclass(frozen=True)
class Cataloger:
    name: str
    matches: Callable[[str], bool]
    parse: Callable[[str, bytes], Parsed]


# What a parser raises for content it cannot read: one set for every cataloger, so a damaged
# file of any format becomes a note, never a failed scan.
PARSE_ERRORS = (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError)


def _unreadable(path: str, e: Exception) -> Parsed:
    return Parsed(notes=[f"{path}: {type(e).__name__}: {e}"])


def _packages(fn: Callable[[str, bytes], list[Package]]) -> Callable[[str, bytes], Parsed]:
    def parse(path: str, data: bytes) -> Parsed:
        try:
            return Parsed(packages=fn(path, data))
        except PARSE_ERRORS as e:
            return _unreadable(path, e)
    return parse


def _os(path: str, data: bytes) -> Parsed:
    return Parsed(os=os_release.parse(path, data))


def _dpkg_list(path: str, data: bytes) -> Parsed:
    return Parsed(owns=_owns("deb", dpkg.files(path, data)))


def _apk(path: str, data: bytes) -> Parsed:
    got = _packages(apk.parse)(path, data)
    got.owns = _owns("apk", apk.files(path, data))
    return got


def _rpm(path: str, data: bytes) -> Parsed:
    try:
        found = rpm.catalog(path, data)
    except PARSE_ERRORS as e:
        return _unreadable(path, e)
    by_owner: dict[str, list[str]] = {}
    for pkg, paths in found:
        by_owner.setdefault(pkg.name, []).extend(paths)
    return Parsed(packages=[pkg for pkg, _ in found], owns=_owns("rpm", by_owner))


CATALOGERS: tuple[Cataloger, ...] = (
    Cataloger("os-release", os_release.matches, _os),
    Cataloger("dpkg-db", dpkg.matches, _packages(dpkg.parse)),
    Cataloger("dpkg-file-list", dpkg.matches_list, _dpkg_list),
    Cataloger("apk-db", apk.matches, _apk),
    Cataloger("rpm-db", rpm.matches, _rpm),
    Cataloger("python-installed-package", python.matches, _packages(python.parse)),
    Cataloger("javascript-package", npm.matches, _packages(npm.parse)),
    Cataloger("java-archive", java.matches, _packages(java.parse)),
)


def wanted(path: str) -> bool:
    return any(c.matches(path) for c in CATALOGERS)


def parse(path: str, data: bytes) -> Parsed:
    """Every cataloger that claims ``path``, merged."""
    out = Parsed()
    for c in CATALOGERS:
        if c.matches(path):
            got = c.parse(path, data)
            out.packages += got.packages
            out.notes += got.notes
            out.owns += got.owns
            out.os = out.os or got.os
    return out
