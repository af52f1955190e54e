"""Inspector2 over Corral's scans, with boto3 against a real server: activation switches the
registry to enhanced scanning; findings filter, sort and paginate; aggregations, coverage and
SBOM exports (CycloneDX 1.4, SPDX 2.3) reflect the image's real inventory."""

from __future__ import annotations

import base64
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


def _token(cursor: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()


def _sorted(field: str, order: str = "ASC") -> dict:
    return {"sortCriteria": {"field": field, "sortOrder": order}}


TITLE_BY_ALL = {"aggregationType": "TITLE", "aggregationRequest": {
    "titleAggregation": {"sortBy": "ALL", "sortOrder": "DESC"}}}
# (operation, its other parameters, the forged cursor): each must be a 400, never a 500
BAD_TOKENS = {
    "id beyond int64": ("list_findings", {}, {"q": "findings", "after": [2 ** 70]}),
    "id a bool": ("list_findings", {}, {"q": "findings", "after": [True]}),
    "id a string": ("list_findings", {}, {"q": "findings", "after": ["1"]}),
    "id a float": ("list_findings", {}, {"q": "findings", "after": [1.5]}),
    "date an int": ("list_findings", _sorted("FIRST_OBSERVED_AT"),
                    {"q": "findings:FIRST_OBSERVED_AT:ASC", "after": [5, 1]}),
    "date without zone": ("list_findings", _sorted("FIRST_OBSERVED_AT"),
                          {"q": "findings:FIRST_OBSERVED_AT:ASC",
                           "after": [{"at": "2026-01-01T00:00:00"}, 1]}),
    "date not a date": ("list_findings", _sorted("LAST_OBSERVED_AT"),
                        {"q": "findings:LAST_OBSERVED_AT:ASC", "after": [{"at": "soon"}, 1]}),
    "date overflows": ("list_findings", _sorted("ECR_IMAGE_PUSHED_AT"),
                       {"q": "findings:ECR_IMAGE_PUSHED_AT:ASC",
                        "after": [{"at": "0001-01-01T00:00:00+01:00"}, 1]}),
    "date with more keys": ("list_findings", _sorted("FIRST_OBSERVED_AT"),
                            {"q": "findings:FIRST_OBSERVED_AT:ASC",
                             "after": [{"at": "2026-01-01T00:00:00+00:00", "x": 1}, 1]}),
    "score NaN": ("list_findings", _sorted("INSPECTOR_SCORE", "DESC"),
                  {"q": "findings:INSPECTOR_SCORE:DESC", "after": [float("nan"), 1]}),
    "score a string": ("list_findings", _sorted("INSPECTOR_SCORE", "DESC"),
                       {"q": "findings:INSPECTOR_SCORE:DESC", "after": ["9.8", 1]}),
    "rank beyond int64": ("list_findings", _sorted("SEVERITY"),
                          {"q": "findings:SEVERITY:ASC", "after": [2 ** 64, 1]}),
    "name an int": ("list_findings", _sorted("VULNERABILITY_ID"),
                    {"q": "findings:VULNERABILITY_ID:ASC", "after": [7, 1]}),
    "count beyond int64": ("list_finding_aggregations", TITLE_BY_ALL,
                           {"q": "aggregation:TITLE:ALL:DESC", "after": [2 ** 70, "x"]}),
    "group key an int": ("list_finding_aggregations", {"aggregationType": "PACKAGE"},
                         {"q": "aggregation:PACKAGE:None:None", "after": [5]}),
    "coverage id beyond int64": ("list_coverage", {}, {"after": 2 ** 70}),
    "coverage id a bool": ("list_coverage", {}, {"after": True}),
    "ecr findings id beyond int64": ("describe_image_scan_findings", {}, {"after": 2 ** 70}),
    "ecr findings id negative beyond int64": ("describe_image_scan_findings", {},
                                              {"after": -2 ** 64}),
}


@pytest.mark.parametrize("case", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_forged_tokens_are_validation_errors(inspected, case):
    """Principle 6: a nextToken Corral did not issue is a 400 naming nextToken, whatever its
    values' types (an int beyond SQLite's 64 bits, a date that is not one), never a 500."""
    from botocore.exceptions import ClientError

    server, inspector, digest = inspected
    operation, params, cursor = case
    client = inspector
    if operation == "describe_image_scan_findings":
        client = server.client("ecr")
        params = {"repositoryName": "web/app", "imageId": {"imageDigest": digest}}
    with pytest.raises(ClientError) as e:
        getattr(client, operation)(**params, nextToken=_token(cursor))
    error = e.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] in ("ValidationException", "InvalidParameterException")
    assert "nextToken" in error["Error"]["Message"]


def test_title_aggregation_filters_on_the_title_it_returns(inspected):
    _, inspector, _ = inspected
    groups = inspector.list_finding_aggregations(aggregationType="TITLE")["responses"]
    assert len(groups) >= 2
    wanted = groups[-1]["titleAggregation"]
    only = inspector.list_finding_aggregations(aggregationType="TITLE", aggregationRequest={
        "titleAggregation": {"titles": [{"comparison": "EQUALS", "value": wanted["title"]}]}})
    assert [r["titleAggregation"] for r in only["responses"]] == [wanted]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A server holding one real Debian 12 image (enhanced scan on push) and, written
    through the store's own path (state.sync_findings) into its database, a Debian finding
    (libc6 1:2.36-9+deb12u4, amd64, vendor severity "high", aliases CVE-1 and CVE-2) and two
    npm ones. Yields (server, inspector, add) where add(n) writes n more findings."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from corral.scan import severity, state
    from corral.scan.matcher import Match
    from corral.scan.packages import Package
    from corral.store import Store
    from corral.store.schema import ecr_images
    from tests.server import CorralServer

    server = CorralServer(tmp_path_factory.mktemp("written") / "data").start()
    ecr = server.client("ecr")
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[{
        "scanFrequency": "SCAN_ON_PUSH",
        "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}])
    ecr.create_repository(repositoryName="deb/app")
    digest = push_files(ecr, "deb/app", build.DEBIAN_12_OS, tag="v1")
    assert wait_scan(ecr, "deb/app", digest)["imageScanStatus"]["status"] == "COMPLETE"
    deb = Match(Package("deb", "libc6", "1:2.36-9+deb12u4", "var/lib/dpkg/status",
                        source_name="glibc", source_version="2.36-9+deb12u4", arch="amd64"),
                "Debian:12", {"id": "DSA-0001-1", "aliases": ["CVE-1", "CVE-2"]},
                "2.36-9+deb12u7", severity.Severity("HIGH", rating="high"))
    matches = [deb]
    store = Store(f"sqlite:///{server.data_dir / 'state.db'}")

    def add(n: int) -> None:
        matches.extend(
            Match(Package("npm", f"pkg-{len(matches)}", "1.0.0", "node_modules/x/package.json"),
                  "npm", {"id": f"GHSA-{len(matches):04d}"}, None, severity.Severity("LOW"))
            for _ in range(n))
        with store.transaction() as db:  # every finding re-observed, the new ones opened
            image_id = db.execute(select(ecr_images.c.id).where(
                ecr_images.c.digest == digest)).scalar_one()
            state.sync_findings(db, state.get(db, image_id, digest), matches, datetime.now(UTC))

    add(2)
    try:
        yield server, server.client("inspector2"), add
    finally:
        store.close()
        server.stop()


def _arns(inspector, **criteria) -> set[str]:
    return {f["findingArn"] for f in inspector.list_findings(
        filterCriteria=criteria)["findings"]}


def _deb(inspector) -> dict:
    [deb] = [f for f in inspector.list_findings()["findings"]
             if f["packageVulnerabilityDetails"]["vulnerabilityId"] == "DSA-0001-1"]
    return deb


def test_vulnerable_packages_filters_compare_what_the_finding_shows(written):
    """A Debian version is shown split (version 2.36, release 9+deb12u4, epoch 1): the
    filters compare those values, not the stored 1:2.36-9+deb12u4."""
    _, inspector, _ = written
    deb = _deb(inspector)
    [pkg] = deb["packageVulnerabilityDetails"]["vulnerablePackages"]
    assert (pkg["version"], pkg["release"], pkg["epoch"], pkg["arch"]) == (
        "2.36", "9+deb12u4", 1, "AMD64")

    def by(**package) -> set[str]:
        return _arns(inspector, vulnerablePackages=[{"name": {"comparison": "EQUALS",
                                                              "value": "libc6"}, **package}])

    eq = {"comparison": "EQUALS"}
    assert by(version={**eq, "value": "2.36"}) == {deb["findingArn"]}
    assert by(version={**eq, "value": "1:2.36-9+deb12u4"}) == set()
    assert by(release={**eq, "value": "9+deb12u4"}) == {deb["findingArn"]}
    assert by(architecture={**eq, "value": "AMD64"}) == {deb["findingArn"]}
    assert by(epoch={"lowerInclusive": 1, "upperInclusive": 1}) == {deb["findingArn"]}


NO_SUCH = {"comparison": "EQUALS", "value": "NO_SUCH"}
# Filters on data Corral has: a value no finding shows matches nothing (they were ignored)
NOTHING = {
    "vendorSeverity": {"vendorSeverity": [NO_SUCH]},
    "release": {"vulnerablePackages": [{"release": NO_SUCH}]},
    "architecture": {"vulnerablePackages": [{"architecture": NO_SUCH}]},
    "epoch": {"vulnerablePackages": [{"epoch": {"lowerInclusive": 99}}]},
    "lambda layer": {"vulnerablePackages": [{"sourceLambdaLayerArn": NO_SUCH}]},
    "ecrImageArchitecture": {"ecrImageArchitecture": [NO_SUCH]},
    "aliases joined by |": {"relatedVulnerabilities": [{"comparison": "EQUALS",
                                                        "value": "CVE-1|CVE-2"}]},
    "alias prefix across |": {"relatedVulnerabilities": [{"comparison": "PREFIX",
                                                          "value": "CVE-1|"}]},
}


@pytest.mark.parametrize("criteria", NOTHING.values(), ids=NOTHING.keys())
def test_filters_that_should_match_nothing_match_nothing(written, criteria):
    _, inspector, _ = written
    assert inspector.list_findings()["findings"]
    assert _arns(inspector, **criteria) == set()


def test_vendor_severity_and_alias_filters_match_what_is_shown(written):
    _, inspector, _ = written
    deb = _deb(inspector)
    assert deb["packageVulnerabilityDetails"]["vendorSeverity"] == "high"
    eq = {"comparison": "EQUALS"}
    assert _arns(inspector, vendorSeverity=[{**eq, "value": "high"}]) == {deb["findingArn"]}
    assert _arns(inspector, relatedVulnerabilities=[{**eq, "value": "CVE-2"}]) == {
        deb["findingArn"]}


def test_default_order_pages_neither_repeat_nor_skip_findings_written_between_pages(written):
    """Keyset on id: findings recorded while a client pages come after every finding already
    there; re-observing findings (lastObservedAt, updatedAt move) does not move them."""
    _, inspector, add = written
    before = [f["findingArn"] for f in inspector.list_findings()["findings"]]
    seen, token = [], None
    while True:
        page = inspector.list_findings(maxResults=1, **({"nextToken": token} if token else {}))
        seen += [f["findingArn"] for f in page["findings"]]
        if "nextToken" not in page:
            break
        token = page["nextToken"]
        if len(seen) <= 2:
            add(1)  # a re-scan between pages: every finding re-observed, one more opened
    after = [f["findingArn"] for f in inspector.list_findings()["findings"]]
    assert len(after) == len(before) + 2
    assert seen == after and seen[:len(before)] == before
