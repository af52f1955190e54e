"""Every version scheme against its upstream project's own test vectors (tests/scan/vectors;
each file names its source, commit and licence)."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import pytest

from corral.scan import versions
from corral.scan.versions import apk, dpkg, maven, pep440, rpm, semver

VECTORS = Path(__file__).with_name("vectors")


def _lines(name: str) -> list[str]:
    out = []
    for line in (VECTORS / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip() if not line.startswith("#") else ""
        if line:
            out.append(line)
    return out


def _apt_cases():
    for line in _lines("dpkg-apt-versions.lst"):
        a, b, r = line.split()[:3]
        yield pytest.param(a, b, int(r), id=f"{a} {b}")


@pytest.mark.parametrize(("a", "b", "expected"), list(_apt_cases()))
def test_dpkg_against_apt_versions_lst(a, b, expected):
    assert dpkg.compare(a, b) == expected
    assert dpkg.compare(b, a) == -expected


def _rpm_cases():
    for line in _lines("rpmvercmp.at.txt"):
        m = re.fullmatch(r"RPMVERCMP\((.*), (.*), (-?\d)\)", line)
        yield pytest.param(m[1], m[2], int(m[3]), id=f"{m[1]} {m[2]}")


@pytest.mark.parametrize(("a", "b", "expected"), list(_rpm_cases()))
def test_rpmvercmp_against_rpm_test_suite(a, b, expected):
    assert rpm.rpmvercmp(a, b) == expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0^", "1.0", 1), ("1.0^git1", "1.0", 1), ("1.0^git1", "1.01", -1),
    ("1.0^20160101", "1.0.1", -1), ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0^git1~pre", "1.0^git1", -1),
])
def test_rpmvercmp_caret(a, b, expected):
    """Caret cases from rpm's rpmvercmp.at (added with rpm 4.15's caret support)."""
    assert rpm.rpmvercmp(a, b) == expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1:1.0-1", "2.0-1", 1), ("0:1.0-1", "1.0-1", 0), ("1.0-2.el9", "1.0-10.el9", -1),
    ("1.0", "1.0-5", 0),  # no release on one side: versions alone decide (rpm EVR rules)
])
def test_rpm_evr(a, b, expected):
    assert rpm.compare_evr(a, b) == expected


_APK_OPS = {"<": -1, "=": 0, ">": 1}


def _apk_cases():
    for n, line in enumerate(_lines("apk-version.data")):
        a, op, b = line.split()[:3]
        yield pytest.param(a, b, _APK_OPS[op], id=f"{n}:{a}{op}{b}")


@pytest.mark.parametrize(("a", "b", "expected"), list(_apk_cases()))
def test_apk_against_apk_tools_version_data(a, b, expected):
    assert apk.compare(a, b) == expected


def _semver_cases():
    for line in _lines("semver-comparisons.txt"):
        a, op, b = line.split()[:3]
        yield pytest.param(a, b, 1 if op == ">" else 0, id=f"{a}{op}{b}")


@pytest.mark.parametrize(("a", "b", "expected"), list(_semver_cases()))
def test_semver_against_node_semver_fixtures(a, b, expected):
    assert semver.compare(a, b) == expected
    assert semver.compare(b, a) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("v1.2.3", "v1.2.4", -1), ("v0.0.0-20210101000000-abcdefabcdef", "v0.0.1", -1),
    ("v2.0.0+incompatible", "v2.0.0", 0), ("v1.10.0", "v1.9.9", 1),
])
def test_go_module_versions(a, b, expected):
    assert semver.compare_go(a, b) == expected


def _maven_cases():
    for line in _lines("maven-comparableversion.txt"):
        if line.startswith("order:"):
            vs = line.removeprefix("order:").split()
            for lo, hi in combinations(vs, 2):
                yield pytest.param(lo, hi, -1, id=f"{lo}<{hi}")
        else:
            a, op, b = line.split()
            yield pytest.param(a, b, -1 if op == "<" else 0, id=f"{a}{op}{b}")


@pytest.mark.parametrize(("a", "b", "expected"), list(_maven_cases()))
def test_maven_against_comparable_version_test(a, b, expected):
    assert maven.compare(a, b) == expected
    assert maven.compare(b, a) == -expected


# pypa/packaging tests/test_version.py's ordered VERSIONS list (BSD-2-Clause OR Apache-2.0),
# written out from that file (not fetched): each version sorts strictly before the next.
PEP440_ORDER = [
    "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
    "1.0b2.post345.dev456", "1.0b2.post345", "1.0b2-346", "1.0c1.dev456", "1.0c1", "1.0rc2",
    "1.0c3", "1.0", "1.0.post456.dev34", "1.0.post456", "1.1.dev1", "1.2+123abc",
    "1.2+123abc456", "1.2+abc", "1.2+abc123", "1.2+abc123def", "1.2+1234.abc", "1.2+123456",
    "1.2.r32+123456", "1.2.rev33+123456", "1!1.0b2.post345.dev456", "1!1.0", "1!1.2.rev33+123456",
]


@pytest.mark.parametrize(("lo", "hi"), list(zip(PEP440_ORDER, PEP440_ORDER[1:], strict=False)))
def test_pep440_order(lo, hi):
    assert pep440.compare(lo, hi) == -1
    assert pep440.compare(hi, lo) == 1


@pytest.mark.parametrize(("a", "b"), [("1.0", "1.0.0"), ("1.0RC1", "1.0rc1"), ("1.0-post1", "1.0.post1")])
def test_pep440_normalisation(a, b):
    assert pep440.compare(a, b) == 0


@pytest.mark.parametrize(("ecosystem", "scheme"), [
    ("Debian:12", "dpkg"), ("Ubuntu:22.04:LTS", "dpkg"), ("Alpine:v3.19", "apk"),
    ("PyPI", "pep440"), ("npm", "semver"), ("Go", "go"), ("Maven", "maven"),
    ("crates.io", "semver"), ("Red Hat:enterprise_linux:9::appstream", "rpm"), ("Hackage", None),
])
def test_scheme_for_ecosystem(ecosystem, scheme):
    assert versions.scheme_for(ecosystem) == scheme
