"""Issue 17 item 4: language packages an OS package installed are attributed to it and not
matched against the language ecosystem (Syft's ownership-by-file-overlap, Grype's rule);
the same packages installed by pip elsewhere are matched. Advisories are the real PyPI OSV
records for pip and setuptools from the shared vulndata."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from corral.scan import catalogers, inventory, layers, matcher, packages, sbom
from tests.scan import layers as build
from tests.scan.helpers import scan_in_process
from tests.scan.vulndata import vulndata

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
SETUPTOOLS_DEB = "deb:python3-setuptools@66.1.1-1+deb12u2"  # owned_by: the owner's Package.ref
PIP_DEB = "deb:python3-pip@23.0.1+dfsg-1"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
DIST = "usr/lib/python3/dist-packages"
LOCAL = "usr/local/lib/python3.11/dist-packages"
# Every record of the vulndata snapshot that affects these versions upstream (PYSEC ids; the
# first two are the confirmed false positives, CVE-2025-47273 and CVE-2024-6345).
SETUPTOOLS_66_1_1 = {"PYSEC-2025-49", "PYSEC-2026-1918", "PYSEC-2026-3447"}
PIP_23_0_1 = {"PYSEC-2023-228", "PYSEC-2026-1795", "PYSEC-2026-1796", "PYSEC-2026-196",
              "PYSEC-2026-2875", "PYSEC-2026-2876"}


@pytest.fixture(scope="module")
def pypi_records() -> list[dict]:
    """The real OSV records naming pip or setuptools (lines prefiltered before parsing)."""
    out = []
    with open(vulndata() / "osv" / "PyPI.jsonl") as f:
        for line in f:
            if '"name":"pip"' in line or '"name":"setuptools"' in line:
                out.append(json.loads(line))
    ids = {r["id"] for r in out}
    assert ids >= SETUPTOOLS_66_1_1 | PIP_23_0_1, "vulndata lacks the expected PYSEC records"
    return out


def _debian_12(python_root: str) -> dict:
    """A Debian 12 layer: dpkg installed python3-setuptools and python3-pip (status and .list
    files naming their metadata under /usr/lib/python3/dist-packages); the Python metadata
    itself is written under ``python_root``."""
    status = build.dpkg_status(
        ("python3-setuptools", "66.1.1-1+deb12u2", "setuptools"),
        ("python3-pip", "23.0.1+dfsg-1", "python-pip"), ("bash", "5.2.15-2+b2", None))
    setuptools = f"/{DIST}/setuptools-66.1.1.egg-info"
    pip = f"/{DIST}/pip-23.0.1.dist-info"
    return {
        **build.DEBIAN_12_OS, "var/lib/dpkg/status": status,
        "var/lib/dpkg/info/python3-setuptools.list": build.dpkg_list(
            "/.", "/usr", f"/{DIST}", f"/{DIST}/setuptools", f"/{DIST}/setuptools/__init__.py",
            setuptools, f"{setuptools}/PKG-INFO", f"{setuptools}/top_level.txt"),
        "var/lib/dpkg/info/python3-pip.list": build.dpkg_list(
            "/.", f"/{DIST}/pip", pip, f"{pip}/METADATA", f"{pip}/RECORD"),
        "var/lib/dpkg/info/bash.list": build.dpkg_list("/.", "/bin", "/bin/bash"),
        **build.python_metadata(python_root, "setuptools", "66.1.1", egg=True),
        **build.python_metadata(python_root, "pip", "23.0.1"),
    }


def _python(scanned) -> dict[str, dict]:
    return {p["name"]: p for p in scanned.inventory["packages"] if p["type"] == "python"}


def test_dpkg_owned_python_packages_get_no_pypi_findings(tmp_path, pypi_records):
    scanned = scan_in_process(tmp_path, [build.tar_bytes(_debian_12(DIST))], pypi_records)
    assert scanned.status == "COMPLETE", scanned.description
    assert scanned.findings == []
    owned = _python(scanned)
    assert owned["setuptools"]["owned_by"] == SETUPTOOLS_DEB
    assert owned["pip"]["owned_by"] == PIP_DEB
    # Still in the SBOM, inside the OS package that installed it (a CycloneDX assembly).
    by_name = {c["name"]: c for c in scanned.sbom["components"]}
    assert "setuptools" not in by_name and "pip" not in by_name
    [nested] = by_name["python3-setuptools"]["components"]
    assert nested["purl"] == "pkg:pypi/setuptools@66.1.1"
    assert [c["purl"] for c in by_name["python3-pip"]["components"]] == ["pkg:pypi/pip@23.0.1"]


def test_pip_installed_packages_in_usr_local_get_pypi_findings(tmp_path, pypi_records):
    scanned = scan_in_process(tmp_path, [build.tar_bytes(_debian_12(LOCAL))], pypi_records)
    assert scanned.status == "COMPLETE", scanned.description
    got = {(name, advisory) for advisory, name, _ in scanned.findings}
    assert got == {("setuptools", a) for a in SETUPTOOLS_66_1_1} | {
        ("pip", a) for a in PIP_23_0_1}
    assert {p.get("owned_by") for p in _python(scanned).values()} == {None}


def _merged(*layer_entries: dict) -> inventory.ImageInventory:
    docs = []
    for i, entries in enumerate(layer_entries):
        contents = layers.read_layer(io.BytesIO(build.tar_bytes(entries)), GZ, catalogers.wanted)
        docs.append((f"sha256:{i:064d}", inventory.layer_inventory(contents)))
    return inventory.merge(docs)


def _owners(inv: inventory.ImageInventory) -> dict[str, str]:
    """{"name@version": owner} of the language packages ("" when not owned)."""
    return {f"{p.name}@{p.version}": p.owned_by for p in inv.packages
            if p.type not in packages.OS_TYPES}


def _rpm_layer() -> dict:
    header = build.rpm_header({
        1000: "python3-setuptools", 1001: "53.0.0", 1002: "13.el9", 1022: "noarch",
        1044: "python-setuptools-53.0.0-13.el9.src.rpm",
        1118: ["/usr/lib/python3.9/site-packages/", "/usr/lib/python3.9/site-packages/"
               "setuptools-53.0.0.dist-info/"],
        1117: ["setuptools", "METADATA"], 1116: [0, 1]})
    return {"var/lib/rpm/rpmdb.sqlite": build.rpmdb(header),
            **build.python_metadata("usr/lib/python3.9/site-packages", "setuptools", "53.0.0")}


OWNERSHIP = [
    pytest.param([{**build.ALPINE_OS, "lib/apk/db/installed": (
        b"P:py3-setuptools\nV:70.3.0-r0\no:py3-setuptools\nA:noarch\n"
        b"F:usr/lib/python3.12/site-packages/setuptools-70.3.0.dist-info\nR:METADATA\nR:RECORD\n"
        b"\n"), **build.python_metadata("usr/lib/python3.12/site-packages", "setuptools",
                                         "70.3.0")}],
        {"setuptools@70.3.0": "apk:py3-setuptools@70.3.0-r0"}, id="apk-R-lines"),
    pytest.param([_rpm_layer()], {"setuptools@53.0.0": "rpm:python3-setuptools@53.0.0-13.el9"},
                 id="rpm-file-arrays"),
    pytest.param([{"var/lib/dpkg/status": build.dpkg_status(("node-lodash", "4.17.21+dfsg-1",
                                                             None)),
                   "var/lib/dpkg/info/node-lodash.list": build.dpkg_list(
                       "/usr/share/nodejs/node_modules/lodash/package.json"),
                   **build.node_module("lodash", "4.17.21", "usr/share/nodejs")}],
                 {"lodash@4.17.21": "deb:node-lodash@4.17.21+dfsg-1"}, id="dpkg-npm"),
    pytest.param([{**_debian_12(DIST), "var/lib/dpkg/info/python3-pip:amd64.list":
                   build.dpkg_list(f"/{DIST}/pip-23.0.1.dist-info/METADATA")}],
                 {"setuptools@66.1.1": SETUPTOOLS_DEB,
                  "pip@23.0.1": PIP_DEB}, id="dpkg-multiarch-list-name"),
    # pip upgraded over the distro package: a new dist-info no OS package lists.
    pytest.param([_debian_12(DIST), build.python_metadata(DIST, "setuptools", "70.0.0")],
                 {"setuptools@66.1.1": SETUPTOOLS_DEB, "setuptools@70.0.0": ""},
                 id="pip-upgrade-beside-distro-copy-is-not-owned"),
    # The file is listed but the versions disagree: not the same software (Grype's guard).
    pytest.param([{**_debian_12(DIST), **build.python_metadata(DIST, "pip", "23.0"),
                   "var/lib/dpkg/info/python3-pip.list": build.dpkg_list(
                       f"/{DIST}/pip-23.0.dist-info/METADATA")}],
                 {"setuptools@66.1.1": SETUPTOOLS_DEB, "pip@23.0": ""},
                 id="version-mismatch"),
    # apt-get purge: status no longer lists it, its .list is gone, the files stay behind.
    pytest.param([_debian_12(DIST), {
        "var/lib/dpkg/status": build.dpkg_status(("bash", "5.2.15-2+b2", None)),
        "var/lib/dpkg/info/.wh.python3-setuptools.list": b"",
        "var/lib/dpkg/info/.wh.python3-pip.list": b""}],
        {"setuptools@66.1.1": "", "pip@23.0.1": ""}, id="os-package-removed-in-a-later-layer"),
]


@pytest.mark.parametrize(("layer_entries", "expected"), OWNERSHIP)
def test_ownership_by_file_overlap(layer_entries, expected):
    got = _owners(_merged(*layer_entries))
    for key, owner in expected.items():
        assert key in got and got[key] == owner, (key, got)


def test_pip_upgrade_beside_distro_copy_matches_only_the_upgrade():
    inv = _merged(_debian_12(DIST), build.python_metadata(DIST, "setuptools", "70.0.0"))
    lookup_seen: list[tuple[str, str]] = []

    def lookup(eco: str, name: str) -> list[dict]:
        lookup_seen.append((eco, name))
        return [{"id": "T-1", "affected": [{"package": {"ecosystem": "PyPI",
                                                         "name": "setuptools"},
                                             "ranges": [{"type": "ECOSYSTEM", "events": [
                                                 {"introduced": "0"}, {"fixed": "99"}]}]}]}]

    found = matcher.match(inv, lookup)
    assert [(m.package.name, m.package.version) for m in found] == [("setuptools", "70.0.0")]
    assert ("PyPI", "pip") not in lookup_seen  # owned: never looked up


@pytest.mark.parametrize("other", ["40.0.0-1.el9", "60.0.0-1.el9"], ids=["older", "newer"])
def test_owner_is_one_package_when_two_share_type_and_name(other):
    """Two python3-setuptools in one rpmdb (an installonly-style duplicate) both listing the
    metadata: the owner is the one whose version is the language package's, and the SBOM nests
    it under that same package (the merge and the SBOM once picked different ones)."""
    def header(version: str, release: str) -> bytes:
        return build.rpm_header({
            1000: "python3-setuptools", 1001: version, 1002: release, 1022: "noarch",
            1118: ["/usr/lib/python3.9/site-packages/setuptools-53.0.0.dist-info/"],
            1117: ["METADATA"], 1116: [0]})
    version, release = other.split("-")
    inv = _merged({"var/lib/rpm/rpmdb.sqlite": build.rpmdb(header(version, release),
                                                            header("53.0.0", "13.el9")),
                   **build.python_metadata("usr/lib/python3.9/site-packages", "setuptools",
                                           "53.0.0")})
    assert _owners(inv) == {"setuptools@53.0.0": "rpm:python3-setuptools@53.0.0-13.el9"}
    doc = sbom.cyclonedx(inv, "img", "sha256:" + "0" * 64, NOW)
    nesting = {c["version"]: [n["name"] for n in c.get("components", [])]
               for c in doc["components"] if c["name"] == "python3-setuptools"}
    assert nesting == {"53.0.0-13.el9": ["setuptools"], other: []}
    spdx = sbom.spdx(inv, "img", "sha256:" + "0" * 64, NOW)
    by_ref = {p["SPDXID"]: p for p in spdx["packages"]}
    [contains] = [r for r in spdx["relationships"] if r["spdxElementId"] != "SPDXRef-image"
                  and r["relationshipType"] == "CONTAINS"]
    assert by_ref[contains["spdxElementId"]]["versionInfo"] == "53.0.0-13.el9"
    assert by_ref[contains["relatedSpdxElement"]]["name"] == "setuptools"


def test_os_package_types_are_defined_once():
    assert inventory.OS_TYPES is packages.OS_TYPES and matcher.OS_TYPES is packages.OS_TYPES
