"""Issue 17 items 5 and 6: a version that is invalid in its scheme matches nothing (and says so),
and Debian ``<unfixed>`` entries produce findings without a fixed version. Real advisories from
the shared vulndata where it has them, minimal records where it has not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from corral.scan import advisories, matcher, osv
from corral.scan.converters import debian
from corral.scan.inventory import ImageInventory
from corral.scan.packages import Package
from corral.store import Store
from tests.scan.vulndata import vulndata

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _lookup(records: list[dict]):
    """An in-memory ``(ecosystem, key) -> records`` lookup, as the matcher calls it."""
    index: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        for key in advisories.record_keys(record):
            index.setdefault(key, []).append(record)
    return lambda ecosystem, name: index.get((ecosystem, name), [])


def _records(rel: str, ecosystem: str, name: str) -> list[dict]:
    key = (ecosystem, osv.package_key(ecosystem, name))
    out = [r for r in advisories.read_records(vulndata() / rel)
           if key in advisories.record_keys(r) and not r.get("withdrawn")]
    assert out, f"no {ecosystem} {name} records in {rel}"
    return out


def _minimal(ident: str, ecosystem: str, name: str, *events: dict,
             versions: tuple[str, ...] = ()) -> dict:
    return {"id": ident, "modified": "2026-01-01T00:00:00Z", "affected": [{
        "package": {"ecosystem": ecosystem, "name": name}, "versions": list(versions),
        "ranges": [{"type": "ECOSYSTEM", "events": list(events)}]}]}


def _found(kind: str, name: str, version: str, records: list[dict]) -> set[str]:
    inv = ImageInventory(None, [Package(kind, name, version, f"app/{name}")])
    return {m.advisory_id for m in matcher.match(inv, _lookup(records))}


# Records that cover every version from 0: an open range (no comparison at all happens, which is
# how an invalid version slipped through before) and one with a fix far above everything.
def _from_zero(ecosystem: str, name: str) -> list[dict]:
    return [_minimal("TEST-OPEN", ecosystem, name, {"introduced": "0"}),
            _minimal("TEST-FIXED", ecosystem, name, {"introduced": "0"}, {"fixed": "999.0.0"})]


@pytest.fixture(scope="module")
def django() -> list[dict]:
    return _records("osv/PyPI.jsonl", "PyPI", "Django")


def test_unparseable_pypi_version_matches_nothing(django):
    records = django + _from_zero("PyPI", "Django")
    assert len(_found("python", "Django", "2.2", records)) > 30  # the records really apply
    for bad in ("dev", "5.x"):
        assert _found("python", "Django", bad, records) == set(), bad
        reason = osv.invalid_version("PyPI", bad)
        assert reason and "PEP 440" in reason and repr(bad) in reason
    assert osv.invalid_version("PyPI", "2.2") is None


@pytest.mark.parametrize("bad", ["latest", "5.x", "*", "^4.17.0", "4.17", "next"])
def test_unparseable_npm_version_matches_nothing(bad):
    records = _records("osv/npm-ghsa-subset.jsonl", "npm", "lodash") + _from_zero("npm", "lodash")
    assert _found("npm", "lodash", "4.17.15", records) == {
        "GHSA-29mw-wpgm-hmr9", "GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw",
        "TEST-OPEN", "TEST-FIXED"}
    assert _found("npm", "lodash", bad, records) == set()
    assert "SemVer" in (osv.invalid_version("npm", bad) or "")


@pytest.mark.parametrize("bad", ["LATEST", "RELEASE", "${project.version}", "dev", "unknown",
                                 "[1.0,2.0)", "1.0 beta"])
def test_unparseable_maven_version_matches_nothing(bad):
    name = "org.webjars.npm:jquery"
    records = _records("osv/npm-ghsa-subset.jsonl", "Maven", name) + _from_zero("Maven", name)
    assert _found("java-archive", name, "3.4.1", records) == {
        "GHSA-gxr4-xjj5-5px2", "TEST-OPEN", "TEST-FIXED"}
    assert _found("java-archive", name, bad, records) == set()
    assert "Maven" in (osv.invalid_version("Maven", bad) or "")


def test_maven_versions_without_leading_digit_but_with_one_are_valid():
    """Guava's r05..r09 era: ComparableVersion orders them below 1.0, and they are real."""
    assert osv.invalid_version("Maven", "r09") is None
    assert osv.entry_affects(_minimal("T", "Maven", "g:a", {"introduced": "0"},
                                      {"fixed": "32.0.0"})["affected"][0], "r09", "Maven")


def test_an_invalid_version_still_matches_a_literal_versions_entry():
    """OSV ``versions`` enumerate affected versions as strings: an exact equal string is named
    by the advisory itself and needs no parsing. Nothing else in the list matches."""
    record = _minimal("TEST-LISTED", "PyPI", "pkg", {"introduced": "0"},
                      versions=("dev", "1.0"))
    assert _found("python", "pkg", "dev", [record]) == {"TEST-LISTED"}
    assert _found("python", "pkg", "dev2", [record]) == set()
    assert osv.fixed_in(record["affected"], "dev", "PyPI") is None


@pytest.mark.parametrize(("ecosystem", "version", "valid"), [
    ("PyPI", "1.0.post1", True), ("PyPI", "latest", False), ("PyPI", "", False),
    ("npm", "1.2.3-beta.1", True), ("npm", "v1.2.3", True), ("npm", "1.2", False),
    ("Go", "v1.2.3", True), ("Go", "v0.0.0-20210101000000-abcdefabcdef", True),
    ("Go", "v2.0.0+incompatible", True), ("Go", "v1.20", True), ("Go", "(devel)", False),
    ("Go", "v1.02.0", False),
    ("crates.io", "0.3.0", True), ("crates.io", "0.3", False),
    ("Maven", "1.0.0.M1", True), ("Maven", "2.5.1.RELEASE", True), ("Maven", "LATEST", False),
    ("NuGet", "4.0.0.1", True), ("NuGet", "1.0.0-beta.1+sha", True), ("NuGet", "1.x", False),
    ("Debian:12", "1:2.36.1-8+deb12u1", True), ("Debian:12", "dev", True),  # dpkg only warns
    ("Debian:12", "", False), ("Debian:12", "x:1.0", False), ("Debian:12", "1.0-", False),
    ("Debian:12", "1.0 1", False),
    ("Alpine:v3.19", "1.1.1d-r0", True), ("Alpine:v3.19", "2.4_rc1-r2", True),
    ("Alpine:v3.19", "latest", False), ("Alpine:v3.19", "1.0_foo", False),
    ("Red Hat:enterprise_linux:9", "1:2.0-1.el9", True), ("Red Hat:enterprise_linux:9", "", False),
    ("Hackage", "anything", True),  # no known scheme: nothing to judge (its ranges never match)
])
def test_invalid_version_per_scheme(ecosystem, version, valid):
    assert (osv.invalid_version(ecosystem, version) is None) is valid


def test_invalid_version_in_a_semver_range_of_an_unknown_ecosystem():
    entry = {"package": {"ecosystem": "Hackage", "name": "p"}, "ranges": [
        {"type": "SEMVER", "events": [{"introduced": "0"}]}]}
    assert osv.entry_affects(entry, "1.0.0", "Hackage")
    assert not osv.entry_affects(entry, "latest", "Hackage")


# --- item 6: Debian <unfixed> -----------------------------------------------------------------

LIST = """\
[02 Mar 2026] DSA-9001-1 libexample - security update
\t{CVE-2026-0001 CVE-2026-0002}
\t[bullseye] - libexample <unfixed>
\t[bookworm] - libexample 2.0-1+deb12u1
\t[trixie] - libexample <not-affected> (vulnerable code introduced later)
[01 Mar 2026] DSA-9000-1 oldthing - end-of-life announcement
\t[bullseye] - oldthing <end-of-life> (no longer supported)
\tNOTE: <unfixed> (free text: not read)
"""


def _debian_image(release: str) -> ImageInventory:
    return ImageInventory({"id": "debian", "version_id": release}, [
        Package("deb", "libexample1", "1.9-4", "var/lib/dpkg/status", "libexample", "1.9-4"),
        Package("deb", "oldthing", "0.1-1", "var/lib/dpkg/status", "oldthing", "0.1-1"),
    ])


def test_debian_unfixed_entries_produce_findings_without_fix(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    try:
        with store.transaction() as conn:
            result = advisories.import_records(
                conn, advisories.read_bytes("DSA-list", LIST.encode()), "t", "t", NOW)
            assert result.keys == {("Debian:11", "libexample"), ("Debian:12", "libexample"),
                                   ("Debian:11", "oldthing")}
            lookup = advisories.Lookup(conn)
            bullseye = matcher.match(_debian_image("11"), lookup)
            bookworm = matcher.match(_debian_image("12"), lookup)
    finally:
        store.close()
    got = {(m.advisory_id, m.package.name, m.fixed) for m in bullseye}
    assert got == {("DSA-9001-1", "libexample1", None), ("DSA-9000-1", "oldthing", None)}
    assert {(m.advisory_id, m.fixed) for m in bookworm} == {("DSA-9001-1", "2.0-1+deb12u1")}
    statuses = {m.advisory_id: m.record["affected"][0].get("database_specific") for m in bullseye}
    assert statuses == {"DSA-9001-1": {"debian_status": "unfixed"},
                        "DSA-9000-1": {"debian_status": "end-of-life"}}


def test_debian_unfixed_entries_in_the_real_dsa_list():
    """The 2023 DSA list holds three release-form ``<unfixed>`` lines (all woody): each is now
    an ``introduced 0`` entry that matches any installed version, with no fix."""
    text = (vulndata() / "debian" / "DSA-list").read_text()
    unfixed = {(r["id"], a["package"]["ecosystem"], a["package"]["name"]): a
               for r in debian.convert(text) for a in r["affected"]
               if (a.get("database_specific") or {}).get("debian_status") == "unfixed"}
    assert set(unfixed) == {("DSA-880-1", "Debian:3.0", "phpmyadmin"),
                            ("DSA-866-1", "Debian:3.0", "mozilla"),
                            ("DSA-746-1", "Debian:3.0", "phpgroupware")}
    entry = unfixed[("DSA-880-1", "Debian:3.0", "phpmyadmin")]
    assert entry["ranges"] == [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
    assert osv.entry_affects(entry, "2.2.6-1", "Debian:3.0")
    assert osv.fixed_in([entry], "2.2.6-1", "Debian:3.0") is None


def test_invalid_versions_are_reported_in_the_image_notes():
    """Item 5's "reported as such": the matcher names each package it could not compare."""
    from corral.scan import matcher
    from corral.scan.inventory import ImageInventory
    from corral.scan.packages import Package

    inv = ImageInventory(None, [
        Package("python", "Django", "dev", "usr/lib/python3/site-packages/Django.dist-info"),
        Package("python", "requests", "2.31.0", "usr/lib/python3/site-packages/r.dist-info")])
    [(pkg, why)] = matcher.unmatched(inv)
    assert (pkg.name, pkg.version) == ("Django", "dev") and "PEP 440" in why


def test_invalid_version_is_reported_in_the_scan_status_end_to_end(tmp_path, django):
    """A Django ``dev`` install scanned through the real push and controller path: no finding,
    the per-package note in the inventory (and SBOM), and one line in the status description."""
    from tests.scan import layers as build
    from tests.scan.helpers import scan_in_process

    layer = build.tar_bytes({**build.dist_info("Django", "dev"),
                             **build.dist_info("requests", "2.31.0")})
    scanned = scan_in_process(tmp_path, [layer], django)
    assert scanned.status == "COMPLETE" and scanned.findings == []
    assert scanned.description == (
        "The scan was completed successfully. 1 packages have versions that are not valid in "
        "their scheme and match no advisory: Django dev.")
    [note] = [n for n in scanned.inventory["notes"] if "Django" in n]
    assert "python Django dev" in note and "not a valid PEP 440 version" in note
    sbom_notes = [p["value"] for p in scanned.sbom["metadata"]["properties"]]
    assert note in sbom_notes


@pytest.mark.parametrize("installed", ["2.2", "dev"])
def test_validity_is_checked_once_per_package_not_per_range(monkeypatch, django, installed):
    from corral.scan import versions

    seen: list[str] = []
    real = versions.VALIDATORS["pep440"]
    monkeypatch.setitem(versions.VALIDATORS, "pep440", lambda v: seen.append(v) or real(v))
    records = django + _from_zero("PyPI", "Django")
    found = _found("python", "Django", installed, records)
    assert bool(found) is (installed == "2.2")
    assert seen == [installed]  # once, whatever the number of advisories and ranges
