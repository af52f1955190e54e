"""The storage driver interface, and the filesystem driver.

Like the CNCF distribution registry's ``storagedriver``: a tiny interface over paths (``/`` as
separator, relative to the driver's root) that the blob store is built on, so an S3-compatible
driver can replace the filesystem without touching anything above it.

Contract:
- ``put`` and ``move`` are atomic: readers see the old content or the new, never a part.
- ``move`` onto an existing path replaces it (content-addressed callers move identical bytes).
- A ``Writer`` appends; nothing it wrote is promised durable until ``commit()``; ``cancel()``
  removes what it wrote.
- Missing paths raise ``FileNotFoundError`` (``stat`` returns None).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool


class Writer(Protocol):
    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> int: ...

    def commit(self) -> None: ...

    def cancel(self) -> None: ...


class StorageDriver(Protocol):
    def get(self, path: str) -> bytes: ...

    def put(self, path: str, data: bytes) -> None: ...

    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    def writer(self, path: str, append: bool = False) -> Writer: ...

    def stat(self, path: str) -> FileInfo | None: ...

    def list(self, path: str) -> list[str]: ...

    def move(self, src: str, dst: str) -> None: ...

    def delete(self, path: str) -> None: ...


class _FileWriter:
    def __init__(self, full: Path, append: bool):
        full.parent.mkdir(parents=True, exist_ok=True)
        self._path = full
        self._file = open(full, "ab" if append else "wb")  # noqa: SIM115 — closed in commit/cancel
        self._size = self._file.tell()

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        n = self._file.write(data)
        self._size += n
        return n

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def cancel(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class FilesystemDriver:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = self.root.resolve()

    def _full(self, path: str) -> Path:
        rel = path.lstrip("/")
        if ".." not in rel.split("/"):
            # Nothing to resolve: the driver never creates symlinks, so only ".." can leave the
            # root (and resolve() per call was most of a garbage-collection pass's time).
            return self._root / rel
        full = (self._root / rel).resolve()
        if full != self._root and self._root not in full.parents:
            raise ValueError(f"path escapes the storage root: {path!r}")
        return full

    def get(self, path: str) -> bytes:
        return self._full(path).read_bytes()

    def local_path(self, path: str) -> Path:
        """Filesystem-only extra: where the bytes are, for sendfile-style serving."""
        return self._full(path)

    def put(self, path: str, data: bytes) -> None:
        full = self._full(path)
        tmp = full.with_name(f".{full.name}.{uuid.uuid4().hex}.tmp")

        def write() -> None:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

        _in_dir(full.parent, write)
        os.replace(tmp, full)
        _fsync_dir(full.parent)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        f = open(self._full(path), "rb")  # noqa: SIM115 — the caller closes it
        if offset:
            f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> Writer:
        return _FileWriter(self._full(path), append)

    def stat(self, path: str) -> FileInfo | None:
        try:
            st = self._full(path).stat()
        except FileNotFoundError:
            return None
        return FileInfo(path, st.st_size, st.st_mtime, os.path.isdir(self._full(path)))

    def list(self, path: str) -> list[str]:
        full = self._full(path)
        if not full.is_dir():
            raise FileNotFoundError(path)
        base = path.strip("/")
        return sorted(f"{base}/{p.name}" if base else p.name for p in full.iterdir())

    def move(self, src: str, dst: str) -> None:
        s, d = self._full(src), self._full(dst)
        if not s.exists():
            raise FileNotFoundError(src)
        _in_dir(d.parent, lambda: os.replace(s, d), retry_if=s.exists)
        _fsync_dir(d.parent)

    def prune(self, path: str, stop: str = "") -> None:
        """Filesystem-only extra: remove the directory ``path`` and then its parents, below
        ``stop``, while they are empty. ``rmdir`` refuses a non-empty directory atomically,
        so a concurrent writer's file is never removed (garbage collection uses this)."""
        full, limit = self._full(path), self._full(stop)
        while full != limit and limit in full.parents:
            try:
                full.rmdir()
            except OSError:  # not empty (a writer got there) or already gone
                return
            full = full.parent

    def delete(self, path: str) -> None:
        full = self._full(path)
        if full.is_dir():
            shutil.rmtree(full)
        elif full.exists():
            full.unlink()
        else:
            raise FileNotFoundError(path)


def _in_dir(directory: Path, fn, retry_if=lambda: True, attempts: int = 3) -> None:
    """Create ``directory`` and run ``fn`` in it; again if the directory vanished between
    the two (garbage collection prunes empty blob directories while pushes write)."""
    for attempt in range(attempts):
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fn()
            return
        except FileNotFoundError:
            if attempt == attempts - 1 or not retry_if():
                raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
