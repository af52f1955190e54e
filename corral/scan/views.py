"""Findings as the APIs show them: ECR basic ``ImageScanFinding``, ECR ``EnhancedImageScanFinding``
and Inspector2 ``Finding`` (botocore shapes; shared/reference scanning.md §10-11). One stored
finding, three renderings: field names differ (``score``/``scoreDetails.cvss`` in ECR,
``inspectorScore``/``inspectorScoreDetails.adjustedCvss`` in Inspector2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from corral.aws import arns


@dataclass(frozen=True)
class ImageRef:
    account_id: str
    region: str
    repository: str
    digest: str
    tags: list[str]
    pushed_at: datetime | None
    platform: str = ""  # Inspector's platform, e.g. DEBIAN_12 (scan_findings.platform)

    @property
    def resource_id(self) -> str:
        return f"{arns.ecr_repository(self.region, self.account_id, self.repository)}/{self.digest}"


def basic_severity(label: str) -> str:
    return "UNDEFINED" if label == "UNTRIAGED" else label


def basic_finding(row) -> dict[str, Any]:
    d = row.data
    pkg = d["package"]
    attrs = [{"key": "package_version", "value": pkg["version"]},
             {"key": "package_name", "value": pkg["name"]}]
    for s in d.get("scores", []):  # CVSS2_*, CVSS3_*, CVSS4_* (v4-only advisories too)
        major = s["version"][0]
        if major in ("2", "3", "4"):
            attrs += [{"key": f"CVSS{major}_VECTOR", "value": s["vector"]},
                      {"key": f"CVSS{major}_SCORE", "value": str(s["score"])}]
    if d.get("fixed"):
        attrs.append({"key": "fixed_in_version", "value": d["fixed"]})
    out = {"name": row.advisory_id, "uri": d["uri"], "severity": basic_severity(row.severity),
           "attributes": attrs}
    description = d.get("summary") or d.get("details")
    if description:
        out["description"] = description
    return out


def _cvss(d: dict) -> list[dict[str, Any]]:
    return [{"baseScore": s["score"], "scoringVector": s["vector"], "version": s["version"],
             "source": "OSV"} for s in d.get("scores", [])]


@dataclass(frozen=True)
class ShownPackage:
    """A package's version fields as Inspector's ``vulnerablePackages`` shows them; the same
    values are stored in scan_findings (package_version, _release, _epoch, _arch) so the
    vulnerablePackages filters compare what the user sees."""

    version: str
    release: str
    epoch: int | None
    arch: str


def shown_package(pkg: dict) -> ShownPackage:
    version, release = pkg["version"], pkg.get("release", "")
    if pkg["type"] == "deb" and "-" in version:  # Inspector splits Debian versions at the revision
        version, release = version.split(":", 1)[-1].rsplit("-", 1)
    epoch = pkg.get("epoch")
    if not epoch and pkg["type"] == "deb":  # Debian's epoch is the version's "N:" prefix
        head = pkg["version"].split(":", 1)[0] if ":" in pkg["version"] else "0"
        epoch = int(head) if head.isdigit() else 0
    return ShownPackage(version, release, epoch, (pkg.get("arch") or "").upper())


def _vulnerable_package(d: dict) -> dict[str, Any]:
    pkg = d["package"]
    shown = shown_package(pkg)
    out = {"name": pkg["name"], "version": shown.version, "packageManager":
           {"deb": "OS", "apk": "OS", "rpm": "OS", "python": "PYTHONPKG", "npm": "NODEPKG",
            "go-module": "GOBINARY", "java-archive": "JAR"}.get(pkg["type"], "OS"),
           "filePath": pkg["path"], "fixedInVersion": d.get("fixed") or "NotAvailable"}
    if shown.release:
        out["release"] = shown.release
    if shown.epoch is not None:
        out["epoch"] = shown.epoch
    if shown.arch:
        out["arch"] = shown.arch
    if pkg.get("layer"):
        out["sourceLayerHash"] = pkg["layer"]
    return out


def _resource(ref: ImageRef) -> dict[str, Any]:
    details = {"repositoryName": ref.repository, "imageHash": ref.digest,
               "registry": ref.account_id, "pushedAt": ref.pushed_at}
    if ref.tags:
        details["imageTags"] = ref.tags
    if ref.platform:
        details["platform"] = ref.platform
    return {"type": "AWS_ECR_CONTAINER_IMAGE", "id": ref.resource_id, "partition": "aws",
            "region": ref.region, "details": {"awsEcrContainerImage": details}}


def finding_arn(row) -> str:
    return arns.build("inspector2", row.region, row.account_id, f"finding/{row.id:032x}")


def inspector_finding(row, ref: ImageRef, *, ecr: bool = False) -> dict[str, Any]:
    d = row.data
    pkg = d["package"]
    best = next((s for s in d.get("scores", []) if s["version"].startswith("3")), None) or \
        next(iter(d.get("scores", [])), None)
    title = f"{row.advisory_id} - {pkg['name']}"
    description = d.get("details") or d.get("summary") or title
    fixed = d.get("fixed")
    details = {"vulnerabilityId": row.advisory_id, "source": "OSV", "sourceUrl": d["uri"],
               "vulnerablePackages": [_vulnerable_package(d)], "cvss": _cvss(d),
               "referenceUrls": d.get("references", []),
               "relatedVulnerabilities": d.get("aliases", [])}
    if d.get("rating"):
        details["vendorSeverity"] = d["rating"]
    out: dict[str, Any] = {
        "findingArn": finding_arn(row), "awsAccountId": row.account_id,
        "type": "PACKAGE_VULNERABILITY", "title": title, "description": description,
        "severity": row.severity, "status": row.status,
        "firstObservedAt": row.first_observed_at, "lastObservedAt": row.last_observed_at,
        "updatedAt": row.updated_at, "resources": [_resource(ref)],
        "packageVulnerabilityDetails": details,
        "remediation": {"recommendation": {"text": f"Upgrade {pkg['name']} to {fixed}" if fixed
                                           else "None Provided"}},
        "fixAvailable": "YES" if fixed else "NO", "exploitAvailable": "NO",
    }
    if best:
        score = {"scoreSource": "OSV", "version": best["version"], "score": best["score"],
                 "scoringVector": best["vector"], "adjustments": []}
        if ecr:
            out["score"], out["scoreDetails"] = best["score"], {"cvss": score}
        else:
            out["inspectorScore"] = best["score"]
            out["inspectorScoreDetails"] = {"adjustedCvss": score}
    return out
