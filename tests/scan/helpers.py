"""End-to-end helpers: push real layer tars through the ECR API, call Corral's admin API; or
scan an image in process through the same push and controller path, without a server."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import time
import urllib.request
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

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


# --- in process: the real scanner path (push transaction -> controller -> store), no server --

@dataclass
class Scanned:
    status: str
    description: str
    inventory: dict
    findings: list[tuple[str, str, str]]  # (advisory id, package name, package version)
    sbom: dict | None = None


def scan_in_process(data_dir, layer_blobs: list[bytes], records: list[dict] = (), *,
                    media_type: str = GZ_LAYER) -> Scanned:
    """Push an image of ``layer_blobs`` to a scan-on-push repository of a Corral built in
    ``data_dir``, import ``records``, let the scan controller run the scan, and read back what a
    user sees: the scan status and description, the stored inventory, the active findings and
    the CycloneDX SBOM of the inventory."""
    from corral.app import build
    from corral.config import Settings
    from corral.ecr import images, repositories
    from corral.registry import manifests
    from corral.scan import advisories, sbom, state
    from corral.scan.inventory import ImageInventory

    now = datetime.now(UTC)
    corral = build(Settings(data_dir=data_dir))
    try:
        controller = next(c for c in corral.controllers if c.name == "scanner")
        blobs = controller.scanner.blobs
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        descs = [(blobs.put(config), len(config))] + [(blobs.put(b), len(b)) for b in layer_blobs]
        raw = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": descs[0][0], "size": descs[0][1]},
            "layers": [{"mediaType": media_type, "digest": d, "size": n} for d, n in descs[1:]],
        }).encode()
        digest = blobs.put(raw)
        with corral.store.transaction() as db:
            if records:
                advisories.import_records(db, list(records), "test", "test", now)
            repo = repositories.insert(
                db, account_id="000000000000", region="us-east-1", name="scan-test",
                created_at=now, image_tag_mutability="MUTABLE", mutability_exclusion_filters=[],
                scan_on_push=True, encryption_type="AES256", kms_key=None)
            for d, n in descs:
                images.link_blob(db, repo.id, d, n, now)
            image, _ = images.put_manifest(db, repo, manifests.parse(raw, None), digest, None, now)
        controller.reconcile()
        with corral.store.transaction(write=False) as db:
            scan = state.get(db, image.id, digest)
            assert scan is not None, "the push did not queue a scan"
            found = [(r.advisory_id, r.package_name, r.data["package"]["version"])
                     for r in state.findings(db, image.id, limit=10_000)]
        inv = scan.inventory or {}
        doc = sbom.cyclonedx(ImageInventory.from_json(inv), "scan-test", digest, now) if (
            scan.inventory) else None
        return Scanned(scan.status, scan.description, inv, sorted(found), doc)
    finally:
        corral.store.close()
