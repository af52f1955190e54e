"""Catalogers: one small module per package format, each a name, the paths it reads and a
parser (file bytes -> packages). ``VERSION`` changes whenever any parser's output changes, so
cached per-layer inventories made by older parsers are not reused.

A parser never raises for bad content: it returns what it could read plus notes (Syft's
"partial results plus what it could not read").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from corral.scan.catalogers import apk, dpkg, java, npm, os_release, python, rpm
from corral.scan.packages import Package

VERSION = 3  # 2: Java archives; 3: Go binaries


@dataclass
class Parsed:
    packages: list[Package] = field(default_factory=list)
    os: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cataloger:
    name: str
    matches: Callable[[str], bool]
    parse: Callable[[str, bytes], Parsed]


def _packages(fn: Callable[[str, bytes], list[Package]]) -> Callable[[str, bytes], Parsed]:
    def parse(path: str, data: bytes) -> Parsed:
        try:
            return Parsed(packages=fn(path, data))
        except (ValueError, UnicodeDecodeError, KeyError, IndexError) as e:
            return Parsed(notes=[f"{path}: {type(e).__name__}: {e}"])
    return parse


def _os(path: str, data: bytes) -> Parsed:
    return Parsed(os=os_release.parse(path, data))


CATALOGERS: tuple[Cataloger, ...] = (
    Cataloger("os-release", os_release.matches, _os),
    Cataloger("dpkg-db", dpkg.matches, _packages(dpkg.parse)),
    Cataloger("apk-db", apk.matches, _packages(apk.parse)),
    Cataloger("rpm-db", rpm.matches, _packages(rpm.parse)),
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
            out.os = out.os or got.os
    return out
