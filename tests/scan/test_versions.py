"""Every version scheme against its upstream project's own test vectors (tests/scan/vectors;
each file names its source, commit and licence)."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import pytest

from corral.scan import versions
from corral.scan.versions import apk, dpkg, maven, nuget, pep440, rpm, semver

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


# Maven: apache/maven maven-artifact ComparableVersionTest (Apache-2.0), 3.9.x, written out from
# that public test (not fetched). VERSIONS_QUALIFIER and VERSIONS_NUMBER are strictly increasing
# (the test checks every pair); the others are its testVersionsEqual, testVersionComparing and
# MNG-* methods. Maven 3.9 changed the order of some mixed forms (MNG-7644: "2-1 < 2.0.a <
# 2.0.0.a" in the older tables no longer holds), so only the 3.9 tables are used.
MAVEN_VERSIONS_QUALIFIER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11",
    "1-rc", "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def",
    "1-pom-1", "1-1-snapshot", "1-1", "1-2", "1-123",
]
MAVEN_VERSIONS_NUMBER = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
    "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11",
    "11.a", "11b", "11c", "11m",
]
MAVEN_EQUAL = [
    ("1", "1"), ("1", "1.0"), ("1", "1.0.0"), ("1.0", "1.0.0"), ("1", "1-0"), ("1", "1.0-0"),
    ("1.0", "1.0-0"),
    # no separator between number and character
    ("1a", "1-a"), ("1a", "1.0-a"), ("1a", "1.0.0-a"), ("1.0a", "1-a"), ("1.0.0a", "1-a"),
    ("1x", "1-x"), ("1x", "1.0-x"), ("1x", "1.0.0-x"), ("1.0x", "1-x"), ("1.0.0x", "1-x"),
    ("1cr", "1rc"),
    # special "aliases" a, b and m for alpha, beta and milestone
    ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"), ("1m3", "1-milestone-3"),
    # case insensitive
    ("1X", "1x"), ("1A", "1a"), ("1B", "1b"), ("1M", "1m"), ("1Cr", "1Rc"), ("1cR", "1rC"),
    ("1m3", "1Milestone3"), ("1m3", "1MileStone3"), ("1m3", "1MILESTONE3"),
    # testVersionsHaveSameOrderButAreNotEqual: ga, final and release order as ""
    ("1ga", "1"), ("1release", "1"), ("1final", "1"), ("1Ga", "1"), ("1GA", "1"),
    ("1RELEASE", "1"), ("1RELeaSE", "1"), ("1Final", "1"), ("1FinaL", "1"), ("1FINAL", "1"),
    # testVersionEqualWithLeadingZeroes / testVersionZeroEqualWithLeadingZeroes (MNG-6572)
    *((("0" * n) + "1", "1") for n in range(1, 19)),
    *((("0" * n), "0") for n in range(1, 20)),
]
MAVEN_LESS = [
    # testVersionComparing
    ("1", "2"), ("1.5", "2"), ("1", "2.5"), ("1.0", "1.1"), ("1.1", "1.2"), ("1.0.0", "1.1"),
    ("1.0.1", "1.1"), ("1.1", "1.2.0"), ("1.0-alpha-1", "1.0"), ("1.0-alpha-1", "1.0-alpha-2"),
    ("1.0-alpha-1", "1.0-beta-1"), ("1.0-beta-1", "1.0-SNAPSHOT"), ("1.0-SNAPSHOT", "1.0"),
    ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"), ("1.0", "1.0-1"), ("1.0-1", "1.0-2"),
    ("1.0.0", "1.0-1"), ("2.0-1", "2.0.1"), ("2.0.1-klm", "2.0.1-lmn"), ("2.0.1", "2.0.1-xyz"),
    ("2.0.1", "2.0.1-123"), ("2.0.1-xyz", "2.0.1-123"),
    # MNG-5568: transitivity with an unusual "6.1H.5-beta"
    ("6.1.0rc3", "6.1.0"), ("6.1.0rc3", "6.1H.5-beta"), ("6.1.0", "6.1H.5-beta"),
    # MNG-6572: numbers of 8, 10, 15 and 20 digits
    ("20190126.230843", "1234567890.12345"), ("1234567890.12345", "123456789012345.1H.5-beta"),
    ("20190126.230843", "123456789012345.1H.5-beta"),
    ("123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"),
    ("1234567890.12345", "12345678901234567890.1H.5-beta"),
    ("20190126.230843", "12345678901234567890.1H.5-beta"),
    # MNG-6964: qualifiers after "-0." compare with the release, not equal to it
    ("1-0.alpha", "1"), ("1-0.beta", "1"), ("1-0.alpha", "1-0.beta"),
]
# MNG-7644: 1.0.0.X1 < 1.0.0-X2, and 2-X == 2.0.X == 2.0.0.X, for any qualifier X
for _x in ("abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"):
    MAVEN_LESS.append((f"1.0.0.{_x}1", f"1.0.0-{_x}2"))
    MAVEN_EQUAL += [(f"2-{_x}", f"2.0.{_x}"), (f"2-{_x}", f"2.0.0.{_x}"),
                    (f"2.0.{_x}", f"2.0.0.{_x}")]
# Issue 17 item 12: the mixed qualifier forms real clients disagreed on.
MAVEN_EQUAL.append(("1.0a1", "1.0-alpha-1"))
MAVEN_LESS += [("1.0.0.M1", "1.0.0-1"), ("1.17.1.rc-2", "1.17.1.RC1"), ("0.x", "0.x-SNAPSHOT")]


def _maven_cases():
    for table in (MAVEN_VERSIONS_QUALIFIER, MAVEN_VERSIONS_NUMBER):
        for lo, hi in combinations(table, 2):
            yield pytest.param(lo, hi, -1, id=f"{lo}<{hi}")
    for a, b in MAVEN_LESS:
        yield pytest.param(a, b, -1, id=f"{a}<{b}")
    for a, b in MAVEN_EQUAL:
        yield pytest.param(a, b, 0, id=f"{a}={b}")


@pytest.mark.parametrize(("a", "b", "expected"), list(_maven_cases()))
def test_maven_against_comparable_version_test(a, b, expected):
    assert maven.compare(a, b) == expected
    assert maven.compare(b, a) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0a1", "1.0-alpha-1", 0), ("1.0.0.M1", "1.0.0-1", -1), ("1.17.1.RC1", "1.17.1.rc-2", 1),
    ("0.x-SNAPSHOT", "0.x", 1),
])
def test_maven_mixed_qualifier_forms(a, b, expected):
    """Issue 17 item 12, as Maven 3.9's ComparableVersion answers them."""
    assert maven.compare(a, b) == expected


# NuGet.Versioning's rules (NuGetVersion / VersionComparer.Default), from its documented
# behaviour and its VersionComparerTests: up to four numeric parts, SemVer 2 labels compared
# case-insensitively, metadata ignored.
NUGET_EQUAL = [
    ("1.0", "1.0.0"), ("1.0.0", "1.0.0.0"), ("1", "1.0.0.0"), ("1.0.0-BETA", "1.0.0-beta"),
    ("1.0.0+meta", "1.0.0"), ("1.0.0-beta+a", "1.0.0-BETA+b"), ("01.0.0", "1.0.0"),
    ("1.0.0-beta.1", "1.0.0-Beta.1"), ("4.0.0.0", "4.0.0"),
]
NUGET_ORDER = [
    "0.0.1", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
    "1.0.0-beta.11", "1.0.0-beta10", "1.0.0-beta2", "1.0.0-rc.1", "1.0.0", "1.0.0.1-alpha",
    "1.0.0.1", "1.0.1", "4.0.0.1", "4.0.0.2", "4.0.0.10", "4.0.1", "4.1",
]


@pytest.mark.parametrize(("a", "b"), NUGET_EQUAL)
def test_nuget_equal_versions(a, b):
    assert nuget.compare(a, b) == 0 == nuget.compare(b, a)


@pytest.mark.parametrize(("lo", "hi"), list(combinations(NUGET_ORDER, 2)))
def test_nuget_order(lo, hi):
    assert nuget.compare(lo, hi) == -1
    assert nuget.compare(hi, lo) == 1


def test_nuget_four_part_versions_are_distinct():
    """Issue 17 item 12: 4.0.0.1 != 4.0.0.2 (SemVer would drop the fourth part)."""
    assert nuget.compare("4.0.0.1", "4.0.0.2") == -1
    assert versions.scheme_for("NuGet") == "nuget"


@pytest.mark.parametrize("text", ["", "latest", "1.x", "v1.0.0", "1.0.0.0.0", "1.0.0-",
                                  "1.0.0-beta..1", "1.0.0-beta_1", "1.0.0+", "99999999999.0"])
def test_nuget_invalid_versions(text):
    assert not nuget.is_valid(text)
    with pytest.raises(ValueError):
        nuget.compare(text, "1.0.0")


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
    ("NuGet", "nuget"),
])
def test_scheme_for_ecosystem(ecosystem, scheme):
    assert versions.scheme_for(ecosystem) == scheme
