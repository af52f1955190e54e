"""Issue 17 item 1: Inspector2 ListFindings / ListFindingAggregations stay bounded with 50,000
findings. A real server holds 20 real images (pushed through ECR, scanned by its scanner: a
Debian 12 root with its real 1,034-package dpkg database, so each image's inventory is the
size that blew the old query up); their findings are written through the store's own write
path (``state.sync_findings``) from real PyPI advisories, 2,500 per image, into the running
server's database. boto3 then pages through everything.

The bound is on what the listing itself adds: before each listing the server's peak RSS is
reset to its current RSS (``echo 5 > /proc/<pid>/clear_refs``; CI runs as root) and VmRSS is
read; after it, the peak (VmHWM) may exceed that by less than LISTING_GROWTH_MIB. One page of
100 findings and SQLite's page cache need a few MiB; the old query, which held every row and
its image's ~0.5 MB inventory at once, grew by gigabytes. (A lifetime peak against a loose
bound would hide a listing that doubles the server's memory.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.scan import severity, state
from corral.scan.matcher import Match
from corral.scan.packages import Package
from corral.store import Store
from corral.store.schema import ecr_images, ecr_repositories
from tests.scan import layers as build
from tests.scan.helpers import push_layers, wait_scan
from tests.scan.vulndata import vulndata

LISTING_GROWTH_MIB = 50
REPOS, IMAGES_PER_REPO, PER_IMAGE = 5, 4, 2500  # 50,000 findings


def _status_mib(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field_name} in /proc/{pid}/status")


def vm_hwm_mib(pid: int) -> float:
    """Peak resident set size of a process (kernel-kept high-water mark)."""
    return _status_mib(pid, "VmHWM")


@contextmanager
def listing_bounded(server) -> Iterator[None]:
    """The block may grow the server's peak RSS by less than LISTING_GROWTH_MIB over its RSS
    when the block starts (the peak is reset first)."""
    pid = server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_mib(pid, "VmRSS")
    yield
    growth = vm_hwm_mib(pid) - before
    assert growth < LISTING_GROWTH_MIB, (
        f"listing grew the server's peak RSS by {growth:.0f} MiB (from {before:.0f} MiB); "
        f"bound {LISTING_GROWTH_MIB} MiB")


@dataclass
class Seeded:
    total: int = 0
    by_severity: Counter = field(default_factory=Counter)
    by_repo: Counter = field(default_factory=Counter)
    critical_by_repo: Counter = field(default_factory=Counter)
    packages: set = field(default_factory=set)
    digests: dict = field(default_factory=dict)  # digest -> repository


def advisories(limit: int | None) -> list[tuple[dict, severity.Severity]]:
    """Real PyPI advisories (not withdrawn) with their severity, as the matcher assesses it."""
    out = []
    with open(vulndata() / "osv" / "PyPI.jsonl") as f:
        for line in f:
            record = json.loads(line)
            if record.get("withdrawn") or not record.get("affected"):
                continue
            out.append((record, severity.assess(record, record["affected"][:1])))
            if len(out) == limit:
                break
    return out


def push_images(server, repos: int, per_repo: int) -> dict[str, str]:
    """Real images under enhanced scan-on-push scanning (COMPLETE, never re-matched: the
    seeded findings stay as written); returns digest -> repository."""
    ecr = server.client("ecr")
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[{
        "scanFrequency": "SCAN_ON_PUSH",
        "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}])
    base = build.tar_bytes({**build.DEBIAN_12_OS, "var/lib/dpkg/status": (
        vulndata() / "inventories" / "debian-12-host" / "status").read_bytes()})
    digests = {}
    for n in range(repos):
        repo = f"scale/repo-{n}"
        ecr.create_repository(repositoryName=repo)
        for k in range(per_repo):
            app = build.tar_bytes({f"app/image-{n}-{k}.txt": f"{n}/{k}".encode()})
            digest = push_layers(ecr, repo, [base, app], tag=f"v{k}" if k % 2 == 0 else None)
            digests[digest] = repo
    for digest, repo in digests.items():
        assert wait_scan(ecr, repo, digest, timeout=120)["imageScanStatus"]["status"] == \
            "COMPLETE"
    return digests


def seed_findings(server, *, repos: int = REPOS, per_repo: int = IMAGES_PER_REPO,
                  per_image: int = PER_IMAGE) -> Seeded:
    """Push the images, then write ``per_image`` findings into each through state.py."""
    digests = push_images(server, repos, per_repo)
    records = advisories(None)
    assert len(records) >= per_image, f"{per_image} advisories per image; vulndata has fewer"
    step = (len(records) - per_image) // len(digests)  # images share some advisories
    seeded = Seeded(digests=digests)
    store = Store(f"sqlite:///{server.data_dir / 'state.db'}")
    now = datetime.now(UTC)
    try:
        for n, (digest, repo) in enumerate(sorted(digests.items())):
            with store.transaction() as db:  # one image per transaction: the server keeps going
                i, r = ecr_images.c, ecr_repositories.c
                image_id = db.execute(select(i.id).join(ecr_repositories, r.id == i.repository_id)
                                      .where(i.digest == digest, r.name == repo)).scalar_one()
                scan = state.get(db, image_id, digest)
                chosen = records[step * n:step * n + per_image]
                matches = [_match(rec, sev, digest) for rec, sev in chosen]
                state.sync_findings(db, scan, matches, now)
            for m in matches:
                seeded.total += 1
                seeded.by_severity[m.severity.label] += 1
                seeded.by_repo[repo] += 1
                seeded.critical_by_repo[repo] += m.severity.label == "CRITICAL"
                seeded.packages.add(m.package.name)
    finally:
        store.close()
    return seeded


def _match(record: dict, sev: severity.Severity, layer: str) -> Match:
    name = record["affected"][0]["package"]["name"]
    pkg = Package("python", name, "0.0.1",
                  f"usr/lib/python3/dist-packages/{name}-0.0.1.dist-info/METADATA", layer=layer)
    return Match(pkg, "PyPI", record, None, sev)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    from tests.server import CorralServer

    server = CorralServer(tmp_path_factory.mktemp("scale") / "data").start()
    try:
        seeded = seed_findings(server)
        assert seeded.total >= 50_000
        yield server, seeded
    finally:
        server.stop()


def _all(inspector, **kwargs) -> list[dict]:
    pages = inspector.get_paginator("list_findings").paginate(
        **kwargs, PaginationConfig={"PageSize": 100})
    return [f for page in pages for f in page["findings"]]


def test_list_findings_pages_50000_findings_with_bounded_rss(scaled):
    server, seeded = scaled
    inspector = server.client("inspector2")
    with listing_bounded(server):
        found = _all(inspector)
    assert len(found) == seeded.total
    assert len({f["findingArn"] for f in found}) == seeded.total
    ids = [int(f["findingArn"].rsplit("/", 1)[1], 16) for f in found]
    assert ids == sorted(ids)  # no sortCriteria: the order findings were recorded
    assert Counter(f["severity"] for f in found) == seeded.by_severity
    image = found[0]["resources"][0]["details"]["awsEcrContainerImage"]
    assert image["platform"] == "DEBIAN_12" and image["imageHash"] in seeded.digests


def test_filtered_and_sorted_pages_stay_correct_and_bounded(scaled):
    server, seeded = scaled
    inspector = server.client("inspector2")
    with listing_bounded(server):
        critical = _all(inspector, filterCriteria={
            "severity": [{"comparison": "EQUALS", "value": "CRITICAL"}]})
        in_repo = _all(inspector, filterCriteria={
            "ecrImageRepositoryName": [{"comparison": "EQUALS", "value": "scale/repo-3"}]},
            sortCriteria={"field": "SEVERITY", "sortOrder": "DESC"})
        by_score = _all(inspector, sortCriteria={"field": "INSPECTOR_SCORE",
                                                 "sortOrder": "DESC"})
    assert len(critical) == seeded.by_severity["CRITICAL"] > 0
    assert {f["severity"] for f in critical} == {"CRITICAL"}
    repo = "scale/repo-3"
    assert len(in_repo) == seeded.by_repo[repo]
    assert {f["resources"][0]["details"]["awsEcrContainerImage"]["repositoryName"]
            for f in in_repo} == {repo}
    rank = {s: n for n, s in enumerate(["UNTRIAGED", "INFORMATIONAL", "LOW", "MEDIUM", "HIGH",
                                        "CRITICAL"])}
    ranks = [rank[f["severity"]] for f in in_repo]
    assert ranks == sorted(ranks, reverse=True)
    assert len({f["findingArn"] for f in in_repo}) == len(in_repo)
    scores = [f.get("inspectorScore", 0.0) for f in by_score]
    assert len(by_score) == seeded.total and scores == sorted(scores, reverse=True)
    first = inspector.list_findings(maxResults=5, filterCriteria={
        "severity": [{"comparison": "EQUALS", "value": "HIGH"}],
        "ecrImageRepositoryName": [{"comparison": "PREFIX", "value": "scale/"}]})
    assert len(first["findings"]) == 5 and "nextToken" in first


def test_aggregations_over_50000_findings_count_in_sql(scaled):
    server, seeded = scaled
    inspector = server.client("inspector2")
    with listing_bounded(server):
        repos = inspector.list_finding_aggregations(aggregationType="REPOSITORY")["responses"]
        pages = inspector.get_paginator("list_finding_aggregations").paginate(
            aggregationType="PACKAGE", PaginationConfig={"PageSize": 100})
        names = [x["packageAggregation"]["packageName"] for p in pages for x in p["responses"]]
    got = {x["repositoryAggregation"]["repository"]: x["repositoryAggregation"] for x in repos}
    assert {k: v["severityCounts"]["all"] for k, v in got.items()} == dict(seeded.by_repo)
    assert {k: v["severityCounts"]["critical"] for k, v in got.items()} == \
        dict(seeded.critical_by_repo)
    assert {v["affectedImages"] for v in got.values()} == {IMAGES_PER_REPO}
    assert names == sorted(names) and set(names) == seeded.packages
    by_critical = inspector.list_finding_aggregations(
        aggregationType="AWS_ECR_CONTAINER", maxResults=3,
        aggregationRequest={"awsEcrContainerAggregation": {"sortBy": "CRITICAL",
                                                           "sortOrder": "DESC"}})
    counts = [x["awsEcrContainerAggregation"]["severityCounts"]["critical"]
              for x in by_critical["responses"]]
    assert counts == sorted(counts, reverse=True) and "nextToken" in by_critical


def test_migration_0008_backfills_existing_findings(tmp_path):
    """Findings written before 0008 get their query columns from their data and their
    image's scan (digest, platform), so the SQL filters see them too."""
    from alembic import command
    from alembic.config import Config

    from corral.store.db import MIGRATIONS
    from corral.store.schema import scan_findings, scan_images

    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    now = datetime.now(UTC)
    try:
        with store.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
            conn.commit()
        data = {"package": {"type": "python", "name": "django", "version": "1.0", "path": "p/M",
                            "layer": "sha256:aa"}, "aliases": ["CVE-1", "GHSA-x"],
                "rating": "moderate"}
        deb = {"package": {"type": "deb", "name": "libc6", "version": "1:2.36-9+deb12u4",
                           "path": "var/lib/dpkg/status", "arch": "amd64"}, "aliases": []}
        with store.transaction() as db:
            db.execute(scan_images.insert().values(
                image_id=7, digest="sha256:bb", account_id="000000000000", region="us-east-1",
                repository_id=1, status="COMPLETE", description="", frequency="SCAN_ON_PUSH",
                requested_at=now, attempts=0,
                inventory={"os": {"id": "debian", "version_id": "12"}, "packages": []}))
            db.execute(scan_findings.insert().values(
                image_id=7, key="k", advisory_id="PYSEC-1", account_id="000000000000",
                region="us-east-1", repository_id=1, status="ACTIVE", severity="HIGH",
                score=7.5, fix_available=False, package_name="django", data=data,
                first_observed_at=now, last_observed_at=now, updated_at=now))
            db.execute(scan_findings.insert().values(  # unscored: score becomes 0
                image_id=7, key="d", advisory_id="DSA-1", account_id="000000000000",
                region="us-east-1", repository_id=1, status="ACTIVE", severity="UNTRIAGED",
                score=None, fix_available=False, package_name="libc6", data=deb,
                first_observed_at=now, last_observed_at=now, updated_at=now))
        store.migrate()
        with store.transaction(write=False) as db:
            row, deb_row = db.execute(select(scan_findings).order_by(scan_findings.c.id)).all()
        assert (row.image_digest, row.platform, row.package_version, row.package_path,
                row.layer_hash, row.aliases, row.severity_rank, row.vendor_severity,
                row.score) == ("sha256:bb", "DEBIAN_12", "1.0", "p/M", "sha256:aa",
                               "|CVE-1|GHSA-x|", 3, "moderate", 7.5)
        # Debian versions as vulnerablePackages shows them (corral.scan.views.shown_package)
        assert (deb_row.package_version, deb_row.package_release, deb_row.package_epoch,
                deb_row.package_arch, deb_row.score) == ("2.36", "9+deb12u4", 1, "AMD64", 0)
    finally:
        store.close()
