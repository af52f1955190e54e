"""The OCI distribution API under /v2/, as Amazon ECR serves it.

    request ─> account/region from Host ─> Basic "AWS:<password>" ─> route ─> authorize
            ─> handler (state in one transaction, bytes through the blob store) ─> response

Every handler's blocking work (database, hashing, file I/O) runs in the thread pool.
Repository names contain ``/``, so routes are matched by the suffix after the name.
Each request is logged once, when its response is over (``access_log``).

Nothing on /v2/ deletes blob bytes or a blob's link: ``DELETE /v2/<name>/blobs/<digest>`` is
405 ``UNSUPPORTED`` as on ECR (a blob a tagged image still uses must never go), cancelling an
upload removes only that upload's temporary file, and a blob no image references any more is
garbage collection's to reclaim (``registry/gc.py``, after its grace period).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import anyio
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response

from corral.aws import arns
from corral.aws.context import RequestContext
from corral.aws.errors import AwsError
from corral.config import Settings
from corral.ecr import auth as ecr_auth
from corral.ecr import images, repositories
from corral.ecr.images import MissingReferences, TagImmutable
from corral.ecr.repositories import Repository
from corral.ecr.scope import registry_host, registry_of_host
from corral.iam.authorize import Authorizer
from corral.registry import digests, manifests
from corral.registry.access_log import AccessRecord, LoggedResponse
from corral.registry.blobs import BlobStore, DigestMismatch
from corral.registry.errors import RegistryError
from corral.store import Store
from corral.store.schema import ecr_repositories, registry_uploads

log = logging.getLogger("corral.registry")

NAME = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
_ROUTES = [  # (suffix pattern after /v2/<name>, handler name); first match wins
    (re.compile(r"^(?P<name>.+)/tags/list$"), "tags"),
    (re.compile(r"^(?P<name>.+)/manifests/(?P<ref>[^/]+)$"), "manifest"),
    (re.compile(r"^(?P<name>.+)/blobs/uploads/?$"), "upload_start"),
    (re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<upload>[^/]+)$"), "upload"),
    (re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blob"),
    (re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$"), "referrers"),
]
# IAM actions behind each data-plane call (ECR image push/pull permissions).
PULL, PUSH = "ecr:BatchGetImage", "ecr:PutImage"
ACTIONS = {
    ("manifest", "GET"): PULL, ("manifest", "HEAD"): PULL, ("manifest", "PUT"): PUSH,
    ("manifest", "DELETE"): "ecr:BatchDeleteImage",
    ("blob", "GET"): "ecr:GetDownloadUrlForLayer", ("blob", "HEAD"): "ecr:BatchCheckLayerAvailability",
    ("upload_start", "POST"): "ecr:InitiateLayerUpload", ("upload", "PATCH"): "ecr:UploadLayerPart",
    ("upload", "PUT"): "ecr:CompleteLayerUpload", ("upload", "GET"): "ecr:UploadLayerPart",
    ("upload", "DELETE"): "ecr:UploadLayerPart", ("tags", "GET"): "ecr:ListImages",
    ("referrers", "GET"): PULL,
}
# Verbs a route answers to but never performs; ECR has no blob deletion on /v2/ (405).
UNSUPPORTED = {
    ("blob", "DELETE"): "The operation is unsupported. ECR does not delete blobs through the "
    "registry API: delete the images that use the blob (BatchDeleteImage, or DELETE "
    "/v2/<name>/manifests/<digest>) and garbage collection reclaims it once nothing refers to it.",
}
UNSUPPORTED_DEFAULT = "The operation is unsupported."
BUFFER = 1 << 20
_UPLOAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")


class RegistryApi:
    def __init__(self, settings: Settings, store: Store, blobs: BlobStore, authorizer: Authorizer,
                 create_on_push: bool = False):
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.authorizer = authorizer
        self.create_on_push = create_on_push

    # --- entry -----------------------------------------------------------------------------

    async def handle(self, request: Request) -> LoggedResponse:
        record = AccessRecord(request.method, request.url.path)
        return LoggedResponse(await self._respond(request, record), record)

    async def _respond(self, request: Request, record: AccessRecord) -> Response:
        head = request.method == "HEAD"
        try:
            return await self._dispatch(request, record)
        except RegistryError as e:
            return e.response(head)
        except AwsError as e:  # the authorizer's denial
            return RegistryError("DENIED", e.message).response(head)
        except ClientDisconnect:  # gone mid-upload: nobody reads this answer, the log line says it
            return RegistryError("BLOB_UPLOAD_INVALID", "the client disconnected before the "
                                 "request body ended").response(head)
        except Exception:  # the edge: one logged "internal" category, never a traceback out
            log.exception("registry internal error on %s %s", request.method, request.url.path)
            return Response(b'{"errors":[{"code":"UNKNOWN","message":"internal error"}]}',
                            status_code=500, media_type="application/json")

    async def _dispatch(self, request: Request, record: AccessRecord) -> Response:
        account, region = self._registry_of(request.headers.get("host", ""))
        ctx = await run_in_threadpool(self._authenticate, request, account, region)
        record.principal = ctx.principal.arn
        path = request.url.path
        rest = path[len("/v2/"):] if path.startswith("/v2/") else ""
        if rest == "":
            return Response(b"{}", media_type="application/json", headers=_api_headers())
        if rest == "_catalog":
            return await run_in_threadpool(self._catalog, ctx, request)
        for pattern, handler in _ROUTES:
            m = pattern.match(rest)
            if m is None:
                continue
            args = m.groupdict()
            name = args.pop("name")
            if not NAME.match(name) or not 2 <= len(name) <= 256:
                raise RegistryError("NAME_INVALID", f"repository name {name!r} must be 2 to 256 "
                                    "lowercase letters, digits and separators (. _ - /)")
            action = ACTIONS.get((handler, request.method))
            if action is None:
                raise RegistryError("UNSUPPORTED", UNSUPPORTED.get(
                    (handler, request.method), UNSUPPORTED_DEFAULT), headers={
                        "Allow": ", ".join(verb for (h, verb) in ACTIONS if h == handler)})
            arn = arns.ecr_repository(region, account, name)
            await run_in_threadpool(self._authorize, ctx, action, arn)
            return await getattr(self, f"_{handler}")(ctx, request, name, **args)
        raise RegistryError("NAME_UNKNOWN", f"no route for {path}", status=404)

    def _registry_of(self, host: str) -> tuple[str, str]:
        return registry_of_host(host) or (self.settings.account_id, self.settings.region)

    def _challenge(self, message: str, account: str, region: str) -> RegistryError:
        """401 with ECR's Basic challenge; the realm is the advertised host of the registry
        the request named (oras-py's ECR auth checks it against the host it called)."""
        realm = f"{self.settings.scheme}://{registry_host(self.settings, account, region)}/"
        return RegistryError("UNAUTHORIZED", message, headers={
            "WWW-Authenticate": f'Basic realm="{realm}",service="ecr.amazonaws.com"'})

    def _authenticate(self, request: Request, account: str, region: str) -> RequestContext:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic" or not credentials:
            raise self._challenge("authentication required", account, region)
        with self.store.transaction(write=False) as db:
            principal = ecr_auth.principal_for(db, credentials.strip(), datetime.now(UTC))
        if principal is None:
            raise self._challenge("the authorization token is invalid or has expired; "
                                  "run `aws ecr get-login-password` and log in again",
                                  account, region)
        return RequestContext(str(uuid.uuid4()), "ecr", "registry", region, principal,
                              self.settings.public_endpoint, extras={
                                  "registry": account,
                                  "source_ip": request.client.host if request.client else None,
                                  "secure": request.url.scheme == "https"})

    def _authorize(self, ctx: RequestContext, action: str, arn: str) -> None:
        self.authorizer.authorize(ctx, action, [arn])

    # --- helpers ---------------------------------------------------------------------------

    def _repo(self, db, ctx: RequestContext, name: str, *, create: bool = False) -> Repository:
        account = ctx.extras["registry"]
        repo = repositories.get(db, account, ctx.region, name)
        if repo is None and create and self.create_on_push:
            repo = repositories.insert(
                db, account_id=account, region=ctx.region, name=name, created_at=_now(),
                image_tag_mutability="MUTABLE", mutability_exclusion_filters=[],
                scan_on_push=False, encryption_type="AES256", kms_key=None)
        if repo is None:
            raise RegistryError(
                "NAME_UNKNOWN", f"The repository with name '{name}' does not exist in the "
                f"registry with id '{account}'")
        return repo

    def _resolve(self, db, repo: Repository, ref: str) -> images.Image:
        if ":" in ref:
            _check_digest(ref)
            image = images.get(db, repo.id, ref)
        else:
            _check_tag(ref)
            image = images.by_tag(db, repo.id, ref)
        if image is None:  # ECR's words; clients print "manifest unknown: <message>"
            raise RegistryError("MANIFEST_UNKNOWN", "Requested image not found",
                                detail={"repository": repo.name, "reference": ref})
        return image

    # --- catalog and tags ------------------------------------------------------------------

    def _catalog(self, ctx: RequestContext, request: Request) -> Response:
        n, last = _page_args(request)
        # Listing names a registry's repositories: only its own account may (like
        # DescribeRepositories), or any token could enumerate every account's names.
        account = ctx.extras["registry"]
        self._authorize(ctx, "ecr:DescribeRepositories",
                        arns.ecr_repository(ctx.region, account, "*"))
        t = ecr_repositories.c
        with self.store.transaction(write=False) as db:
            q = select(t.name).where(t.account_id == account,
                                     t.region == ctx.region).order_by(t.name)
            if last:
                q = q.where(t.name > last)
            names = list(db.execute(q.limit(n + 1 if n is not None else None)).scalars())
        return _paged("/v2/_catalog", {"repositories": names}, "repositories", n)

    async def _tags(self, ctx: RequestContext, request: Request, name: str) -> Response:
        n, last = _page_args(request)

        def work():
            with self.store.transaction(write=False) as db:
                repo = self._repo(db, ctx, name)
                tags = images.all_tags(db, repo.id)
            tags = [t for t in tags if last is None or t > last]
            return _paged(f"/v2/{name}/tags/list", {"name": name, "tags": tags}, "tags", n)

        return await run_in_threadpool(work)

    # --- manifests -------------------------------------------------------------------------

    async def _manifest(self, ctx: RequestContext, request: Request, name: str, ref: str) -> Response:
        if request.method in ("GET", "HEAD"):
            return await run_in_threadpool(self._manifest_get, ctx, request, name, ref)
        if request.method == "PUT":
            body = await _read_capped(request, manifests.MAX_MANIFEST)
            return await run_in_threadpool(self._manifest_put, ctx, request, name, ref, body)
        return await run_in_threadpool(self._manifest_delete, ctx, name, ref)

    def _manifest_get(self, ctx, request: Request, name: str, ref: str) -> Response:
        with self.store.transaction(write=request.method == "GET") as db:
            repo = self._repo(db, ctx, name)
            image = self._resolve(db, repo, ref)
            # Go clients (skopeo, containerd) send one Accept header per media type.
            if not _accepts(",".join(request.headers.getlist("accept")), image.media_type):
                raise RegistryError(
                    "MANIFEST_UNKNOWN", f"manifest {ref} is {image.media_type}, which the "
                    "request's Accept header does not list", status=404)
            if request.method == "GET":
                images.touch_pull(db, image, _now())
        headers = {**_api_headers(), "Docker-Content-Digest": image.digest,
                   "Content-Length": str(image.manifest_size)}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=image.media_type)
        return Response(self.blobs.get(image.digest), headers=headers, media_type=image.media_type)

    def _manifest_put(self, ctx, request: Request, name: str, ref: str, body: bytes) -> Response:
        try:
            manifest = manifests.parse(body, request.headers.get("content-type"))
        except manifests.ManifestUnsupported as e:
            raise RegistryError("MANIFEST_INVALID", str(e), status=415) from None
        except manifests.ManifestInvalid as e:
            raise RegistryError("MANIFEST_INVALID", str(e)) from None
        tag = None
        if ":" in ref:
            alg, _ = _check_digest(ref)
            digest = digests.of(body, alg)
            if digest != ref:
                raise RegistryError("DIGEST_INVALID", f"manifest digest {digest} does not match "
                                    f"the reference {ref}")
        else:
            tag = _check_tag(ref)
            digest = digests.of(body)
        self.blobs.put(body, digest.split(":", 1)[0])
        with self.store.transaction() as db:
            repo = self._repo(db, ctx, name, create=True)
            try:
                images.put_manifest(db, repo, manifest, digest, tag, _now())
            except MissingReferences as e:
                raise RegistryError(
                    "MANIFEST_BLOB_UNKNOWN", "the manifest refers to blobs or manifests the "
                    "repository does not have", detail={"missing": e.blobs + e.manifests}) from None
            except TagImmutable as e:
                raise RegistryError("TAG_INVALID", str(e), status=400) from None
        headers = {**_api_headers(), "Docker-Content-Digest": digest,
                   "Location": f"/v2/{name}/manifests/{digest}"}
        if manifest.subject is not None:
            headers["OCI-Subject"] = manifest.subject.digest
        return Response(status_code=201, headers=headers)

    def _manifest_delete(self, ctx, name: str, ref: str) -> Response:
        with self.store.transaction() as db:
            repo = self._repo(db, ctx, name)
            image = self._resolve(db, repo, ref)
            if ":" not in ref:
                images.remove_tag(db, repo.id, ref)
                if images.tags_of(db, [image.id])[image.id]:
                    return Response(status_code=202, headers=_api_headers())
            parents = images.parents_of(db, repo.id, image.digest)
            if parents:
                raise RegistryError("DENIED", f"{image.digest} is referenced by the manifest "
                                    f"list {parents[0].digest}; delete that first")
            images.remove_image(db, image)
        return Response(status_code=202, headers=_api_headers())

    # --- blobs -----------------------------------------------------------------------------

    async def _blob(self, ctx, request: Request, name: str, digest: str) -> Response:
        _check_digest(digest)
        size = await run_in_threadpool(self._blob_size, ctx, name, digest)
        headers = {**_api_headers(), "Docker-Content-Digest": digest, "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            return Response(status_code=200, media_type="application/octet-stream",
                            headers={**headers, "Content-Length": str(size)})
        path = self.blobs.local_path(digest)
        if path is not None:
            return _BlobFile(path, headers=headers, media_type="application/octet-stream")
        data = await run_in_threadpool(self.blobs.get, digest)
        return Response(data, headers=headers, media_type="application/octet-stream")

    def _blob_size(self, ctx, name: str, digest: str) -> int:
        with self.store.transaction(write=False) as db:
            repo = self._repo(db, ctx, name)
            size = images.linked_size(db, repo.id, digest)
            if size is None:  # a manifest may be fetched through the blobs endpoint too
                image = images.get(db, repo.id, digest)
                size = image.manifest_size if image else None
        if size is None or self.blobs.size(digest) is None:
            raise RegistryError("BLOB_UNKNOWN", f"{digest} is not in repository {name}",
                                detail={"digest": digest})
        return size

    # --- uploads ---------------------------------------------------------------------------

    async def _upload_start(self, ctx, request: Request, name: str) -> Response:
        q = request.query_params
        mount, digest = q.get("mount"), q.get("digest")
        if digest is not None:  # before opening a session, so a refused POST leaves none
            _check_digest(digest)
        if mount:
            _check_digest(mount)
            mounted = await run_in_threadpool(self._mount, ctx, name, mount, q.get("from"))
            if mounted:
                return _blob_created(name, mount)
        upload_id = await run_in_threadpool(self._new_upload, ctx, name)
        if digest is None:
            return _upload_status(name, upload_id, 0, status=202)
        await self._receive(request, upload_id)
        return await run_in_threadpool(self._finish, ctx, name, upload_id, digest)

    def _mount(self, ctx, name: str, digest: str, source: str | None) -> bool:
        """Link a blob this registry already holds; automatic when ``from`` is absent."""
        account = ctx.extras["registry"]
        with self.store.transaction() as db:
            repo = self._repo(db, ctx, name, create=True)
            if images.linked_size(db, repo.id, digest) is not None:
                return True
            if source is not None:
                src = repositories.get(db, account, ctx.region, source)
                candidates = [src.id] if src else []
                if src:
                    self._authorize(ctx, "ecr:BatchGetImage", src.arn)
            else:
                t = ecr_repositories.c
                candidates = list(db.execute(select(t.id).where(
                    t.account_id == account, t.region == ctx.region)).scalars())
            size = images.any_link(db, candidates, digest) if candidates else None
            if size is None or self.blobs.size(digest) != size:
                return False
            images.link_blob(db, repo.id, digest, size, _now())
            return True

    def _new_upload(self, ctx, name: str) -> str:
        with self.store.transaction() as db:
            repo = self._repo(db, ctx, name, create=True)
            upload_id = self.blobs.start_upload()
            db.execute(registry_uploads.insert().values(
                id=upload_id, repository_id=repo.id, created_at=_now()))
        return upload_id

    def _session(self, ctx, name: str, upload_id: str) -> tuple[Repository, int]:
        """The upload session ``upload_id`` of repository ``name``: only an id this registry
        issued (a UUID, a row bound to that repository) ever names a path to write or cancel."""
        with self.store.transaction(write=False) as db:
            repo = self._repo(db, ctx, name)
            row = _UPLOAD_ID.match(upload_id) and db.execute(select(registry_uploads).where(
                registry_uploads.c.id == upload_id,
                registry_uploads.c.repository_id == repo.id)).first()
        size = self.blobs.upload_size(upload_id) if row else None
        if size is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"no upload {upload_id} is in progress "
                                f"in repository {name}")
        return repo, size

    async def _upload(self, ctx, request: Request, name: str, upload: str) -> Response:
        _, size = await run_in_threadpool(self._session, ctx, name, upload)
        if request.method == "GET":
            return _upload_status(name, upload, size, status=204)
        if request.method == "DELETE":
            await run_in_threadpool(self._cancel, upload)
            return Response(status_code=204, headers=_api_headers())
        content_range = request.headers.get("content-range")
        if content_range is not None:
            m = _RANGE.match(content_range.strip().removeprefix("bytes="))
            if m is None or int(m.group(1)) != size or int(m.group(2)) < int(m.group(1)):
                raise RegistryError("BLOB_UPLOAD_INVALID", f"chunk {content_range} does not start "
                                    f"at the upload's offset {size}", status=416,
                                    headers=_upload_headers(name, upload, size))
            length = request.headers.get("content-length")
            expected = int(m.group(2)) - int(m.group(1)) + 1
            if length is not None and length.isdigit() and int(length) != expected:
                raise RegistryError("SIZE_INVALID", f"Content-Length {length} does not match "
                                    f"Content-Range {content_range}")
        digest = request.query_params.get("digest")
        # Checked before the body is appended: a refused PUT leaves the session as it was,
        # so the client's retry of the same request still adds up to the right bytes.
        if request.method == "PUT":
            if digest is None:
                raise RegistryError("DIGEST_INVALID", "closing an upload needs ?digest=")
            _check_digest(digest)
        new_size = await self._receive(request, upload)
        if request.method == "PATCH":
            return _upload_status(name, upload, new_size, status=202)
        return await run_in_threadpool(self._finish, ctx, name, upload, digest)

    async def _receive(self, request: Request, upload_id: str) -> int:
        """Stream the body into the upload in 1 MiB batches, hashing off the event loop.
        Receiving the next batch overlaps writing and hashing the previous ones."""
        appender = await run_in_threadpool(self.blobs.appender, upload_id)
        send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=4)

        async def write() -> None:
            async with receive:
                async for batch in receive:
                    await run_in_threadpool(appender.write, batch)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                async with send:
                    async for batch in _batches(request.stream()):
                        await send.send(batch)
        finally:
            size = await run_in_threadpool(appender.close)
        return size

    def _finish(self, ctx, name: str, upload_id: str, digest: str) -> Response:
        try:
            size = self.blobs.commit(upload_id, digest)
        except DigestMismatch as e:
            self._cancel(upload_id)
            raise RegistryError("DIGEST_INVALID", str(e)) from None
        with self.store.transaction() as db:
            repo = self._repo(db, ctx, name)
            images.link_blob(db, repo.id, digest, size, _now())
            db.execute(registry_uploads.delete().where(registry_uploads.c.id == upload_id))
        return _blob_created(name, digest)

    def _cancel(self, upload_id: str) -> None:
        self.blobs.cancel(upload_id)
        with self.store.transaction() as db:
            db.execute(registry_uploads.delete().where(registry_uploads.c.id == upload_id))

    # --- referrers -------------------------------------------------------------------------

    async def _referrers(self, ctx, request: Request, name: str, digest: str) -> Response:
        try:
            digests.parse(digest)
        except digests.InvalidDigest as e:
            raise RegistryError("DIGEST_INVALID", str(e)) from None
        wanted = request.query_params.get("artifactType")

        def work():
            with self.store.transaction(write=False) as db:
                repo = self._repo(db, ctx, name)
                found = images.referrers(db, repo.id, digest)
            out = []
            for image in found:
                if wanted and image.artifact_type != wanted:
                    continue
                doc = json.loads(self.blobs.get(image.digest))
                d = {"mediaType": image.media_type, "digest": image.digest,
                     "size": image.manifest_size}
                if image.artifact_type:
                    d["artifactType"] = image.artifact_type
                if doc.get("annotations"):
                    d["annotations"] = doc["annotations"]
                out.append(d)
            headers = {**_api_headers()}
            if wanted:
                headers["OCI-Filters-Applied"] = "artifactType"
            body = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": out}
            return Response(json.dumps(body).encode(), headers=headers,
                            media_type=manifests.OCI_INDEX)

        return await run_in_threadpool(work)


class _BlobFile(FileResponse):
    """Blob downloads in 1 MiB reads (Starlette's 64 KiB means a thread hop per 64 KiB)."""

    chunk_size = 1 << 20


# --- small pure helpers ----------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _api_headers() -> dict[str, str]:
    return {"Docker-Distribution-Api-Version": "registry/2.0"}


def _check_digest(text: str) -> tuple[str, str]:
    try:
        return digests.parse(text)
    except digests.InvalidDigest as e:
        raise RegistryError("DIGEST_INVALID", str(e)) from None


def _check_tag(tag: str) -> str:
    if not images.TAG_PATTERN.match(tag):
        raise RegistryError("TAG_INVALID", f"tag {tag!r} must match "
                            f"{images.TAG_PATTERN.pattern}", status=400)
    return tag


def _accepts(accept: str | None, media_type: str) -> bool:
    if not accept:
        return True
    types = {p.split(";", 1)[0].strip() for p in accept.split(",")}
    return bool(types & {media_type, "*/*", "application/*"}) or not (
        types & set(manifests.MEDIA_TYPES))


def _page_args(request: Request) -> tuple[int | None, str | None]:
    n = request.query_params.get("n")
    if n is not None and not n.isdigit():
        raise RegistryError("UNSUPPORTED", "n must be a non-negative integer", status=400)
    return (int(n) if n is not None else None), request.query_params.get("last")


def _paged(path: str, body: dict, key: str, n: int | None) -> Response:
    items = body[key]
    headers = _api_headers()
    if n is not None:
        if len(items) > n and n > 0:
            headers["Link"] = f'<{path}?{urlencode({"n": n, "last": items[n - 1]})}>; rel="next"'
        body[key] = items[:n]
    return JSONResponse(body, headers=headers)


def _upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {**_api_headers(), "Location": f"/v2/{quote(name)}/blobs/uploads/{upload_id}",
            "Range": f"0-{max(size - 1, 0)}", "Docker-Upload-UUID": upload_id}


def _upload_status(name: str, upload_id: str, size: int, status: int) -> Response:
    return Response(status_code=status, headers={**_upload_headers(name, upload_id, size),
                                                 "Content-Length": "0"})


def _blob_created(name: str, digest: str) -> Response:
    return Response(status_code=201, headers={
        **_api_headers(), "Location": f"/v2/{quote(name)}/blobs/{digest}",
        "Docker-Content-Digest": digest, "Content-Length": "0"})


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise RegistryError("MANIFEST_INVALID", f"manifest larger than {cap} bytes", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise RegistryError("MANIFEST_INVALID", f"manifest larger than {cap} bytes", status=413)
    return bytes(body)


async def _batches(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    buf = bytearray()
    async for chunk in stream:
        buf += chunk
        if len(buf) >= BUFFER:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)

