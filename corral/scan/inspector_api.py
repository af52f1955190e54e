"""Amazon Inspector (inspector2, rest-json) for container images: account activation,
findings, aggregations, coverage and SBOM export over the scans Corral runs.

Enabling ECR scanning switches the registry to ENHANCED scanning (continuous, every
repository, unless rules say otherwise) and queues the images already pushed within the
rescan window; disabling it returns the registry to BASIC. Findings are those of images
scanned under enhanced scanning. SBOM exports are written under the data directory
(``inspector/sbom/<reportId>/<bucket>/<prefix>``) — Corral has no S3 — and reported there.

No request reads more than a page: ListFindings and ListFindingAggregations filter, sort,
group and page in SQL (corral.scan.finding_queries; keyset cursors, maxResults capped at the
model's 100); ListCoverage and CreateSbomExport walk images CHUNK rows at a time, and an
export holds one image's inventory at a time.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
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
from corral.scan import finding_queries as queries
from corral.scan import sbom, state, views
from corral.scan.inventory import ImageInventory
from corral.store.schema import (
    ecr_images,
    ecr_repositories,
    inspector_accounts,
    inspector_configuration,
    scan_images,
)

CHUNK = 500  # image rows read at a time by the operations that walk every image
ResourceNotFoundException = error_class("ResourceNotFoundException", 404)
RESOURCE_TYPES = ("EC2", "ECR", "LAMBDA", "LAMBDA_CODE", "CODE_REPOSITORY")
STATE_KEYS = {"EC2": "ec2", "ECR": "ecr", "LAMBDA": "lambda", "LAMBDA_CODE": "lambdaCode",
              "CODE_REPOSITORY": "codeRepository"}


def _now() -> datetime:
    return datetime.now(UTC)


def _limit(params: dict[str, Any], default: int, most: int) -> int:
    """maxResults as AWS bounds it (the model's range; enforced again here because a page
    is the unit of memory a request may use)."""
    return max(1, min(params.get("maxResults") or default, most))


def _bad_token(operation: str) -> ValidationException:
    return ValidationException(f"nextToken is not a token a previous {operation} returned")


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
        """Queue the images pushed within the rescan window, repository by repository and
        CHUNK image rows at a time (the registry's images are never all in memory)."""
        r, i = ecr_repositories.c, ecr_images.c
        cutoff = _cutoff(ctx, now)
        repos = ctx.db.execute(select(ecr_repositories).where(
            r.account_id == ctx.account_id, r.region == ctx.region).order_by(r.id)).all()
        for row in repos:
            repo = Repository(**row._mapping)
            freq = scanning.frequency(config, repo.name, repo.scan_on_push)
            if freq not in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN"):
                continue
            after = 0
            while True:
                chunk = ctx.db.execute(select(ecr_images).where(
                    i.repository_id == repo.id, i.pushed_at >= cutoff, i.id > after)
                    .order_by(i.id).limit(CHUNK)).all()
                for image in chunk:
                    scanning.queue(ctx.db, repo, images.Image(**image._mapping), freq, now)
                if len(chunk) < CHUNK:
                    break
                after = chunk[-1].id

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

    @staticmethod
    def _enhanced(ctx: RequestContext) -> bool:
        """Findings are those of images scanned under enhanced scanning."""
        return scanning.get_config(ctx.db, ctx.account_id, ctx.region).scan_type == "ENHANCED"

    def list_findings(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        try:
            if not self._enhanced(ctx):
                pagination.decode(params.get("nextToken"), q=str, after=list)
                return {"findings": []}
            page = queries.findings_page(
                ctx.db, ctx.account_id, ctx.region, params.get("filterCriteria") or {},
                params.get("sortCriteria"), _limit(params, 50, 100), params.get("nextToken"))
        except ValueError:
            raise _bad_token("ListFindings") from None
        tags = images.tags_of(ctx.db, sorted({row.image_id for row in page.rows}))
        out: dict[str, Any] = {"findings": [views.inspector_finding(row, views.ImageRef(
            ctx.account_id, ctx.region, row.repository_name, row.image_digest,
            tags[row.image_id], row.image_pushed_at, row.platform)) for row in page.rows]}
        if page.token:
            out["nextToken"] = page.token
        return out

    def list_finding_aggregations(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        kind = params["aggregationType"]
        if kind not in queries.AGGREGATIONS:
            raise ValidationException(f"aggregationType {kind} is not supported by Corral; it "
                                      "supports " + ", ".join(queries.AGGREGATIONS))
        member = queries.AGGREGATIONS[kind].member
        request = (params.get("aggregationRequest") or {}).get(member) or {}
        try:
            if not self._enhanced(ctx):
                pagination.decode(params.get("nextToken"), q=str, after=list)
                return {"aggregationType": kind, "responses": []}
            page = queries.aggregation_page(ctx.db, ctx.account_id, ctx.region, kind, request,
                                            _limit(params, 50, 100), params.get("nextToken"))
        except ValueError:
            raise _bad_token("ListFindingAggregations") from None
        tags = images.tags_of(ctx.db, sorted({row.image_id for row in page.rows})) \
            if kind == "AWS_ECR_CONTAINER" else {}
        out: dict[str, Any] = {"aggregationType": kind, "responses": [
            self._aggregation(kind, row, tags.get(row.image_id, []), ctx) for row in page.rows]}
        if page.token:
            out["nextToken"] = page.token
        return out

    @staticmethod
    def _aggregation(kind: str, row, tags: list[str], ctx: RequestContext) -> dict:
        counts = {"all": row.all, "medium": row.medium, "high": row.high,
                  "critical": row.critical}
        acct = ctx.account_id
        if kind == "PACKAGE":
            return {"packageAggregation": {"packageName": row.k0, "accountId": acct,
                                           "severityCounts": counts}}
        if kind == "REPOSITORY":
            return {"repositoryAggregation": {"repository": row.k0, "accountId": acct,
                                              "severityCounts": counts,
                                              "affectedImages": row.images}}
        if kind == "AWS_ECR_CONTAINER":
            ref = views.ImageRef(acct, ctx.region, row.k1, row.k0, tags, None)
            return {"awsEcrContainerAggregation": {"resourceId": ref.resource_id,
                                                   "imageSha": row.k0, "repository": row.k1,
                                                   "imageTags": tags, "accountId": acct,
                                                   "severityCounts": counts}}
        if kind == "TITLE":
            return {"titleAggregation": {"title": row.k0, "vulnerabilityId": row.k0,
                                         "accountId": acct, "severityCounts": counts}}
        if kind == "IMAGE_LAYER":
            ref = views.ImageRef(acct, ctx.region, row.k1, row.k2, [], None)
            return {"imageLayerAggregation": {"layerHash": row.k0, "repository": row.k1,
                                              "resourceId": ref.resource_id,
                                              "accountId": acct, "severityCounts": counts}}
        field = "findingTypeAggregation" if kind == "FINDING_TYPE" else "accountAggregation"
        return {field: {"accountId": acct, "severityCounts": counts}}

    # --- coverage --------------------------------------------------------------------------

    @staticmethod
    def _by_image(ctx: RequestContext, query, after: int = 0) -> Iterator[tuple[Any, list[str]]]:
        """Rows of ``query`` (which selects ``ecr_images.id`` as ``id``) in image id order,
        with each image's tags, read CHUNK rows at a time: memory stays one chunk."""
        while True:
            rows = ctx.db.execute(query.where(ecr_images.c.id > after)
                                  .order_by(ecr_images.c.id).limit(CHUNK)).all()
            tags = images.tags_of(ctx.db, [row.id for row in rows])
            for row in rows:
                yield row, tags[row.id]
            if len(rows) < CHUNK:
                return
            after = rows[-1].id

    def list_coverage(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        config = scanning.get_config(ctx.db, ctx.account_id, ctx.region)
        fc = params.get("filterCriteria") or {}
        limit = _limit(params, 100, 200)
        try:
            cursor = pagination.decode(params.get("nextToken"), after=int)
        except ValueError:
            raise _bad_token("ListCoverage") from None
        s, i, r = scan_images.c, ecr_images.c, ecr_repositories.c
        query = (select(i.id, i.digest, i.pushed_at, i.last_pulled_at, r.name, r.scan_on_push,
                        s.status, s.completed_at, s.frequency)
                 .join(ecr_repositories, r.id == i.repository_id)
                 .outerjoin(scan_images, and_(s.image_id == i.id, s.digest == i.digest))
                 .where(r.account_id == ctx.account_id, r.region == ctx.region))
        if fc.get("ecrRepositoryName"):
            query = query.where(queries.string(r.name, fc["ecrRepositoryName"]))
        now, window = _now(), _window(ctx)
        chosen: list[tuple[int, dict]] = []
        for row, tags in self._by_image(ctx, query, cursor["after"] if cursor else 0):
            item = _covered(ctx, config, row, tags, now, window)
            if all(queries.string_ok(fc.get(k), v) for k, v in (
                    ("scanStatusCode", [item["scanStatus"]["statusCode"]]),
                    ("scanStatusReason", [item["scanStatus"]["reason"]]),
                    ("resourceType", ["AWS_ECR_CONTAINER_IMAGE"]),
                    ("ecrImageTags", tags or [""]), ("resourceId", [item["resourceId"]]))):
                chosen.append((row.id, item))
                if len(chosen) > limit:
                    break
        result: dict[str, Any] = {"coveredResources": [item for _, item in chosen[:limit]]}
        if len(chosen) > limit:
            result["nextToken"] = pagination.encode({"after": chosen[limit - 1][0]})
        return result

    # --- SBOM export -----------------------------------------------------------------------

    def _sbom_dir(self) -> Path:
        return self.settings.data_dir / "inspector" / "sbom"

    @writes
    def create_sbom_export(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        """One document per matching image, written as it is made: one inventory in memory
        at a time, whatever the number of images."""
        fmt = params["reportFormat"]
        dest = params["s3Destination"]
        fc = params.get("resourceFilterCriteria") or {}
        report_id = str(uuid.uuid4())
        root = self._sbom_dir() / report_id
        target = root / dest["bucketName"] / (dest.get("keyPrefix") or "").strip("/")
        s, i, r = scan_images.c, ecr_images.c, ecr_repositories.c
        query = (select(i.id, i.digest, r.name)
                 .join(ecr_repositories, r.id == i.repository_id)
                 .join(scan_images, and_(s.image_id == i.id, s.digest == i.digest))
                 .where(r.account_id == ctx.account_id, r.region == ctx.region,
                        s.inventory.is_not(None)))
        if fc.get("ecrRepositoryName"):
            query = query.where(queries.string(r.name, fc["ecrRepositoryName"]))
        make = sbom.cyclonedx if fmt == "CYCLONEDX_1_4" else sbom.spdx
        now = _now()
        written = 0
        for row, tags in self._by_image(ctx, query):
            resource_id = views.ImageRef(ctx.account_id, ctx.region, row.name, row.digest, tags,
                                         None).resource_id
            if not (queries.string_ok(fc.get("ecrImageTags"), tags or [""])
                    and queries.string_ok(fc.get("resourceId"), [resource_id])
                    and queries.string_ok(fc.get("accountId"), [ctx.account_id])):
                continue
            inventory = ctx.db.execute(select(s.inventory).where(
                s.image_id == row.id, s.digest == row.digest)).scalar_one()
            doc = make(ImageInventory.from_json(inventory), row.name, row.digest, now)
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


def _covered(ctx: RequestContext, config, row, tags: list[str], now: datetime,
             window: timedelta) -> dict[str, Any]:
    """One image's CoveredResource."""
    freq = scanning.frequency(config, row.name, row.scan_on_push)
    code, reason = _coverage_status(config.scan_type, freq, row, now, window)
    image: dict[str, Any] = {"tags": tags}
    if row.last_pulled_at is not None:
        image["imagePulledAt"] = row.last_pulled_at
    item = {
        "resourceType": "AWS_ECR_CONTAINER_IMAGE", "accountId": ctx.account_id,
        "resourceId": views.ImageRef(ctx.account_id, ctx.region, row.name, row.digest, tags,
                                     None).resource_id,
        "scanType": "PACKAGE", "scanStatus": {"statusCode": code, "reason": reason},
        "resourceMetadata": {"ecrRepository": {"name": row.name,
                                               "scanFrequency": freq or "MANUAL"},
                             "ecrImage": image},
    }
    if row.completed_at:
        item["lastScannedAt"] = row.completed_at
    return item


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
