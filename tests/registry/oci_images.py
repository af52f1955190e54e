"""Real images for registry tests: layers, configs, manifests, indexes, and on-disk layouts.

Everything is built from bytes with the digests computed from those bytes, the way a build
tool makes them (OCI image-spec: image layout, manifest, index, config ``rootfs.diff_ids``):

    random files ─ tar ─ (gzip) ─> layer blob        diff_id = sha256 of the uncompressed tar
    diff_ids + platform ─> config blob
    config + layers ─> image manifest ─┐
    image manifest (amd64) ────────────┼─> index (two platforms)
    image manifest (arm64) ────────────┘

``write_oci_layout`` writes what ``skopeo copy oci:DIR:REF`` reads (``oci-layout``,
``index.json``, ``blobs/sha256/<hex>``); ``write_dir_layout`` writes skopeo's ``dir:`` transport,
which keeps any manifest type byte for byte (Docker schema 2 included). Deterministic per seed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def descriptor(self, **extra) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Image:
    """One platform's image: its manifest, config and layers (and each layer's diff_id)."""

    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]
    platform: tuple[str, str]

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)

    @property
    def size(self) -> int:
        """What ECR reports as imageSizeInBytes: the layers as pushed."""
        return sum(layer.size for layer in self.layers)


@dataclass(frozen=True)
class Built:
    """What a test pushes: the top manifest (image or index) and everything under it."""

    top: Blob
    images: tuple[Image, ...]
    extra: tuple[Blob, ...] = field(default=())  # e.g. the index itself, when there is one

    @property
    def digest(self) -> str:
        return self.top.digest

    @property
    def is_index(self) -> bool:
        return self.top.media_type in (OCI_INDEX, DOCKER_LIST)

    @property
    def blobs(self) -> dict[str, Blob]:
        """Every blob by digest: layers, configs, the platform manifests and the top one."""
        out: dict[str, Blob] = {}
        for image in self.images:
            for blob in (*image.blobs, image.manifest):
                out[blob.digest] = blob
        out[self.top.digest] = self.top
        return out


# --- layers, configs, manifests ------------------------------------------------------------


def tar_layer(rng: random.Random, files: int = 3, max_size: int = 64 * 1024) -> bytes:
    """An uncompressed tar of a few random files, reproducible from ``rng``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        top = f"d{rng.randrange(1 << 30):08x}"
        info = tarfile.TarInfo(top)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tar.addfile(info)
        for i in range(files):
            data = rng.randbytes(rng.randrange(1, max_size))
            info = tarfile.TarInfo(f"{top}/file{i}.bin")
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def make_image(rng: random.Random, *, layers: int = 2, compress: bool = True,
               platform: tuple[str, str] = PLATFORMS[0], docker: bool = False,
               layer_size: int = 64 * 1024) -> Image:
    tars = [tar_layer(rng, max_size=layer_size) for _ in range(layers)]
    diff_ids = tuple(sha256(t) for t in tars)
    if docker:
        layer_type, config_type, manifest_type = DOCKER_LAYER_GZIP, DOCKER_CONFIG, DOCKER_MANIFEST
        compress = True  # schema 2 layers are gzip
    else:
        layer_type = OCI_LAYER_GZIP if compress else OCI_LAYER
        config_type, manifest_type = OCI_CONFIG, OCI_MANIFEST
    blobs = tuple(Blob(layer_type, _gzip(t) if compress else t) for t in tars)
    os_name, arch = platform
    config = Blob(config_type, _json({
        "created": "2024-01-01T00:00:00Z", "architecture": arch, "os": os_name,
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in range(layers)],
    }))
    manifest = Blob(manifest_type, _json({
        "schemaVersion": 2, "mediaType": manifest_type, "config": config.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }))
    return Image(manifest, config, blobs, diff_ids, platform)


def make_index(images: Iterable[Image], *, docker: bool = False) -> Blob:
    media_type = DOCKER_LIST if docker else OCI_INDEX
    return Blob(media_type, _json({
        "schemaVersion": 2, "mediaType": media_type,
        "manifests": [i.manifest.descriptor(platform={"os": i.platform[0],
                                                      "architecture": i.platform[1]})
                      for i in images],
    }))


def single(seed: int = 1, **kw) -> Built:
    image = make_image(random.Random(seed), **kw)
    return Built(image.manifest, (image,))


def multi_platform(seed: int = 1, *, docker: bool = False, **kw) -> Built:
    rng = random.Random(seed)
    images = tuple(make_image(rng, platform=p, docker=docker, **kw) for p in PLATFORMS)
    return Built(make_index(images, docker=docker), images)


def _json(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode()


# --- on-disk layouts -----------------------------------------------------------------------


def write_oci_layout(root: Path, built: Built, ref: str = "v1") -> Path:
    """An OCI image layout holding ``built`` under ``ref`` (``oci:<root>:<ref>``)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for blob in built.blobs.values():
        (blobs / blob.hex).write_bytes(blob.data)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        built.top.descriptor(annotations={"org.opencontainers.image.ref.name": ref})]}
    (root / "index.json").write_text(json.dumps(index))
    return root


def write_dir_layout(root: Path, built: Built) -> Path:
    """skopeo's ``dir:`` transport (version 1.1): manifest.json, blobs by hex, and for an
    index every platform manifest as ``<hex>.manifest.json``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "version").write_text("Directory Transport Version: 1.1\n")
    (root / "manifest.json").write_bytes(built.top.data)
    for image in built.images:
        for blob in image.blobs:
            (root / blob.hex).write_bytes(blob.data)
        if built.is_index:
            (root / f"{image.manifest.hex}.manifest.json").write_bytes(image.manifest.data)
    return root


def read_oci_layout(root: Path, ref: str = "v1") -> tuple[str, dict[str, bytes]]:
    """(digest of the manifest tagged ``ref``, every blob file by digest) of a layout."""
    index = json.loads((root / "index.json").read_text())
    top = next(m for m in index["manifests"]
               if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
    files = {f"sha256:{p.name}": p.read_bytes() for p in (root / "blobs" / "sha256").iterdir()}
    return top["digest"], files


def read_dir_layout(root: Path) -> tuple[str, dict[str, bytes]]:
    """(digest of manifest.json, every file by digest) of a ``dir:`` layout skopeo wrote."""
    files: dict[str, bytes] = {}
    for p in root.iterdir():
        if p.name in ("version", "manifest.json") or p.name.startswith("signature"):
            continue
        files[f"sha256:{p.name.removesuffix('.manifest.json')}"] = p.read_bytes()
    top = (root / "manifest.json").read_bytes()
    files[sha256(top)] = top
    return sha256(top), files
