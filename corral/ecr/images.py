"""Images, tags and blob links of a repository, in the state store.

One piece of push logic for both surfaces: the registry's manifest PUT and ECR's PutImage call
:func:`put_manifest`, which checks references and tag mutability and records the image in the
caller's transaction. Domain errors here are mapped by each surface to its own error format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, and_, delete, exists, func, or_, select

from corral.ecr import scanning
from corral.ecr.repositories import Repository
from corral.registry.manifests import Manifest
from corral.store.schema import ecr_image_refs, ecr_image_tags, ecr_images, ecr_repository_blobs

TAG_PATTERN = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Image:
    id: int
    repository_id: int
    digest: str
    media_type: str
    artifact_media_type: str | None
    artifact_type: str | None
    size: int
    manifest_size: int
    subject_digest: str | None
    pushed_at: datetime
    last_pulled_at: datetime | None


class MissingReferences(Exception):
    def __init__(self, blobs: list[str], manifests: list[str]):
        super().__init__(", ".join(blobs + manifests))
        self.blobs = blobs
        self.manifests = manifests


class TagImmutable(Exception):
    def __init__(self, tag: str, repository: str):
        super().__init__(
            f"The image tag '{tag}' already exists in the '{repository}' repository and cannot "
            "be overwritten because the tag is immutable."
        )


# --- blob links ----------------------------------------------------------------------------


def link_blob(db: Connection, repo_id: int, digest: str, size: int, now: datetime) -> None:
    if linked_size(db, repo_id, digest) is None:
        db.execute(ecr_repository_blobs.insert().values(
            repository_id=repo_id, digest=digest, size=size, created_at=now))


def linked_size(db: Connection, repo_id: int, digest: str) -> int | None:
    t = ecr_repository_blobs.c
    return db.execute(select(t.size).where(t.repository_id == repo_id, t.digest == digest)
                      ).scalar_one_or_none()


def any_link(db: Connection, repo_ids: list[int], digest: str) -> int | None:
    """Size of ``digest`` if any of these repositories holds it (for mounts)."""
    t = ecr_repository_blobs.c
    return db.execute(select(t.size).where(t.repository_id.in_(repo_ids), t.digest == digest)
                      .limit(1)).scalar_one_or_none()


# --- images and tags -----------------------------------------------------------------------


def _image(row) -> Image | None:
    return Image(**row._mapping) if row else None


def get(db: Connection, repo_id: int, digest: str) -> Image | None:
    t = ecr_images.c
    return _image(db.execute(select(ecr_images).where(
        t.repository_id == repo_id, t.digest == digest)).first())


def by_tag(db: Connection, repo_id: int, tag: str) -> Image | None:
    return _image(db.execute(
        select(ecr_images).join(ecr_image_tags, ecr_image_tags.c.image_id == ecr_images.c.id)
        .where(ecr_image_tags.c.repository_id == repo_id, ecr_image_tags.c.tag == tag)).first())


def tags_of(db: Connection, image_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in image_ids}
    if image_ids:
        rows = db.execute(select(ecr_image_tags.c.image_id, ecr_image_tags.c.tag)
                          .where(ecr_image_tags.c.image_id.in_(image_ids))
                          .order_by(ecr_image_tags.c.tag))
        for image_id, tag in rows:
            out[image_id].append(tag)
    return out


def all_images(db: Connection, repo_id: int) -> list[Image]:
    return [_image(r) for r in db.execute(
        select(ecr_images).where(ecr_images.c.repository_id == repo_id)
        .order_by(ecr_images.c.id))]


def page(db: Connection, repo_id: int, *, tag_status: str = "ANY", after_id: int = 0,
         limit: int) -> list[Image]:
    """Images in push order after ``after_id``; ``tag_status`` TAGGED | UNTAGGED | ANY."""
    t = ecr_images.c
    q = select(ecr_images).where(t.repository_id == repo_id, t.id > after_id)
    tagged = exists().where(ecr_image_tags.c.image_id == t.id)
    if tag_status == "TAGGED":
        q = q.where(tagged)
    elif tag_status == "UNTAGGED":
        q = q.where(~tagged)
    return [_image(r) for r in db.execute(q.order_by(t.id).limit(limit))]


def page_ids(db: Connection, repo_id: int, *, tag_status: str = "ANY",
             after: tuple[int, str] = (0, ""), limit: int) -> list[tuple[int, str, str | None]]:
    """(image id, digest, tag) once per tag of each image, and (id, digest, None) for an
    untagged image; ordered by (image id, tag), starting after the key ``after``."""
    i, g = ecr_images.c, ecr_image_tags.c
    tag_key = func.coalesce(g.tag, "")
    q = (select(i.id, i.digest, g.tag)
         .select_from(ecr_images.outerjoin(ecr_image_tags, g.image_id == i.id))
         .where(i.repository_id == repo_id,
                or_(i.id > after[0], and_(i.id == after[0], tag_key > after[1]))))
    if tag_status == "TAGGED":
        q = q.where(g.tag.is_not(None))
    elif tag_status == "UNTAGGED":
        q = q.where(g.tag.is_(None))
    return [tuple(r) for r in db.execute(q.order_by(i.id, tag_key).limit(limit))]


def all_tags(db: Connection, repo_id: int) -> list[str]:
    return list(db.execute(select(ecr_image_tags.c.tag).where(
        ecr_image_tags.c.repository_id == repo_id).order_by(ecr_image_tags.c.tag)).scalars())


def count(db: Connection, repo_id: int) -> int:
    return db.execute(select(func.count()).select_from(ecr_images).where(
        ecr_images.c.repository_id == repo_id)).scalar_one()


def referrers(db: Connection, repo_id: int, subject: str) -> list[Image]:
    t = ecr_images.c
    return [_image(r) for r in db.execute(select(ecr_images).where(
        t.repository_id == repo_id, t.subject_digest == subject).order_by(t.id))]


def parents_of(db: Connection, repo_id: int, digest: str) -> list[Image]:
    """Indexes in this repository that list ``digest`` as a child manifest."""
    return [_image(r) for r in db.execute(
        select(ecr_images).join(ecr_image_refs, ecr_image_refs.c.image_id == ecr_images.c.id)
        .where(ecr_images.c.repository_id == repo_id, ecr_image_refs.c.digest == digest,
               ecr_image_refs.c.kind == "manifest"))]


def touch_pull(db: Connection, image: Image, now: datetime) -> None:
    db.execute(ecr_images.update().where(ecr_images.c.id == image.id).values(last_pulled_at=now))


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern:
    return re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$")


def tag_is_immutable(repo: Repository, tag: str) -> bool:
    """IMMUTABLE: every tag; *_WITH_EXCLUSION: the filters name the exceptions."""
    matches = any(_wildcard(f["filter"]).match(tag) for f in repo.mutability_exclusion_filters)
    return {
        "IMMUTABLE": True,
        "MUTABLE": False,
        "IMMUTABLE_WITH_EXCLUSION": not matches,
        "MUTABLE_WITH_EXCLUSION": matches,
    }.get(repo.image_tag_mutability, False)


def put_manifest(db: Connection, repo: Repository, manifest: Manifest, digest: str,
                 tag: str | None, now: datetime) -> tuple[Image, bool]:
    """Record a pushed manifest (and tag). Returns (image, whether anything changed)."""
    missing_blobs = [d.digest for d in manifest.blobs if linked_size(db, repo.id, d.digest) is None]
    children = {d.digest: get(db, repo.id, d.digest) for d in manifest.manifests}
    missing_children = [d for d, img in children.items() if img is None]
    if missing_blobs or missing_children:
        raise MissingReferences(missing_blobs, missing_children)

    changed = False
    image = get(db, repo.id, digest)
    if image is None:
        size = (max((c.size for c in children.values()), default=0) if manifest.is_index
                else manifest.layers_size)
        values = dict(
            repository_id=repo.id, digest=digest, media_type=manifest.media_type,
            artifact_media_type=manifest.config.media_type if manifest.config else None,
            artifact_type=manifest.effective_artifact_type, size=size,
            manifest_size=len(manifest.raw),
            subject_digest=manifest.subject.digest if manifest.subject else None,
            pushed_at=now, last_pulled_at=None,
        )
        new_id = db.execute(ecr_images.insert().values(**values)).inserted_primary_key[0]
        image = Image(id=new_id, **values)
        refs = [{"image_id": new_id, "digest": d.digest, "kind": "blob", "size": d.size}
                for d in manifest.blobs]
        refs += [{"image_id": new_id, "digest": d.digest, "kind": "manifest", "size": d.size}
                 for d in manifest.manifests]
        unique = list({r["digest"]: r for r in refs}.values())
        if unique:
            db.execute(ecr_image_refs.insert(), unique)
        scanning.on_push(db, repo, image, manifest.is_index, now)
        changed = True
    if tag is not None:
        changed = set_tag(db, repo, tag, image) or changed
    return image, changed


def set_tag(db: Connection, repo: Repository, tag: str, image: Image) -> bool:
    current = by_tag(db, repo.id, tag)
    if current is not None and current.id == image.id:
        return False
    if current is not None:
        if tag_is_immutable(repo, tag):
            raise TagImmutable(tag, repo.name)
        db.execute(ecr_image_tags.update().where(
            ecr_image_tags.c.repository_id == repo.id, ecr_image_tags.c.tag == tag
        ).values(image_id=image.id))
    else:
        db.execute(ecr_image_tags.insert().values(repository_id=repo.id, tag=tag,
                                                  image_id=image.id))
    # A moved tag never leaves an image behind: ECR keeps it, untagged.
    return True


def remove_tag(db: Connection, repo_id: int, tag: str) -> None:
    db.execute(delete(ecr_image_tags).where(ecr_image_tags.c.repository_id == repo_id,
                                            ecr_image_tags.c.tag == tag))


def remove_image(db: Connection, image: Image) -> None:
    db.execute(delete(ecr_image_tags).where(ecr_image_tags.c.image_id == image.id))
    db.execute(delete(ecr_image_refs).where(ecr_image_refs.c.image_id == image.id))
    db.execute(delete(ecr_images).where(ecr_images.c.id == image.id))


def remove_repository_content(db: Connection, repo_id: int) -> None:
    ids = select(ecr_images.c.id).where(ecr_images.c.repository_id == repo_id)
    db.execute(delete(ecr_image_refs).where(ecr_image_refs.c.image_id.in_(ids)))
    db.execute(delete(ecr_image_tags).where(ecr_image_tags.c.repository_id == repo_id))
    db.execute(delete(ecr_images).where(ecr_images.c.repository_id == repo_id))
    db.execute(delete(ecr_repository_blobs).where(ecr_repository_blobs.c.repository_id == repo_id))
