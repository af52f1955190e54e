"""ECR's image and layer operations, on the same images, tags and blobs the registry serves.

    push:  InitiateLayerUpload ─> UploadLayerPart… ─> CompleteLayerUpload   (each blob)
           └─> PutImage (manifest text) ── images.put_manifest (references, tag mutability)
    pull:  BatchGetImage (manifest text) ─> GetDownloadUrlForLayer (the registry's blob URL)
    read:  ListImages, DescribeImages, BatchCheckLayerAvailability,
           DescribeImageReplicationStatus
    write: BatchDeleteImage (by tag: the tag, and the image with its last tag; by digest: the
           image and all its tags)

Layer uploads are the registry's uploads (``registry_uploads`` rows over the blob store's
upload files), so both surfaces share one notion of an upload and of a repository's blobs.
Batch operations report per-image problems in ``failures`` and never raise for them
(ECR API reference, BatchGetImage / BatchDeleteImage).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on, writes
from corral.ecr import images
from corral.ecr.errors import (
    EmptyUploadException,
    ImageAlreadyExistsException,
    ImageDigestDoesNotMatchException,
    ImageNotFoundException,
    ImageTagAlreadyExistsException,
    InvalidLayerException,
    InvalidLayerPartException,
    InvalidParameterException,
    LayerAlreadyExistsException,
    LayersNotFoundException,
    ReferencedImagesNotFoundException,
    UploadNotFoundException,
)
from corral.ecr.images import Image, MissingReferences, TagImmutable
from corral.ecr.repositories import Repository
from corral.ecr.scope import repository_arn
from corral.registry import digests, manifests
from corral.registry.blobs import BlobStore, DigestMismatch
from corral.store.schema import registry_uploads

if TYPE_CHECKING:
    from corral.config import Settings

PART_SIZE = 10 * 1024 * 1024  # the partSize ECR's InitiateLayerUpload answers
DEFAULT_PAGE = 100  # ListImages / DescribeImages without maxResults
DIGEST_PATTERN = "[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+"  # ECR's ImageDigest / LayerDigest pattern
NOT_FOUND = "Requested image not found"


class _Failure(Exception):
    """One image id's problem in a batch: an ``ImageFailure`` (failureCode, failureReason)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def view(self, image_id: dict[str, str]) -> dict[str, Any]:
        return {"imageId": _requested(image_id), "failureCode": self.code,
                "failureReason": self.reason}


def _requested(image_id: dict[str, str]) -> dict[str, str]:
    return {k: image_id[k] for k in ("imageDigest", "imageTag") if image_id.get(k) is not None}


def _image_id(digest: str, tag: str | None) -> dict[str, str]:
    return {"imageDigest": digest} | ({"imageTag": tag} if tag is not None else {})


def _unique(image_ids: list[dict[str, str]]) -> list[dict[str, str]]:
    """The request's image ids without repeats (ECR answers each distinct id once)."""
    seen: dict[tuple, dict[str, str]] = {}
    for ident in image_ids:
        seen.setdefault((ident.get("imageDigest"), ident.get("imageTag")), ident)
    return list(seen.values())


def _now() -> datetime:
    return datetime.now(UTC)


def _cursor(token: str | None, operation: str, **fields: type) -> dict[str, Any] | None:
    try:
        return pagination.decode(token, **fields)
    except ValueError:
        raise InvalidParameterException(
            "Invalid parameter at 'nextToken' failed to satisfy constraint: "
            f"'must be a token returned by a previous {operation} call'"
        ) from None


def _status_filter(params: dict[str, Any]) -> tuple[str, bool]:
    """(tagStatus, whether imageStatus admits ACTIVE images — the only status Corral has)."""
    f = params.get("filter") or {}
    return f.get("tagStatus", "ANY"), f.get("imageStatus", "ACTIVE") in ("ACTIVE", "ANY")


class ImageOperations:
    """Mixed into the ECR provider, which supplies ``settings``, ``blobs``, ``_repo`` and
    ``registry_host``."""

    settings: Settings
    blobs: BlobStore

    # --- lookups ---------------------------------------------------------------------------

    def _lookup(self, ctx: RequestContext, repo: Repository, image_id: dict[str, str]) -> Image:
        """The image an ``ImageIdentifier`` names, or the batch failure ECR reports for it."""
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        if digest is None and tag is None:
            raise _Failure("MissingDigestAndTag",
                           "Invalid request parameters: both tag and digest cannot be null")
        if digest is not None and not digests.is_digest(digest):
            raise _Failure("InvalidImageDigest", "Invalid request parameters: image digest "
                           f"should satisfy the regex '{DIGEST_PATTERN}'")
        if tag is not None and not images.TAG_PATTERN.match(tag):
            raise _Failure("InvalidImageTag", "Invalid request parameters: image tag should "
                           f"satisfy the regex '{images.TAG_PATTERN.pattern}'")
        by_digest = images.get(ctx.db, repo.id, digest) if digest is not None else None
        by_tag = images.by_tag(ctx.db, repo.id, tag) if tag is not None else None
        found = by_digest if digest is not None else by_tag
        if found is None or (digest is not None and tag is not None and by_tag is None):
            raise _Failure("ImageNotFound", NOT_FOUND)
        if digest is not None and tag is not None and by_tag.id != by_digest.id:
            raise _Failure("ImageTagDoesNotMatchDigest", "Invalid request parameters: the tag "
                           f"'{tag}' does not point to the image with digest '{digest}'")
        return found

    def _lookup_or_raise(self, ctx: RequestContext, repo: Repository,
                         image_id: dict[str, str]) -> Image:
        """Single-image operations raise what the batch operations list as failures."""
        try:
            return self._lookup(ctx, repo, image_id)
        except _Failure as f:
            if f.code in ("ImageNotFound", "ImageTagDoesNotMatchDigest"):
                raise ImageNotFoundException(image_id, repo.name, repo.account_id) from None
            raise InvalidParameterException(f.reason) from None

    def _upload_size(self, ctx: RequestContext, repo: Repository, upload_id: str) -> int:
        t = registry_uploads.c
        row = ctx.db.execute(select(t.id).where(
            t.id == upload_id, t.repository_id == repo.id)).first()
        size = self.blobs.upload_size(upload_id) if row else None
        if size is None:
            raise UploadNotFoundException(upload_id, repo.name, repo.account_id)
        return size

    def drop_uploads(self, ctx: RequestContext, repo: Repository) -> None:
        """Cancel a repository's unfinished uploads (it is being deleted)."""
        t = registry_uploads.c
        ids = list(ctx.db.execute(select(t.id).where(t.repository_id == repo.id)).scalars())
        for upload_id in ids:
            self.blobs.cancel(upload_id)
        ctx.db.execute(registry_uploads.delete().where(t.repository_id == repo.id))

    # --- views -----------------------------------------------------------------------------

    def _detail(self, repo: Repository, image: Image, tags: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "registryId": repo.account_id,
            "repositoryName": repo.name,
            "imageDigest": image.digest,
            "imageSizeInBytes": image.size,
            "imagePushedAt": image.pushed_at,
            "imageManifestMediaType": image.media_type,
            "imageStatus": "ACTIVE",
        }
        if tags:
            out["imageTags"] = tags
        if image.artifact_media_type:
            out["artifactMediaType"] = image.artifact_media_type
        if image.last_pulled_at is not None:
            out["lastRecordedPullTime"] = image.last_pulled_at
        if image.subject_digest:
            out["subjectManifestDigest"] = image.subject_digest
        return out

    def _manifest_text(self, image: Image) -> str:
        # Stored byte for byte as pushed; PutImage only ever stores UTF-8 text.
        return self.blobs.get(image.digest).decode("utf-8", errors="replace")

    # --- listing ---------------------------------------------------------------------------

    @acts_on(repository_arn)
    def list_images(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        tag_status, active = _status_filter(params)
        cursor = _cursor(params.get("nextToken"), "ListImages", after=int, tag=str)
        after = (cursor["after"], cursor["tag"]) if cursor else (0, "")
        limit = params.get("maxResults", DEFAULT_PAGE)
        rows = images.page_ids(ctx.db, repo.id, tag_status=tag_status, after=after,
                               limit=limit + 1) if active else []
        out: dict[str, Any] = {"imageIds": [_image_id(d, t) for _, d, t in rows[:limit]]}
        if len(rows) > limit:
            last_id, _, last_tag = rows[limit - 1]
            out["nextToken"] = pagination.encode({"after": last_id, "tag": last_tag or ""})
        return out

    @acts_on(repository_arn)
    def describe_images(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        if params.get("imageIds"):
            if params.get("maxResults") or params.get("nextToken"):
                raise InvalidParameterException(
                    "Invalid parameter: maxResults and nextToken cannot be used with imageIds")
            found = {}
            for ident in params["imageIds"]:
                image = self._lookup_or_raise(ctx, repo, ident)
                found.setdefault(image.id, image)
            chosen, token = list(found.values()), None
        else:
            tag_status, active = _status_filter(params)
            cursor = _cursor(params.get("nextToken"), "DescribeImages", after=int)
            limit = params.get("maxResults", DEFAULT_PAGE)
            rows = images.page(ctx.db, repo.id, tag_status=tag_status,
                               after_id=cursor["after"] if cursor else 0,
                               limit=limit + 1) if active else []
            chosen = rows[:limit]
            token = pagination.encode({"after": rows[limit - 1].id}) if len(rows) > limit else None
        tags = images.tags_of(ctx.db, [i.id for i in chosen])
        out: dict[str, Any] = {"imageDetails": [self._detail(repo, i, tags[i.id]) for i in chosen]}
        if token:
            out["nextToken"] = token
        return out

    @acts_on(repository_arn)
    def describe_image_replication_status(self, ctx: RequestContext,
                                          params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        ident = params["imageId"]
        image = self._lookup_or_raise(ctx, repo, ident)
        # Corral has no replication configuration, so no image has a replication status.
        return {"repositoryName": repo.name,
                "imageId": _image_id(image.digest, ident.get("imageTag")),
                "replicationStatuses": []}

    # --- manifests -------------------------------------------------------------------------

    @writes  # a BatchGetImage is a pull: it records lastRecordedPullTime, as registry GETs do
    @acts_on(repository_arn)
    def batch_get_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        accepted = params.get("acceptedMediaTypes")
        found, failures = [], []
        now = _now()
        for ident in _unique(params["imageIds"]):
            try:
                image = self._lookup(ctx, repo, ident)
                if accepted and image.media_type not in accepted:
                    # ECR cannot convert between these manifest formats (nor does Corral).
                    raise _Failure("ImageNotFound", f"{NOT_FOUND}: its media type "
                                   f"{image.media_type} is not among the acceptedMediaTypes")
            except _Failure as f:
                failures.append(f.view(ident))
                continue
            images.touch_pull(ctx.db, image, now)
            found.append({
                "registryId": repo.account_id, "repositoryName": repo.name,
                "imageId": _image_id(image.digest, ident.get("imageTag")),
                "imageManifest": self._manifest_text(image),
                "imageManifestMediaType": image.media_type,
            })
        return {"images": found, "failures": failures}

    @acts_on(repository_arn)
    def put_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        text, tag = params["imageManifest"], params.get("imageTag")
        raw = text.encode("utf-8")
        if tag is not None and not images.TAG_PATTERN.match(tag):
            raise InvalidParameterException(
                "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy "
                f"regular expression '{images.TAG_PATTERN.pattern}''")
        manifest = self._parse_manifest(raw, params.get("imageManifestMediaType"))
        given = params.get("imageDigest")
        algorithm = self._digest_algorithm(given, "imageDigest") if given else "sha256"
        digest = digests.of(raw, algorithm)
        if given and given != digest:
            raise ImageDigestDoesNotMatchException(given, digest)
        existing = images.get(ctx.db, repo.id, digest)
        if existing is not None and (
                tag is None or tag in images.tags_of(ctx.db, [existing.id])[existing.id]):
            raise ImageAlreadyExistsException(digest, tag, repo.name, repo.account_id)
        self.blobs.put(raw, algorithm)  # content-addressed: harmless if the push fails below
        try:
            images.put_manifest(ctx.db, repo, manifest, digest, tag, _now())
        except MissingReferences as e:
            if e.blobs:
                raise LayersNotFoundException(
                    f"Layers with digests '{e.blobs}' required for pushing image into "
                    f"repository with name '{repo.name}' in the registry with id "
                    f"'{repo.account_id}' do not exist") from None
            raise ReferencedImagesNotFoundException(
                f"Images with digests '{e.manifests}' referenced by the manifest list do not "
                f"exist in the repository with name '{repo.name}' in the registry with id "
                f"'{repo.account_id}'") from None
        except TagImmutable as e:
            raise ImageTagAlreadyExistsException(str(e)) from None
        return {"image": {
            "registryId": repo.account_id, "repositoryName": repo.name,
            "imageId": _image_id(digest, tag), "imageManifest": text,
            "imageManifestMediaType": manifest.media_type,
        }}

    @staticmethod
    def _parse_manifest(raw: bytes, media_type: str | None) -> manifests.Manifest:
        if media_type is not None and media_type not in manifests.MEDIA_TYPES:
            raise InvalidParameterException(
                "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: "
                f"'must be one of {', '.join(manifests.MEDIA_TYPES)}'")
        try:
            return manifests.parse(raw, media_type)
        except (manifests.ManifestInvalid, manifests.ManifestUnsupported) as e:
            raise InvalidParameterException(
                f"Invalid parameter at 'imageManifest' failed to satisfy constraint: '{e}'"
            ) from None

    @staticmethod
    def _digest_algorithm(digest: str, field: str) -> str:
        try:
            return digests.parse(digest)[0]
        except digests.InvalidDigest as e:
            raise InvalidParameterException(
                f"Invalid parameter at '{field}' failed to satisfy constraint: '{e}'") from None

    @acts_on(repository_arn)
    def batch_delete_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        deleted: list[dict[str, str]] = []
        failures: list[dict[str, Any]] = []
        pending = _unique(params["imageIds"])
        # An image an index lists cannot go while the index stays; when the same request also
        # deletes that index, retry after it has gone (request order does not matter).
        while pending:
            blocked = []
            for ident in pending:
                try:
                    deleted += self._delete_one(ctx, repo, ident)
                except _Failure as f:
                    if f.code == "ImageReferencedByManifestList":
                        blocked.append((ident, f))
                    else:
                        failures.append(f.view(ident))
            if len(blocked) == len(pending):
                failures += [f.view(ident) for ident, f in blocked]
                break
            pending = [ident for ident, _ in blocked]
        return {"imageIds": deleted, "failures": failures}

    def _delete_one(self, ctx: RequestContext, repo: Repository,
                    ident: dict[str, str]) -> list[dict[str, str]]:
        """Remove what one image id names; returns the image ids it removed."""
        image = self._lookup(ctx, repo, ident)
        tags = images.tags_of(ctx.db, [image.id])[image.id]
        tag = ident.get("imageTag")
        if tag is not None and len(tags) > 1:  # other tags keep the image
            images.remove_tag(ctx.db, repo.id, tag)
            return [_image_id(image.digest, tag)]
        parents = images.parents_of(ctx.db, repo.id, image.digest)
        if parents:
            raise _Failure("ImageReferencedByManifestList", "Requested image is referenced by "
                           f"the manifest list {sorted(p.digest for p in parents)}")
        images.remove_image(ctx.db, image)
        if tag is not None:
            return [_image_id(image.digest, tag)]
        return [_image_id(image.digest, t) for t in tags] or [_image_id(image.digest, None)]

    # --- layers ----------------------------------------------------------------------------

    @acts_on(repository_arn)
    def batch_check_layer_availability(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        layers, failures = [], []
        for digest in params["layerDigests"]:
            if not digest:
                failures.append({"layerDigest": digest, "failureCode": "MissingLayerDigest",
                                 "failureReason": "The layer digest is empty"})
                continue
            if not digests.is_digest(digest):
                failures.append({"layerDigest": digest, "failureCode": "InvalidLayerDigest",
                                 "failureReason": "Invalid layer digest"})
                continue
            size = images.linked_size(ctx.db, repo.id, digest)
            if size is None or self.blobs.size(digest) is None:
                failures.append({"layerDigest": digest, "failureCode": "MissingLayerDigest",
                                 "failureReason": "Could not find layer"})
                continue
            layers.append({"layerDigest": digest, "layerAvailability": "AVAILABLE",
                           "layerSize": size})
        return {"layers": layers, "failures": failures}

    @acts_on(repository_arn)
    def initiate_layer_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        upload_id = self.blobs.start_upload()
        ctx.db.execute(registry_uploads.insert().values(
            id=upload_id, repository_id=repo.id, created_at=_now()))
        return {"uploadId": upload_id, "partSize": PART_SIZE}

    @acts_on(repository_arn)
    def upload_layer_part(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        upload_id = params["uploadId"]
        size = self._upload_size(ctx, repo, upload_id)
        first, last, data = params["partFirstByte"], params["partLastByte"], params["layerPartBlob"]
        if first != size:
            raise InvalidLayerPartException(
                f"The part's first byte {first} does not follow the last byte received for "
                f"upload '{upload_id}'; lastValidByteReceived: {size - 1}")
        if not data or last != first + len(data) - 1:
            raise InvalidLayerPartException(
                f"The part holds {len(data)} bytes, which do not span partFirstByte {first} to "
                f"partLastByte {last}; lastValidByteReceived: {size - 1}")
        new_size = self.blobs.append(upload_id, [data])
        return {"registryId": repo.account_id, "repositoryName": repo.name,
                "uploadId": upload_id, "lastByteReceived": new_size - 1}

    @acts_on(repository_arn)
    def complete_layer_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        upload_id = params["uploadId"]
        size = self._upload_size(ctx, repo, upload_id)
        if len(params["layerDigests"]) != 1:
            raise InvalidParameterException(
                "Invalid parameter at 'layerDigests' failed to satisfy constraint: "
                "'must name exactly one digest, the layer's'")
        digest = params["layerDigests"][0]
        self._digest_algorithm(digest, "layerDigests")
        if size == 0:
            raise EmptyUploadException(upload_id)
        already = images.linked_size(ctx.db, repo.id, digest) is not None
        try:
            size = self.blobs.commit(upload_id, digest)
        except DigestMismatch as e:
            self.blobs.cancel(upload_id)
            raise InvalidLayerException(
                f"The layer digest '{digest}' does not match the digest '{e.actual}' calculated "
                "for the uploaded content") from None
        # The content was verified either way (clients rely on that for LayerAlreadyExists).
        if already:
            raise LayerAlreadyExistsException(digest, repo.name, repo.account_id)
        images.link_blob(ctx.db, repo.id, digest, size, _now())
        ctx.db.execute(registry_uploads.delete().where(registry_uploads.c.id == upload_id))
        return {"registryId": repo.account_id, "repositoryName": repo.name,
                "uploadId": upload_id, "layerDigest": digest}

    @acts_on(repository_arn)
    def get_download_url_for_layer(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        digest = params["layerDigest"]
        size = images.linked_size(ctx.db, repo.id, digest) if digests.is_digest(digest) else None
        if size is None or self.blobs.size(digest) is None:
            raise LayersNotFoundException(
                f"The layer with digest '{digest}' does not exist in the repository with name "
                f"'{repo.name}' in the registry with id '{repo.account_id}'")
        # ECR answers a pre-signed S3 URL; Corral's is the registry's blob endpoint, which
        # takes the same Basic credentials as any registry call (GetAuthorizationToken).
        scheme = urlsplit(self.settings.public_endpoint).scheme
        host = self.registry_host(repo.account_id, repo.region)
        return {"downloadUrl": f"{scheme}://{host}/v2/{repo.name}/blobs/{digest}",
                "layerDigest": digest}
