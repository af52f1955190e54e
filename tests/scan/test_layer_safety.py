"""Issue 17 items 3 and 11: layers with device nodes scan COMPLETE (the nodes skipped and
named), and hostile layers cost little — a decompression bomb stops on the ratio guard as
bytes stream, and a refused layer digest is remembered instead of being read again (while the
guard's limits stay the same) — while a real, mostly-zero layer is read."""

from __future__ import annotations

import io
import re
import tarfile

import pytest

from corral.app import build
from corral.config import Settings
from corral.scan import catalogers, inventory, layers
from tests.scan import layers as build_layers
from tests.scan.helpers import GZ_LAYER, scan_in_process

BOMB_SIZE = 3 << 30  # 3 GiB of zeros: ~3 MB of gzip, three times the ratio floor
MINIMIST = {"id": "CORRAL-T-17-3", "modified": "2026-01-01T00:00:00Z", "affected": [{
    "package": {"ecosystem": "npm", "name": "minimist"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.6"}]}]}]}


# --- item 3: device nodes ---------------------------------------------------------------

def _debootstrap_layer() -> bytes:
    files = {**build_layers.DEBIAN_12_OS, "dev": ("dir",),
             "var/lib/dpkg/status": build_layers.dpkg_status(
                 ("bash", "5.2.15-2+b2", None), ("libssl3", "3.0.11-1~deb12u2", "openssl"),
                 ("base-files", "12.4+deb12u5", None)),
             **build_layers.node_module("minimist", "1.2.0", "usr/share/app")}
    return build_layers.tar_bytes(files, raw_members=build_layers.DEBOOTSTRAP_DEV)


def test_debootstrap_layer_with_dev_entries_scans_complete(tmp_path):
    scanned = scan_in_process(tmp_path, [_debootstrap_layer()], [MINIMIST])
    assert scanned.status == "COMPLETE"
    assert scanned.description.startswith("The scan was completed successfully.")
    assert ("Skipped 7 device nodes and FIFOs (never created or opened): dev/null, dev/zero, "
            "dev/random, dev/tty, dev/console, …") in scanned.description
    names = {p["name"] for p in scanned.inventory["packages"]}
    assert names == {"bash", "libssl3", "base-files", "minimist"}
    assert scanned.inventory["os"]["id"] == "debian"
    assert scanned.findings == [("CORRAL-T-17-3", "minimist", "1.2.0")]
    notes = [p["value"] for p in scanned.sbom["metadata"]["properties"]
             if p["name"] == "corral:scan:note"]
    assert any("skipped 7 device nodes and FIFOs" in n and "dev/null" in n for n in notes)


def test_device_node_on_a_cataloged_path_replaces_the_lower_file():
    lower = build_layers.tar_bytes({"var/lib/dpkg/status": build_layers.dpkg_status(
        ("bash", "5.2", None))})
    upper = build_layers.tar_bytes({}, raw_members=[
        build_layers.special("var/lib/dpkg/status", tarfile.CHRTYPE, 1, 3)])
    docs = [(f"sha256:{i:064d}", inventory.layer_inventory(layers.read_layer(
        io.BytesIO(data), GZ_LAYER, catalogers.wanted))) for i, data in enumerate([lower, upper])]
    merged = inventory.merge(docs)
    assert merged.packages == []
    assert merged.skipped == {"count": 1, "names": ["var/lib/dpkg/status"]}


def test_one_limit_names_skipped_devices_in_layer_notes_and_the_status(monkeypatch):
    """layers.SPECIAL_NAMES caps the names everywhere (the merge once had its own copy), and
    the layer note and the status sentence are the same words."""
    monkeypatch.setattr(layers, "SPECIAL_NAMES", 2)
    docs = []
    for i, members in enumerate([build_layers.DEBOOTSTRAP_DEV[:3],
                                 build_layers.DEBOOTSTRAP_DEV[3:]]):
        data = build_layers.tar_bytes({}, raw_members=members)
        contents = layers.read_layer(io.BytesIO(data), GZ_LAYER, catalogers.wanted)
        docs.append((f"sha256:{i:064d}", inventory.layer_inventory(contents)))
    sentence = "skipped 3 device nodes and FIFOs (never created or opened): dev/null, dev/zero, …"
    assert docs[0][1]["notes"] == [sentence]
    merged = inventory.merge(docs)
    assert merged.skipped == {"count": 7, "names": ["dev/null", "dev/zero"]}
    assert merged.status_note == ("Skipped 7 device nodes and FIFOs (never created or opened): "
                                  "dev/null, dev/zero, ….")


HARMFUL = [
    pytest.param(build_layers.special("../dev/sda", tarfile.BLKTYPE, 8, 0),
                 "escapes the image root", id="device-dotdot"),
    pytest.param(build_layers.special("/dev/null", tarfile.CHRTYPE, 1, 3), "absolute path",
                 id="device-absolute"),
]


@pytest.mark.parametrize(("member", "reason"), HARMFUL)
def test_device_nodes_on_harmful_paths_are_still_refused(member, reason):
    data = build_layers.tar_bytes({}, raw_members=[member])
    with pytest.raises(layers.LayerError) as e:
        layers.read_layer(io.BytesIO(data), GZ_LAYER, catalogers.wanted)
    assert reason in e.value.reason


# --- item 11: hostile layers --------------------------------------------------------------

@pytest.fixture(scope="module")
def bomb() -> bytes:
    return build_layers.gzip_bomb(BOMB_SIZE)


def test_gzip_bomb_is_refused_quickly(bomb):
    assert len(bomb) < BOMB_SIZE // 500  # really a bomb: deflate's ~1,000:1
    raw = io.BytesIO(bomb)
    with pytest.raises(layers.LayerError) as e:
        layers.read_layer(raw, GZ_LAYER, catalogers.wanted)
    assert "decompression bomb guard" in e.value.reason
    assert f"expands more than {layers.MAX_RATIO} times" in e.value.reason
    assert e.value.status == "FAILED" and e.value.cacheable  # hostile input: a failed scan
    out = int(re.search(r": (\d+) bytes out of", e.value.reason)[1])
    assert out < layers.RATIO_FLOOR + (8 << 20)  # stopped just past the floor, not at 3 GiB
    assert raw.tell() < len(bomb) // 2  # most of the compressed stream was never read


def test_zstd_bomb_is_refused_by_the_same_guard():
    import zstandard  # a project dependency: missing means a broken install, not a skip

    info = tarfile.TarInfo("zeros")
    info.size = layers.RATIO_FLOOR + (256 << 20)
    buf, chunk = io.BytesIO(), bytes(1 << 20)
    with zstandard.ZstdCompressor().stream_writer(buf, closefd=False) as w:
        w.write(info.tobuf(tarfile.PAX_FORMAT))
        for _ in range(info.size >> 20):
            w.write(chunk)
    with pytest.raises(layers.LayerError) as e:
        layers.read_layer(io.BytesIO(buf.getvalue()),
                          "application/vnd.oci.image.layer.v1.tar+zstd", catalogers.wanted)
    assert "decompression bomb guard" in e.value.reason


def test_compressible_layer_below_the_ratio_floor_is_read():
    zeros = build_layers.gzip_bomb(32 << 20, "var/lib/zeros.img")  # ~1000:1 but small
    extra = build_layers.tar_bytes(build_layers.dist_info("idna", "2.7"))
    for data in (zeros, extra):
        layers.read_layer(io.BytesIO(data), GZ_LAYER, catalogers.wanted)  # no LayerError


def test_sparse_lastlog_layer_above_the_old_floor_scans_complete(tmp_path):
    """``useradd -u 1000000`` writes a 292 MB all-zero /var/log/lastlog that gzip packs into
    ~284 KB (~1,000x): a real layer, which the old 64 MiB floor refused as a bomb."""
    lastlog = build_layers.gzip_bomb(292_000_000, "var/log/lastlog", extra={
        "etc/os-release": build_layers.DEBIAN_12_OS["usr/lib/os-release"],
        "var/lib/dpkg/status": build_layers.dpkg_status(("bash", "5.2.15-2+b2", None)),
        **build_layers.node_module("minimist", "1.2.0", "usr/share/app")})
    assert 292_000_000 > 64 << 20 and len(lastlog) < 400_000
    scanned = scan_in_process(tmp_path, [lastlog], [MINIMIST])
    assert scanned.status == "COMPLETE", scanned.description
    assert {p["name"] for p in scanned.inventory["packages"]} == {"bash", "minimist"}
    assert scanned.findings == [("CORRAL-T-17-3", "minimist", "1.2.0")]


@pytest.fixture
def scanner(tmp_path):
    corral = build(Settings(data_dir=tmp_path))
    yield next(c for c in corral.controllers if c.name == "scanner").scanner
    corral.store.close()


@pytest.fixture
def small_bomb(monkeypatch) -> bytes:
    """A 64 MiB bomb, refused under a 16 MiB ratio floor (the real floor's bombs are slow)."""
    monkeypatch.setattr(layers, "RATIO_FLOOR", 16 << 20)
    return build_layers.gzip_bomb(64 << 20, extra=build_layers.dist_info("idna", "2.7"))


def test_refused_layer_is_not_rescanned(scanner, small_bomb):
    digest = scanner.blobs.put(small_bomb)
    with pytest.raises(layers.LayerError) as first:
        scanner.layer(digest, GZ_LAYER)
    assert "decompression bomb guard" in first.value.reason
    # The blob is gone: any attempt to read it again would fail differently.
    scanner.blobs.delete(digest)
    assert scanner.blobs.size(digest) is None
    with pytest.raises(layers.LayerError) as again:
        scanner.layer(digest, GZ_LAYER)
    assert again.value.reason == first.value.reason
    assert again.value.status == "FAILED"


def test_a_refusal_made_under_other_guard_limits_is_read_again(scanner, small_bomb, monkeypatch):
    """Tuning the guard (here: the floor back to its default) invalidates cached refusals."""
    digest = scanner.blobs.put(small_bomb)
    with pytest.raises(layers.LayerError):
        scanner.layer(digest, GZ_LAYER)
    monkeypatch.undo()  # the real limits: a 64 MiB layer is under the floor
    assert layers.RATIO_FLOOR == 1 << 30
    inv = scanner.layer(digest, GZ_LAYER)
    assert [p["name"] for f in inv["files"].values() for p in f["packages"]] == ["idna"]
    scanner.blobs.delete(digest)  # the cached inventory replaced the stale refusal
    assert scanner.layer(digest, GZ_LAYER) == inv


def test_refusals_that_may_not_recur_are_not_cached(scanner):
    data = build_layers.tar_bytes(build_layers.dist_info("idna", "2.7"))
    digest = scanner.blobs.put(data)
    with pytest.raises(layers.LayerError) as e:  # the media type is the manifest's, not the blob's
        scanner.layer(digest, "application/vnd.example.weird")
    assert e.value.status == "UNSUPPORTED_IMAGE" and not e.value.cacheable
    inv = scanner.layer(digest, GZ_LAYER)
    assert [p["name"] for f in inv["files"].values() for p in f["packages"]] == ["idna"]
