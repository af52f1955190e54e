"""Reading image layers safely: tar streams read in place, never extracted.

    blob ─> counted (compressed bytes) ─> sniff compression (gzip | zstd | plain tar; media
         type must be a known layer type) ─> capped reader (decompression-bomb guard)
         ─> tarfile stream ("r|", no seeking)
         ─> per entry: path checks ─> device / FIFO (skipped, noted) | whiteout / opaque marker
            | symlink | wanted regular file

Nothing is written to disk: wanted files (package databases, metadata; each under
``MAX_FILE``) are read into memory, everything else is skipped in the stream. Entries that
could only mean harm — ``..`` components, absolute paths — stop the scan with a reason
(``LayerError``), as do corrupt or truncated streams. Character and block devices and FIFOs
are ordinary in debootstrap and ``docker import`` root filesystems: they are never created or
opened, only counted and named in ``LayerContents.special`` so the scan can say what it
skipped. What the layer *removes* (``.wh.<name>`` whiteouts and ``.wh..wh..opq`` opaque
directories, OCI image-spec layer.md) is recorded for the merge.

The bomb guard is checked as bytes stream, on two caps: an absolute one (``MAX_UNCOMPRESSED``)
and a ratio — once a layer has expanded past ``RATIO_FLOOR`` bytes it may not be more than
``MAX_RATIO`` times the compressed bytes read so far. Real layers compress 3–10× overall, but a
real layer can be mostly zeros: ``useradd -u 1000000`` leaves a 292 MB sparse
``/var/log/lastlog`` that deflate packs into 284 KB (~1,000×, deflate's ceiling). The floor is
therefore high (1 GiB): below it any layer is read, whatever its ratio, and above it a bomb
stops after ~3 s of decompression instead of running to the 16 GiB cap (a 17 MB gzip bomb holds
16 GB of zeros). A tripped guard is a FAILED scan: the input is hostile, not unsupported.
Refusals that are a pure function of the layer's bytes carry ``cacheable`` so the scanner
remembers them per layer digest instead of paying for them again on every re-scan; a refusal
by the guard also depends on its limits, so it is cached with :func:`guard_limits` and only
trusted while they are unchanged.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from corral.scan.catalogers import gobinary

try:  # zstd layers need the optional zstandard package
    import zstandard
except ImportError:  # pragma: no cover - exercised only without the dependency
    zstandard = None

MAX_FILE = 64 * 1024 * 1024  # one cataloged file (an rpmdb.sqlite of a big image is ~30 MB)
MAX_UNCOMPRESSED = 16 * 1024 * 1024 * 1024  # per layer: far above real layers, far below a bomb
MAX_ENTRIES = 2_000_000
MAX_BINARY = 512 * 1024 * 1024  # executables searched for Go build info
# Ratio guard: 100x is ten times what real layers reach overall; the floor keeps layers that
# are mostly zero-filled files (a sparse lastlog: 292 MB at ~1,000x) out of its reach.
MAX_RATIO = 100
RATIO_FLOOR = 1024 * 1024 * 1024
SPECIAL_NAMES = 5  # skipped device / FIFO paths named in the note (the rest are counted)
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

LAYER_MEDIA_TYPES = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
})


def guard_limits() -> dict[str, int]:
    """The bomb guard's limits as they stand: what a cached refusal is checked against."""
    return {"max_uncompressed": MAX_UNCOMPRESSED, "max_entries": MAX_ENTRIES,
            "max_ratio": MAX_RATIO, "ratio_floor": RATIO_FLOOR}


class LayerError(Exception):
    """A layer the scan cannot use. ``status`` is the ECR scan status it leads to."""

    def __init__(self, reason: str, status: str = "FAILED", *, cacheable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        # True when the refusal follows from the layer's bytes alone (a guard cap, a path
        # that leaves the root): the same digest would be refused again, so it is cached.
        self.cacheable = cacheable


@dataclass
class LayerContents:
    files: dict[str, bytes] = field(default_factory=dict)
    binaries: dict[str, bytes] = field(default_factory=dict)  # Go build info blobs
    symlinks: dict[str, str] = field(default_factory=dict)
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)  # first skipped device / FIFO paths
    special_count: int = 0
    entries: int = 0
    uncompressed: int = 0


class _Counted(io.RawIOBase):
    """The compressed side: counts the bytes the decompressor has pulled from the blob."""

    def __init__(self, inner: BinaryIO):
        self.inner, self.count = inner, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.inner.read(len(b))
        b[:len(data)] = data
        self.count += len(data)
        return len(data)


class _Capped(io.RawIOBase):
    """The decompressed side: counts what is read through it and refuses to go past ``cap``
    bytes, or past ``MAX_RATIO`` times the compressed bytes read so far (above the floor)."""

    def __init__(self, inner, cap: int, compressed: _Counted | None = None):
        self.inner, self.cap, self.count, self.eofs = inner, cap, 0, 0
        self.compressed = compressed

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.inner.read(len(b))
        n = len(data)
        if not n:
            # tarfile skips an entry's claimed size by reading on past the end of the stream;
            # a 10 GB claim in a truncated layer would spin for seconds. Stop it early.
            self.eofs += 1
            if self.eofs > 64:
                raise LayerError("layer is truncated: the stream ends inside an entry")
        self.count += n
        if self.count > self.cap:
            raise LayerError(f"layer expands beyond {self.cap} bytes (decompression bomb guard)",
                             cacheable=True)
        packed = self.compressed.count if self.compressed is not None else self.count
        if self.count > RATIO_FLOOR and self.count > MAX_RATIO * packed:
            raise LayerError(
                f"layer expands more than {MAX_RATIO} times: {self.count} bytes out of "
                f"{packed} compressed bytes read (decompression bomb guard)", cacheable=True)
        b[:n] = data
        return n


def _decompressed(raw: BinaryIO, media_type: str) -> BinaryIO:
    if media_type not in LAYER_MEDIA_TYPES:
        raise LayerError(f"unsupported layer media type {media_type!r}", "UNSUPPORTED_IMAGE")
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    magic = buffered.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered)
    if magic == b"\x28\xb5\x2f\xfd":
        if zstandard is None:
            raise LayerError("zstd layers need the zstandard package", "UNSUPPORTED_IMAGE")
        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    return buffered  # plain tar (tarfile reports garbage as a ReadError)


def clean_path(name: str) -> str:
    """The entry's path inside the image root; LayerError for paths that leave it."""
    if name.startswith("/"):
        raise LayerError(f"layer entry has an absolute path: {name[:200]!r}", cacheable=True)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry escapes the image root: {name[:200]!r}", cacheable=True)
    return "/".join(parts)


def read_layer(raw: BinaryIO, media_type: str, wanted: Callable[[str], bool], *,
               max_uncompressed: int = MAX_UNCOMPRESSED,
               max_file: int = MAX_FILE) -> LayerContents:
    out = LayerContents()
    counted = _Counted(raw)
    capped = _Capped(_decompressed(io.BufferedReader(counted), media_type), max_uncompressed,
                     counted)
    try:
        # tarfile's default 10 KiB stream buffer: a bigger one is slower (each small read
        # slices the whole buffer).
        with tarfile.open(fileobj=io.BufferedReader(capped, 1 << 20), mode="r|") as tar:
            for member in tar:
                out.entries += 1
                if out.entries > MAX_ENTRIES:
                    raise LayerError(f"layer has more than {MAX_ENTRIES} entries",
                                     cacheable=True)
                _entry(tar, member, wanted, max_file, out)
    except LayerError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError) as e:
        raise LayerError(f"layer is not a readable tar stream: {type(e).__name__}: {e}") from None
    except Exception as e:  # zstandard.ZstdError and other codec errors
        if zstandard is not None and isinstance(e, zstandard.ZstdError):
            raise LayerError(f"layer is not a readable zstd stream: {e}") from None
        raise
    out.uncompressed = capped.count
    return out


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo, wanted: Callable[[str], bool],
           max_file: int, out: LayerContents) -> None:
    path = clean_path(member.name)
    if member.ischr() or member.isblk() or member.isfifo():
        _special(path, wanted, out)
        return
    if not path:
        return
    directory, base = posixpath.split(path)
    if base.startswith(WHITEOUT):
        if base == OPAQUE:
            out.opaque.add(directory)
        else:
            out.whiteouts.add(posixpath.join(directory, base[len(WHITEOUT):]))
        return
    if not wanted(path):
        if member.isfile() and member.mode & 0o111 and 1024 < member.size <= MAX_BINARY:
            f = tar.extractfile(member)
            blob = gobinary.find(f) if f is not None else None
            if blob:
                out.binaries[path] = blob
        return
    if member.issym():
        out.symlinks[path] = member.linkname
        out.files.pop(path, None)
    elif member.islnk():
        target = clean_path(member.linkname)
        if target in out.files:
            out.files[path] = out.files[target]
    elif member.isfile():
        if member.size > max_file:
            out.notes.append(f"skipped {path}: {member.size} bytes is over the {max_file} cap")
            return
        f = tar.extractfile(member)
        data = f.read() if f is not None else b""
        if len(data) != member.size:
            raise LayerError(f"layer is truncated inside {path!r}")
        out.files[path] = data
        out.symlinks.pop(path, None)


def _special(path: str, wanted: Callable[[str], bool], out: LayerContents) -> None:
    """A device node or FIFO: never created or opened, only noted. Where it stands on a path a
    cataloger reads, it replaces whatever a lower layer had there, as a whiteout would."""
    out.special_count += 1
    if len(out.special) < SPECIAL_NAMES:
        out.special.append(path)
    if path and wanted(path):
        out.whiteouts.add(path)
        out.files.pop(path, None)
        out.symlinks.pop(path, None)
