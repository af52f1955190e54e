"""Build small real images for tests, with no Docker Hub: busybox-static from Debian (every
applet as a symlink, including ``httpd``, ``nc`` and ``wget``), /etc/passwd and /etc/group,
plus any extra files. Push them to Corral through the ECR layer-upload API.

    layer = busybox_layer(extra={"/www/index.html": b"hello"})
    image = Image(layers=[layer], config=config(cmd=["httpd", "-f", "-p", "8080"]))
    digest = push(ecr, "app", "v1", image)
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n" \
         b"app:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\napp:x:1000:\n"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def require_busybox() -> str:
    if not os.path.exists(BUSYBOX):
        raise RuntimeError("busybox is missing: install Debian's busybox-static "
                           "(apt-get install busybox-static; the Makefile's apt target does)")
    return BUSYBOX


@dataclass(frozen=True)
class Layer:
    tar: bytes  # uncompressed
    gz: bytes

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    @property
    def digest(self) -> str:
        return sha256(self.gz)


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", *, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.linkname, info.mtime = kind, mode, link, 0
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_layer(entries: list[tuple]) -> Layer:
    """A layer from raw entries ``(name, data, mode, kind, link)`` — also for hostile
    layers (``../`` names, device nodes, links out of the rootfs)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, kind, link in entries:
            _add(tar, name, data, mode=mode, kind=kind, link=link)
    raw = buf.getvalue()
    return Layer(raw, gzip.compress(raw, mtime=0))


def busybox_layer(extra: dict[str, bytes] | None = None) -> Layer:
    """busybox at /bin/busybox with every applet linked in /bin, /etc/passwd, /etc/group,
    /tmp, and ``extra`` files (path → bytes; executable when the path is under a bin dir)."""
    with open(require_busybox(), "rb") as f:
        binary = f.read()
    applets = os.popen(f"{BUSYBOX} --list").read().split()
    entries: list[tuple] = [
        ("bin", b"", 0o755, tarfile.DIRTYPE, ""),
        ("bin/busybox", binary, 0o755, tarfile.REGTYPE, ""),
        *[(f"bin/{a}", b"", 0o777, tarfile.SYMTYPE, "busybox") for a in applets if a != "busybox"],
        ("etc", b"", 0o755, tarfile.DIRTYPE, ""),
        ("etc/passwd", PASSWD, 0o644, tarfile.REGTYPE, ""),
        ("etc/group", GROUP, 0o644, tarfile.REGTYPE, ""),
        ("tmp", b"", 0o1777, tarfile.DIRTYPE, ""),
        ("root", b"", 0o700, tarfile.DIRTYPE, ""),
        ("home", b"", 0o755, tarfile.DIRTYPE, ""),
        ("home/app", b"", 0o755, tarfile.DIRTYPE, ""),
    ]
    for path, data in sorted((extra or {}).items()):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if not any(e[0] == d for e in entries):
                entries.append((d, b"", 0o755, tarfile.DIRTYPE, ""))
        mode = 0o755 if "bin" in parts[:-1] else 0o644
        entries.append(("/".join(parts), data, mode, tarfile.REGTYPE, ""))
    return make_layer(entries)


def config(*, cmd: list[str] | None = None, entrypoint: list[str] | None = None,
           env: list[str] | None = None, workdir: str | None = None, user: str | None = None,
           arch: str = "amd64") -> dict:
    cfg: dict = {"Env": env if env is not None else
                 ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if cmd is not None:
        cfg["Cmd"] = cmd
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    if workdir:
        cfg["WorkingDir"] = workdir
    if user:
        cfg["User"] = user
    return {"architecture": arch, "os": "linux", "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": []}}


@dataclass
class Image:
    layers: list[Layer]
    config: dict = field(default_factory=config)

    def config_bytes(self) -> bytes:
        doc = json.loads(json.dumps(self.config))
        doc["rootfs"] = {"type": "layers", "diff_ids": [x.diff_id for x in self.layers]}
        return json.dumps(doc, sort_keys=True).encode()

    def manifest_bytes(self) -> bytes:
        cfg = self.config_bytes()
        return json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(cfg), "size": len(cfg)},
            "layers": [{"mediaType": OCI_LAYER, "digest": x.digest, "size": len(x.gz)}
                       for x in self.layers],
        }).encode()

    @property
    def digest(self) -> str:
        return sha256(self.manifest_bytes())


def _upload(ecr, repo: str, data: bytes) -> None:
    digest = sha256(data)
    have = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[digest])
    if have["layers"] and have["layers"][0].get("layerAvailability") == "AVAILABLE":
        return
    upload = ecr.initiate_layer_upload(repositoryName=repo)
    step = upload["partSize"]
    for first in range(0, len(data), step):
        part = data[first:first + step]
        ecr.upload_layer_part(repositoryName=repo, uploadId=upload["uploadId"],
                              partFirstByte=first, partLastByte=first + len(part) - 1,
                              layerPartBlob=part)
    ecr.complete_layer_upload(repositoryName=repo, uploadId=upload["uploadId"],
                              layerDigests=[digest])


def push(ecr, repo: str, tag: str | None, image: Image, *, create: bool = True) -> str:
    """Push ``image`` to ``repo`` (created if missing) with boto3's ECR client; the digest."""
    if create:
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=repo)
    for blob in (image.config_bytes(), *(x.gz for x in image.layers)):
        _upload(ecr, repo, blob)
    put = {"imageTag": tag} if tag else {}
    ecr.put_image(repositoryName=repo, imageManifest=image.manifest_bytes().decode(), **put)
    return image.digest
