"""Garbage collection of the blob store, online: pushes continue while it runs.

    mark:   every digest an image is (its manifest) or references (config, layers, children)
            in any repository of any account
    unlink: repository blob links no image of that repository references, created before
            now - grace
    sweep:  blob files neither marked nor linked, last written before now - grace: deleted,
            their bytes counted
    uploads: upload sessions (rows and files) idle for longer than the upload max age

Why an in-flight push never loses a layer:
- a layer's bytes land (upload commit: a fresh rename, so a fresh mtime) before its link is
  written, and the link before the manifest that references it; the grace period covers the
  gaps, by link ``created_at`` and by file mtime;
- every deletion is re-checked inside a write transaction, which pushes' link and manifest
  writes queue behind;
- a blob file is first renamed into ``gc-trash/`` and its mtime looked at again there: if a
  push refreshed it in the meantime it is renamed back (same content, so harmless), else
  deleted. A crash mid-way leaves the file in ``gc-trash/``, put back by the next run.

A push that checked for a blob (HEAD, BatchCheckLayerAvailability) just before GC removed an
old, unreferenced link fails with a clean "blob unknown / layers not found" error and its
client uploads again; nothing already referenced is ever touched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, exists, select

from corral.registry.blobs import BlobStore, blob_path, upload_path
from corral.store import Store
from corral.store.schema import (
    ecr_image_refs,
    ecr_images,
    ecr_repository_blobs,
    registry_uploads,
)

log = logging.getLogger("corral.gc")
TRASH = "gc-trash"
BATCH = 256  # blob deletions per write transaction: keeps the write lock short for pushes


@dataclass
class GcReport:
    blobs_scanned: int = 0
    blobs_deleted: int = 0
    bytes_reclaimed: int = 0
    links_removed: int = 0
    uploads_cancelled: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _BlobFile:
    digest: str
    path: str
    size: int
    mtime: float


def _in_use(db: Connection, digests: list[str] | None = None) -> set[str]:
    """Digests that are images, are referenced by images, or are linked to a repository
    (all of them, or those among ``digests``)."""
    out: set[str] = set()
    for col in (ecr_images.c.digest, ecr_image_refs.c.digest, ecr_repository_blobs.c.digest):
        q = select(col).distinct()
        if digests is not None:
            q = q.where(col.in_(digests))
        out.update(db.execute(q).scalars())
    return out


class GarbageCollector:
    def __init__(self, store: Store, blobs: BlobStore, *, grace: float, upload_max_age: float):
        self.store = store
        self.blobs = blobs
        self.driver = blobs.driver
        self.grace = grace
        self.upload_max_age = upload_max_age
        self._lock = threading.Lock()

    def collect(self) -> GcReport:
        """One full pass; safe to run at any time, and again after a crash."""
        started = time.monotonic()
        report = GcReport()
        with self._lock:
            now = time.time()
            self._recover_trash()
            report.links_removed = self._unlink_stale(now - self.grace)
            report.uploads_cancelled = self._cancel_stale_uploads(now - self.upload_max_age)
            self._sweep(now - self.grace, report)
        report.seconds = round(time.monotonic() - started, 3)
        if report.blobs_deleted or report.links_removed or report.uploads_cancelled:
            log.info("gc: %s", report)
        return report

    # --- links ---------------------------------------------------------------------------

    def _unlink_stale(self, cutoff: float) -> int:
        links, refs, imgs = ecr_repository_blobs.c, ecr_image_refs.c, ecr_images.c
        referenced = exists().where(refs.image_id == imgs.id,
                                    imgs.repository_id == links.repository_id,
                                    refs.digest == links.digest)
        with self.store.transaction() as db:
            return db.execute(delete(ecr_repository_blobs).where(
                links.created_at < datetime.fromtimestamp(cutoff, UTC), ~referenced)).rowcount

    # --- uploads -------------------------------------------------------------------------

    def _last_activity(self, upload_id: str, created: float) -> float:
        """The newest of: the row's creation, the upload file's and its directory's mtime
        (a directory without its file yet is an upload being started right now)."""
        data = upload_path(upload_id)
        times = [created] + [info.mtime for info in (self.driver.stat(data),
                                                     self.driver.stat(data.rsplit("/", 1)[0]))
                             if info is not None]
        return max(times)

    def _cancel_stale_uploads(self, cutoff: float) -> int:
        t = registry_uploads.c
        with self.store.transaction(write=False) as db:
            rows = [(i, c.timestamp()) for i, c in db.execute(select(t.id, t.created_at))]
        known = {i for i, _ in rows}
        cancelled = 0
        for upload_id, created in rows:
            if self._last_activity(upload_id, created) >= cutoff:
                continue
            with self.store.transaction() as db:
                gone = db.execute(delete(registry_uploads).where(t.id == upload_id)).rowcount
            if gone:
                self.blobs.cancel(upload_id)
                cancelled += 1
        for upload_id in self._upload_dirs():  # files whose row never committed (crash)
            if upload_id not in known and 0 < self._last_activity(upload_id, 0) < cutoff:
                self.blobs.cancel(upload_id)
                cancelled += 1
        return cancelled

    def _upload_dirs(self) -> list[str]:
        try:
            return [p.rsplit("/", 1)[1] for p in self.driver.list("uploads")]
        except FileNotFoundError:
            return []

    # --- blobs ---------------------------------------------------------------------------

    def _walk(self) -> list[_BlobFile]:
        """Every blob file under ``blobs/<alg>/<xx>/<hex>/data``."""
        out = []
        for alg_dir in self._list("blobs"):
            alg = alg_dir.rsplit("/", 1)[1]
            for fan in self._list(alg_dir):
                for blob_dir in self._list(fan):
                    path = f"{blob_dir}/data"
                    info = self.driver.stat(path)
                    if info is not None and not info.is_dir:
                        out.append(_BlobFile(f"{alg}:{blob_dir.rsplit('/', 1)[1]}", path,
                                             info.size, info.mtime))
        return out

    def _list(self, path: str) -> list[str]:
        try:
            return self.driver.list(path)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _sweep(self, cutoff: float, report: GcReport) -> None:
        files = self._walk()
        report.blobs_scanned = len(files)
        old = [f for f in files if f.mtime < cutoff]
        if not old:
            return
        with self.store.transaction(write=False) as db:
            marked = _in_use(db)
        doomed = [f for f in old if f.digest not in marked]
        for start in range(0, len(doomed), BATCH):
            batch = doomed[start:start + BATCH]
            with self.store.transaction() as db:  # re-checked under the write lock
                still = _in_use(db, [f.digest for f in batch])
                for f in batch:
                    if f.digest not in still and self._delete(f, cutoff):
                        report.blobs_deleted += 1
                        report.bytes_reclaimed += f.size

    def _delete(self, f: _BlobFile, cutoff: float) -> bool:
        trash = f"{TRASH}/{f.digest.replace(':', '-')}.{uuid.uuid4().hex}"
        try:
            self.driver.move(f.path, trash)
        except FileNotFoundError:
            return False  # gone already (another collector, a crash recovery)
        info = self.driver.stat(trash)
        if info is not None and info.mtime >= cutoff:  # a push refreshed it: put it back
            self.driver.move(trash, f.path)
            return False
        self.driver.delete(trash)
        self._prune(f.path.rsplit("/", 1)[0])
        return True

    def _prune(self, directory: str) -> None:
        """Remove the blob's now-empty directories (drivers without directories skip it)."""
        prune = getattr(self.driver, "prune", None)
        if prune is not None:
            prune(directory, stop="blobs")

    def _recover_trash(self) -> None:
        """Files a crashed run left in the trash go back where they were; this run decides
        about them again."""
        for entry in self._list(TRASH):
            name = entry.rsplit("/", 1)[1].split(".", 1)[0]
            alg, _, hexpart = name.partition("-")
            target = blob_path(f"{alg}:{hexpart}")
            with contextlib.suppress(FileNotFoundError):
                if self.driver.stat(target) is None:
                    self.driver.move(entry, target)
                else:
                    self.driver.delete(entry)
