"""Lifecycle planning and garbage collection at scale.

1. Plans a 10-rule policy over 10k, 30k and 100k synthetic images with Corral's planner and,
   side by side, with the reference algorithm of shared/reference/ecr-lifecycle.md §3.2
   transcribed literally (a sort per rule, list membership). Prints times, and how each grows
   from 10k against n log n growth (ratio ~1.0 means n log n).
2. Garbage-collects a store of 20,000 blob files (half referenced by images in a real SQLite
   state store, half garbage) and compares with the floor any collector pays: walking and
   stat-ing the same tree.

    .venv/bin/python bench/lifecycle.py [--sizes 10000,30000,100000] [--blobs 20000]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from corral.ecr.lifecycle.planner import PlanImage, newest_first, plan, selects
from corral.ecr.lifecycle.policy import parse
from corral.registry.blobs import BlobStore, blob_path
from corral.registry.gc import GarbageCollector
from corral.registry.storage import FilesystemDriver
from corral.store import Store
from corral.store.schema import ecr_image_refs, ecr_images, ecr_repository_blobs

NOW = datetime(2026, 6, 1, tzinfo=UTC)
POLICY = """{"rules": [
 {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"],
  "countType": "imageCountMoreThan", "countNumber": 50}, "action": {"type": "expire"}},
 {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": ["rc-*"],
  "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
  "action": {"type": "expire"}},
 {"rulePriority": 3, "selection": {"tagStatus": "tagged", "tagPatternList": ["feature-*-*"],
  "countType": "imageCountMoreThan", "countNumber": 200}, "action": {"type": "expire"}},
 {"rulePriority": 4, "selection": {"tagStatus": "tagged", "tagPrefixList": ["main", "sha"],
  "countType": "imageCountMoreThan", "countNumber": 100}, "action": {"type": "expire"}},
 {"rulePriority": 5, "selection": {"tagStatus": "tagged", "tagPatternList": ["*-hotfix"],
  "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 90},
  "action": {"type": "expire"}},
 {"rulePriority": 6, "selection": {"tagStatus": "tagged", "tagPrefixList": ["dev"],
  "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 14},
  "action": {"type": "expire"}},
 {"rulePriority": 7, "selection": {"tagStatus": "tagged", "tagPrefixList": ["nightly"],
  "countType": "imageCountMoreThan", "countNumber": 7}, "action": {"type": "expire"}},
 {"rulePriority": 8, "selection": {"tagStatus": "tagged", "tagPatternList": ["pr-*"],
  "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
  "action": {"type": "expire"}},
 {"rulePriority": 9, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
  "countUnit": "days", "countNumber": 1}, "action": {"type": "expire"}},
 {"rulePriority": 10, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
  "countNumber": 1000}, "action": {"type": "expire"}}
]}"""
KINDS = ["release-{}", "rc-{}", "feature-x-{}", "main-{}", "sha-{}", "{}-hotfix", "dev-{}",
         "nightly-{}", "pr-{}", "other-{}"]


def synthetic_images(n: int, seed: int = 7) -> list[PlanImage]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tags = tuple(rng.choice(KINDS).format(i) for _ in range(rng.choice((0, 1, 1, 2))))
        age = timedelta(seconds=rng.randrange(0, 400 * 86400))
        pulled = NOW - timedelta(days=rng.randrange(0, 60)) if rng.random() < 0.5 else None
        out.append(PlanImage(f"sha256:{i:064x}", tags, NOW - age, pulled, i))
    rng.shuffle(out)
    return out


def reference_plan(rules, images, now) -> dict[str, int]:
    """§3.2 transcribed literally: per rule, select, sort, then mark."""
    claimed: dict[str, int] = {}
    protected: set[str] = set()
    for rule in sorted(rules, key=lambda r: r.priority):
        matched = [i for i in images if selects(rule, i)]
        matched.sort(key=lambda i: (i.pushed_at, i.seq), reverse=True)
        if rule.count_type == "imageCountMoreThan":
            cands = matched[rule.count_number:]
        else:
            limit = now - timedelta(days=rule.count_number)
            ref = (lambda i: i.last_pulled_at or i.pushed_at) \
                if rule.count_type == "sinceImagePulled" else (lambda i: i.pushed_at)
            cands = [i for i in matched if ref(i) < limit]
        for i in cands:
            if i.digest in claimed or i.digest in protected:
                continue
            claimed[i.digest] = rule.priority
        protected |= {i.digest for i in matched}
    return claimed


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_planner(sizes: list[int]) -> None:
    """Growth from the first size, against n log n, and against the growth of one plain
    linear pass over the same sorted images on this machine (memory effects included)."""
    rules = parse(POLICY).rules
    print(f"\nplanning a {len(rules)}-rule policy (best of 3)")
    print(f"{'images':>8} {'expired':>8} {'corral s':>9} {'ref §3.2 s':>11} {'ref/corral':>10} "
          f"{'growth':>7} {'n log n':>8} {'ratio':>6} {'1-pass growth':>14}")
    base = None
    for n in sizes:
        images = synthetic_images(n)
        result = plan(rules, images, now=NOW)
        assert result == reference_plan(rules, images, NOW)
        t = best_of(lambda: plan(rules, images, now=NOW))  # noqa: B023
        t_ref = best_of(lambda: reference_plan(rules, images, NOW))  # noqa: B023
        ordered = newest_first(images)
        t_pass = best_of(lambda: [i.digest for i in ordered if i.tags], runs=5)  # noqa: B023
        nlogn = n * math.log2(n)
        if base is None:
            base = (t, nlogn, t_pass)
        growth, expected = t / base[0], nlogn / base[1]
        print(f"{n:>8} {len(result):>8} {t:>9.3f} {t_ref:>11.3f} {t_ref / t:>10.2f} "
              f"{growth:>7.2f} {expected:>8.2f} {growth / expected:>6.2f} "
              f"{t_pass / base[2]:>14.2f}")


def make_blob_store(root: Path, n: int, store: Store) -> int:
    """n blob files; the even ones referenced by images (one image per 10 blobs). Returns the
    bytes of the unreferenced ones."""
    driver = FilesystemDriver(root / "registry")
    old = time.time() - 7200
    garbage = 0
    refs, images, links = [], [], []
    for i in range(n):
        data = os.urandom(64 + i % 512)
        digest = f"sha256:{i:064x}"  # synthetic: the collector never reads content
        path = driver.local_path(blob_path(digest))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (old, old))
        if i % 2:
            garbage += len(data)
            continue
        image_id = i // 20 + 1
        if i % 20 == 0:
            images.append({"id": image_id, "repository_id": 1 + image_id % 50,
                           "digest": f"sha256:{'f' * 24}{i:040x}", "media_type": "m",
                           "size": 1, "manifest_size": 1, "pushed_at": NOW})
        refs.append({"image_id": image_id, "digest": digest, "kind": "blob", "size": len(data)})
        links.append({"repository_id": 1 + image_id % 50, "digest": digest, "size": len(data),
                      "created_at": NOW})
    with store.transaction() as db:
        db.execute(ecr_images.insert(), images)
        db.execute(ecr_image_refs.insert(), refs)
        db.execute(ecr_repository_blobs.insert(), links)
    return garbage


def walk_floor(root: Path) -> int:
    count = 0
    for dirpath, _, files in os.walk(root / "registry" / "blobs"):
        for f in files:
            os.stat(os.path.join(dirpath, f))
            count += 1
    return count


def bench_gc(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(f"sqlite:///{root / 'state.db'}")
        store.migrate()
        garbage = make_blob_store(root, n, store)
        t_walk = best_of(lambda: walk_floor(root), runs=3)
        gc = GarbageCollector(store, BlobStore(FilesystemDriver(root / "registry")),
                              grace=3600, upload_max_age=86400)
        start = time.perf_counter()
        report = gc.collect()
        t_gc = time.perf_counter() - start
        assert report.bytes_reclaimed == garbage, (report, garbage)
        start = time.perf_counter()
        second = gc.collect()
        t_again = time.perf_counter() - start
        store.close()
    print(f"\ngarbage collection of {n} blob files ({n // 2} referenced by "
          f"{n // 20} images, {n // 2} garbage)")
    print(f"  collect:             {t_gc:7.3f} s  deleted {report.blobs_deleted} blobs, "
          f"{report.bytes_reclaimed} bytes reclaimed")
    print(f"  collect again:       {t_again:7.3f} s  ({second.blobs_scanned} blobs scanned, "
          f"{second.blobs_deleted} deleted)")
    print(f"  baseline walk+stat:  {t_walk:7.3f} s  (os.walk of the same tree)")
    print(f"  collect / walk:      {t_gc / t_walk:7.1f}x   collect again / walk: "
          f"{t_again / t_walk:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,30000,100000")
    ap.add_argument("--blobs", type=int, default=20000)
    args = ap.parse_args()
    bench_planner([int(s) for s in args.sizes.split(",")])
    bench_gc(args.blobs)


if __name__ == "__main__":
    main()
