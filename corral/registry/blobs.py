"""Content-addressed blobs and resumable uploads on a storage driver.

    uploads/<id>/data ── append chunks (hashing as they stream) ── commit(digest)
        └─ verify digest ─ fsync ─ move to blobs/<alg>/<ab>/<hex>/data (atomic; fine if there)

A blob is visible only once its bytes are verified and in place, so a crash at any point
leaves either no blob or a whole one. Blobs are stored once for every repository; which
repository may see which blob is the caller's business (the state store's links).
All methods block: call them from a worker thread.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from corral.registry import digests
from corral.registry.storage import StorageDriver

CHUNK = 1 << 20


def blob_path(digest: str) -> str:
    """The one place the blob layout lives."""
    alg, hexpart = digests.parse(digest)
    return f"blobs/{alg}/{hexpart[:2]}/{hexpart}/data"


def upload_path(upload_id: str) -> str:
    return f"uploads/{upload_id}/data"


class DigestMismatch(Exception):
    def __init__(self, expected: str, actual: str):
        super().__init__(f"the content's digest is {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


@dataclass
class _Hashing:
    """The running sha256 of an upload, valid while ``size`` equals the file's size.
    (sha512 pushes are rare: their digest is computed from the file at commit.)"""

    size: int = 0
    sha256: object = field(default_factory=lambda: digests.hasher("sha256"))


class Appender:
    """Writes to an upload while keeping its running hash in step with the file."""

    def __init__(self, writer, state: _Hashing):
        self._w = writer
        self._state = state

    def write(self, chunk: bytes) -> None:
        self._w.write(chunk)
        self._state.sha256.update(chunk)
        self._state.size += len(chunk)

    def close(self) -> int:
        self._w.commit()
        return self._w.size


class BlobStore:
    def __init__(self, driver: StorageDriver):
        self.driver = driver
        self._hashing: dict[str, _Hashing] = {}
        self._lock = threading.Lock()

    # --- blobs -------------------------------------------------------------------------------

    def size(self, digest: str) -> int | None:
        info = self.driver.stat(blob_path(digest))
        return info.size if info else None

    def open(self, digest: str, offset: int = 0) -> BinaryIO:
        return self.driver.reader(blob_path(digest), offset)

    def get(self, digest: str) -> bytes:
        return self.driver.get(blob_path(digest))

    def put(self, data: bytes, algorithm: str = "sha256") -> str:
        """Store small content (manifests) whole; returns its digest. Always written, even
        when present: the fresh mtime is what keeps garbage collection (whose grace period
        goes by mtime) off a manifest that is being pushed again right now."""
        digest = digests.of(data, algorithm)
        self.driver.put(blob_path(digest), data)
        return digest

    def delete(self, digest: str) -> None:
        self.driver.delete(blob_path(digest).rsplit("/", 1)[0])

    # --- uploads -----------------------------------------------------------------------------

    def start_upload(self) -> str:
        upload_id = str(uuid.uuid4())
        self.driver.writer(upload_path(upload_id)).commit()
        with self._lock:
            self._hashing[upload_id] = _Hashing()
        return upload_id

    def upload_size(self, upload_id: str) -> int | None:
        info = self.driver.stat(upload_path(upload_id))
        return info.size if info else None

    def appender(self, upload_id: str) -> Appender:
        """Open an upload for appending; write chunks, then ``close()`` (one fsync)."""
        w = self.driver.writer(upload_path(upload_id), append=True)
        return Appender(w, self._state(upload_id, w.size))

    def append(self, upload_id: str, chunks) -> int:
        """Append an iterable of byte chunks; returns the new size."""
        a = self.appender(upload_id)
        try:
            for chunk in chunks:
                a.write(chunk)
        finally:
            size = a.close()
        return size

    def local_path(self, digest: str):
        """A local file holding the blob, when the driver has one (for zero-copy serving)."""
        local = getattr(self.driver, "local_path", None)
        return local(blob_path(digest)) if local else None

    def commit(self, upload_id: str, digest: str) -> int:
        """Verify the upload is ``digest`` and move it into place. Returns the blob's size."""
        alg, _ = digests.parse(digest)
        size = self.upload_size(upload_id)
        if size is None:
            raise FileNotFoundError(upload_id)
        if alg == "sha256":
            actual = f"sha256:{self._state(upload_id, size).sha256.hexdigest()}"
        else:
            actual = f"{alg}:{self._hash_file(upload_path(upload_id), alg).hexdigest()}"
        if actual != digest:
            raise DigestMismatch(digest, actual)
        self.driver.move(upload_path(upload_id), blob_path(digest))
        self.cancel(upload_id)
        return size

    def cancel(self, upload_id: str) -> None:
        self._forget(upload_id)
        with contextlib.suppress(FileNotFoundError):  # already gone: cancelled twice
            self.driver.delete(upload_path(upload_id).rsplit("/", 1)[0])

    def _forget(self, upload_id: str) -> None:
        with self._lock:
            self._hashing.pop(upload_id, None)

    def _state(self, upload_id: str, size: int) -> _Hashing:
        """The running hashes, rebuilt from the file when lost (restart, failed append)."""
        with self._lock:
            state = self._hashing.get(upload_id)
        if state is not None and state.size == size:
            return state
        state = _Hashing(size, self._hash_file(upload_path(upload_id), "sha256"))
        with self._lock:
            self._hashing[upload_id] = state
        return state

    def _hash_file(self, path: str, algorithm: str):
        h = digests.hasher(algorithm)
        with self.driver.reader(path) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return h
