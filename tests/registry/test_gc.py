"""Garbage collection over a real state store and filesystem blob store (no server): what is
kept, what is reclaimed, and the online-safety rules (grace by link age and file mtime,
re-check under the write lock, trash and restore)."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from corral.registry.blobs import BlobStore, blob_path
from corral.registry.gc import TRASH, GarbageCollector, _BlobFile
from corral.registry.storage import FilesystemDriver
from corral.store import Store
from corral.store.schema import (
    ecr_image_refs,
    ecr_images,
    ecr_repository_blobs,
    registry_uploads,
)

HOUR = 3600
OLD = time.time() - 2 * HOUR


@pytest.fixture
def env(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    blobs = BlobStore(FilesystemDriver(tmp_path / "registry"))
    gc = GarbageCollector(store, blobs, grace=HOUR, upload_max_age=24 * HOUR)
    yield store, blobs, gc, tmp_path / "registry"
    store.close()


def put_blob(blobs: BlobStore, root, data: bytes, *, mtime: float = OLD) -> str:
    upload = blobs.start_upload()
    blobs.append(upload, [data])
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs.commit(upload, digest)
    os.utime(root / blob_path(digest), (mtime, mtime))
    return digest


def link(store: Store, repo_id: int, digest: str, size: int, age: float = 2 * HOUR) -> None:
    with store.transaction() as db:
        db.execute(ecr_repository_blobs.insert().values(
            repository_id=repo_id, digest=digest, size=size,
            created_at=datetime.now(UTC) - timedelta(seconds=age)))


def image(store: Store, repo_id: int, manifest: str, refs: list[str]) -> None:
    with store.transaction() as db:
        image_id = db.execute(ecr_images.insert().values(
            repository_id=repo_id, digest=manifest, media_type="m", size=1, manifest_size=1,
            pushed_at=datetime.now(UTC))).inserted_primary_key[0]
        for d in refs:
            db.execute(ecr_image_refs.insert().values(image_id=image_id, digest=d, kind="blob",
                                                      size=1))


def exists(root, digest: str) -> bool:
    return (root / blob_path(digest)).exists()


def test_unreferenced_blobs_go_referenced_stay(env):
    store, blobs, gc, root = env
    layer, config, manifest = (put_blob(blobs, root, os.urandom(n)) for n in (5000, 100, 300))
    orphan = put_blob(blobs, root, os.urandom(7000))
    for d, size in ((layer, 5000), (config, 100)):
        link(store, 1, d, size)
    image(store, 1, manifest, [layer, config])
    report = gc.collect()
    assert (report.blobs_deleted, report.bytes_reclaimed) == (1, 7000)
    assert report.blobs_scanned == 4
    assert not exists(root, orphan)
    assert not (root / blob_path(orphan)).parent.exists()  # its directory is pruned too
    assert all(exists(root, d) for d in (layer, config, manifest))
    assert not list((root / TRASH).iterdir())


def test_stale_links_are_removed_then_their_blobs(env):
    store, blobs, gc, root = env
    used, dangling = put_blob(blobs, root, b"used" * 100), put_blob(blobs, root, b"gone" * 100)
    link(store, 1, used, 400)
    link(store, 1, dangling, 400)
    link(store, 2, used, 400)  # repository 2 has no image using it: its link goes
    image(store, 1, put_blob(blobs, root, b"manifest"), [used])
    report = gc.collect()
    assert report.links_removed == 2
    assert (report.blobs_deleted, report.bytes_reclaimed) == (1, 400)
    assert exists(root, used) and not exists(root, dangling)


def test_grace_period_protects_in_flight_pushes(env):
    store, blobs, gc, root = env
    fresh_file = put_blob(blobs, root, b"just uploaded", mtime=time.time())
    young_link = put_blob(blobs, root, b"linked a minute ago")
    link(store, 1, young_link, 19, age=60)
    report = gc.collect()
    assert report.blobs_deleted == 0 and report.links_removed == 0
    assert exists(root, fresh_file) and exists(root, young_link)


def test_a_blob_refreshed_after_the_decision_is_put_back(env):
    """A push re-uploading the blob between GC's decision and its deletion wins."""
    store, blobs, gc, root = env
    digest = put_blob(blobs, root, b"about to be pushed again")
    stale = _BlobFile(digest, blob_path(digest), 24, OLD)
    os.utime(root / blob_path(digest), None)  # the push's commit: a fresh file
    assert gc._delete(stale, cutoff=time.time() - HOUR) is False
    assert exists(root, digest)


def test_crash_leftovers_in_trash_are_restored(env):
    store, blobs, gc, root = env
    digest = put_blob(blobs, root, b"half-deleted")
    link(store, 1, digest, 12, age=0)
    trash = root / TRASH / f"{digest.replace(':', '-')}.deadbeef"
    trash.parent.mkdir(parents=True)
    os.replace(root / blob_path(digest), trash)
    gc.collect()
    assert exists(root, digest) and not trash.exists()


def test_abandoned_uploads_are_cancelled(env):
    store, blobs, gc, root = env
    old_upload, new_upload, orphan = blobs.start_upload(), blobs.start_upload(), blobs.start_upload()
    day_ago = datetime.now(UTC) - timedelta(days=2)
    with store.transaction() as db:
        db.execute(registry_uploads.insert(), [
            {"id": old_upload, "repository_id": 1, "created_at": day_ago},
            {"id": new_upload, "repository_id": 1, "created_at": day_ago}])
    two_days = time.time() - 2 * 86400
    for upload in (old_upload, orphan):
        for path in (root / "uploads" / upload / "data", root / "uploads" / upload):
            os.utime(path, (two_days, two_days))
    blobs.append(new_upload, [b"still sending"])  # an upload still active: recent mtime
    assert gc.collect().uploads_cancelled == 2
    assert not (root / "uploads" / old_upload).exists()
    assert not (root / "uploads" / orphan).exists()
    assert blobs.upload_size(new_upload) == 13
    with store.transaction(write=False) as db:
        assert [r.id for r in db.execute(registry_uploads.select())] == [new_upload]


def test_an_upload_being_started_is_not_an_orphan(env):
    """Its directory exists, its file not yet (and no row): it is young, not abandoned."""
    store, blobs, gc, root = env
    (root / "uploads" / "starting").mkdir(parents=True)
    assert gc.collect().uploads_cancelled == 0
    assert (root / "uploads" / "starting").exists()


def test_gc_is_idempotent(env):
    store, blobs, gc, root = env
    put_blob(blobs, root, b"x" * 10)
    assert gc.collect().blobs_deleted == 1
    again = gc.collect()
    assert (again.blobs_deleted, again.blobs_scanned) == (0, 0)
