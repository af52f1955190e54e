"""Manifests and indexes: media types, parsing, and what they reference.

Handles OCI image manifests and indexes and Docker v2 schema 2 manifests and manifest lists
(OCI image-spec; Docker distribution's schema2 docs). The bytes are kept exactly as pushed:
the digest is of the raw bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from corral.registry import digests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MEDIA_TYPES = IMAGE_TYPES + INDEX_TYPES
MAX_MANIFEST = 4 * 1024 * 1024  # ECR's imageManifest limit (4,194,304)


class ManifestInvalid(ValueError):
    pass


class ManifestUnsupported(ValueError):
    pass


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    media_type: str
    config: Descriptor | None  # image manifests
    layers: tuple[Descriptor, ...]  # image manifests
    manifests: tuple[Descriptor, ...]  # indexes: child manifests
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        return ((self.config,) if self.config else ()) + self.layers

    @property
    def layers_size(self) -> int:
        return sum(d.size for d in self.layers)

    @property
    def effective_artifact_type(self) -> str | None:
        """The OCI referrers rule: artifactType, else the config's media type."""
        return self.artifact_type or (self.config.media_type if self.config else None)


def _descriptor(doc, where: str) -> Descriptor:
    if not isinstance(doc, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type, digest, size = doc.get("mediaType"), doc.get("digest"), doc.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType is required")
    if not isinstance(digest, str) or not digests.is_digest(digest):
        raise ManifestInvalid(f"{where}.digest {digest!r} is not a valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestInvalid(f"{where}.annotations must be an object")
    artifact_type = doc.get("artifactType")
    return Descriptor(media_type, digest, size,
                      artifact_type if isinstance(artifact_type, str) else None, annotations)


def parse(raw: bytes, content_type: str | None) -> Manifest:
    """Parse and check a pushed manifest; ``content_type`` is the request's Content-Type."""
    if len(raw) > MAX_MANIFEST:
        raise ManifestInvalid(f"manifest is larger than {MAX_MANIFEST} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ManifestInvalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    if doc.get("schemaVersion") == 1:
        raise ManifestUnsupported("Docker schema 1 manifests are not supported")
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    declared = doc.get("mediaType")
    header = (content_type or "").split(";", 1)[0].strip() or None
    if header in MEDIA_TYPES:
        media_type = header
        if declared is not None and declared != header:
            raise ManifestInvalid(f"mediaType {declared!r} does not match Content-Type {header!r}")
    elif declared in MEDIA_TYPES:
        media_type = declared
    elif "manifests" in doc:
        media_type = OCI_INDEX
    elif "config" in doc:
        media_type = OCI_MANIFEST
    else:
        raise ManifestInvalid(f"unknown manifest media type {header or declared!r}")

    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = doc.get("annotations") or {}
    artifact_type = doc.get("artifactType") if isinstance(doc.get("artifactType"), str) else None
    if media_type in INDEX_TYPES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("an index needs a manifests list")
        return Manifest(raw, media_type, None, (),
                        tuple(_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)),
                        subject, artifact_type, annotations)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestInvalid("an image manifest needs a layers list")
    return Manifest(raw, media_type, _descriptor(doc.get("config"), "config"),
                    tuple(_descriptor(d, f"layers[{i}]") for i, d in enumerate(layers)),
                    (), subject, artifact_type, annotations)
