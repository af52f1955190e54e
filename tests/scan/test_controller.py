"""The scan controller in process: queued scans run, interrupted scans are re-queued, and
continuous monitoring expires for images pushed before the rescan window."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from corral.app import build
from corral.config import Settings
from corral.ecr import images, repositories, scanning
from corral.registry import manifests
from corral.scan import advisories, state
from corral.store.schema import ecr_images, inspector_configuration, scan_findings
from tests.scan import layers as build_layers
from tests.scan.helpers import GZ_LAYER

NOW = datetime.now(UTC)
RECORD = {"id": "CORRAL-T-2", "modified": "2026-01-01T00:00:00Z", "affected": [{
    "package": {"ecosystem": "npm", "name": "qs"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "6.5.3"}]}]}]}


def _push(corral, blobs, repo, layer: bytes) -> images.Image:
    import hashlib
    import json
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                           "diff_ids": []}}).encode()
    cfg_digest, layer_digest = blobs.put(config), blobs.put(layer)
    raw = json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": cfg_digest, "size": len(config)},
                      "layers": [{"mediaType": GZ_LAYER, "digest": layer_digest,
                                  "size": len(layer)}]}).encode()
    digest = blobs.put(raw)
    with corral.store.transaction() as db:
        for d, size in ((cfg_digest, len(config)), (layer_digest, len(layer))):
            images.link_blob(db, repo.id, d, size, NOW)
        image, _ = images.put_manifest(db, repo, manifests.parse(raw, None), digest, None, NOW)
    assert hashlib.sha256(raw).hexdigest() in digest
    return image


def test_continuous_scan_lifecycle_in_process(tmp_path):
    corral = build(Settings(data_dir=tmp_path))
    controller = next(c for c in corral.controllers if c.name == "scanner")
    blobs = controller.scanner.blobs
    with corral.store.transaction() as db:
        scanning.put_config(db, "000000000000", "us-east-1",
                            scanning.ScanningConfiguration("ENHANCED", []), NOW)
        repo = repositories.insert(db, account_id="000000000000", region="us-east-1",
                                   name="svc", created_at=NOW, image_tag_mutability="MUTABLE",
                                   mutability_exclusion_filters=[], scan_on_push=False,
                                   encryption_type="AES256", kms_key=None)
        advisories.import_records(db, [RECORD], "t", "t", NOW)
    image = _push(corral, blobs, repo, build_layers.tar_bytes(build_layers.node_module("qs", "6.5.2")))
    with corral.store.transaction() as db:  # a crash left the scan half done
        state.set_status(db, image.id, "IN_PROGRESS", "x")
    controller.reconcile()
    with corral.store.transaction(write=False) as db:
        scan = state.get(db, image.id, image.digest)
        assert scan.status == "ACTIVE"
        assert [r.advisory_id for r in state.findings(db, image.id)] == ["CORRAL-T-2"]
    with corral.store.transaction() as db:
        db.execute(update(ecr_images).where(ecr_images.c.id == image.id).values(
            pushed_at=NOW - timedelta(days=15)))
        db.execute(inspector_configuration.insert().values(
            account_id="000000000000", region="us-east-1", rescan_duration="LIFETIME",
            updated_at=NOW))
    controller.reconcile()  # LIFETIME: still monitored
    with corral.store.transaction(write=False) as db:
        assert state.get(db, image.id, image.digest).status == "ACTIVE"
    with corral.store.transaction() as db:  # back to the default 14 days
        db.execute(inspector_configuration.delete())
    controller.reconcile()
    with corral.store.transaction(write=False) as db:
        assert state.get(db, image.id, image.digest).status == "SCAN_ELIGIBILITY_EXPIRED"
        statuses = set(db.execute(select(scan_findings.c.status)).scalars())
        assert statuses == {"CLOSED"}
    corral.store.close()


def test_layer_inventory_cache_avoids_rereading(tmp_path, monkeypatch):
    corral = build(Settings(data_dir=tmp_path))
    scanner = next(c for c in corral.controllers if c.name == "scanner").scanner
    data = build_layers.tar_bytes(build_layers.node_module("qs", "6.5.2"))
    digest = scanner.blobs.put(data)
    first = scanner.layer(digest, GZ_LAYER)
    monkeypatch.setattr(scanner.blobs, "open", lambda *_: io.BytesIO(b"garbage"))
    assert scanner.layer(digest, GZ_LAYER) == first
    corral.store.close()


def test_partial_rematch_touches_only_changed_packages(tmp_path):
    corral = build(Settings(data_dir=tmp_path))
    controller = next(c for c in corral.controllers if c.name == "scanner")
    rec_b = {**RECORD, "id": "CORRAL-T-B", "affected": [{
        "package": {"ecosystem": "npm", "name": "ws"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "7.4.6"}]}]}]}
    with corral.store.transaction() as db:
        scanning.put_config(db, "000000000000", "us-east-1",
                            scanning.ScanningConfiguration("ENHANCED", []), NOW)
        repo = repositories.insert(db, account_id="000000000000", region="us-east-1",
                                   name="svc", created_at=NOW, image_tag_mutability="MUTABLE",
                                   mutability_exclusion_filters=[], scan_on_push=False,
                                   encryption_type="AES256", kms_key=None)
        advisories.import_records(db, [rec_b], "t", "t", NOW)
    layer = build_layers.tar_bytes({**build_layers.node_module("qs", "6.5.2"),
                                    **build_layers.node_module("ws", "7.4.5")})
    image = _push(corral, controller.scanner.blobs, repo, layer)
    controller.reconcile()

    def active() -> dict:
        with corral.store.transaction(write=False) as db:
            return {r.advisory_id: r.last_observed_at for r in state.findings(db, image.id)}

    first = active()
    assert set(first) == {"CORRAL-T-B"}
    with corral.store.transaction() as db:  # a new advisory for qs only
        advisories.import_records(db, [RECORD], "t2", "t2", datetime.now(UTC))
    with corral.store.transaction(write=False) as db:
        [(image_id, digest, scope)] = state.stale_continuous(db)
    # ids, not scans: the controller loads one inventory at a time, just before its re-match
    assert (image_id, digest) == (image.id, image.digest)
    assert scope == {("npm", "qs")}
    controller.reconcile()
    second = active()
    assert set(second) == {"CORRAL-T-B", "CORRAL-T-2"}
    assert second["CORRAL-T-B"] == first["CORRAL-T-B"]  # ws was not re-matched
    with corral.store.transaction() as db:  # ws's advisory withdrawn
        advisories.import_records(db, [{**rec_b, "withdrawn": "2026-11-27T00:00:00Z"}], "t",
                                  "t", datetime.now(UTC))
    controller.reconcile()
    assert set(active()) == {"CORRAL-T-2"}
    with corral.store.transaction(write=False) as db:
        assert state.stale_continuous(db) == []
    corral.store.close()
