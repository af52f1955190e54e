"""ECR's scanning operations: StartImageScan, DescribeImageScanFindings, the registry scanning
configuration and BatchGetRepositoryScanningConfiguration.

Scans never run here: StartImageScan (like a push under scan on push) queues one in the store
and the scan controller (corral.scan.controller) runs it off the request path; these
operations read its status and findings. Basic scanning answers ``findings``; enhanced
scanning answers ``enhancedFindings`` (Inspector's shape) and status ACTIVE.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.errors import ValidationException
from corral.aws.provider import acts_on
from corral.ecr import images, repositories, scanning
from corral.ecr.errors import EcrError, InvalidParameterException
from corral.ecr.repositories import Repository
from corral.ecr.scope import repository_arn
from corral.scan import state, views

BASIC_SCAN_INTERVAL = timedelta(hours=24)  # one manual scan per image per day (ECR quotas)


class ScanNotFoundException(EcrError):
    code = "ScanNotFoundException"


class LimitExceededException(EcrError):
    code = "LimitExceededException"


class UnsupportedImageTypeException(EcrError):
    code = "UnsupportedImageTypeException"


class ScanOperations:
    """Mixed into the ECR provider (which supplies ``_repo`` and ``_lookup_or_raise``)."""

    # --- registry configuration --------------------------------------------------------------

    # no resource type in IAM's service authorization reference: Resource "*"
    def put_registry_scanning_configuration(self, ctx: RequestContext,
                                            params: dict[str, Any]) -> dict:
        current = scanning.get_config(ctx.db, ctx.account_id, ctx.region)
        scan_type = params.get("scanType") or current.scan_type
        rules = params.get("rules")
        rules = current.rules if rules is None else rules
        for rule in rules:
            freq = rule.get("scanFrequency")
            if scan_type == "BASIC" and freq != "SCAN_ON_PUSH":
                raise ValidationException(
                    f"Invalid parameter: scanFrequency {freq} is not supported for scanType "
                    "BASIC; BASIC supports SCAN_ON_PUSH")
            if scan_type == "ENHANCED" and freq not in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN"):
                raise ValidationException(
                    f"Invalid parameter: scanFrequency {freq} is not supported for scanType "
                    "ENHANCED; ENHANCED supports SCAN_ON_PUSH and CONTINUOUS_SCAN")
        config = scanning.ScanningConfiguration(scan_type, rules)
        scanning.put_config(ctx.db, ctx.account_id, ctx.region, config, datetime.now(UTC))
        return {"registryScanningConfiguration": config.view()}

    # no resource type in IAM's service authorization reference: Resource "*"
    def get_registry_scanning_configuration(self, ctx: RequestContext,
                                            params: dict[str, Any]) -> dict:
        config = scanning.get_config(ctx.db, ctx.account_id, ctx.region)
        return {"registryId": ctx.account_id, "scanningConfiguration": config.view()}

    def batch_get_repository_scanning_configuration(self, ctx: RequestContext,
                                                    params: dict[str, Any]) -> dict:
        config = scanning.get_config(ctx.db, ctx.account_id, ctx.region)
        found, failures = [], []
        for name in params["repositoryNames"]:
            repo = repositories.get(ctx.db, ctx.account_id, ctx.region, name)
            if repo is None:
                failures.append({"repositoryName": name, "failureCode": "REPOSITORY_NOT_FOUND",
                                 "failureReason": "REPOSITORY_NOT_FOUND"})
                continue
            freq = scanning.frequency(config, name, repo.scan_on_push)
            applied = [{"filter": f["filter"], "filterType": f.get("filterType", "WILDCARD")}
                       for r in config.rules if r.get("scanFrequency") == freq
                       for f in r.get("repositoryFilters") or ()
                       if scanning.filter_matches(f["filter"], name)]
            found.append({"repositoryArn": repo.arn, "repositoryName": name,
                          "scanOnPush": freq in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN"),
                          "scanFrequency": freq or "MANUAL", "appliedScanFilters": applied})
        return {"scanningConfigurations": found, "failures": failures}

    # --- scans -----------------------------------------------------------------------------

    @acts_on(repository_arn)
    def start_image_scan(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        image = self._lookup_or_raise(ctx, repo, params["imageId"])
        config = scanning.get_config(ctx.db, repo.account_id, repo.region)
        if config.scan_type == "ENHANCED":
            raise ValidationException(
                "Manual scans are not supported when enhanced scanning is configured for the "
                "registry; images are scanned on push or continuously")
        if image.media_type not in ("application/vnd.oci.image.manifest.v1+json",
                                    "application/vnd.docker.distribution.manifest.v2+json"):
            raise UnsupportedImageTypeException(
                f"The image with media type {image.media_type} is not supported for scanning")
        now = datetime.now(UTC)
        previous = state.get(ctx.db, image.id, image.digest)
        if previous is not None and previous.status in ("PENDING", "IN_PROGRESS"):
            raise LimitExceededException("A scan of this image is already in progress.")
        if previous is not None and previous.completed_at is not None and \
                now - previous.completed_at < BASIC_SCAN_INTERVAL and \
                previous.status == "COMPLETE" and previous.frequency == "MANUAL":
            raise LimitExceededException(
                "The scan quota per image has been exceeded. Wait and try again.")
        scanning.queue(ctx.db, repo, image, "MANUAL", now)
        return {"registryId": repo.account_id, "repositoryName": repo.name,
                "imageId": _image_id(image.digest, params["imageId"].get("imageTag")),
                "imageScanStatus": {"status": "IN_PROGRESS",
                                    "description": "The scan is in progress."}}

    @acts_on(repository_arn)
    def describe_image_scan_findings(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        ident = params["imageId"]
        image = self._lookup_or_raise(ctx, repo, ident)
        scan = state.status(ctx.db, image.id, image.digest)  # not the inventory: megabytes
        if scan is None:
            raise ScanNotFoundException(
                f"Image scan does not exist for the image with '{_id_text(ident)}' in the "
                f"repository with name '{repo.name}' in the registry with id "
                f"'{repo.account_id}'")
        out: dict[str, Any] = {
            "registryId": repo.account_id, "repositoryName": repo.name,
            "imageId": _image_id(image.digest, ident.get("imageTag")),
            "imageScanStatus": {"status": _visible_status(scan), "description": scan.description},
        }
        try:
            cursor = pagination.decode(params.get("nextToken"), after=int) or {"after": 0}
        except ValueError:
            raise InvalidParameterException(
                "Invalid parameter at 'nextToken' failed to satisfy constraint: 'must be a "
                "token returned by a previous DescribeImageScanFindings call'") from None
        if scan.status not in ("COMPLETE", "ACTIVE"):
            return out
        # one page in SQL (keyset on id), counts by GROUP BY: bounded whatever the image holds
        limit = max(1, min(params.get("maxResults") or 100, 1000))
        rows = state.findings(ctx.db, image.id, after_id=cursor["after"], limit=limit + 1)
        counts = {views.basic_severity(k): v
                  for k, v in state.severity_counts(ctx.db, image.id).items()}
        body: dict[str, Any] = {"imageScanCompletedAt": scan.completed_at,
                                "findingSeverityCounts": counts}
        if scan.vuln_source_updated_at:
            body["vulnerabilitySourceUpdatedAt"] = scan.vuln_source_updated_at
        config = scanning.get_config(ctx.db, repo.account_id, repo.region)
        if config.scan_type == "ENHANCED":
            ref = _image_ref(ctx, repo, image, rows[0].platform if rows else "")
            body["enhancedFindings"] = [views.inspector_finding(r, ref, ecr=True)
                                        for r in rows[:limit]]
        else:
            body["findings"] = [views.basic_finding(r) for r in rows[:limit]]
        out["imageScanFindings"] = body
        if len(rows) > limit:
            out["nextToken"] = pagination.encode({"after": rows[limit - 1].id})
        return out


def _visible_status(scan: state.Scan) -> str:
    return scan.status


def _image_ref(ctx: RequestContext, repo: Repository, image, platform: str) -> views.ImageRef:
    tags = images.tags_of(ctx.db, [image.id])[image.id]
    return views.ImageRef(repo.account_id, repo.region, repo.name, image.digest, tags,
                          image.pushed_at, platform)


def _image_id(digest: str, tag: str | None) -> dict[str, str]:
    return {"imageDigest": digest} | ({"imageTag": tag} if tag else {})


def _id_text(ident: dict[str, str]) -> str:
    parts = [f"{k}={ident[k]}" for k in ("imageDigest", "imageTag") if ident.get(k)]
    return ", ".join(parts)



