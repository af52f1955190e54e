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


SORT_FIELDS = ["SEVERITY", "FIRST_OBSERVED_AT", "LAST_OBSERVED_AT", "INSPECTOR_SCORE",
               "VULNERABILITY_ID", "FINDING_STATUS", "ECR_IMAGE_REPOSITORY_NAME",
               "ECR_IMAGE_PUSHED_AT", "AWS_ACCOUNT_ID", "FINDING_TYPE"]


@pytest.mark.parametrize("order", ["ASC", "DESC"])
@pytest.mark.parametrize("field", SORT_FIELDS)
def test_every_sort_field_pages_by_keyset(inspected, field, order):
    """Pages of one finding each, walked with the keyset cursor, equal the one-page answer,
    and that answer is ordered by the field (ties by finding id, in the same direction)."""
    _, inspector, _ = inspected
    sort = {"field": field, "sortOrder": order}
    whole = inspector.list_findings(sortCriteria=sort)["findings"]
    pages = inspector.get_paginator("list_findings").paginate(
        sortCriteria=sort, PaginationConfig={"PageSize": 1})
    assert [f["findingArn"] for p in pages for f in p["findings"]] == [
        f["findingArn"] for f in whole]
    key = {"SEVERITY": lambda f: ["UNTRIAGED", "INFORMATIONAL", "LOW", "MEDIUM", "HIGH",
                                  "CRITICAL"].index(f["severity"]),
           "INSPECTOR_SCORE": lambda f: f.get("inspectorScore", 0.0),
           "VULNERABILITY_ID": lambda f: f["packageVulnerabilityDetails"]["vulnerabilityId"],
           "FIRST_OBSERVED_AT": lambda f: f["firstObservedAt"]}.get(field)
    if key is not None:
        values = [key(f) for f in whole]
        assert values == sorted(values, reverse=order == "DESC")


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


def test_list_findings_sql_filters(inspected):
    """Filters that run in SQL on denormalized columns: tags (EXISTS), aliases, finding ARN
    (EQUALS is one id, PREFIX an id range), package version, title, NOT_EQUALS, ranges."""
    _, inspector, digest = inspected
    every = inspector.list_findings()["findings"]
    one = every[0]

    def ids(**criteria) -> set[str]:
        return {f["findingArn"] for f in inspector.list_findings(
            filterCriteria=criteria)["findings"]}

    everything = {f["findingArn"] for f in every}
    eq = {"comparison": "EQUALS"}
    assert ids(ecrImageTags=[{**eq, "value": "prod"}]) == everything
    assert ids(ecrImageTags=[{"comparison": "PREFIX", "value": "pr"}]) == everything
    assert ids(ecrImageTags=[{"comparison": "PREFIX", "value": "PR"}]) == set()  # case-sensitive
    assert ids(ecrImageTags=[{"comparison": "NOT_EQUALS", "value": "prod"}]) == set()
    assert ids(findingArn=[{**eq, "value": one["findingArn"]}]) == {one["findingArn"]}
    stem = one["findingArn"].rsplit("/", 1)[0] + "/"
    assert ids(findingArn=[{"comparison": "PREFIX", "value": stem}]) == everything
    assert ids(findingArn=[{"comparison": "NOT_EQUALS", "value": one["findingArn"]}]) == \
        everything - {one["findingArn"]}
    alias = next(f for f in every if f["packageVulnerabilityDetails"]["relatedVulnerabilities"])
    cve = alias["packageVulnerabilityDetails"]["relatedVulnerabilities"][0]
    assert alias["findingArn"] in ids(relatedVulnerabilities=[{**eq, "value": cve}])
    assert ids(relatedVulnerabilities=[{**eq, "value": cve[:-1]}]) == set()
    pkg = one["packageVulnerabilityDetails"]["vulnerablePackages"][0]
    assert one["findingArn"] in ids(vulnerablePackages=[{
        "name": {**eq, "value": pkg["name"]}, "version": {**eq, "value": pkg["version"]}}])
    assert ids(title=[{**eq, "value": one["title"]}]) == {
        f["findingArn"] for f in every if f["title"] == one["title"]}
    assert ids(inspectorScore=[{"lowerInclusive": 9.0, "upperInclusive": 10.0}]) == {
        f["findingArn"] for f in every if f.get("inspectorScore", 0) >= 9.0}
    assert ids(ecrImageHash=[{**eq, "value": digest}],
               findingType=[{**eq, "value": "NETWORK_REACHABILITY"}]) == set()


def test_list_findings_tokens_belong_to_their_query(inspected):
    _, inspector, _ = inspected
    first = inspector.list_findings(maxResults=1)
    assert len(first["findings"]) == 1 and first["nextToken"]
    with pytest.raises(inspector.exceptions.ValidationException):
        inspector.list_findings(nextToken=first["nextToken"], sortCriteria={
            "field": "SEVERITY", "sortOrder": "DESC"})
    with pytest.raises(inspector.exceptions.ValidationException):
        inspector.list_findings(maxResults=101)
    second = inspector.list_findings(maxResults=1, nextToken=first["nextToken"])
    assert second["findings"][0]["findingArn"] != first["findings"][0]["findingArn"]


def test_aggregations_sort_filter_and_page(inspected):
    _, inspector, digest = inspected
    out = inspector.list_finding_aggregations(aggregationType="TITLE", aggregationRequest={
        "titleAggregation": {"sortBy": "ALL", "sortOrder": "DESC"}}, maxResults=1)
    pages = [out]
    while "nextToken" in pages[-1]:
        pages.append(inspector.list_finding_aggregations(
            aggregationType="TITLE", maxResults=1, nextToken=pages[-1]["nextToken"],
            aggregationRequest={"titleAggregation": {"sortBy": "ALL", "sortOrder": "DESC"}}))
    titles = [r["titleAggregation"] for p in pages for r in p["responses"]]
    assert len(titles) == len({t["title"] for t in titles}) >= 3
    alls = [t["severityCounts"]["all"] for t in titles]
    assert alls == sorted(alls, reverse=True)
    only = inspector.list_finding_aggregations(aggregationType="PACKAGE", aggregationRequest={
        "packageAggregation": {"packageNames": [{"comparison": "EQUALS", "value": "lodash"}]}})
    assert [r["packageAggregation"]["packageName"] for r in only["responses"]] == ["lodash"]
    [image] = inspector.list_finding_aggregations(
        aggregationType="AWS_ECR_CONTAINER")["responses"]
    agg = image["awsEcrContainerAggregation"]
    assert agg["imageSha"] == digest and agg["imageTags"] == ["prod"]
    assert agg["resourceId"].endswith("repository/web/app/" + digest)
    [layer] = inspector.list_finding_aggregations(aggregationType="IMAGE_LAYER")["responses"]
    assert layer["imageLayerAggregation"]["layerHash"].startswith("sha256:")


def test_cvss_v4_only_finding_has_score_and_vector(tmp_path):
    """Issue 17 item 7: an advisory scored only with CVSS 4.0 (PYSEC-2025-186, pywasm3)
    shows its score and vector: CVSS4_SCORE / CVSS4_VECTOR in ECR basic attributes, a
    version "4.0" entry in Inspector's packageVulnerabilityDetails.cvss, and
    inspectorScore / inspectorScoreDetails (ECR enhanced: score / scoreDetails)."""
    from tests.server import CorralServer

    wanted = "PYSEC-2025-186"
    with open(vulndata() / "osv" / "PyPI.jsonl") as f:
        [line] = [x for x in f if f'"id":"{wanted}"' in x.replace(" ", "")]
    record = json.loads(line)
    assert {s["type"] for s in record["severity"]} == {"CVSS_V4"}
    vector = record["severity"][0]["score"]
    (tmp_path / "v4.jsonl").write_text(line)
    server = CorralServer(tmp_path / "data").start()
    try:
        admin(server, "vulndb/import", {"path": str(tmp_path / "v4.jsonl")})
        ecr, inspector = server.client("ecr"), server.client("inspector2")
        ecr.create_repository(repositoryName="v4", imageScanningConfiguration={
            "scanOnPush": True})
        digest = push_files(ecr, "v4", build.dist_info("pywasm3", "0.5.0"))
        [basic] = wait_scan(ecr, "v4", digest)["imageScanFindings"]["findings"]
        attrs = {a["key"]: a["value"] for a in basic["attributes"]}
        assert basic["name"] == wanted and basic["severity"] == "LOW"
        assert attrs["CVSS4_VECTOR"] == vector and attrs["CVSS4_SCORE"] == "1.9"
        assert not any(k.startswith("CVSS3") for k in attrs)
        inspector.enable(resourceTypes=["ECR"])  # re-scans it under enhanced scanning
        [enhanced] = wait_scan(ecr, "v4", digest, until=("ACTIVE",))["imageScanFindings"][
            "enhancedFindings"]
        assert enhanced["score"] == 1.9
        assert enhanced["scoreDetails"]["cvss"]["version"] == "4.0"
        [finding] = inspector.list_findings()["findings"]
        assert finding["packageVulnerabilityDetails"]["cvss"] == [
            {"baseScore": 1.9, "scoringVector": vector, "version": "4.0", "source": "OSV"}]
        assert finding["inspectorScore"] == 1.9
        details = finding["inspectorScoreDetails"]["adjustedCvss"]
        assert details["version"] == "4.0" and details["scoringVector"] == vector
    finally:
        server.stop()
