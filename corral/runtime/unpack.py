"""The layer cache: each layer unpacked once, by digest, safely, as an overlayfs lowerdir.

    root/
      layers/sha256/<hex>/   one layer's files, ready to be an overlayfs lowerdir
      locks/sha256-<hex>     flock(2) per digest: one unpacker at a time, threads and processes
      tmp/<hex>.<random>/    an unpack in progress; renamed into layers/ when complete

``unpack`` is content-addressed and idempotent: the first caller extracts into ``tmp/`` and
renames the finished tree into place (a crash leaves only a ``tmp/`` directory, removed by the
next unpack of that digest); every other caller waits on the digest's lock and then finds the
directory. Nothing is ever visible half-extracted.

A layer is hostile until proven otherwise. The extractor walks every path from the layer
root with directory file descriptors opened ``O_NOFOLLOW``, so nothing it writes can land
outside the layer directory:
- names are normalized (leading ``/`` stripped like Docker, ``.`` dropped); ``..`` is refused;
- a path whose parent is a symlink is refused: a symlink is stored as a symlink, never used;
- hardlinks must name a file already in this layer, reached the same way;
- device nodes and fifos are refused (UnpackError, which ECS shows as CannotPullContainerError);
- the uncompressed stream, each entry and the entry count are capped (tar/zip bombs);
- xattrs from the tar are limited to ``security.capability`` and ``user.*``: a layer can never
  forge ``trusted.overlay.*`` markers.
Owners, modes (setuid included) and mtimes are kept: Corral runs as root.

Whiteouts become overlayfs's own form so layer directories stack directly as lowerdirs:
``.wh.<name>`` is a character device 0:0 named ``<name>``, and ``.wh..wh..opq`` sets
``trusted.overlay.opaque=y`` on its directory. ``flatten`` is the copy fallback for hosts
without overlayfs: it applies layer directories lowest first, reading those same markers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import io
import os
import re
import secrets
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from corral.runtime.driver import RuntimeFailure

MAX_BYTES = 64 << 30  # uncompressed bytes of one layer
MAX_ENTRIES = 2_000_000
OPAQUE = "trusted.overlay.opaque"
WHITEOUT = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_KEPT_XATTRS = re.compile(r"^(security\.capability|user\..+)$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


class UnpackError(RuntimeFailure):
    """A layer that cannot or must not be unpacked."""

    def __init__(self, message: str):
        super().__init__(message, "CannotPullContainerError")


class LayerCache:
    def __init__(self, root: Path, *, max_bytes: int = MAX_BYTES,
                 max_entries: int = MAX_ENTRIES):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        for sub in ("layers/sha256", "locks", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        """Where the layer ``digest`` lives once unpacked (the one layout function)."""
        if not _DIGEST.match(digest):
            raise UnpackError(f"invalid layer digest {digest!r}")
        return self.root / "layers" / "sha256" / digest.split(":", 1)[1]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_dir()

    def unpack(self, digest: str, media_type: str, blob: Path) -> Path:
        """The directory holding layer ``digest`` (the blob at ``blob``), unpacked once."""
        final = self.path(digest)
        if final.is_dir():
            return final
        with self._locked(digest):
            if final.is_dir():  # another thread or process finished it while we waited
                return final
            hexpart = final.name
            for stale in (self.root / "tmp").glob(f"{hexpart}.*"):
                shutil.rmtree(stale, ignore_errors=True)  # a crashed unpack of this digest
            tmp = self.root / "tmp" / f"{hexpart}.{secrets.token_hex(4)}"
            tmp.mkdir(mode=0o755)
            try:
                with open(blob, "rb") as raw:
                    self._extract(raw, tmp, media_type)
                os.sync()  # the tree is durable before its name makes it visible
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    def gc(self, keep: set[str]) -> list[str]:
        """Remove every unpacked layer not in ``keep`` (the caller lists every layer a
        container still mounts); returns the digests removed. A layer being unpacked right now
        (its lock held) is left alone. Lock files stay: unlinking a lock file another process
        may be waiting on would let two unpackers in at once."""
        removed = []
        for entry in (self.root / "layers" / "sha256").iterdir():
            digest = f"sha256:{entry.name}"
            if digest in keep or not _DIGEST.match(digest):
                continue
            with self._locked(digest, wait=False) as got:
                if not got:
                    continue
                doomed = self.root / "tmp" / f"{entry.name}.gc{secrets.token_hex(4)}"
                os.rename(entry, doomed)  # gone from view at once, deleted at leisure
                shutil.rmtree(doomed, ignore_errors=True)
                removed.append(digest)
        return removed

    @contextlib.contextmanager
    def _locked(self, digest: str, wait: bool = True) -> Iterator[bool]:
        lock = self.root / "locks" / digest.replace(":", "-")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def _extract(self, raw: BinaryIO, dest: Path, media_type: str) -> None:
        stream = _Capped(_decompressor(raw, media_type), self.max_bytes)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar, _Tree(dest) as tree:
                for count, member in enumerate(tar, 1):
                    if count > self.max_entries:
                        raise UnpackError(f"layer has more than {self.max_entries} entries")
                    if member.size > self.max_bytes - stream.count:
                        raise UnpackError(f"layer entry {member.name!r} claims {member.size} "
                                          f"bytes, more than the {self.max_bytes}-byte cap")
                    tree.add(member, tar)
                tree.finish()
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile,
                zstandard.ZstdError) as e:
            raise UnpackError(f"layer is not a valid tar stream: {e}") from None
        except OSError as e:  # a refused xattr, a full disk, a blob collected meanwhile
            raise UnpackError(f"cannot unpack layer: {e}") from None


def _decompressor(raw: BinaryIO, media_type: str) -> BinaryIO:
    """gzip, zstd or plain tar, by the stream's magic number (media types lie more often
    than bytes do: Docker also sniffs)."""
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(_GZIP):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(_ZSTD):
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if media_type.endswith(("+gzip", ".gzip", "+zstd")):
        raise UnpackError(f"layer is not {media_type.rsplit('+', 1)[-1]} data as its media "
                          f"type {media_type} says")
    return raw


class _Capped(io.RawIOBase):
    """A read-only stream that fails once more than ``cap`` bytes came through."""

    def __init__(self, inner: BinaryIO, cap: int):
        self.inner, self.cap, self.count = inner, cap, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self.inner.read(len(buf))
        self.count += len(data)
        if self.count > self.cap:
            raise UnpackError(f"layer is larger than {self.cap} bytes uncompressed")
        buf[:len(data)] = data
        return len(data)


def _parts(name: str, what: str = "path") -> tuple[str, ...]:
    """Normalized components of a tar name, relative to the layer root."""
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnpackError(f"layer {what} {name!r} escapes the layer with '..'")
    return parts


class _Tree:
    """Writes under one root through directory fds, never following a symlink."""

    def __init__(self, root: Path):
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.dir_times: list[tuple[tuple[str, ...], int]] = []

    def __enter__(self) -> _Tree:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.root_fd)

    @contextlib.contextmanager
    def parent(self, parts: tuple[str, ...], create: bool = True) -> Iterator[int]:
        """An fd of the directory holding ``parts[-1]``; missing parents are created (as
        Docker does; with ``create`` False: FileNotFoundError), symlinked or non-directory
        parents refused."""
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts[:-1]):
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        where = "/".join(parts[:i + 1])
                        raise UnpackError(f"layer path {'/'.join(parts)!r} goes through "
                                          f"{where!r}, which is not a directory (a symlink "
                                          "is never followed)") from None
                    raise
                os.close(fd)
                fd = nxt
            yield fd
        finally:
            os.close(fd)

    def add(self, m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = _parts(m.name)
        if m.ischr() or m.isblk() or m.isfifo():
            kind = "fifo" if m.isfifo() else "device node"
            raise UnpackError(f"layer contains a {kind} {m.name!r}; Corral refuses device "
                              "nodes and fifos in images")
        if not parts:  # the layer root itself ("./")
            if m.isdir():
                self._meta(self.root_fd, None, m)
            return
        base = parts[-1]
        if base.startswith(WHITEOUT):
            return self._whiteout(parts)
        with self.parent(parts) as fd:
            if m.isdir():
                self._mkdir(fd, base, m)
                self.dir_times.append((parts, int(m.mtime)))
            elif m.isfile():
                self._file(fd, base, m, tar)
            elif m.issym():
                _clear(fd, base)
                os.symlink(m.linkname, base, dir_fd=fd)
                self._meta(fd, base, m)
            elif m.islnk():
                self._hardlink(fd, base, m)
            # other types (GNU volume headers, …) carry no files

    def _whiteout(self, parts: tuple[str, ...]) -> None:
        base = parts[-1]
        with self.parent(parts) as fd:
            if base == OPAQUE_MARKER:
                os.setxattr(fd, OPAQUE, b"y")
            elif base.startswith(WHITEOUT + WHITEOUT) or base == WHITEOUT:
                return  # aufs metadata (.wh..wh.plnk, …): nothing for overlayfs
            else:
                name = base[len(WHITEOUT):]
                if name in ("", ".", "..") or "/" in name:  # `.wh...` would clear the parent
                    raise UnpackError(f"layer whiteout {'/'.join(parts)!r} names no file")
                _clear(fd, name)
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=fd)

    def _mkdir(self, fd: int, base: str, m: tarfile.TarInfo) -> None:
        try:
            st = os.stat(base, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                _clear(fd, base)
                os.mkdir(base, 0o700, dir_fd=fd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=fd)
        sub = os.open(base, _DIR_FLAGS, dir_fd=fd)
        try:
            self._meta(sub, None, m)
        finally:
            os.close(sub)

    def _file(self, fd: int, base: str, m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        _clear(fd, base)
        out = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=fd)
        try:
            src = tar.extractfile(m)
            left = m.size
            while src is not None and left > 0:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    raise UnpackError(f"layer entry {m.name!r} is truncated")
                os.write(out, chunk)
                left -= len(chunk)
            self._meta(out, None, m)
        finally:
            os.close(out)

    def _hardlink(self, fd: int, base: str, m: tarfile.TarInfo) -> None:
        target = _parts(m.linkname, "hardlink target")
        if not target:
            raise UnpackError(f"layer hardlink {m.name!r} has no target")
        try:
            with self.parent(target, create=False) as tfd:
                st = os.stat(target[-1], dir_fd=tfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise UnpackError(f"layer hardlink {m.name!r} points at a directory")
                _clear(fd, base)
                os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise UnpackError(f"layer hardlink {m.name!r} points at {m.linkname!r}, which "
                              "is not a file of this layer") from None

    def _meta(self, fd: int, name: str | None, m: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears setuid), xattrs and mtime; ``name`` None: ``fd``
        is the object itself, else ``name`` is a symlink in directory ``fd``."""
        if name is not None:  # a symlink: owner and time only (Linux has no lchmod)
            os.chown(name, m.uid, m.gid, dir_fd=fd, follow_symlinks=False)
            os.utime(name, (m.mtime, m.mtime), dir_fd=fd, follow_symlinks=False)
            return
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                attr = key[len("SCHILY.xattr."):]
                if _KEPT_XATTRS.match(attr):
                    os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
        os.utime(fd, (m.mtime, m.mtime))

    def finish(self) -> None:
        """Directory mtimes last: creating their children changed them."""
        for parts, mtime in reversed(self.dir_times):
            with contextlib.suppress(UnpackError, OSError), self.parent(parts, False) as fd:
                os.utime(parts[-1], (mtime, mtime), dir_fd=fd, follow_symlinks=False)


def _clear(fd: int, name: str) -> None:
    """Remove ``name`` in directory ``fd`` (a later tar entry replaces an earlier one)."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=fd)
    else:
        os.unlink(name, dir_fd=fd)


# --- the copy fallback -------------------------------------------------------------------


def flatten(layer_dirs: list[Path], dest: Path) -> None:
    """Copy layers (lowest first) into ``dest`` as overlayfs would show them merged:
    a whiteout deletes what lower layers had, an opaque directory hides their contents."""
    dest.mkdir(parents=True, exist_ok=True)
    with _Tree(dest) as tree:
        for layer in layer_dirs:
            _apply(Path(layer), (), tree, {})


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def _apply(src: Path, rel: tuple[str, ...], tree: _Tree, links: dict) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        parts = (*rel, entry.name)
        st = entry.stat(follow_symlinks=False)
        with tree.parent(parts) as fd:
            if _is_whiteout(st):
                _clear(fd, entry.name)
                continue
            if stat.S_ISDIR(st.st_mode):
                _copy_dir(Path(entry.path), fd, entry.name, st)
                _apply(Path(entry.path), parts, tree, links)
                continue
            _clear(fd, entry.name)
            first = links.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
            if first is not None:  # keep the layer's hardlinks as hardlinks
                with tree.parent(first, create=False) as ffd:
                    os.link(first[-1], entry.name, src_dir_fd=ffd, dst_dir_fd=fd,
                            follow_symlinks=False)
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), entry.name, dir_fd=fd)
                os.chown(entry.name, st.st_uid, st.st_gid, dir_fd=fd, follow_symlinks=False)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(Path(entry.path), fd, entry.name, st)
            else:
                continue  # nothing else is ever written into a layer directory
            if st.st_nlink > 1:
                links[(st.st_dev, st.st_ino)] = parts
            os.utime(entry.name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=fd,
                     follow_symlinks=False)


def _copy_dir(src: Path, fd: int, name: str, st: os.stat_result) -> None:
    try:
        have = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        have = None
    if have is not None and not stat.S_ISDIR(have.st_mode):
        _clear(fd, name)
        have = None
    if have is None:
        os.mkdir(name, 0o700, dir_fd=fd)
    elif _opaque(src):  # hides everything lower layers put here
        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
        try:
            for child in os.listdir(sub):
                _clear(sub, child)
        finally:
            os.close(sub)
    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
    try:
        os.fchown(sub, st.st_uid, st.st_gid)
        os.fchmod(sub, stat.S_IMODE(st.st_mode))
        _copy_xattrs(src, sub)
        os.utime(sub, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(sub)


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _copy_xattrs(src: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        for attr in os.listxattr(src, follow_symlinks=False):
            if _KEPT_XATTRS.match(attr):
                os.setxattr(fd, attr, os.getxattr(src, attr, follow_symlinks=False))


def _copy_file(src: Path, fd: int, name: str, st: os.stat_result) -> None:
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o600, dir_fd=fd)
    try:
        with open(src, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as f:
            while chunk := f.read(1 << 20):
                os.write(out, chunk)
        os.fchown(out, st.st_uid, st.st_gid)
        os.fchmod(out, stat.S_IMODE(st.st_mode))
        _copy_xattrs(src, out)
    finally:
        os.close(out)
