"""Scans and findings in the state store: the scan state machine and the finding lifecycle.

    PENDING ─claim─> IN_PROGRESS ─> COMPLETE (basic, scan on push) | ACTIVE (continuous)
                                 └> FAILED | UNSUPPORTED_IMAGE (with the reason)
    findings: matched ─> ACTIVE (firstObservedAt) ─ still matched ─> lastObservedAt moves
              no longer matched (fixed, withdrawn, package gone) ─> CLOSED (updatedAt)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from corral.scan import views
from corral.scan.catalogers import os_release
from corral.scan.inventory import ImageInventory
from corral.scan.matcher import Match, keys, query_of
from corral.scan.packages import Package
from corral.store.schema import (
    ecr_images,
    ecr_repositories,
    inspector_configuration,
    scan_findings,
    scan_image_keys,
    scan_images,
    vuln_advisories,
    vuln_affected,
)

# Inspector's severities in order, kept as scan_findings.severity_rank for SQL sorting.
SEVERITY_RANK = {"UNTRIAGED": -1, "INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3,
                 "CRITICAL": 4}

DONE = {"COMPLETE": "The scan was completed successfully.",
        "ACTIVE": "Continuous scan is selected for image."}


@dataclass(frozen=True)
class Scan:
    image_id: int
    digest: str
    account_id: str
    region: str
    repository_id: int
    status: str
    description: str
    frequency: str
    requested_at: datetime
    completed_at: datetime | None
    vuln_source_updated_at: datetime | None
    inventory: dict | None
    attempts: int


def _live():
    """Scan rows whose image still exists (image ids can be reused after a delete)."""
    i = ecr_images.c
    return select(scan_images).join(
        ecr_images, and_(i.id == scan_images.c.image_id, i.digest == scan_images.c.digest))


def get(db: Connection, image_id: int, digest: str) -> Scan | None:
    t = scan_images.c
    row = db.execute(select(scan_images).where(t.image_id == image_id, t.digest == digest)).first()
    return Scan(**row._mapping) if row else None


def status(db: Connection, image_id: int, digest: str) -> Scan | None:
    """The scan without its inventory (which may be megabytes): for status-only readers."""
    t = scan_images.c
    cols = [c for c in scan_images.c if c.name != "inventory"]
    row = db.execute(select(*cols).where(t.image_id == image_id, t.digest == digest)).first()
    return Scan(**row._mapping, inventory=None) if row else None


def pending(db: Connection, limit: int = 16) -> list[Scan]:
    rows = db.execute(_live().where(scan_images.c.status == "PENDING")
                      .order_by(scan_images.c.requested_at).limit(limit))
    return [Scan(**r._mapping) for r in rows]


def set_status(db: Connection, image_id: int, status: str, description: str,
               now: datetime | None = None) -> None:
    values: dict[str, Any] = {"status": status, "description": description}
    if now is not None:
        values["completed_at"] = now
    db.execute(update(scan_images).where(scan_images.c.image_id == image_id).values(**values))


def requeue_interrupted(db: Connection) -> int:
    """Scans a crash left IN_PROGRESS start again (they are idempotent)."""
    t = scan_images.c
    return db.execute(update(scan_images).where(t.status == "IN_PROGRESS").values(
        status="PENDING", attempts=t.attempts + 1)).rowcount


def vulnerability_source_updated_at(db: Connection) -> datetime | None:
    return db.execute(select(func.max(vuln_advisories.c.imported_at))).scalar_one_or_none()


def record_result(db: Connection, scan: Scan, inventory: ImageInventory, matches: list[Match],
                  now: datetime, *, note: str = "") -> tuple[int, int]:
    """Store the inventory, its keys and the findings; returns (opened, closed). ``note`` is
    appended to the status description (what the scan skipped or cannot match)."""
    status = "ACTIVE" if scan.frequency == "CONTINUOUS_SCAN" else "COMPLETE"
    description = f"{DONE[status]} {note}" if note else DONE[status]
    db.execute(update(scan_images).where(scan_images.c.image_id == scan.image_id).values(
        status=status, description=description[:1000], completed_at=now,
        vuln_source_updated_at=vulnerability_source_updated_at(db) or now,
        inventory=inventory.to_json()))
    db.execute(delete(scan_image_keys).where(scan_image_keys.c.image_id == scan.image_id))
    rows = [{"image_id": scan.image_id, "ecosystem": e, "name": n} for e, n in keys(inventory)]
    if rows:
        db.execute(scan_image_keys.insert(), rows)
    return sync_findings(db, scan, matches, now, platform=os_release.platform(inventory.os))


def _finding_data(m: Match) -> dict[str, Any]:
    rec = m.record
    refs = [r.get("url") for r in rec.get("references") or () if isinstance(r, dict)]
    advisory = next((r.get("url") for r in rec.get("references") or ()
                     if isinstance(r, dict) and r.get("type") == "ADVISORY"), None)
    return {
        "package": m.package.to_json(), "ecosystem": m.ecosystem, "fixed": m.fixed,
        "summary": rec.get("summary") or "", "details": (rec.get("details") or "")[:4000],
        "aliases": rec.get("aliases") or [], "uri": advisory or (refs[0] if refs else
                                                              f"https://osv.dev/vulnerability/{m.advisory_id}"),
        "references": [u for u in refs if u][:20], "published": rec.get("published"),
        "modified": rec.get("modified"), "severity": m.severity.label,
        "rating": m.severity.rating,
        "scores": [{"version": s.version, "vector": s.vector, "score": s.score}
                   for s in m.severity.scores],
    }


def _columns(m: Match, data: dict[str, Any]) -> dict[str, Any]:
    """A finding's queryable columns: written with ``data``, never derived at read time."""
    best = m.severity.best
    shown = views.shown_package(data["package"])  # the version fields as the finding shows
    return {"severity": m.severity.label, "severity_rank": SEVERITY_RANK[m.severity.label],
            "score": best.score if best else 0.0, "fix_available": m.fixed is not None,
            "data": data, "package_version": shown.version, "package_release": shown.release,
            "package_epoch": shown.epoch, "package_arch": shown.arch,
            "package_path": m.package.path, "layer_hash": m.package.layer,
            "aliases": "|" + "|".join(data["aliases"]) + "|",
            "vendor_severity": data.get("rating") or ""}


def _image_columns(db: Connection, scan: Scan) -> dict[str, Any]:
    """The image's columns a finding carries: its repository's name and pushedAt (fixed for
    an image row, so copied once rather than joined for every sort)."""
    i, r = ecr_images.c, ecr_repositories.c
    row = db.execute(select(r.name, i.pushed_at).join(ecr_repositories, r.id == i.repository_id)
                     .where(i.id == scan.image_id, i.digest == scan.digest)).first()
    return {"repository_name": row.name if row else "",
            "image_pushed_at": row.pushed_at if row else None}


def sync_findings(db: Connection, scan: Scan, matches: list[Match], now: datetime,
                  scope: set[Key] | None = None, *, platform: str | None = None
                  ) -> tuple[int, int]:
    """Open, refresh and close the image's findings to equal ``matches``; with ``scope``,
    only findings of packages under those keys are considered (a partial re-match).
    ``platform`` is the image's Inspector platform (default: from ``scan.inventory``)."""
    f = scan_findings.c
    if platform is None:
        platform = os_release.platform((scan.inventory or {}).get("os"))
    existing = {r.key: r for r in db.execute(
        select(f.id, f.key, f.status, f.severity, f.data).where(f.image_id == scan.image_id))}
    if scope is not None:
        existing = {k: r for k, r in existing.items() if _finding_key(r.data) in scope}
    opened, unchanged, new_rows = 0, [], []
    image = _image_columns(db, scan) if matches else {}
    for m in matches:
        data = _finding_data(m)
        row = existing.get(m.key)
        if row is None:
            opened += 1
            new_rows.append({
                **_columns(m, data), **image, "last_observed_at": now,
                "image_id": scan.image_id,
                "image_digest": scan.digest, "platform": platform, "key": m.key,
                "advisory_id": m.advisory_id, "account_id": scan.account_id,
                "region": scan.region, "repository_id": scan.repository_id, "status": "ACTIVE",
                "package_name": m.package.name, "first_observed_at": now, "updated_at": now})
        elif row.status == "ACTIVE" and row.data == data:
            unchanged.append(row.id)  # the common case on a re-scan: one bulk update below
        else:
            opened += row.status != "ACTIVE"
            db.execute(update(scan_findings).where(f.id == row.id).values(
                **_columns(m, data), last_observed_at=now, status="ACTIVE", updated_at=now))
    for start in range(0, len(unchanged), 500):
        db.execute(update(scan_findings).where(f.id.in_(unchanged[start:start + 500])).values(
            last_observed_at=now))
    if new_rows:
        db.execute(scan_findings.insert(), new_rows)
    matched = {m.key for m in matches}
    gone = [r.id for k, r in existing.items() if r.status == "ACTIVE" and k not in matched]
    for start in range(0, len(gone), 500):
        db.execute(update(scan_findings).where(f.id.in_(gone[start:start + 500])).values(
            status="CLOSED", updated_at=now))
    return opened, len(gone)


Key = tuple[str, str]  # (ecosystem, package key), as advisories are indexed


def _finding_key(data: dict) -> Key:
    eco = data["ecosystem"]
    return eco, query_of(Package.from_json(data["package"]), eco)[0]


def stale_continuous(db: Connection, limit: int = 200) -> list[tuple[int, str, set[Key]]]:
    """Continuously scanned images whose matching is older than the advisories it depends
    on, as (image id, digest, package keys to re-match): keys under which an advisory was
    imported (added, changed, withdrawn) since, and the keys of open findings whose advisory
    changed or went away. Only those packages are re-matched (Clair's notifier does the same
    diff). No inventory is read here: the caller loads each scan (``get``) just before its
    re-match, so one inventory is in memory at a time, not ``limit``."""
    s, k, a, v, f, i = (scan_images.c, scan_image_keys.c, vuln_affected.c, vuln_advisories.c,
                        scan_findings.c, ecr_images.c)
    by_keys = (select(k.image_id, k.ecosystem, k.name).join(scan_images, s.image_id == k.image_id)
               .join(vuln_affected, and_(a.ecosystem == k.ecosystem, a.name == k.name))
               .join(vuln_advisories, v.id == a.advisory_id)
               .where(s.frequency == "CONTINUOUS_SCAN", s.status == "ACTIVE",
                      v.imported_at > s.vuln_source_updated_at).distinct())
    by_findings = (select(f.image_id, f.data).join(scan_images, s.image_id == f.image_id)
                   .outerjoin(vuln_advisories, v.id == f.advisory_id)
                   .where(s.frequency == "CONTINUOUS_SCAN", s.status == "ACTIVE",
                          f.status == "ACTIVE",
                          or_(v.id.is_(None), v.imported_at > s.vuln_source_updated_at)))
    changed: dict[int, set[Key]] = {}
    for image_id, eco, name in db.execute(by_keys):
        changed.setdefault(image_id, set()).add((eco, name))
    for image_id, data in db.execute(by_findings):
        changed.setdefault(image_id, set()).add(_finding_key(data))
    if not changed:
        return []
    ids = sorted(changed)[:limit]
    live = db.execute(select(s.image_id, s.digest).join(
        ecr_images, and_(i.id == s.image_id, i.digest == s.digest)).where(s.image_id.in_(ids)))
    return [(image_id, digest, changed[image_id]) for image_id, digest in live]


def rematched(db: Connection, scan: Scan, matches: list[Match], now: datetime,
              scope: set[Key] | None = None) -> tuple[int, int]:
    db.execute(update(scan_images).where(scan_images.c.image_id == scan.image_id).values(
        vuln_source_updated_at=vulnerability_source_updated_at(db) or now))
    return sync_findings(db, scan, matches, now, scope)


def findings(db: Connection, image_id: int, *, after_id: int = 0, limit: int = 100,
             status: str = "ACTIVE") -> list:
    f = scan_findings.c
    return list(db.execute(select(scan_findings).where(
        f.image_id == image_id, f.status == status, f.id > after_id).order_by(f.id).limit(limit)))


def severity_counts(db: Connection, image_id: int) -> dict[str, int]:
    f = scan_findings.c
    return dict(db.execute(select(f.severity, func.count()).where(
        f.image_id == image_id, f.status == "ACTIVE").group_by(f.severity)).all())


EXPIRED = "SCAN_ELIGIBILITY_EXPIRED"


DEFAULT_RESCAN = "DAYS_14"  # Inspector's default for new accounts


def rescan_days(db: Connection, account_id: str, region: str) -> int | None:
    """The account's ECR push-date rescan window in days; None for LIFETIME."""
    c = inspector_configuration.c
    value = db.execute(select(c.rescan_duration).where(
        c.account_id == account_id, c.region == region)).scalar_one_or_none() or DEFAULT_RESCAN
    return None if value == "LIFETIME" else int(value.removeprefix("DAYS_"))


def expire_continuous(db: Connection, now: datetime) -> int:
    """Continuous monitoring ends for images pushed before their account's rescan window
    (Inspector ``rescanDuration``): status SCAN_ELIGIBILITY_EXPIRED, findings closed."""
    s, i = scan_images.c, ecr_images.c
    scopes = db.execute(select(s.account_id, s.region).where(
        s.frequency == "CONTINUOUS_SCAN", s.status == "ACTIVE").distinct()).all()
    ids: list[int] = []
    for account_id, region in scopes:
        days = rescan_days(db, account_id, region)
        if days is None:
            continue
        ids += db.execute(
            select(s.image_id).join(ecr_images, and_(i.id == s.image_id, i.digest == s.digest))
            .where(s.account_id == account_id, s.region == region,
                   s.frequency == "CONTINUOUS_SCAN", s.status == "ACTIVE",
                   i.pushed_at < now - timedelta(days=days))).scalars().all()
    if not ids:
        return 0
    db.execute(update(scan_images).where(s.image_id.in_(ids)).values(
        status=EXPIRED, description="The image was pushed before the rescan duration; "
        "continuous scanning has stopped."))
    db.execute(update(scan_findings).where(scan_findings.c.image_id.in_(ids),
                                           scan_findings.c.status == "ACTIVE").values(
        status="CLOSED", updated_at=now))
    return len(ids)


def drop_orphans(db: Connection) -> int:
    """Forget scans of images that were deleted (lifecycle expiry, BatchDeleteImage)."""
    s, i = scan_images.c, ecr_images.c
    ids = list(db.execute(select(s.image_id).outerjoin(
        ecr_images, and_(i.id == s.image_id, i.digest == s.digest)).where(i.id.is_(None))
    ).scalars())
    if ids:
        db.execute(delete(scan_findings).where(scan_findings.c.image_id.in_(ids)))
        db.execute(delete(scan_image_keys).where(scan_image_keys.c.image_id.in_(ids)))
        db.execute(delete(scan_images).where(s.image_id.in_(ids)))
    return len(ids)
