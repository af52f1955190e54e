"""Inspector2 findings at scale: ListFindings pages and ListFindingAggregations over 100,000
findings of a real server, with its peak RSS — issue 17 item 1.

    .venv/bin/python bench/inspector_findings.py [--repos 10] [--images 4] [--per-image 2500]

Seeding is tests/scan/test_findings_scale.py's: real images (a Debian 12 root with its real
dpkg database) scanned by the server, then 2,500 findings per image from real PyPI
advisories written through ``state.sync_findings``. Every page is walked with boto3
(100 findings a page); the first, middle and last page of each walk are then timed again,
median of --runs, against two baselines in the same run:
  floor-select   a plain ``SELECT … WHERE id IN (that page's ids)`` in this process: the
                 least any implementation does to return those rows (no filter, no sort)
  corral-sql     Corral's own query for the page (finding_queries.findings_page), in this
                 process: the SQL alone, without HTTP, SigV4 and JSON
(The old algorithm — every finding with its image's inventory, filtered in Python — is gone;
at 19,000 findings it took 24 GB. ``peak RSS`` is the server's VmHWM after all of it.)
Needs CORRAL_VULNDATA (default ../shared/vulndata).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from corral.scan import finding_queries as queries  # noqa: E402
from corral.store import Store  # noqa: E402
from corral.store.schema import scan_findings  # noqa: E402
from tests.scan import test_findings_scale as scale  # noqa: E402
from tests.server import CorralServer  # noqa: E402

ACCOUNT, REGION = "000000000000", "us-east-1"
WALKS = {
    "unfiltered": {},
    "severity=CRITICAL": {"filterCriteria": {
        "severity": [{"comparison": "EQUALS", "value": "CRITICAL"}]}},
    "repository=scale/repo-3": {"filterCriteria": {
        "ecrImageRepositoryName": [{"comparison": "EQUALS", "value": "scale/repo-3"}]}},
    "sort SEVERITY DESC": {"sortCriteria": {"field": "SEVERITY", "sortOrder": "DESC"}},
    # a sort other than severity (each sort field has its own index since the fix)
    "sort INSPECTOR_SCORE DESC": {"sortCriteria": {"field": "INSPECTOR_SCORE",
                                                   "sortOrder": "DESC"}},
    # selective filters: one page, found through the filter's index, not a table scan
    "vulnerabilityId=NO-SUCH": {"filterCriteria": {
        "vulnerabilityId": [{"comparison": "EQUALS", "value": "NO-SUCH"}]}},
    "vulnerablePackages.name=NO-SUCH": {"filterCriteria": {
        "vulnerablePackages": [{"name": {"comparison": "EQUALS", "value": "NO-SUCH"}}]}},
}
# Every sortable field but SEVERITY and the default order: first and second page of each.
SORTS = ["FIRST_OBSERVED_AT", "LAST_OBSERVED_AT", "INSPECTOR_SCORE", "VULNERABILITY_ID",
         "ECR_IMAGE_REPOSITORY_NAME", "ECR_IMAGE_PUSHED_AT"]
AGGREGATIONS = [("REPOSITORY", {}), ("PACKAGE", {}), ("TITLE", {}),
                ("AWS_ECR_CONTAINER", {"awsEcrContainerAggregation": {"sortBy": "CRITICAL"}})]


def timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def walk(inspector, kwargs: dict) -> tuple[list[str | None], float]:
    """Every page; returns the token that fetches each page and the walk's seconds."""
    tokens: list[str | None] = [None]
    t = time.perf_counter()
    while True:
        extra = {"nextToken": tokens[-1]} if tokens[-1] else {}
        out = inspector.list_findings(maxResults=100, **kwargs, **extra)
        if "nextToken" not in out:
            return tokens, time.perf_counter() - t
        tokens.append(out["nextToken"])


def _row(name: str, pages, walk_s, label: str, floor: float, sql: float, api: float) -> str:
    return (f"{name:32} {pages:>6} {walk_s:>7}  {label:6} {floor * 1e3:9.2f} {sql * 1e3:8.2f} "
            f"{api * 1e3:8.2f} {sql / floor:9.1f}x {api / floor:9.1f}x")


def page_times(inspector, store: Store, kwargs: dict, token: str | None, runs: int):
    extra = {"nextToken": token} if token else {}
    api, out = timed(lambda: inspector.list_findings(maxResults=100, **kwargs, **extra), runs)
    ids = [int(f["findingArn"].rsplit("/", 1)[1], 16) for f in out["findings"]] or [0]

    def corral_sql():
        with store.transaction(write=False) as db:
            return queries.findings_page(db, ACCOUNT, REGION, kwargs.get("filterCriteria") or {},
                                         kwargs.get("sortCriteria"), 100, token)

    def floor():
        with store.transaction(write=False) as db:
            return db.execute(select(scan_findings).where(scan_findings.c.id.in_(ids))).all()

    return timed(floor, runs)[0], timed(corral_sql, runs)[0], api


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=10)
    ap.add_argument("--images", type=int, default=4, help="images per repository")
    ap.add_argument("--per-image", type=int, default=2500, help="findings per image")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-inspector-") as tmp:
        server = CorralServer(Path(tmp) / "data").start()
        try:
            run(server, args)
        finally:
            server.stop()


def run(server: CorralServer, args) -> None:
    pid = server.proc.pid
    idle = scale.vm_hwm_mib(pid)
    t = time.perf_counter()
    seeded = scale.seed_findings(server, repos=args.repos, per_repo=args.images,
                                 per_image=args.per_image)
    seed_s, seeded_hwm = time.perf_counter() - t, scale.vm_hwm_mib(pid)
    inspector = server.client("inspector2")
    store = Store(f"sqlite:///{server.data_dir / 'state.db'}")
    print(f"{seeded.total:,} findings in {len(seeded.digests)} images ({args.repos} "
          f"repositories), seeded in {seed_s:.1f} s; median of {args.runs} runs, 100 a page\n")
    print(f"{'walk':32} {'pages':>6} {'walk s':>7}  {'page':6} {'floor ms':>9} "
          f"{'sql ms':>8} {'api ms':>8} {'sql/floor':>10} {'api/floor':>10}")
    try:
        for name, kwargs in WALKS.items():
            tokens, walk_s = walk(inspector, kwargs)
            for label, k in (("first", 0), ("middle", len(tokens) // 2), ("last", -1)):
                first = label == "first"
                times = page_times(inspector, store, kwargs, tokens[k], args.runs)
                print(_row(name if first else "", len(tokens) if first else "",
                           f"{walk_s:.1f}" if first else "", label, *times))
        print(f"\n{'sort (no walk)':32}")
        for field in SORTS:
            for order in ("ASC", "DESC"):
                kwargs = {"sortCriteria": {"field": field, "sortOrder": order}}
                second = inspector.list_findings(maxResults=100, **kwargs).get("nextToken")
                for label, token in (("first", None), ("second", second)):
                    times = page_times(inspector, store, kwargs, token, args.runs)
                    print(_row(f"{field} {order}" if token is None else "", "", "", label,
                               *times))
        print(f"\n{'aggregation (first page)':40} {'groups':>7} {'ms':>8}")
        for kind, request in AGGREGATIONS:
            extra = {"aggregationRequest": request} if request else {}
            sec, out = timed(lambda k=kind, x=extra: inspector.list_finding_aggregations(
                aggregationType=k, maxResults=100, **x), args.runs)
            label = kind + (" sortBy CRITICAL" if request else "")
            print(f"{label:40} {len(out['responses']):7d} {sec * 1e3:8.1f}")
    finally:
        store.close()
    print(f"\nserver peak RSS (VmHWM): idle {idle:.0f} MiB, after seeding {seeded_hwm:.0f} MiB, "
          f"after every walk and aggregation {scale.vm_hwm_mib(pid):.0f} MiB")


if __name__ == "__main__":
    main()
