"""Inspector2 over Corral's scans, with boto3 against a real server: activation switches the
registry to enhanced scanning; findings filter, sort and paginate; aggregations, coverage and
SBOM exports (CycloneDX 1.4, SPDX 2.3) reflect the image's real inventory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scan import layers as build
from tests.scan.helpers import admin, push_files, wait_scan
from tests.scan.vulndata import vulndata


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    from tests.server import CorralServer

    server = CorralServer(tmp_path_factory.mktemp("inspector") / "data").start()
    admin(server, "vulndb/import", {"path": str(vulndata() / "osv" / "npm-ghsa-subset.jsonl")})
    inspector, ecr = server.client("inspector2"), server.client("ecr")
    status = inspector.batch_get_account_status()["accounts"][0]
    assert status["resourceState"]["ecr"]["status"] == "DISABLED"
    out = inspector.enable(resourceTypes=["ECR"])
    assert out["accounts"][0]["resourceStatus"]["ecr"] == "ENABLED"
    ecr.create_repository(repositoryName="web/app")
    digest = push_files(ecr, "web/app", {**build.DEBIAN_12_OS, **build.node_module(
        "lodash", "4.17.15"), **build.node_module("minimist", "1.2.0")}, tag="prod")
    assert wait_scan(ecr, "web/app", digest)["imageScanStatus"]["status"] == "ACTIVE"
    yield server, inspector, digest
    server.stop()


def test_enable_switches_the_registry_to_enhanced_scanning(inspected):
    server, inspector, _ = inspected
    config = server.client("ecr").get_registry_scanning_configuration()["scanningConfiguration"]
    assert config["scanType"] == "ENHANCED"
    state = inspector.batch_get_account_status()["accounts"][0]
    assert state["state"]["status"] == "ENABLED"


def test_list_findings_filters(inspected):
    _, inspector, digest = inspected
    crit = inspector.list_findings(filterCriteria={
        "severity": [{"comparison": "EQUALS", "value": "CRITICAL"}]})["findings"]
    assert {f["title"] for f in crit} == {"GHSA-xvch-5gv4-984h - minimist"}
    f = crit[0]
    assert f["inspectorScore"] == 9.8 and f["fixAvailable"] == "YES"
    assert f["inspectorScoreDetails"]["adjustedCvss"]["version"] == "3.1"
    assert f["resources"][0]["details"]["awsEcrContainerImage"]["imageTags"] == ["prod"]
    assert f["findingArn"].startswith("arn:aws:inspector2:us-east-1:000000000000:finding/")
    by_pkg = inspector.list_findings(filterCriteria={"vulnerablePackages": [
        {"name": {"comparison": "EQUALS", "value": "lodash"}}]})["findings"]
    assert by_pkg and all(x["title"].endswith(" - lodash") for x in by_pkg)
    none = inspector.list_findings(filterCriteria={"ecrImageRepositoryName": [
        {"comparison": "EQUALS", "value": "other"}]})["findings"]
    assert none == []
    prefix = inspector.list_findings(filterCriteria={
        "ecrImageHash": [{"comparison": "EQUALS", "value": digest}],
        "vulnerabilityId": [{"comparison": "PREFIX", "value": "GHSA-"}],
        "fixAvailable": [{"comparison": "EQUALS", "value": "YES"}],
        "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}]})["findings"]
    assert len(prefix) == len(inspector.list_findings()["findings"])


def test_list_findings_sorts_and_paginates(inspected):
    _, inspector, _ = inspected
    ordered = inspector.list_findings(sortCriteria={"field": "INSPECTOR_SCORE",
                                                    "sortOrder": "DESC"})["findings"]
    scores = [f.get("inspectorScore", 0) for f in ordered]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 3
    pages = inspector.get_paginator("list_findings").paginate(
        sortCriteria={"field": "INSPECTOR_SCORE", "sortOrder": "DESC"},
        PaginationConfig={"PageSize": 1})
    assert [f["findingArn"] for p in pages for f in p["findings"]] == [
        f["findingArn"] for f in ordered]


def test_aggregations(inspected):
    _, inspector, _ = inspected
    out = inspector.list_finding_aggregations(aggregationType="PACKAGE")
    by_name = {r["packageAggregation"]["packageName"]: r["packageAggregation"]["severityCounts"]
               for r in out["responses"]}
    assert set(by_name) == {"lodash", "minimist"} and by_name["minimist"]["critical"] == 1
    repo = inspector.list_finding_aggregations(aggregationType="REPOSITORY")["responses"]
    assert repo[0]["repositoryAggregation"]["repository"] == "web/app"
    assert repo[0]["repositoryAggregation"]["affectedImages"] == 1


def test_coverage(inspected):
    _, inspector, digest = inspected
    [item] = inspector.list_coverage()["coveredResources"]
    assert item["resourceId"].endswith("repository/web/app/" + digest)
    assert item["scanStatus"] == {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"}
    assert item["resourceMetadata"]["ecrRepository"]["scanFrequency"] == "CONTINUOUS_SCAN"


@pytest.mark.parametrize("fmt", ["CYCLONEDX_1_4", "SPDX_2_3"])
def test_sbom_export(inspected, fmt):
    server, inspector, _ = inspected
    report = inspector.create_sbom_export(reportFormat=fmt, s3Destination={
        "bucketName": "sboms", "keyPrefix": "exports",
        "kmsKeyArn": "arn:aws:kms:us-east-1:000000000000:key/corral"})["reportId"]
    got = inspector.get_sbom_export(reportId=report)
    assert got["status"] == "SUCCEEDED" and got["format"] == fmt
    [path] = list((Path(server.data_dir) / "inspector" / "sbom" / report / "sboms" /
                   "exports").glob("*.json"))
    doc = json.loads(path.read_text())
    if fmt == "CYCLONEDX_1_4":
        assert doc["specVersion"] == "1.4"
        purls = {c.get("purl") for c in doc["components"]}
        assert "pkg:npm/lodash@4.17.15" in purls
    else:
        assert doc["spdxVersion"] == "SPDX-2.3"
        assert {p["name"] for p in doc["packages"]} >= {"lodash", "minimist"}
    with pytest.raises(inspector.exceptions.ResourceNotFoundException):
        inspector.get_sbom_export(reportId="00000000-0000-0000-0000-000000000000")


def test_disable_returns_the_registry_to_basic(tmp_path):
    from tests.server import CorralServer

    server = CorralServer(tmp_path / "data").start()
    try:
        inspector = server.client("inspector2")
        inspector.update_configuration(ecrConfiguration={"rescanDuration": "LIFETIME"})
        server.client("ecr").create_repository(repositoryName="old")
        push_files(server.client("ecr"), "old", build.node_module("qs", "6.5.2"))
        inspector.enable(resourceTypes=["ECR"])  # queues images pushed in the window
        [item] = inspector.list_coverage()["coveredResources"]
        assert item["scanStatus"]["statusCode"] == "ACTIVE"
        inspector.disable(resourceTypes=["ECR"])
        config = server.client("ecr").get_registry_scanning_configuration()
        assert config["scanningConfiguration"]["scanType"] == "BASIC"
    finally:
        server.stop()


def test_rescan_duration_configuration(inspected):
    _, inspector, _ = inspected
    state = inspector.get_configuration()["ecrConfiguration"]["rescanDurationState"]
    assert state["rescanDuration"] == "DAYS_14" and state["status"] == "SUCCESS"
    inspector.update_configuration(ecrConfiguration={"rescanDuration": "LIFETIME"})
    state = inspector.get_configuration()["ecrConfiguration"]["rescanDurationState"]
    assert state["rescanDuration"] == "LIFETIME"
    inspector.update_configuration(ecrConfiguration={"rescanDuration": "DAYS_14"})
