"""The layer cache: hostile layers refused with nothing written outside, whiteouts in
overlayfs form, the copy fallback, a real overlayfs mount, and unpack-once under concurrency."""

from __future__ import annotations

import gzip
import io
import multiprocessing
import os
import stat
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import zstandard

from corral.runtime.unpack import OPAQUE, LayerCache, UnpackError, flatten
from tests.runtime.imagebuild import OCI_LAYER, busybox_layer, make_layer, sha256

REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
PLAIN_LAYER = "application/vnd.oci.image.layer.v1.tar"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the layer cache tests need root (owners, device whiteouts, trusted.* "
                    "xattrs, overlayfs): run them as root, as CI does")


@pytest.fixture
def place(tmp_path):
    """(cache, outside dir with one file, blob writer); checks nothing escaped afterwards."""
    require_root()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_bytes(b"original")
    cache = LayerCache(tmp_path / "cache")

    def blob(data: bytes) -> tuple[str, Path]:
        path = tmp_path / "blobs" / sha256(data).split(":")[1]
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return sha256(data), path

    yield cache, outside, blob
    assert sorted(p.name for p in outside.iterdir()) == ["target"]
    assert (outside / "target").read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) <= ["blobs", "cache", "outside"]
    assert list((cache.root / "tmp").iterdir()) == []


def raw_tar(infos: list[tuple[tarfile.TarInfo, bytes | None]], *, pad: bool = True) -> bytes:
    """A tar written member by member (names, sizes and owners exactly as given)."""
    buf = io.BytesIO()
    for info, data in infos:
        buf.write(info.tobuf(tarfile.PAX_FORMAT))
        if data:
            buf.write(data + b"\0" * (-len(data) % 512))
    if pad:
        buf.write(b"\0" * 1024)
    return buf.getvalue()


def info(name: str, kind: bytes = REG, size: int = 0, **attrs) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode = kind, size, attrs.pop("mode", 0o644)
    for k, v in attrs.items():
        setattr(ti, k, v)
    return ti


def unpack_gz(cache: LayerCache, blob, tar: bytes) -> Path:
    digest, path = blob(gzip.compress(tar, mtime=0))
    return cache.unpack(digest, OCI_LAYER, path)


# --- hostile layers ------------------------------------------------------------------------

def _hostile(outside: Path) -> list[tuple[str, bytes]]:
    """(id, compressed layer) — each must be refused; ``outside`` is where an escape lands."""
    out = str(outside)
    entries = {
        "dotdot-escape": [("../outside/evil", b"x", 0o644, REG, "")],
        "dotdot-in-the-middle": [("a/../../outside/evil", b"x", 0o644, REG, "")],
        "symlink-then-write-through": [("esc", b"", 0o777, SYM, out),
                                       ("esc/evil", b"x", 0o644, REG, "")],
        "relative-symlink-write-through": [("up", b"", 0o777, SYM, "../../../../outside"),
                                           ("up/evil", b"x", 0o644, REG, "")],
        "symlink-dir-then-target-overwrite": [("esc", b"", 0o777, SYM, out),
                                              ("esc/target", b"pwned", 0o644, REG, "")],
        "hardlink-dotdot-out": [("h", b"", 0o644, LNK, "../outside/target")],
        "hardlink-absolute-out": [("h", b"", 0o644, LNK, f"{out}/target")],
        "hardlink-through-symlink": [("l", b"", 0o777, SYM, out),
                                     ("h", b"", 0o644, LNK, "l/target")],
        "device-node": [("dev/null", b"", 0o666, tarfile.CHRTYPE, "")],
        "block-device": [("dev/sda", b"", 0o660, tarfile.BLKTYPE, "")],
        "fifo": [("run/pipe", b"", 0o644, tarfile.FIFOTYPE, "")],
        "symlink-loop": [("a", b"", 0o777, SYM, "b"), ("b", b"", 0o777, SYM, "a"),
                         ("a/x", b"x", 0o644, REG, "")],
        "whiteout-through-symlink": [("esc", b"", 0o777, SYM, out),
                                     ("esc/.wh.target", b"", 0o644, REG, "")],
        "opaque-through-symlink": [("esc", b"", 0o777, SYM, out),
                                   ("esc/.wh..wh..opq", b"", 0o644, REG, "")],
        "whiteout-of-the-parent": [("sub/keep", b"x", 0o644, REG, ""),
                                   ("sub/.wh...", b"", 0o644, REG, "")],
        "whiteout-of-itself": [("sub/keep", b"x", 0o644, REG, ""),
                               ("sub/.wh..", b"", 0o644, REG, "")],
    }
    cases = [(k, make_layer(v).gz) for k, v in entries.items()]
    huge = raw_tar([(info("big", size=1 << 40), None)])
    truncated = raw_tar([(info("short", size=10 << 20), b"only this")], pad=False)
    good = make_layer([("f", b"x" * 100_000, 0o644, REG, "")]).gz
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF
    cases += [
        ("huge-claimed-size-no-data", gzip.compress(huge)),
        ("truncated-entry", gzip.compress(truncated)),
        ("corrupt-gzip", bytes(flipped)),
        ("truncated-gzip", good[: len(good) // 2]),
        ("gzip-of-garbage", gzip.compress(os.urandom(4096))),
    ]
    return cases


HOSTILE_IDS = [c[0] for c in _hostile(Path("/nonexistent"))]


@pytest.mark.parametrize("case", HOSTILE_IDS)
def test_hostile_layer_is_refused_and_nothing_escapes(place, case):
    cache, outside, blob = place
    data = dict(_hostile(outside))[case]
    digest, path = blob(data)
    with pytest.raises(UnpackError) as e:
        cache.unpack(digest, OCI_LAYER, path)
    assert e.value.kind == "CannotPullContainerError"
    assert not cache.has(digest)


def test_device_refusal_names_the_entry(place):
    cache, _, blob = place
    digest, path = blob(make_layer([("dev/null", b"", 0o666, tarfile.CHRTYPE, "")]).gz)
    with pytest.raises(UnpackError, match="device node 'dev/null'"):
        cache.unpack(digest, OCI_LAYER, path)


def test_stream_cap(place, tmp_path):
    _, _, blob = place
    small = LayerCache(tmp_path / "cache", max_bytes=64 * 1024)
    digest, path = blob(make_layer([("f", os.urandom(200_000), 0o644, REG, "")]).gz)
    with pytest.raises(UnpackError, match="cap|larger"):
        small.unpack(digest, OCI_LAYER, path)


def test_absolute_names_are_inside_the_layer(place):
    cache, outside, blob = place
    tar = raw_tar([(info(f"{outside}/abs", size=3), b"abs"), (info("/etc/hosts", size=2), b"hi")])
    layer = unpack_gz(cache, blob, tar)
    assert (layer / str(outside).lstrip("/") / "abs").read_bytes() == b"abs"
    assert (layer / "etc" / "hosts").read_bytes() == b"hi"


def test_forged_overlay_xattrs_are_dropped(place):
    cache, _, blob = place
    forged = info("d", DIR, mode=0o755)
    forged.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y",
                          "SCHILY.xattr.user.note": "kept"}
    layer = unpack_gz(cache, blob, raw_tar([(forged, None)]))
    assert OPAQUE not in os.listxattr(layer / "d")
    assert os.getxattr(layer / "d", "user.note") == b"kept"


# --- faithful unpacking --------------------------------------------------------------------

def test_busybox_layer(place):
    cache, _, blob = place
    layer_obj = busybox_layer()
    digest, path = blob(layer_obj.gz)
    layer = cache.unpack(digest, OCI_LAYER, path)
    assert layer == cache.path(digest)
    assert os.readlink(layer / "bin" / "sh") == "busybox"
    assert os.access(layer / "bin" / "busybox", os.X_OK)
    assert stat.S_IMODE((layer / "tmp").stat().st_mode) == 0o1777
    assert b"root:x:0:0" in (layer / "etc" / "passwd").read_bytes()


def test_owners_setuid_hardlinks_and_symlinks_kept(place):
    cache, _, blob = place
    tar = raw_tar([
        (info("bin", DIR, mode=0o755), None),
        (info("bin/su", size=2, mode=0o4755, uid=0, gid=0), b"su"),
        (info("home/app/own", size=1, mode=0o640, uid=1000, gid=1000), b"x"),
        (info("bin/su-again", LNK, linkname="bin/su"), None),
        (info("link", SYM, linkname="/etc/nowhere", uid=1000, gid=1000), None),
    ])
    layer = unpack_gz(cache, blob, tar)
    su = (layer / "bin" / "su").stat()
    assert stat.S_IMODE(su.st_mode) == 0o4755
    own = (layer / "home" / "app" / "own").lstat()
    assert (own.st_uid, own.st_gid, stat.S_IMODE(own.st_mode)) == (1000, 1000, 0o640)
    assert (layer / "bin" / "su-again").stat().st_ino == su.st_ino
    assert os.readlink(layer / "link") == "/etc/nowhere"
    assert (layer / "link").lstat().st_uid == 1000


@pytest.mark.parametrize("kind", ["gzip", "zstd", "plain"])
def test_compressions(place, kind):
    cache, _, blob = place
    tar = make_layer([("hello", b"world", 0o644, REG, "")]).tar
    data, media = {"gzip": (gzip.compress(tar), OCI_LAYER),
                   "zstd": (zstandard.ZstdCompressor().compress(tar), ZSTD_LAYER),
                   "plain": (tar, PLAIN_LAYER)}[kind]
    digest, path = blob(data)
    assert (cache.unpack(digest, media, path) / "hello").read_bytes() == b"world"


def test_later_entry_replaces_earlier(place):
    cache, _, blob = place
    layer = unpack_gz(cache, blob, make_layer([
        ("x", b"", 0o777, SYM, "/etc/passwd"), ("x", b"file", 0o644, REG, ""),
        ("d", b"old", 0o644, REG, ""), ("d", b"", 0o755, DIR, ""),
    ]).tar)
    assert (layer / "x").read_bytes() == b"file" and not (layer / "x").is_symlink()
    assert (layer / "d").is_dir()


# --- whiteouts, flatten, overlayfs ---------------------------------------------------------

LOWER = [("keep", b"v1", 0o644, REG, ""), ("gone", b"bye", 0o644, REG, ""),
         ("dir", b"", 0o755, DIR, ""), ("dir/old", b"old", 0o644, REG, ""),
         ("tree/sub/file", b"f", 0o644, REG, ""), ("esc", b"", 0o777, SYM, "/nonexistent-dir"),
         ("gonedir/a", b"a", 0o644, REG, "")]
UPPER = [("keep", b"v2", 0o644, REG, ""), (".wh.gone", b"", 0o644, REG, ""),
         ("dir/.wh..wh..opq", b"", 0o644, REG, ""), ("dir/new", b"new", 0o644, REG, ""),
         ("tree/sub/added", b"a", 0o644, REG, ""), ("esc", b"", 0o755, DIR, ""),
         ("esc/inside", b"i", 0o644, REG, ""), (".wh.gonedir", b"", 0o644, REG, "")]


def _two_layers(cache: LayerCache, blob) -> tuple[Path, Path]:
    return (unpack_gz(cache, blob, make_layer(LOWER).tar),
            unpack_gz(cache, blob, make_layer(UPPER).tar))


def _merged_view(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = ("link" if p.is_symlink() else "dir" if p.is_dir()
                        else p.read_text())
    return out


EXPECTED = {"keep": "v2", "dir": "dir", "dir/new": "new", "tree": "dir", "tree/sub": "dir",
            "tree/sub/file": "f", "tree/sub/added": "a", "esc": "dir", "esc/inside": "i"}


def test_whiteouts_become_overlay_markers(place):
    cache, _, blob = place
    _, upper = _two_layers(cache, blob)
    gone = (upper / "gone").lstat()
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert not (upper / ".wh.gone").exists()
    assert os.getxattr(upper / "dir", OPAQUE) == b"y"
    assert not (upper / "dir" / ".wh..wh..opq").exists()


def test_flatten_applies_whiteouts_and_opaque_dirs(place, tmp_path):
    cache, _, blob = place
    lower, upper = _two_layers(cache, blob)
    dest = tmp_path / "cache" / "rootfs"
    try:
        flatten([lower, upper], dest)
        assert _merged_view(dest) == EXPECTED
        assert not Path("/nonexistent-dir").exists()
    finally:
        import shutil
        shutil.rmtree(dest, ignore_errors=True)


def test_overlayfs_mount_of_two_layers(place, tmp_path):
    cache, _, blob = place
    lower, upper = _two_layers(cache, blob)
    merged = tmp_path / "cache" / "merged"
    merged.mkdir()
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                           f"lowerdir={upper}:{lower}", str(merged)], capture_output=True,
                          text=True)
    try:
        if done.returncode != 0:
            pytest.fail(f"overlayfs mount failed ({done.stderr.strip()}): this host needs the "
                        "overlay module (modprobe overlay)")
        view = _merged_view(merged)
        assert view == EXPECTED
        assert not (merged / "gone").exists() and not (merged / "dir" / "old").exists()
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", str(merged)], check=True)
        merged.rmdir()


# --- once, shared, crash-safe --------------------------------------------------------------

class CountingCache(LayerCache):
    """Records each real extraction in a file (threads and processes both see it)."""

    def _extract(self, raw, dest, media_type):
        with open(self.root / "extractions", "a") as f:
            f.write("x")
        time.sleep(0.2)  # widen the window for the racers
        super()._extract(raw, dest, media_type)


def _extractions(cache: LayerCache) -> int:
    marks = cache.root / "extractions"
    count = len(marks.read_text()) if marks.exists() else 0
    marks.unlink(missing_ok=True)
    return count


def test_concurrent_threads_unpack_once(place, tmp_path):
    _, _, blob = place
    cache = CountingCache(tmp_path / "cache")
    digest, path = blob(busybox_layer().gz)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        cache.unpack(digest, OCI_LAYER, path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [cache.path(digest)] * 8
    assert _extractions(cache) == 1


def _unpack_in_child(root: str, digest: str, path: str) -> None:
    CountingCache(Path(root)).unpack(digest, OCI_LAYER, Path(path))


def test_concurrent_processes_unpack_once(place, tmp_path):
    _, _, blob = place
    cache = CountingCache(tmp_path / "cache")
    digest, path = blob(busybox_layer().gz)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_unpack_in_child, args=(str(cache.root), digest, str(path)))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert cache.has(digest) and _extractions(cache) == 1


class CrashingCache(LayerCache):
    def _extract(self, raw, dest, media_type):
        (dest / "half-written").write_bytes(b"x")
        raise KeyboardInterrupt  # anything at all, mid-extraction


def test_failed_unpack_leaves_nothing_visible(place, tmp_path):
    _, _, blob = place
    digest, path = blob(make_layer([("f", b"x", 0o644, REG, "")]).gz)
    with pytest.raises(KeyboardInterrupt):
        CrashingCache(tmp_path / "cache").unpack(digest, OCI_LAYER, path)
    cache = LayerCache(tmp_path / "cache")
    assert not cache.has(digest)
    # a kill -9 leaves its temp dir behind: the next unpack of that digest removes it
    stale = cache.root / "tmp" / f"{digest.split(':')[1]}.dead"
    stale.mkdir()
    (stale / "junk").write_bytes(b"j")
    assert (cache.unpack(digest, OCI_LAYER, path) / "f").read_bytes() == b"x"


def test_second_unpack_reuses_and_gc_removes_unused(place):
    cache, _, blob = place
    one = unpack_gz(cache, blob, make_layer([("one", b"1", 0o644, REG, "")]).tar)
    two_tar = make_layer([("two", b"2", 0o644, REG, "")]).tar
    two = unpack_gz(cache, blob, two_tar)
    assert unpack_gz(cache, blob, two_tar) == two
    keep = f"sha256:{one.name}"
    assert cache.gc({keep}) == [f"sha256:{two.name}"]
    assert one.is_dir() and not two.exists()
