"""Push images through the ECR API itself, as the ECR containerd resolver does:
InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload for the config and each layer,
then PutImage with the manifest text. Layers are random bytes (nothing unpacks them)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pushed:
    digest: str
    manifest: str  # the exact text PutImage sent
    media_type: str
    size: int  # imageSizeInBytes ECR reports: the layers' sizes (indexes: the largest child)
    layers: tuple[str, ...] = ()


def upload_blob(ecr, repo: str, data: bytes, part_size: int | None = None) -> str:
    upload = ecr.initiate_layer_upload(repositoryName=repo)
    step = part_size or upload["partSize"]
    for first in range(0, len(data), step):
        part = data[first:first + step]
        out = ecr.upload_layer_part(repositoryName=repo, uploadId=upload["uploadId"],
                                    partFirstByte=first, partLastByte=first + len(part) - 1,
                                    layerPartBlob=part)
        assert out["lastByteReceived"] == first + len(part) - 1
    digest = sha256(data)
    out = ecr.complete_layer_upload(repositoryName=repo, uploadId=upload["uploadId"],
                                    layerDigests=[digest])
    assert out["layerDigest"] == digest
    return digest


def image_manifest(ecr, repo: str, *, layer_sizes=(1000, 2500), arch: str = "amd64",
                   upload: bool = True) -> tuple[str, int, tuple[str, ...]]:
    """An OCI image manifest over fresh random layers (uploaded unless ``upload`` is off):
    (manifest text, sum of layer sizes, layer digests)."""
    layers = [os.urandom(n) for n in layer_sizes]
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
    }).encode()
    if upload:
        for blob in (config, *layers):
            upload_blob(ecr, repo, blob, part_size=700)
    doc = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(x), "size": len(x)} for x in layers],
    }
    return json.dumps(doc, indent=2), sum(layer_sizes), tuple(sha256(x) for x in layers)


def push_image(ecr, repo: str, tag: str | None = None, **kwargs) -> Pushed:
    text, size, layers = image_manifest(ecr, repo, **kwargs)
    put = {"imageTag": tag} if tag else {}
    out = ecr.put_image(repositoryName=repo, imageManifest=text, **put)["image"]
    assert out["imageId"]["imageDigest"] == sha256(text.encode())
    return Pushed(sha256(text.encode()), text, OCI_MANIFEST, size, layers)


def index_manifest(children: list[tuple[Pushed, str]]) -> str:
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": child.media_type, "digest": child.digest,
         "size": len(child.manifest.encode()), "platform": {"architecture": arch, "os": "linux"}}
        for child, arch in children]}
    return json.dumps(doc)


def push_index(ecr, repo: str, tag: str | None = None,
               sizes=((3000, 4000), (100, 200))) -> tuple[Pushed, list[Pushed]]:
    """A two-platform OCI index: both children pushed untagged, then the index."""
    children = [push_image(ecr, repo, layer_sizes=s, arch=a)
                for s, a in zip(sizes, ("amd64", "arm64"), strict=True)]
    text = index_manifest(list(zip(children, ("amd64", "arm64"), strict=True)))
    put = {"imageTag": tag} if tag else {}
    ecr.put_image(repositoryName=repo, imageManifest=text, **put)
    return Pushed(sha256(text.encode()), text, OCI_INDEX, max(c.size for c in children)), children
