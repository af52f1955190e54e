"""Container images from Corral's own registry: an image URI resolved to local content.

    "<acct>.dkr.ecr.<region>.amazonaws.com/app:v1"
        ─ parse ──────> registry (account, region), repository, tag | digest
        ─ authorize ──> ecr:BatchGetImage on the repository ARN, as the task's principal
        ─ read txn ───> repository → image (tag or digest) → index? pick linux/<host arch>
                        → manifest → config JSON, layer blobs on disk
        ─ authorize ──> ecr:GetDownloadUrlForLayer
        ─ write txn ──> lastRecordedPullTime, a registry token for Docker-style drivers
        ─ ImageContent(digest, config, layers, reference, auth)

No HTTP to ourselves: the same store, blob store and IAM decision the registry endpoint uses.
The principal is the task definition's execution role (``role_principal``) or the account that
runs the task (``account_principal``); repository policies and cross-account pulls apply
because the PolicyAuthorizer evaluates them.

A bare name (``nginx``, ``team/app``) means Docker Hub, as it does for Docker and ECS; Corral
pulls from nowhere but itself, so such images fail the way an unreachable registry does.
Failures raise ``PullFailure`` whose message is the detail ECS prints after
``CannotPullContainerError: `` — the current agent's / Fargate's containerd wording:
- missing repository, tag or digest: ``pull image manifest has been retried 1 time(s):
  failed to resolve ref <ref>: <ref>: not found``
- pull denied: ``… failed to resolve ref <ref>: pulling from host <host> failed with status
  code [manifests <tag>]: 403 Forbidden``; a denied layer download: ``ref pull has been
  retried 1 time(s): failed to copy: httpReadSeeker: failed open: unexpected status code
  https://<host>/v2/<repo>/blobs/<digest>: 403 Forbidden``
- another registry: ``… failed to do request: Head "https://<host>/v2/…": dial tcp: lookup
  <host>: no such host``.
"""

from __future__ import annotations

import base64
import json
import platform
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from corral.aws import arns
from corral.aws.context import Principal, RequestContext
from corral.aws.errors import AwsError
from corral.config import Settings
from corral.ecr import auth as ecr_auth
from corral.ecr import images, repositories
from corral.ecr.scope import registry_host, registry_of_host
from corral.iam import entities
from corral.iam.credentials import root_principal
from corral.iam.enforce import role_row
from corral.iam.sts import issue_role_session
from corral.iam.vending import session_name as vended_session_name
from corral.iam.vending import trust_allows
from corral.registry import manifests
from corral.registry.blobs import BlobStore
from corral.runtime.driver import ImageContent, RuntimeFailure
from corral.store import Store
from corral.store.schema import access_keys, iam_sessions

PULL, LAYER = "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"
ECS_TASKS = "ecs-tasks.amazonaws.com"  # the service principal execution roles must trust
_LOCAL_HOST = re.compile(r"^(localhost|127\.0\.0\.1):(\d+)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json",
                 "application/vnd.docker.container.image.v1+json")
SESSION_LIFETIME = timedelta(hours=6)  # what the ECS agent's role credentials last
REUSE_MARGIN = timedelta(hours=1)  # a session or token closer to expiry is replaced


class PullFailure(RuntimeFailure):
    """The image cannot be pulled; the message is ECS's detail after the error name."""

    def __init__(self, detail: str):
        super().__init__(detail, "CannotPullContainerError")


@dataclass(frozen=True)
class ImageRef:
    """A parsed ECR image URI. ``name`` is how failure messages show it."""

    host: str
    account: str
    region: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.host}/{self.repository}{tag}" + (f"@{self.digest}" if self.digest else "")


def _retried(ref: str, detail: str) -> str:
    return f"pull image manifest has been retried 1 time(s): failed to resolve ref {ref}: {detail}"


def _split(image: str) -> tuple[str, str, str | None, str | None]:
    """Docker's reference grammar: (host, path, tag, digest); a first component without
    ``.`` or ``:`` that is not ``localhost`` is a Docker Hub path, not a host."""
    rest, _, digest = image.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first, remainder
    else:
        host, path = "docker.io", rest if "/" in rest else f"library/{rest}"
    path, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    return host, path, (tag if colon else None), (digest or None)


def parse(image: str, settings: Settings) -> ImageRef:
    """An ECR image URI of Corral's own registry, or PullFailure."""
    image = image.strip()
    host, path, tag, digest = _split(image)
    if digest is None and tag is None:
        tag = "latest"
    shown = f"{host}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    if not path or (digest is not None and not _DIGEST.match(digest)) or (
            tag is not None and not images.TAG_PATTERN.match(tag)):
        raise PullFailure(_retried(shown, "invalid reference format"))
    registry = registry_of_host(host)
    if registry is not None:
        return ImageRef(host, *registry, path, tag, digest)
    local = _LOCAL_HOST.match(host)
    if (local is not None and int(local.group(2)) in _own_ports(settings)) or \
            host == settings.public_netloc:  # the advertised registry host
        return ImageRef(host, settings.account_id, settings.region, path, tag, digest)
    api = "registry-1.docker.io" if host == "docker.io" else host
    dial = (f"dial tcp 127.0.0.1:{local.group(2)}: connect: connection refused" if local
            else f"dial tcp: lookup {api.rsplit(':', 1)[0]}: no such host")
    raise PullFailure(_retried(shown, f'failed to do request: Head "https://{api}/v2/{path}/'
                               f'manifests/{digest or tag}": {dial} (Corral pulls images only '
                               "from its own registry)"))


def _own_ports(settings: Settings) -> set[int]:
    ports = {settings.port}
    for url in (settings.endpoint, settings.public_endpoint):
        port = urlsplit(url).port
        if port:
            ports.add(port)
    return ports


# --- principals ------------------------------------------------------------------------------


def account_principal(account_id: str) -> Principal:
    """The account root: who pulls when the task definition has no execution role."""
    return root_principal(account_id, "")


def role_principal(db: Connection, role_arn: str, session_name: str, *,
                   now: datetime | None = None) -> Principal:
    """A session of ``role_arn`` (the task's execution role), as ECS assumes it for the task:
    the role must trust ``ecs-tasks.amazonaws.com``. The session is a real STS session
    (``load_bundle`` finds the role's policies through it) reused while it has an hour
    left. ``db`` must be a write transaction. Raises RuntimeFailure
    (ResourceInitializationError) when the role is missing or does not trust ECS tasks."""
    now = now or datetime.now(UTC)
    role = role_row(db, role_arn)
    if role is None or not trust_allows(role, ECS_TASKS):
        raise RuntimeFailure(
            f"ECS was unable to assume the role '{role_arn}' that was provided for this task. "
            "Please verify that the role being passed has the proper trust relationship and "
            "permissions and that your IAM user has permissions to pass this role.",
            "ResourceInitializationError")
    name = vended_session_name(session_name)
    canonical = entities.arn(role.account_id, "role", role.path, role.name)
    s, k = iam_sessions.c, access_keys.c
    row = db.execute(select(k.access_key_id, k.session_token).select_from(
        iam_sessions.join(access_keys, k.access_key_id == s.access_key_id)).where(
        s.role_arn == canonical, s.session_name == name, k.status == "Active",
        k.expires_at > now + REUSE_MARGIN).limit(1)).first()
    if row is None:
        creds = issue_role_session(db, role, name, int(SESSION_LIFETIME.total_seconds()),
                                   now=now)["Credentials"]
        row = (creds["AccessKeyId"], creds["SessionToken"])
    session_arn = arns.build("sts", "", role.account_id, f"assumed-role/{role.name}/{name}")
    return Principal(role.account_id, session_arn, f"{role.unique_id}:{name}", row[0],
                     "AssumedRole", row[1])


# --- the resolver ----------------------------------------------------------------------------


class ImageResolver:
    """Resolves image URIs to local content for the task agent (blocking; thread-safe)."""

    def __init__(self, store: Store, blobs: BlobStore, authorizer, settings: Settings):
        self.store = store
        self.blobs = blobs
        self.authorizer = authorizer  # corral.iam.enforce.PolicyAuthorizer
        self.settings = settings
        self._tokens: dict[tuple[str, str], tuple[tuple[str, str], datetime]] = {}
        self._lock = threading.Lock()

    def resolve(self, image: str, principal: Principal, region: str) -> ImageContent:
        """``region`` is the task's; the registry's region comes from the URI (ECR pulls
        across regions work), or from the settings for ``localhost:<port>`` forms."""
        ref = parse(image, self.settings)
        repo_arn = arns.ecr_repository(ref.region, ref.account, ref.repository)
        self._authorize(ref, principal, PULL, repo_arn, _retried(
            ref.name, f"pulling from host {ref.host} failed with status code "
                      f"[manifests {ref.reference}]: 403 Forbidden"))
        with self.store.transaction(write=False) as db:
            top, image_row, manifest = self._manifest(db, ref)
        config = self._config(ref, manifest)
        layers = tuple(self._layer(ref, d) for d in manifest.layers)
        if layers:
            self._authorize(ref, principal, LAYER, repo_arn, (
                "ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed "
                f"open: unexpected status code https://{ref.host}/v2/{ref.repository}/blobs/"
                f"{manifest.layers[0].digest}: 403 Forbidden"))
        now = datetime.now(UTC)
        with self.store.transaction() as db:
            for pulled in {top.id: top, image_row.id: image_row}.values():
                images.touch_pull(db, pulled, now)
            auth = self._token(db, principal, now)
        return ImageContent(digest=top.digest, config=config, layers=layers,
                            reference=f"{self._netloc(ref)}/{ref.repository}@{top.digest}",
                            auth=auth)

    def _authorize(self, ref: ImageRef, principal: Principal, action: str, arn: str,
                   denied: str) -> None:
        ctx = RequestContext(str(uuid.uuid4()), "ecr", "registry", ref.region, principal,
                             self.settings.public_endpoint, extras={"registry": ref.account})
        try:
            self.authorizer.authorize(ctx, action, [arn])
        except AwsError:  # the authorizer's AccessDenied (policy, or expired credentials)
            raise PullFailure(denied) from None

    def _manifest(self, db: Connection, ref: ImageRef
                  ) -> tuple[images.Image, images.Image, manifests.Manifest]:
        """(what the reference names, the image manifest to run, its parsed manifest)."""
        not_found = PullFailure(_retried(ref.name, f"{ref.name}: not found"))
        repo = repositories.get(db, ref.account, ref.region, ref.repository)
        if repo is None:
            raise not_found
        top = (images.get(db, repo.id, ref.digest) if ref.digest
               else images.by_tag(db, repo.id, ref.reference))
        if top is None:
            raise not_found
        manifest = self._parse(ref, top)
        if not manifest.is_index:
            return top, top, manifest
        child = _pick_platform(manifest)
        chosen = images.get(db, repo.id, child) if child else None
        if chosen is None:
            raise PullFailure(_retried(ref.name, "no match for platform in manifest: not found"))
        return top, chosen, self._parse(ref, chosen)

    def _parse(self, ref: ImageRef, image: images.Image) -> manifests.Manifest:
        try:
            return manifests.parse(self.blobs.get(image.digest), image.media_type)
        except (OSError, KeyError, manifests.ManifestInvalid, manifests.ManifestUnsupported):
            raise PullFailure(_retried(ref.name, f"failed to read manifest {image.digest}")
                              ) from None

    def _config(self, ref: ImageRef, manifest: manifests.Manifest) -> dict:
        cfg = manifest.config
        if cfg is None or cfg.media_type not in IMAGE_CONFIGS:
            kind = cfg.media_type if cfg else "none"
            raise PullFailure(_retried(ref.name, f"{ref.name} is not a container image "
                                                 f"(config media type {kind})"))
        try:
            doc = json.loads(self.blobs.get(cfg.digest))
        except (OSError, KeyError, ValueError):
            raise PullFailure(_retried(ref.name, f"failed to read image config {cfg.digest}")
                              ) from None
        if not isinstance(doc, dict):
            raise PullFailure(_retried(ref.name, f"image config {cfg.digest} is not an object"))
        return doc

    def _layer(self, ref: ImageRef, d: manifests.Descriptor) -> tuple[str, str, Path]:
        local = self.blobs.local_path(d.digest)
        path = Path(local) if local else None
        if path is None or not path.is_file():
            raise PullFailure(
                f"ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed "
                f"open: content at https://{ref.host}/v2/{ref.repository}/blobs/{d.digest} "
                "not found: not found")
        return d.digest, d.media_type, path

    def _token(self, db: Connection, principal: Principal, now: datetime
               ) -> tuple[str, str]:
        """A registry credential for ``principal`` (minted like GetAuthorizationToken),
        reused while it has more than an hour left."""
        key = (principal.access_key_id, principal.arn)
        with self._lock:
            found = self._tokens.get(key)
        if found is not None and found[1] - now > REUSE_MARGIN:
            return found[0]
        token, expires = ecr_auth.issue(db, principal, now)
        user, _, password = base64.b64decode(token).decode().partition(":")
        with self._lock:
            self._tokens[key] = ((user, password), expires)
        return user, password

    def _netloc(self, ref: ImageRef) -> str:
        """Corral's registry as a Docker daemon reaches it: the host clients are told for
        that account and region (``registry_host``), as in its repositoryUri."""
        return registry_host(self.settings, ref.account, ref.region)


def host_platform() -> tuple[str, str]:
    machine = platform.machine().lower()
    return "linux", _ARCH.get(machine, machine)


def _pick_platform(index: manifests.Manifest) -> str | None:
    """The child manifest for this host (linux/amd64 here), as containerd's default
    platform matcher picks it; None when the index has none. ``Descriptor`` keeps no
    ``platform``, so it is read from the index's raw bytes (exactly as pushed)."""
    want = host_platform()
    try:
        children = json.loads(index.raw).get("manifests") or []
    except (ValueError, AttributeError):
        return None
    for child in children:
        p = child.get("platform") if isinstance(child, dict) else None
        if isinstance(p, dict) and (p.get("os"), p.get("architecture")) == want:
            return child.get("digest")
    return None
