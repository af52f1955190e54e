"""Image scanning speed: scan time against the floor of just decompressing and reading the
layers, re-scan time after an advisory update, and advisory import speed — all in one run.

    .venv/bin/python bench/scan.py [--filler-mb 120] [--runs 3]

The image: a base layer with a real Debian 12 dpkg database (1,034 packages, from the shared
vulndata) plus filler files (text and random binaries, like a rootfs), and an app layer with
real Python dist-info and npm package.json files. Baselines in the same run:
  floor-gunzip  read every layer through gzip to the end (no scanner can do less)
  floor-tar     gunzip + walk every tar entry and read its data (what an extracting tool does)
Import speed is compared with the floor of only parsing the same records.
Needs CORRAL_VULNDATA (default ../shared/vulndata).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import statistics
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corral.app import build  # noqa: E402
from corral.config import Settings  # noqa: E402
from corral.ecr import images, repositories, scanning  # noqa: E402
from corral.registry import manifests  # noqa: E402
from corral.scan import advisories, state  # noqa: E402

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
NOW = datetime.now(UTC)


def vulndata() -> Path:
    root = Path(os.environ.get("CORRAL_VULNDATA") or ROOT.parent / "shared" / "vulndata")
    if not (root / "SOURCES.md").is_file():
        sys.exit(f"vulndata not found at {root}; set CORRAL_VULNDATA")
    return root


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


def _filler(prefix: str, megabytes: int, rng: random.Random) -> dict[str, bytes]:
    out, total, i = {}, 0, 0
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(2000)]
    while total < megabytes * 1024 * 1024:
        size = int(rng.lognormvariate(9, 1.6)) + 1
        if i % 3 == 0:
            data = os.urandom(size)  # binaries: incompressible
        else:
            data = b" ".join(rng.choice(words) for _ in range(size // 6 + 1))[:size]
        out[f"{prefix}/d{i % 97}/f{i}.bin"] = data
        total += len(data)
        i += 1
    return out


def build_layers(filler_mb: int) -> list[bytes]:
    vd = vulndata() / "inventories"
    rng = random.Random(7)
    base = {"etc/os-release": (vd / "debian-12-host" / "os-release").read_bytes(),
            "var/lib/dpkg/status": (vd / "debian-12-host" / "status").read_bytes(),
            **_filler("usr/lib", int(filler_mb * 0.85), rng)}
    app = {}
    for meta in (vd / "python-old" / "site-packages").glob("*/METADATA"):
        app[f"usr/lib/python3/dist-packages/{meta.parent.name}/METADATA"] = meta.read_bytes()
    for pj in (vd / "npm-old" / "node_modules").glob("*/package.json"):
        app[f"app/node_modules/{pj.parent.name}/package.json"] = pj.read_bytes()
    app |= _filler("app/static", int(filler_mb * 0.15), rng)
    return [_tar(base), _tar(app)]


def floor_gunzip(blobs: list[bytes]) -> float:
    t = time.perf_counter()
    for b in blobs:
        with gzip.GzipFile(fileobj=io.BytesIO(b)) as g:
            while g.read(1 << 20):
                pass
    return time.perf_counter() - t


def floor_tar(blobs: list[bytes]) -> float:
    t = time.perf_counter()
    for b in blobs:
        with tarfile.open(fileobj=io.BytesIO(b), mode="r|gz") as tar:
            for m in tar:
                f = tar.extractfile(m)
                if f is not None:
                    f.read()
    return time.perf_counter() - t


def setup(tmp: Path, blobs_data: list[bytes]):
    corral = build(Settings(data_dir=tmp))
    controller = next(c for c in corral.controllers if c.name == "scanner")
    blobs = controller.scanner.blobs
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    cfg = blobs.put(config)
    layer_digests = [blobs.put(b) for b in blobs_data]
    raw = json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": cfg, "size": len(config)},
                      "layers": [{"mediaType": GZ, "digest": d, "size": len(b)}
                                 for d, b in zip(layer_digests, blobs_data, strict=True)]}).encode()
    digest = blobs.put(raw)
    return corral, controller, raw, digest, [(cfg, len(config))] + list(
        zip(layer_digests, map(len, blobs_data), strict=True))


def import_all(corral, names: list[str]) -> list[tuple[str, int, float, float]]:
    rows = []
    for rel in names:
        path = vulndata() / rel
        t = time.perf_counter()
        records = list(advisories.read_records(path))
        parse = time.perf_counter() - t
        t = time.perf_counter()
        with corral.store.transaction() as db:
            advisories.import_records(db, records, rel, str(path), NOW)
        rows.append((rel, len(records), parse, time.perf_counter() - t))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--filler-mb", type=int, default=120)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    blobs_data = build_layers(args.filler_mb)
    compressed = sum(map(len, blobs_data))
    g = [floor_gunzip(blobs_data) for _ in range(args.runs)]
    ft = [floor_tar(blobs_data) for _ in range(args.runs)]
    scans, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        corral, controller, raw, digest, refs = setup(Path(tmp), blobs_data)
        sources = ["osv/PyPI.jsonl", "osv/Go.jsonl", "osv/crates.io.jsonl",
                   "osv/npm-ghsa-subset.jsonl", "debian/DSA-list", "debian/DLA-list",
                   "alpine/alpine-secdb-legacy.jsonl"]
        imported = import_all(corral, sources)
        t = time.perf_counter()
        with corral.store.transaction() as db:
            again = advisories.import_records(
                db, advisories.read_records(vulndata() / "osv/PyPI.jsonl"), "osv/PyPI.jsonl",
                "x", NOW)
        reimport = time.perf_counter() - t
        scanner = controller.scanner
        for _ in range(args.runs):
            with corral.store.transaction() as db:
                db.execute(__import__("corral.store.schema", fromlist=["x"]).scan_layer_cache.delete())
            t = time.perf_counter()
            inv = scanner.inventory(raw, manifests.OCI_MANIFEST)
            scans.append(time.perf_counter() - t)
            t = time.perf_counter()
            scanner.inventory(raw, manifests.OCI_MANIFEST)
            warm.append(time.perf_counter() - t)
        # the real pipeline once: push, queued scan-on-push, controller run; then a re-scan
        with corral.store.transaction() as db:
            scanning.put_config(db, "000000000000", "us-east-1",
                                scanning.ScanningConfiguration("ENHANCED", []), NOW)
            repo = repositories.insert(db, account_id="000000000000", region="us-east-1",
                                       name="bench", created_at=NOW, image_tag_mutability="MUTABLE",
                                       mutability_exclusion_filters=[], scan_on_push=False,
                                       encryption_type="AES256", kms_key=None)
            for d, size in refs:
                images.link_blob(db, repo.id, d, size, NOW)
            image, _ = images.put_manifest(db, repo, manifests.parse(raw, None), digest, None, NOW)
        with corral.store.transaction() as db:
            db.execute(__import__("corral.store.schema", fromlist=["x"]).scan_layer_cache.delete())
        t = time.perf_counter()
        controller.reconcile()
        full_scan = time.perf_counter() - t
        with corral.store.transaction(write=False) as db:
            before = len(state.findings(db, image.id, limit=10_000))
        rec = {"id": "BENCH-1", "modified": "2026-11-27T00:00:00Z", "affected": [{
            "package": {"ecosystem": "Debian:12", "name": "bash"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                        {"fixed": "99:0"}]}]}]}
        with corral.store.transaction() as db:
            advisories.import_records(db, [rec], "bench", "bench", datetime.now(UTC))
        t = time.perf_counter()
        controller.reconcile()
        rescan = time.perf_counter() - t
        with corral.store.transaction(write=False) as db:
            after = len(state.findings(db, image.id, limit=10_000))
        corral.store.close()

    med = statistics.median
    print(f"image: 2 gzip layers, {compressed / 1e6:.1f} MB compressed, "
          f"{len(inv.packages)} packages ({inv.os_ecosystem}); median of {args.runs} runs\n")
    print(f"{'measure':44} {'seconds':>9} {'vs floor-gunzip':>16} {'vs floor-tar':>13}")
    rows = [("floor-gunzip (decompress to the end)", med(g)),
            ("floor-tar (decompress + read every entry)", med(ft)),
            ("corral scan, cold (layers read, cataloged)", med(scans)),
            ("corral scan, warm (layer inventories cached)", med(warm)),
            ("corral scan-on-push, cold, incl. matching", full_scan),
            (f"corral re-scan after 1 advisory ({before}->{after} findings)", rescan)]
    for name, sec in rows:
        print(f"{name:44} {sec:9.4f} {sec / med(g):15.2f}x {sec / med(ft):12.2f}x")
    print(f"\n{'advisory source':36} {'records':>8} {'parse-only/s':>13} {'import/s':>10} "
          f"{'vs parse':>9}")
    for rel, n, parse, imp in imported:
        print(f"{rel:36} {n:8d} {n / parse:13.0f} {n / (parse + imp):10.0f} "
              f"{(parse + imp) / parse:8.2f}x")
    print(f"{'re-import PyPI unchanged':36} {again.records:8d} {'':13} "
          f"{again.records / reimport:10.0f}  ({again.changed} changed)")


if __name__ == "__main__":
    main()
