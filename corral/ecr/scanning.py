"""Registry scanning configuration and which scan an image gets (ECR user guide, image
scanning; shared/reference ecr-registry-and-auth.md §6).

    BASIC:    a SCAN_ON_PUSH rule matching the repository, or the repository's own
              imageScanningConfiguration.scanOnPush ─> SCAN_ON_PUSH; otherwise MANUAL
    ENHANCED: no rules ─> CONTINUOUS_SCAN for every repository; else a matching
              CONTINUOUS_SCAN rule wins over a matching SCAN_ON_PUSH rule; no match ─> not
              scanned (None)

Filters: without ``*`` a filter matches names that *contain* it; with ``*`` it must match
the whole name, ``*`` standing for any run of characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, select

from corral.store import emit
from corral.store.schema import ecr_registry_scanning, scan_findings, scan_image_keys, scan_images

if TYPE_CHECKING:
    from corral.ecr.images import Image
    from corral.ecr.repositories import Repository


@dataclass(frozen=True)
class ScanningConfiguration:
    scan_type: str = "BASIC"
    rules: list[dict] = field(default_factory=list)

    def view(self) -> dict:
        return {"scanType": self.scan_type, "rules": self.rules}


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern:
    return re.compile(".*".join(map(re.escape, pattern.split("*"))))


def filter_matches(pattern: str, name: str) -> bool:
    if "*" not in pattern:
        return pattern in name
    return _wildcard(pattern).fullmatch(name) is not None


def _rule_matches(rules: list[dict], frequency: str, name: str) -> bool:
    return any(r.get("scanFrequency") == frequency and any(
        filter_matches(f.get("filter", ""), name) for f in r.get("repositoryFilters") or ())
        for r in rules)


def frequency(config: ScanningConfiguration, repo_name: str, repo_scan_on_push: bool) -> str | None:
    """SCAN_ON_PUSH | CONTINUOUS_SCAN | MANUAL, or None (enhanced scanning skips the repo)."""
    if config.scan_type == "ENHANCED":
        if not config.rules or _rule_matches(config.rules, "CONTINUOUS_SCAN", repo_name):
            return "CONTINUOUS_SCAN"
        return "SCAN_ON_PUSH" if _rule_matches(config.rules, "SCAN_ON_PUSH", repo_name) else None
    if repo_scan_on_push or _rule_matches(config.rules, "SCAN_ON_PUSH", repo_name):
        return "SCAN_ON_PUSH"
    return "MANUAL"


def get_config(db: Connection, account_id: str, region: str) -> ScanningConfiguration:
    t = ecr_registry_scanning.c
    row = db.execute(select(t.scan_type, t.rules).where(
        t.account_id == account_id, t.region == region)).first()
    return ScanningConfiguration(row.scan_type, row.rules) if row else ScanningConfiguration()


def put_config(db: Connection, account_id: str, region: str, config: ScanningConfiguration,
               now: datetime) -> None:
    t = ecr_registry_scanning.c
    db.execute(delete(ecr_registry_scanning).where(t.account_id == account_id, t.region == region))
    db.execute(ecr_registry_scanning.insert().values(
        account_id=account_id, region=region, scan_type=config.scan_type, rules=config.rules,
        updated_at=now))


def forget(db: Connection, image_id: int) -> None:
    """Drop an image's scan, inventory keys and findings (a new image reusing the id)."""
    db.execute(delete(scan_findings).where(scan_findings.c.image_id == image_id))
    db.execute(delete(scan_image_keys).where(scan_image_keys.c.image_id == image_id))
    db.execute(delete(scan_images).where(scan_images.c.image_id == image_id))


def queue(db: Connection, repo: Repository, image: Image, freq: str, now: datetime) -> None:
    forget(db, image.id)
    db.execute(scan_images.insert().values(
        image_id=image.id, digest=image.digest, account_id=repo.account_id, region=repo.region,
        repository_id=repo.id, status="PENDING", description="The scan is queued.",
        frequency=freq, requested_at=now, attempts=0))
    emit(db, "scan.requested", image_id=image.id)


def on_push(db: Connection, repo: Repository, image: Image, is_index: bool,
            now: datetime) -> None:
    """Called in the push transaction for every new image: queue its scan-on-push or
    continuous scan (the scan itself runs later, off the request path)."""
    forget(db, image.id)
    emit(db, "image.pushed", image_id=image.id, repository_id=repo.id, digest=image.digest)
    if is_index:
        return  # each platform's image manifest is pushed, and scanned, on its own
    freq = frequency(get_config(db, repo.account_id, repo.region), repo.name, repo.scan_on_push)
    if freq in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN"):
        queue(db, repo, image, freq, now)
