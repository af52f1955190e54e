"""Catalogers against real package metadata (the shared vulndata inventories) and against
layers the tests build, including whiteouts that delete packages."""

from __future__ import annotations

import csv
import io
import json
import tarfile

import pytest

from corral.scan import catalogers, inventory, layers
from corral.scan.catalogers import dpkg, gobinary, npm, os_release, python, rpm
from tests.scan import layers as build
from tests.scan.vulndata import vulndata

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def _inventory(*layer_entries, compress="gzip", media_type=GZ):
    docs = []
    for i, entries in enumerate(layer_entries):
        data = build.tar_bytes(entries, compress=compress)
        contents = layers.read_layer(io.BytesIO(data), media_type, catalogers.wanted)
        docs.append((f"sha256:{i:064d}", inventory.layer_inventory(contents)))
    return inventory.merge(docs)


@pytest.mark.parametrize("inv", ["debian-12-host", "debian-12-minbase"])
def test_dpkg_status_of_real_debian_systems(inv):
    root = vulndata() / "inventories" / inv
    found = {(p.name, p.version, p.source_name, p.source_version)
             for p in dpkg.parse("var/lib/dpkg/status", (root / "status").read_bytes())}
    with open(root / "packages.tsv") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    expected = {(r[0], r[1], r[3], r[4]) for r in rows if r[5].startswith("ii")}
    assert found == expected
    assert len(found) > 50


def test_python_dist_info_of_real_wheels():
    root = vulndata() / "inventories" / "python-old"
    expected = json.loads((root / "expected.json").read_text())["inventory"]
    for item in expected:
        pkgs = python.parse(item["file"], (root / item["file"]).read_bytes())
        assert [(p.name, p.version) for p in pkgs] == [(item["name"], item["version"])]


def test_npm_package_json_of_real_packages():
    root = vulndata() / "inventories" / "npm-old"
    expected = json.loads((root / "expected.json").read_text())["inventory"]
    for item in expected:
        assert npm.matches(item["file"])
        pkgs = npm.parse(item["file"], (root / item["file"]).read_bytes())
        assert [(p.name, p.version) for p in pkgs] == [(item["name"], item["version"])]


@pytest.mark.parametrize(("path", "wanted"), [
    ("var/lib/dpkg/status", True), ("var/lib/dpkg/status.d/base", True),
    ("var/lib/dpkg/status.d/base.md5sums", False), ("lib/apk/db/installed", True),
    ("usr/lib/sysimage/rpm/rpmdb.sqlite", True), ("var/lib/rpm/Packages", True),
    ("usr/lib/python3.11/site-packages/Django-2.2.dist-info/METADATA", True),
    ("app/node_modules/lodash/package.json", True), ("app/node_modules/@babel/core/package.json", True),
    ("app/package.json", False), ("app/node_modules/lodash/fp/package.json", False),
    ("etc/os-release", True), ("usr/bin/python3", False),
    ("var/lib/dpkg/info/python3-pip.list", True), ("var/lib/dpkg/info/bash.md5sums", False),
])
def test_wanted_paths(path, wanted):
    assert catalogers.wanted(path) is wanted


def test_os_file_lists_keep_only_language_package_metadata():
    parsed = catalogers.parse("var/lib/dpkg/info/python3-pip:amd64.list", build.dpkg_list(
        "/.", "/usr/bin/pip3", "/usr/lib/python3/dist-packages/pip/__init__.py",
        "/usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA",
        "/usr/share/java/foo.jar", "/usr/share/nodejs/node_modules/x/package.json"))
    assert parsed.packages == []
    assert parsed.owns == [{"type": "deb", "name": "python3-pip", "paths": [
        "usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA", "usr/share/java/foo.jar",
        "usr/share/nodejs/node_modules/x/package.json"]}]


@pytest.mark.parametrize(("info", "ecosystem", "platform"), [
    ({"id": "debian", "version_id": "12"}, "Debian:12", "DEBIAN_12"),
    ({"id": "ubuntu", "version_id": "22.04", "version": "22.04.3 LTS (Jammy Jellyfish)"},
     "Ubuntu:22.04:LTS", "UBUNTU_22"),
    ({"id": "ubuntu", "version_id": "23.10", "version": "23.10 (Mantic Minotaur)"},
     "Ubuntu:23.10", "UBUNTU_23"),
    ({"id": "alpine", "version_id": "3.19.1"}, "Alpine:v3.19", "ALPINE_3_19"),
])
def test_os_ecosystems(info, ecosystem, platform):
    assert os_release.ecosystem(info) == ecosystem
    assert os_release.platform(info) == platform


def test_real_os_release_of_debian_12():
    data = (vulndata() / "inventories" / "debian-12-minbase" / "os-release").read_bytes()
    info = os_release.parse("etc/os-release", data)
    assert os_release.ecosystem(info) == "Debian:12"


def test_image_of_layers_with_dpkg_python_npm_and_os_symlink():
    inv = _inventory(
        {**build.DEBIAN_12_OS, "var/lib/dpkg/status": build.dpkg_status(
            ("bash", "5.2.15-2+b2", None), ("libssl3", "3.0.11-1~deb12u2", "openssl"))},
        {**build.dist_info("Django", "2.2"), **build.node_module("lodash", "4.17.15")},
    )
    assert inv.os_ecosystem == "Debian:12"
    by_name = {p.name: p for p in inv.packages}
    assert set(by_name) == {"bash", "libssl3", "Django", "lodash"}
    assert by_name["libssl3"].source_name == "openssl"
    assert by_name["libssl3"].source_version == "3.0.11-1~deb12u2"
    assert by_name["bash"].layer == "sha256:" + "0" * 64
    assert by_name["Django"].layer == "sha256:" + "0" * 63 + "1"


def test_later_layer_whiteout_removes_a_package():
    inv = _inventory(
        {**build.dist_info("Django", "2.2"), **build.dist_info("idna", "2.7")},
        {"usr/lib/python3/site-packages/.wh.Django-2.2.dist-info": b""},
    )
    assert [p.name for p in inv.packages] == ["idna"]


def test_opaque_directory_hides_lower_layers_but_not_its_own_layer():
    inv = _inventory(
        {**build.node_module("lodash", "4.17.15"), **build.node_module("qs", "6.5.2")},
        {"app/node_modules/.wh..wh..opq": b"", **build.node_module("qs", "6.11.0")},
    )
    assert [(p.name, p.version) for p in inv.packages] == [("qs", "6.11.0")]


def test_rewritten_dpkg_status_keeps_origin_layer_and_drops_removed_packages():
    inv = _inventory(
        {"var/lib/dpkg/status": build.dpkg_status(("bash", "5.2", None), ("curl", "7.88", None))},
        {"var/lib/dpkg/status": build.dpkg_status(("bash", "5.2", None), ("jq", "1.6", None))},
    )
    got = {p.name: p.layer[-1] for p in inv.packages}
    assert got == {"bash": "0", "jq": "1"}


def test_apk_origin_is_the_source_package():
    inv = _inventory({**build.ALPINE_OS, "lib/apk/db/installed": build.apk_installed(
        ("libcrypto1.1", "1.1.1k-r0", "openssl"), ("musl", "1.1.22-r4", "musl"))})
    assert inv.os_ecosystem == "Alpine:v3.10"
    assert {(p.name, p.source_name) for p in inv.packages} == {
        ("libcrypto1.1", "openssl"), ("musl", "musl")}


def test_zstd_and_plain_tar_layers():
    for compress, media in (("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
                            ("none", "application/vnd.oci.image.layer.v1.tar")):
        inv = _inventory(build.dist_info("idna", "2.7"), compress=compress, media_type=media)
        assert [p.name for p in inv.packages] == ["idna"]


def _rpm_header(tags: dict[int, str | int]) -> bytes:
    import struct
    index, store = b"", b""
    for tag, value in tags.items():
        if isinstance(value, int):
            while len(store) % 4:
                store += b"\0"
            index += struct.pack(">IIiI", tag, rpm.INT32, len(store), 1)
            store += struct.pack(">i", value)
        else:
            index += struct.pack(">IIiI", tag, rpm.STRING, len(store), 1)
            store += value.encode() + b"\0"
    return struct.pack(">II", len(tags), len(store)) + index + store


def test_rpm_sqlite_database(tmp_path):
    import sqlite3
    db = tmp_path / "rpmdb.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (_rpm_header({
        rpm.NAME: "openssl-libs", rpm.VERSION: "3.0.7", rpm.RELEASE: "24.el9", rpm.EPOCH: 1,
        rpm.ARCH: "x86_64", rpm.SOURCERPM: "openssl-3.0.7-24.el9.src.rpm"}),))
    conn.commit()
    conn.close()
    [pkg] = rpm.parse("var/lib/rpm/rpmdb.sqlite", db.read_bytes())
    assert (pkg.name, pkg.version, pkg.source_name, pkg.source_version, pkg.arch) == (
        "openssl-libs", "1:3.0.7-24.el9", "openssl", "1:3.0.7-24.el9", "x86_64")


# --- bad layers: every one ends in a LayerError with a reason, nothing is written ---------
# (device nodes are not bad: they are skipped and noted, see test_layer_safety.py)

def _member(name: str, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


BAD = [
    pytest.param(b"\x1f\x8b\x08\x00garbage-after-gzip-magic", GZ, "not a readable", id="corrupt-gzip"),
    pytest.param(build.tar_bytes({}, raw_members=[_member("../../etc/passwd", 4)]), GZ,
                 "escapes the image root", id="dotdot"),
    pytest.param(build.tar_bytes({}, raw_members=[_member("/etc/passwd", 4)]), GZ,
                 "absolute path", id="absolute"),
    pytest.param(build.tar_bytes({"x": b"1"}), "application/vnd.example.unknown", "unsupported layer media type",
                 id="unknown-media-type"),
]


@pytest.mark.parametrize(("data", "media_type", "reason"), BAD)
def test_bad_layers_fail_with_a_reason(data, media_type, reason):
    with pytest.raises(layers.LayerError) as e:
        layers.read_layer(io.BytesIO(data), media_type, catalogers.wanted)
    assert reason in e.value.reason


def test_unknown_media_type_is_unsupported_not_failed():
    with pytest.raises(layers.LayerError) as e:
        layers.read_layer(io.BytesIO(b""), "application/x-foo", catalogers.wanted)
    assert e.value.status == "UNSUPPORTED_IMAGE"


def test_huge_size_claim_without_data_is_a_truncated_layer():
    header = _member("var/lib/dpkg/status", 10 * 1024**3).tobuf(tarfile.PAX_FORMAT)
    data = __import__("gzip").compress(header + b"Package: x\n")
    with pytest.raises(layers.LayerError) as e:
        layers.read_layer(io.BytesIO(data), GZ, catalogers.wanted)
    assert "truncated" in e.value.reason or "not a readable" in e.value.reason


def test_decompression_bomb_guard():
    data = build.tar_bytes({"big": b"\0" * (4 << 20)})
    with pytest.raises(layers.LayerError) as e:
        layers.read_layer(io.BytesIO(data), GZ, catalogers.wanted, max_uncompressed=1 << 20)
    assert "decompression bomb" in e.value.reason


def test_symlink_loop_fails_the_merge():
    with pytest.raises(layers.LayerError) as e:
        _inventory({"etc/os-release": ("link", "../usr/lib/os-release"),
                    "usr/lib/os-release": ("link", "../../etc/os-release")})
    assert "symlink loop" in e.value.reason


def _jar(entries: dict[str, bytes]) -> bytes:
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_java_archives_with_pom_properties_and_nested_jars():
    inner = _jar({"META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties":
                  b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n"})
    app = _jar({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
                "BOOT-INF/lib/log4j-core-2.14.1.jar": inner})
    inv = _inventory({"opt/app/app.jar": app})
    [pkg] = inv.packages
    assert (pkg.name, pkg.version, pkg.type) == ("org.apache.logging.log4j:log4j-core", "2.14.1",
                                                 "java-archive")
    assert pkg.path == "opt/app/app.jar:BOOT-INF/lib/log4j-core-2.14.1.jar"
    assert inv.ecosystem_of(pkg) == "Maven"


def test_go_binary_build_info_with_replacement_and_stdlib():
    binary = build.go_binary("go1.20.1", [
        "path\texample.com/app", "mod\texample.com/app\t(devel)\t",
        "dep\tgolang.org/x/net\tv0.7.0\th1:abc=",
        "dep\tgithub.com/old/lib\tv1.0.0\th1:def=", "=>\tgithub.com/new/lib\tv1.2.3\th1:ghi=",
        "build\t-compiler=gc"])
    inv = _inventory({"usr/local/bin/app": ("exec", binary), "usr/bin/script": ("exec", b"#!/bin/sh\n" * 200)})
    got = {(p.name, p.version) for p in inv.packages}
    assert got == {("golang.org/x/net", "v0.7.0"), ("github.com/new/lib", "v1.2.3"),
                   ("stdlib", "v1.20.1")}
    assert {inv.ecosystem_of(p) for p in inv.packages} == {"Go"}


# An rpm header whose tags have the wrong types (a damaged rpmdb): the package is still read,
# its file list is empty, and the scan goes on (once a TypeError / AttributeError escaped).
DAMAGED_RPM_HEADERS = [
    pytest.param({1118: [5, 6], 1117: ["a"], 1116: [0]}, id="dirnames-int32"),
    pytest.param({1118: ["/usr/"], 1117: [1, 2], 1116: [0]}, id="basenames-int32"),
    pytest.param({1118: ["/usr/"], 1117: ["a"], 1116: ["x"]}, id="dirindexes-strings"),
    pytest.param({1118: "/usr/", 1117: ["a"], 1116: [0]}, id="dirnames-a-string"),
    pytest.param({1027: [1, 2]}, id="oldfilenames-int32"),
    pytest.param({1027: "usr/bin/a"}, id="oldfilenames-a-string"),
]


@pytest.mark.parametrize("file_tags", DAMAGED_RPM_HEADERS)
def test_damaged_rpm_file_tags_give_the_package_without_files(file_tags):
    header = build.rpm_header({1000: "x", 1001: "1", 1002: "1", **file_tags})
    good = build.rpm_header({1000: "y", 1001: "2", 1002: "1", 1027: ["/usr/bin/y"]})
    got = catalogers.parse("var/lib/rpm/rpmdb.sqlite", build.rpmdb(header, good))
    assert [(p.name, p.version) for p in got.packages] == [("x", "1-1"), ("y", "2-1")]
    assert got.notes == [] and got.owns == []


def test_rpm_and_other_catalogers_share_one_set_of_parse_errors(monkeypatch):
    """A parser error any cataloger turns into a note, the rpm one does too."""
    for kind in catalogers.PARSE_ERRORS:
        error = (kind("utf-8", b"\xff", 0, 1, "damaged") if kind is UnicodeDecodeError
                 else kind("damaged"))

        def broken(path, data, error=error):
            raise error
        monkeypatch.setattr(rpm, "catalog", broken)
        [note] = catalogers.parse("var/lib/rpm/rpmdb.sqlite", b"").notes
        assert note.startswith(f"var/lib/rpm/rpmdb.sqlite: {kind.__name__}: ")


@pytest.mark.parametrize(("tag", "expected"), [
    ("go1.21rc2", "v1.21.0-rc.2"), ("go1.9beta1", "v1.9.0-beta.1"), ("go1.20", "v1.20.0"),
    ("go1.20.1", "v1.20.1"), ("go1.21.0", "v1.21.0"), ("go1", "v1.0.0"), ("go1.0", ""),
    ("go1.21.0 X:boringcrypto", "v1.21.0"), ("go1.21.5-bigcorp", "v1.21.5"),
    ("devel go1.22-2b8a2d7 Tue Sep 5", ""), ("", ""),
])
def test_go_toolchain_tags_become_semver_as_x_vuln_writes_them(tag, expected):
    """x/vuln internal/semver GoTagToSemver (pkgsite's VersionForTag)."""
    assert gobinary.go_tag_to_semver(tag) == expected


def test_go_release_candidate_toolchain_matches_stdlib_advisories():
    """GO-2023-1987 (CVE-2023-29409) is fixed in 1.21.0-rc.4: a binary built with go1.21rc2
    is affected; its stdlib version was once v1.21rc2, invalid, so it matched nothing."""
    from corral.scan import advisories, matcher

    binary = build.go_binary("go1.21rc2", ["path\texample.com/app"])
    inv = _inventory({"usr/local/bin/app": ("exec", binary)})
    [stdlib] = [p for p in inv.packages if p.name == "stdlib"]
    assert stdlib.version == "v1.21.0-rc.2"
    records = [r for r in advisories.read_records(vulndata() / "osv" / "Go.jsonl")
               if r["id"] == "GO-2023-1987"]
    assert [m.advisory_id for m in matcher.match(inv, lambda eco, name: records)] == [
        "GO-2023-1987"]
