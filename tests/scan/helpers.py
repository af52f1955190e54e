"""End-to-end helpers: push real layer tars through the ECR API, call Corral's admin API."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import time
import urllib.request
import zlib

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.ecr.push import OCI_CONFIG, OCI_MANIFEST, sha256, upload_blob
from tests.scan.layers import tar_bytes
from tests.server import ROOT_KEY, ROOT_SECRET

GZ_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def push_layers(ecr, repo: str, layers: list[bytes], tag: str | None = None, *,
                media_types: list[str] | None = None, config_type: str = OCI_CONFIG) -> str:
    """Push an image whose layers are the given (compressed) blobs; returns its digest."""
    diff_ids = []
    for blob in layers:
        try:
            diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest())
        except (OSError, EOFError, zlib.error):
            diff_ids.append(sha256(blob))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    for blob in (config, *layers):
        with contextlib.suppress(ecr.exceptions.LayerAlreadyExistsException):
            upload_blob(ecr, repo, blob)
    types = media_types or [GZ_LAYER] * len(layers)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": t, "digest": sha256(b), "size": len(b)}
                   for t, b in zip(types, layers, strict=True)],
    })
    put = {"imageTag": tag} if tag else {}
    return ecr.put_image(repositoryName=repo, imageManifest=manifest, **put)["image"]["imageId"][
        "imageDigest"]


def push_files(ecr, repo: str, *layer_entries: dict, tag: str | None = None) -> str:
    return push_layers(ecr, repo, [tar_bytes(e) for e in layer_entries], tag)


def admin(server, action: str, body: dict) -> dict:
    req = AWSRequest(method="POST", url=f"{server.endpoint}/_corral/api/{action}",
                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "corral", "us-east-1").add_auth(req)
    p = req.prepare()
    with urllib.request.urlopen(urllib.request.Request(
            p.url, data=p.body, method="POST", headers=dict(p.headers)), timeout=120) as r:
        return json.load(r)


def wait_scan(ecr, repo: str, digest: str, *, until=("COMPLETE", "ACTIVE", "FAILED",
                                                     "UNSUPPORTED_IMAGE"), timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            out = ecr.describe_image_scan_findings(repositoryName=repo,
                                                   imageId={"imageDigest": digest})
            if out["imageScanStatus"]["status"] in until:
                return out
        except ecr.exceptions.ScanNotFoundException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"scan of {digest} did not reach {until} in {timeout}s")
        time.sleep(0.2)
