"""Amazon Inspector (inspector2, rest-json) for container images: account activation,
findings, aggregations, coverage and SBOM export over the scans Corral runs.

Enabling ECR scanning switches the registry to ENHANCED scanning (continuous, every
repository, unless rules say otherwise) and queues the images already pushed within the
rescan window; disabling it returns the registry to BASIC. Findings are those of images
scanned under enhanced scanning. SBOM exports are written under the data directory
(``inspector/sbom/<reportId>/<bucket>/<prefix>``) — Corral has no S3 — and reported there.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.errors import AccessDeniedException, ValidationException, error_class
from corral.aws.provider import Provider, writes
from corral.config import Settings
from corral.ecr import images, scanning
from corral.ecr.repositories import Repository
from corral.scan import sbom, state, views
from corral.scan.inventory import ImageInventory
from corral.store.schema import (
    ecr_images,
    ecr_repositories,
    inspector_accounts,
    inspector_configuration,
    scan_findings,
    scan_images,
)

ResourceNotFoundException = error_class("ResourceNotFoundException", 404)
RESOURCE_TYPES = ("EC2", "ECR", "LAMBDA", "LAMBDA_CODE", "CODE_REPOSITORY")
AGGREGATIONS = ("PACKAGE", "REPOSITORY", "AWS_ECR_CONTAINER", "TITLE", "FINDING_TYPE", "ACCOUNT",
                "IMAGE_LAYER")
STATE_KEYS = {"EC2": "ec2", "ECR": "ecr", "LAMBDA": "lambda", "LAMBDA_CODE": "lambdaCode",
              "CODE_REPOSITORY": "codeRepository"}
SEVERITY_RANK = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4,
                 "UNTRIAGED": -1}


def _now() -> datetime:
    return datetime.now(UTC)


def _token(params: dict[str, Any], operation: str) -> int:
    try:
        cursor = pagination.decode(params.get("nextToken"), offset=int)
    except ValueError:
        raise ValidationException(f"nextToken is not a token a previous {operation} returned") \
            from None
    return cursor["offset"] if cursor else 0


def _page(items: list, params: dict[str, Any], operation: str, default: int = 50):
    start = _token(params, operation)
    limit = params.get("maxResults") or default
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, (pagination.encode({"offset": start + limit}) if more else None)


# --- filters (StringFilter EQUALS | PREFIX | NOT_EQUALS; NumberFilter; DateFilter) ---------------


def _string_ok(filters: list[dict] | None, values: list[str]) -> bool:
    if not filters:
        return True
    positives = [f for f in filters if f.get("comparison") != "NOT_EQUALS"]
    negatives = [f for f in filters if f.get("comparison") == "NOT_EQUALS"]

    def hit(f: dict, v: str) -> bool:
        want = f.get("value", "")
        return v.startswith(want) if f.get("comparison") == "PREFIX" else v == want

    if any(hit(f, v) for f in negatives for v in values):
        return False
    return not positives or any(hit(f, v) for f in positives for v in values)


def _number_ok(filters: list[dict] | None, value: float | None) -> bool:
    if not filters:
        return True
    if value is None:
        return False
    return any(f.get("lowerInclusive", float("-inf")) <= value <= f.get("upperInclusive",
                                                                        float("inf"))
               for f in filters)


def _date_ok(filters: list[dict] | None, value: datetime | None) -> bool:
    if not filters:
        return True
    if value is None:
        return False
    return any((f.get("startInclusive") is None or value >= f["startInclusive"])
               and (f.get("endInclusive") is None or value <= f["endInclusive"]) for f in filters)


class Inspector2Provider(Provider):
    service = "inspector2"

    def __init__(self, settings: Settings):
        self.settings = settings

    # --- accounts --------------------------------------------------------------------------

    def _states(self, ctx: RequestContext) -> dict[str, str]:
        t = inspector_accounts.c
        rows = ctx.db.execute(select(t.resource_type, t.status).where(
            t.account_id == ctx.account_id, t.region == ctx.region))
        return {RESOURCE_TYPES_KEY: status for RESOURCE_TYPES_KEY, status in rows}

    def _account_view(self, ctx: RequestContext, *, nested: bool) -> dict[str, Any]:
        states = self._states(ctx)
        overall = "ENABLED" if "ENABLED" in states.values() else "DISABLED"
        if nested:  # BatchGetAccountStatus: State objects
            return {"accountId": ctx.account_id, "state": {"status": overall},
                    "resourceState": {STATE_KEYS[r]: {"status": states.get(r, "DISABLED")}
                                      for r in RESOURCE_TYPES}}
        return {"accountId": ctx.account_id, "status": overall,
                "resourceStatus": {STATE_KEYS[r]: states.get(r, "DISABLED")
                                   for r in RESOURCE_TYPES}}

    def _set(self, ctx: RequestContext, params: dict[str, Any], status: str) -> dict:
        failed = [{"accountId": a, "errorCode": "ACCESS_DENIED",
                   "errorMessage": "Corral accounts manage only themselves"}
                  for a in params.get("accountIds") or () if a != ctx.account_id]
        now = _now()
        t = inspector_accounts.c
        for rtype in params.get("resourceTypes") or ():
            ctx.db.execute(inspector_accounts.delete().where(
                t.account_id == ctx.account_id, t.region == ctx.region, t.resource_type == rtype))
            ctx.db.execute(inspector_accounts.insert().values(
                account_id=ctx.account_id, region=ctx.region, resource_type=rtype,
                status=status, updated_at=now))
        if "ECR" in (params.get("resourceTypes") or ()):
            self._switch_ecr(ctx, status == "ENABLED", now)
        return {"accounts": [self._account_view(ctx, nested=False)], "failedAccounts": failed}

    def _switch_ecr(self, ctx: RequestContext, enabled: bool, now: datetime) -> None:
        config = scanning.get_config(ctx.db, ctx.account_id, ctx.region)
        if enabled and config.scan_type != "ENHANCED":
            config = scanning.ScanningConfiguration("ENHANCED", [])
            scanning.put_config(ctx.db, ctx.account_id, ctx.region, config, now)
            self._queue_recent(ctx, config, now)
        elif not enabled and config.scan_type == "ENHANCED":
            scanning.put_config(ctx.db, ctx.account_id, ctx.region,
                                scanning.ScanningConfiguration(), now)

    def _queue_recent(self, ctx: RequestContext, config, now: datetime) -> None:
        r, i = ecr_repositories.c, ecr_images.c
        rows = ctx.db.execute(select(ecr_repositories, ecr_images.c.id.label("image_id"))
                              .join(ecr_images, i.repository_id == r.id)
                              .where(r.account_id == ctx.account_id, r.region == ctx.region,
                                     i.pushed_at >= _cutoff(ctx, now)))
        for row in rows.all():
            repo = Repository(*[row._mapping[c.name] for c in ecr_repositories.columns])
            freq = scanning.frequency(config, repo.name, repo.scan_on_push)
            image = images.get(ctx.db, repo.id, ctx.db.execute(
                select(i.digest).where(i.id == row.image_id)).scalar_one())
            if freq in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN") and image is not None:
                scanning.queue(ctx.db, repo, image, freq, now)

    def enable(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        return self._set(ctx, params, "ENABLED")

    def disable(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        params = {**params, "resourceTypes": params.get("resourceTypes") or list(RESOURCE_TYPES)}
        return self._set(ctx, params, "DISABLED")

    def batch_get_account_status(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        failed = [{"accountId": a, "errorCode": "ACCESS_DENIED",
                   "errorMessage": "Corral accounts see only themselves"}
                  for a in params.get("accountIds") or () if a != ctx.account_id]
        return {"accounts": [self._account_view(ctx, nested=True)], "failedAccounts": failed}

    def get_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        c = inspector_configuration.c
        row = ctx.db.execute(select(inspector_configuration).where(
            c.account_id == ctx.account_id, c.region == ctx.region)).first()
        rescan = {"rescanDuration": row.rescan_duration if row else state.DEFAULT_RESCAN,
                  "status": "SUCCESS", "updatedAt": row.updated_at if row else _now()}
        if row and row.pull_date_rescan_duration:
            rescan["pullDateRescanDuration"] = row.pull_date_rescan_duration
        if row and row.pull_date_rescan_mode:
            rescan["pullDateRescanMode"] = row.pull_date_rescan_mode
        return {"ecrConfiguration": {"rescanDurationState": rescan}}

    def update_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        """The ECR rescan window: images pushed before it stop being re-scanned at the next
        controller pass (SCAN_ELIGIBILITY_EXPIRED); already expired images stay expired."""
        ecr = params.get("ecrConfiguration")
        if not ecr:
            return {}
        c = inspector_configuration.c
        ctx.db.execute(inspector_configuration.delete().where(
            c.account_id == ctx.account_id, c.region == ctx.region))
        ctx.db.execute(inspector_configuration.insert().values(
            account_id=ctx.account_id, region=ctx.region, rescan_duration=ecr["rescanDuration"],
            pull_date_rescan_duration=ecr.get("pullDateRescanDuration"),
            pull_date_rescan_mode=ecr.get("pullDateRescanMode"), updated_at=_now()))
        return {}

    # --- findings --------------------------------------------------------------------------

    def _findings(self, ctx: RequestContext) -> list[tuple[Any, views.ImageRef]]:
        """Every finding of the account's images scanned under enhanced scanning."""
        if scanning.get_config(ctx.db, ctx.account_id, ctx.region).scan_type != "ENHANCED":
            return []
        f, s, i, r = scan_findings.c, scan_images.c, ecr_images.c, ecr_repositories.c
        rows = ctx.db.execute(
            select(scan_findings, r.name.label("repo_name"), i.pushed_at, s.inventory)
            .join(scan_images, s.image_id == f.image_id)
            .join(ecr_images, and_(i.id == s.image_id, i.digest == s.digest))
            .join(ecr_repositories, r.id == i.repository_id)
            .where(f.account_id == ctx.account_id, f.region == ctx.region)
            .order_by(f.id)).all()
        tags = images.tags_of(ctx.db, sorted({row.image_id for row in rows}))
        digests = {row.image_id: ctx.db.execute(select(i.digest).where(i.id == row.image_id))
                   .scalar_one() for row in rows}
        return [(row, views.ImageRef(ctx.account_id, ctx.region, row.repo_name,
                                     digests[row.image_id], tags.get(row.image_id, []),
                                     row.pushed_at, (row.inventory or {}).get("os")))
                for row in rows]

    @staticmethod
    def _matches(row, ref: views.ImageRef, fc: dict[str, Any]) -> bool:
        d = row.data
        pkg = d["package"]
        checks = [
            _string_ok(fc.get("severity"), [row.severity]),
            _string_ok(fc.get("findingStatus"), [row.status]),
            _string_ok(fc.get("findingType"), ["PACKAGE_VULNERABILITY"]),
            _string_ok(fc.get("resourceType"), ["AWS_ECR_CONTAINER_IMAGE"]),
            _string_ok(fc.get("awsAccountId"), [row.account_id]),
            _string_ok(fc.get("ecrImageRepositoryName"), [ref.repository]),
            _string_ok(fc.get("ecrImageHash"), [ref.digest]),
            _string_ok(fc.get("ecrImageTags"), ref.tags or [""]),
            _string_ok(fc.get("ecrImageRegistry"), [ref.account_id]),
            _string_ok(fc.get("resourceId"), [ref.resource_id]),
            _string_ok(fc.get("vulnerabilityId"), [row.advisory_id]),
            _string_ok(fc.get("relatedVulnerabilities"), d.get("aliases") or [""]),
            _string_ok(fc.get("fixAvailable"), ["YES" if row.fix_available else "NO"]),
            _string_ok(fc.get("title"), [f"{row.advisory_id} - {pkg['name']}"]),
            _string_ok(fc.get("findingArn"), [views.finding_arn(row)]),
            _number_ok(fc.get("inspectorScore"), row.score),
            _date_ok(fc.get("firstObservedAt"), row.first_observed_at),
            _date_ok(fc.get("lastObservedAt"), row.last_observed_at),
            _date_ok(fc.get("updatedAt"), row.updated_at),
            _date_ok(fc.get("ecrImagePushedAt"), ref.pushed_at),
        ]
        for pf in fc.get("vulnerablePackages") or ():
            checks.append(_string_ok([pf["name"]] if pf.get("name") else None, [pkg["name"]])
                          and _string_ok([pf["version"]] if pf.get("version") else None,
                                         [pkg["version"]])
                          and _string_ok([pf["filePath"]] if pf.get("filePath") else None,
                                         [pkg["path"]]))
        return all(checks)

    def list_findings(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        fc = params.get("filterCriteria") or {}
        chosen = [(row, ref) for row, ref in self._findings(ctx) if self._matches(row, ref, fc)]
        sort = params.get("sortCriteria")
        if sort:
            keyfn = {
                "SEVERITY": lambda x: SEVERITY_RANK.get(x[0].severity, -1),
                "FIRST_OBSERVED_AT": lambda x: x[0].first_observed_at,
                "LAST_OBSERVED_AT": lambda x: x[0].last_observed_at,
                "INSPECTOR_SCORE": lambda x: x[0].score or 0.0,
                "VULNERABILITY_ID": lambda x: x[0].advisory_id,
                "FINDING_STATUS": lambda x: x[0].status,
                "ECR_IMAGE_REPOSITORY_NAME": lambda x: x[1].repository,
                "ECR_IMAGE_PUSHED_AT": lambda x: x[1].pushed_at,
                "AWS_ACCOUNT_ID": lambda x: x[0].account_id,
            }.get(sort["field"], lambda x: x[0].id)
            chosen.sort(key=keyfn, reverse=sort.get("sortOrder") == "DESC")
        page, token = _page(chosen, params, "ListFindings")
        out: dict[str, Any] = {"findings": [views.inspector_finding(r, ref) for r, ref in page]}
        if token:
            out["nextToken"] = token
        return out

    def list_finding_aggregations(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        kind = params["aggregationType"]
        if kind not in AGGREGATIONS:
            raise ValidationException(f"aggregationType {kind} is not supported by Corral; it "
                                      "supports " + ", ".join(AGGREGATIONS))
        active = [(r, ref) for r, ref in self._findings(ctx) if r.status == "ACTIVE"]
        groups: dict[tuple, list] = {}
        for row, ref in active:
            key = {
                "PACKAGE": (row.data["package"]["name"],),
                "REPOSITORY": (ref.repository,),
                "AWS_ECR_CONTAINER": (ref.digest, ref.repository),
                "TITLE": (row.advisory_id,),
                "FINDING_TYPE": ("PACKAGE_VULNERABILITY",),
                "ACCOUNT": (row.account_id,),
                "IMAGE_LAYER": (row.data["package"].get("layer", ""), ref.repository,
                                ref.digest),
            }[kind]
            groups.setdefault(key, []).append((row, ref))
        responses = [self._aggregation(kind, key, items, ctx) for key, items in sorted(groups.items())]
        page, token = _page(responses, params, "ListFindingAggregations")
        out: dict[str, Any] = {"aggregationType": kind, "responses": page}
        if token:
            out["nextToken"] = token
        return out

    @staticmethod
    def _aggregation(kind: str, key: tuple, items: list, ctx: RequestContext) -> dict:
        sev = [r.severity for r, _ in items]
        counts = {"all": len(sev), "medium": sev.count("MEDIUM"), "high": sev.count("HIGH"),
                  "critical": sev.count("CRITICAL")}
        acct = ctx.account_id
        if kind == "PACKAGE":
            return {"packageAggregation": {"packageName": key[0], "accountId": acct,
                                           "severityCounts": counts}}
        if kind == "REPOSITORY":
            return {"repositoryAggregation": {"repository": key[0], "accountId": acct,
                                              "severityCounts": counts,
                                              "affectedImages": len({ref.digest for _, ref in items})}}
        if kind == "AWS_ECR_CONTAINER":
            ref = items[0][1]
            return {"awsEcrContainerAggregation": {"resourceId": ref.resource_id,
                                                   "imageSha": ref.digest,
                                                   "repository": ref.repository,
                                                   "imageTags": ref.tags, "accountId": acct,
                                                   "severityCounts": counts}}
        if kind == "TITLE":
            return {"titleAggregation": {"title": key[0], "vulnerabilityId": key[0],
                                         "accountId": acct, "severityCounts": counts}}
        if kind == "IMAGE_LAYER":
            return {"imageLayerAggregation": {"layerHash": key[0], "repository": key[1],
                                              "resourceId": items[0][1].resource_id,
                                              "accountId": acct, "severityCounts": counts}}
        field = "findingTypeAggregation" if kind == "FINDING_TYPE" else "accountAggregation"
        return {field: {"accountId": acct, "severityCounts": counts}}

    # --- coverage --------------------------------------------------------------------------

    def list_coverage(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        config = scanning.get_config(ctx.db, ctx.account_id, ctx.region)
        s, i, r = scan_images.c, ecr_images.c, ecr_repositories.c
        rows = ctx.db.execute(
            select(i.id, i.digest, i.pushed_at, i.last_pulled_at, r.name, r.scan_on_push,
                   s.status, s.completed_at, s.frequency)
            .join(ecr_repositories, r.id == i.repository_id)
            .outerjoin(scan_images, and_(s.image_id == i.id, s.digest == i.digest))
            .where(r.account_id == ctx.account_id, r.region == ctx.region).order_by(i.id)).all()
        tags = images.tags_of(ctx.db, [row.id for row in rows])
        now = _now()
        window = _window(ctx)
        fc = params.get("filterCriteria") or {}
        out = []
        for row in rows:
            freq = scanning.frequency(config, row.name, row.scan_on_push)
            code, reason = _coverage_status(config.scan_type, freq, row, now, window)
            item = {
                "resourceType": "AWS_ECR_CONTAINER_IMAGE", "accountId": ctx.account_id,
                "resourceId": f"arn:aws:ecr:{ctx.region}:{ctx.account_id}:repository/"
                              f"{row.name}/{row.digest}",
                "scanType": "PACKAGE", "scanStatus": {"statusCode": code, "reason": reason},
                "resourceMetadata": {
                    "ecrRepository": {"name": row.name, "scanFrequency": freq or "MANUAL"},
                    "ecrImage": {"tags": tags[row.id], "imagePulledAt": row.last_pulled_at}},
            }
            if row.completed_at:
                item["lastScannedAt"] = row.completed_at
            if (_string_ok(fc.get("ecrRepositoryName"), [row.name])
                    and _string_ok(fc.get("scanStatusCode"), [code])
                    and _string_ok(fc.get("scanStatusReason"), [reason])
                    and _string_ok(fc.get("resourceType"), ["AWS_ECR_CONTAINER_IMAGE"])
                    and _string_ok(fc.get("ecrImageTags"), tags[row.id] or [""])
                    and _string_ok(fc.get("resourceId"), [item["resourceId"]])):
                if item["resourceMetadata"]["ecrImage"]["imagePulledAt"] is None:
                    del item["resourceMetadata"]["ecrImage"]["imagePulledAt"]
                out.append(item)
        page, token = _page(out, params, "ListCoverage", default=100)
        result: dict[str, Any] = {"coveredResources": page}
        if token:
            result["nextToken"] = token
        return result

    # --- SBOM export -----------------------------------------------------------------------

    def _sbom_dir(self) -> Path:
        return self.settings.data_dir / "inspector" / "sbom"

    @writes
    def create_sbom_export(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        fmt = params["reportFormat"]
        dest = params["s3Destination"]
        fc = params.get("resourceFilterCriteria") or {}
        report_id = str(uuid.uuid4())
        root = self._sbom_dir() / report_id
        target = root / dest["bucketName"] / (dest.get("keyPrefix") or "").strip("/")
        s, i, r = scan_images.c, ecr_images.c, ecr_repositories.c
        rows = ctx.db.execute(
            select(i.id, i.digest, r.name, s.inventory)
            .join(ecr_repositories, r.id == i.repository_id)
            .join(scan_images, and_(s.image_id == i.id, s.digest == i.digest))
            .where(r.account_id == ctx.account_id, r.region == ctx.region,
                   s.inventory.is_not(None))).all()
        tags = images.tags_of(ctx.db, [row.id for row in rows])
        now = _now()
        written = 0
        for row in rows:
            resource_id = f"arn:aws:ecr:{ctx.region}:{ctx.account_id}:repository/{row.name}/{row.digest}"
            if not (_string_ok(fc.get("ecrRepositoryName"), [row.name])
                    and _string_ok(fc.get("ecrImageTags"), tags[row.id] or [""])
                    and _string_ok(fc.get("resourceId"), [resource_id])
                    and _string_ok(fc.get("accountId"), [ctx.account_id])):
                continue
            inv = ImageInventory.from_json(row.inventory)
            make = sbom.cyclonedx if fmt == "CYCLONEDX_1_4" else sbom.spdx
            doc = make(inv, row.name, row.digest, now)
            target.mkdir(parents=True, exist_ok=True)
            name = f"{row.name.replace('/', '_')}_{row.digest.split(':')[-1][:12]}.json"
            _atomic_write(target / name, json.dumps(doc, indent=1, default=str).encode())
            written += 1
        meta = {"reportId": report_id, "format": fmt, "status": "SUCCEEDED",
                "s3Destination": dest, "filterCriteria": fc, "accountId": ctx.account_id,
                "region": ctx.region, "resources": written, "path": str(target)}
        root.mkdir(parents=True, exist_ok=True)
        _atomic_write(root / "report.json", json.dumps(meta, default=str).encode())
        return {"reportId": report_id}

    def get_sbom_export(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        path = self._sbom_dir() / str(params["reportId"]) / "report.json"
        if "/" in str(params["reportId"]) or not path.is_file():
            raise ResourceNotFoundException(f"SBOM export {params['reportId']} not found")
        meta = json.loads(path.read_text())
        if meta.get("accountId") != ctx.account_id:
            raise AccessDeniedException("The SBOM export belongs to another account")
        return {k: meta[k] for k in ("reportId", "format", "status", "s3Destination",
                                     "filterCriteria")}


def _cutoff(ctx: RequestContext, now: datetime) -> datetime:
    """Images pushed before this are outside the rescan window (LIFETIME: none are)."""
    days = state.rescan_days(ctx.db, ctx.account_id, ctx.region)
    return datetime(1970, 1, 1, tzinfo=UTC) if days is None else now - timedelta(days=days)


def _window(ctx: RequestContext) -> timedelta:
    days = state.rescan_days(ctx.db, ctx.account_id, ctx.region)
    return timedelta.max if days is None else timedelta(days=days)


def _coverage_status(scan_type: str, freq: str | None, row, now: datetime,
                     window: timedelta) -> tuple[str, str]:
    if scan_type != "ENHANCED" or freq is None:
        return "INACTIVE", "SCAN_FREQUENCY_MANUAL" if freq == "MANUAL" else "NO_RESOURCES_FOUND"
    if row.status is None or row.status in ("PENDING",):
        return "ACTIVE", "PENDING_INITIAL_SCAN"
    if row.status == "IN_PROGRESS":
        return "ACTIVE", "SCAN_IN_PROGRESS"
    if row.status == "UNSUPPORTED_IMAGE":
        return "INACTIVE", "UNSUPPORTED_MEDIA_TYPE"
    if row.status == "FAILED":
        return "INACTIVE", "INTERNAL_ERROR"
    if row.status == "SCAN_ELIGIBILITY_EXPIRED" or now - row.pushed_at > window:
        return "INACTIVE", "SCAN_ELIGIBILITY_EXPIRED"
    return "ACTIVE", "SUCCESSFUL" if freq == "CONTINUOUS_SCAN" else "SCAN_FREQUENCY_SCAN_ON_PUSH"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
