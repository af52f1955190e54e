"""Scanning end to end against a real server: boto3 and the aws CLI push, wait and read
findings; advisories imported later flag images already pushed; bad layers end FAILED or
UNSUPPORTED_IMAGE with a reason while the server keeps serving."""

from __future__ import annotations

import json
import tarfile
import time

import pytest

from tests.scan import layers as build
from tests.scan.helpers import admin, push_files, push_layers, wait_scan
from tests.scan.vulndata import vulndata

NPM = "application/vnd.oci.image.layer.v1.tar+gzip"


def _image_files():
    return [
        {**build.DEBIAN_12_OS, "var/lib/dpkg/status": build.dpkg_status(
            ("bash", "5.2.15-2+b2", None), ("libssl3", "3.0.11-1~deb12u2", "openssl"))},
        {**build.node_module("lodash", "4.17.15"), **build.node_module("minimist", "1.2.0")},
    ]


@pytest.fixture(scope="module")
def npm_advisories(server):
    path = vulndata() / "osv" / "npm-ghsa-subset.jsonl"
    return admin(server, "vulndb/import", {"path": str(path)})


def test_scan_on_push_finds_high_and_critical_npm_advisories(server, ecr, repo_name,
                                                             npm_advisories):
    assert npm_advisories["records"] == 12
    ecr.create_repository(repositoryName=repo_name,
                          imageScanningConfiguration={"scanOnPush": True})
    digest = push_files(ecr, repo_name, *_image_files(), tag="v1")
    wait = server.aws("ecr", "wait", "image-scan-complete", "--repository-name", repo_name,
                      "--image-id", "imageTag=v1")
    assert wait.returncode == 0, wait.stderr
    out = json.loads(server.aws("ecr", "describe-image-scan-findings", "--repository-name",
                                repo_name, "--image-id", f"imageDigest={digest}").stdout)
    assert out["imageScanStatus"] == {"status": "COMPLETE",
                                      "description": "The scan was completed successfully."}
    body = out["imageScanFindings"]
    names = {(f["name"], _attr(f, "package_name")) for f in body["findings"]}
    assert ("GHSA-35jh-r3h4-6jhm", "lodash") in names  # lodash command injection, 7.2 HIGH
    assert ("GHSA-xvch-5gv4-984h", "minimist") in names  # minimist prototype pollution, 9.8
    assert body["findingSeverityCounts"].get("CRITICAL", 0) >= 1
    assert body["findingSeverityCounts"].get("HIGH", 0) >= 1
    crit = next(f for f in body["findings"] if f["name"] == "GHSA-xvch-5gv4-984h")
    assert crit["severity"] == "CRITICAL"
    assert _attr(crit, "CVSS3_SCORE") == "9.8"
    assert _attr(crit, "package_version") == "1.2.0"
    assert sum(body["findingSeverityCounts"].values()) == len(body["findings"])


def _attr(finding: dict, key: str) -> str | None:
    return next((a["value"] for a in finding["attributes"] if a["key"] == key), None)


def test_findings_paginate(ecr, repo_name, npm_advisories):
    ecr.create_repository(repositoryName=repo_name,
                          imageScanningConfiguration={"scanOnPush": True})
    digest = push_files(ecr, repo_name, *_image_files())
    full = wait_scan(ecr, repo_name, digest)["imageScanFindings"]["findings"]
    pages = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName=repo_name, imageId={"imageDigest": digest},
        PaginationConfig={"PageSize": 1})
    paged = [f for p in pages for f in p["imageScanFindings"]["findings"]]
    assert len(full) >= 2 and paged == full


def test_manual_scan_and_scan_not_found(ecr, repo_name, npm_advisories):
    ecr.create_repository(repositoryName=repo_name)
    digest = push_files(ecr, repo_name, *_image_files())
    with pytest.raises(ecr.exceptions.ScanNotFoundException):
        ecr.describe_image_scan_findings(repositoryName=repo_name,
                                         imageId={"imageDigest": digest})
    out = ecr.start_image_scan(repositoryName=repo_name, imageId={"imageDigest": digest})
    assert out["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert wait_scan(ecr, repo_name, digest)["imageScanStatus"]["status"] == "COMPLETE"
    with pytest.raises(ecr.exceptions.LimitExceededException):
        ecr.start_image_scan(repositoryName=repo_name, imageId={"imageDigest": digest})


def test_whiteout_in_a_later_layer_removes_the_finding(ecr, repo_name, npm_advisories):
    ecr.create_repository(repositoryName=repo_name,
                          imageScanningConfiguration={"scanOnPush": True})
    files = _image_files()
    digest = push_files(ecr, repo_name, *files, {"app/node_modules/.wh.lodash": b""})
    found = wait_scan(ecr, repo_name, digest)["imageScanFindings"]["findings"]
    assert {_attr(f, "package_name") for f in found} == {"minimist"}


def _member(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info


BAD_LAYERS = [
    pytest.param([b"\x1f\x8b\x08\x00 not really gzip"], None, "FAILED", "not a readable",
                 id="corrupt-gzip"),
    pytest.param([build.tar_bytes({}, raw_members=[_member("../../../tmp/corral-escape", 3)])],
                 None, "FAILED", "escapes the image root", id="dotdot"),
    pytest.param([build.tar_bytes({}, raw_members=[_member("/tmp/corral-abs", 3)])], None,
                 "FAILED", "absolute path", id="absolute"),
    pytest.param([build.tar_bytes({"etc/os-release": ("link", "../etc/os-release")})], None,
                 "FAILED", "symlink loop", id="symlink-loop"),
    pytest.param([__import__("gzip").compress(
        _member("var/lib/dpkg/status", 10 * 1024**3).tobuf(tarfile.PAX_FORMAT) + b"x" * 512)],
        None, "FAILED", "truncated", id="10GB-sparse-claim"),
    pytest.param([build.tar_bytes({"a": b"b"})], ["application/vnd.example.layer.v1+weird"],
                 "UNSUPPORTED_IMAGE", "unsupported layer media type", id="unknown-media-type"),
]


@pytest.mark.parametrize(("blobs", "media_types", "status", "reason"), BAD_LAYERS)
def test_bad_layers_end_with_a_reason_and_the_server_keeps_serving(
        server, ecr, repo_name, blobs, media_types, status, reason):
    ecr.create_repository(repositoryName=repo_name,
                          imageScanningConfiguration={"scanOnPush": True})
    digest = push_layers(ecr, repo_name, blobs, media_types=media_types)
    out = wait_scan(ecr, repo_name, digest)
    assert out["imageScanStatus"]["status"] == status
    assert reason in out["imageScanStatus"]["description"]
    assert "imageScanFindings" not in out
    assert server.health()["status"] == "running"
    assert not __import__("os").path.exists("/tmp/corral-escape")


def test_artifact_is_unsupported(ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name,
                          imageScanningConfiguration={"scanOnPush": True})
    digest = push_layers(ecr, repo_name, [b"just a blob"],
                         media_types=["application/vnd.oci.image.layer.v1.tar"],
                         config_type="application/vnd.example.artifact.config.v1+json")
    out = wait_scan(ecr, repo_name, digest)
    assert out["imageScanStatus"]["status"] == "UNSUPPORTED_IMAGE"


ZERO_DAY = {
    "schema_version": "1.7.4", "id": "CORRAL-TEST-0001", "modified": "2026-11-27T00:00:00Z",
    "summary": "zero day in corral-demo", "aliases": ["CVE-2099-0001"],
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [{"package": {"ecosystem": "PyPI", "name": "Corral_Demo"},
                  "ranges": [{"type": "ECOSYSTEM",
                              "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}]}],
}


def _import(server, name: str, records: list[dict]) -> dict:
    import base64
    data = "\n".join(json.dumps(r) for r in records).encode()
    return admin(server, "vulndb/import", {"name": name, "content": base64.b64encode(data).decode()})


def _enhanced(ecr, repo, digest) -> list[dict]:
    out = ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": digest})
    return out.get("imageScanFindings", {}).get("enhancedFindings", [])


def _poll(fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached")


def test_continuous_scan_flags_an_existing_image_when_an_advisory_arrives(fresh_server):
    server = fresh_server.start()
    ecr = server.client("ecr")
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[{
        "scanFrequency": "CONTINUOUS_SCAN",
        "repositoryFilters": [{"filter": "prod*", "filterType": "WILDCARD"}]}])
    ecr.create_repository(repositoryName="prod-app")
    digest = push_files(ecr, "prod-app", {**build.DEBIAN_12_OS,
                                          **build.dist_info("corral-demo", "1.0.0")})
    out = wait_scan(ecr, "prod-app", digest)
    assert out["imageScanStatus"]["status"] == "ACTIVE"
    assert _enhanced(ecr, "prod-app", digest) == []

    _import(server, "zero-day.jsonl", [ZERO_DAY])  # no push: the stored inventory is re-matched
    [finding] = _poll(lambda: _enhanced(ecr, "prod-app", digest))
    assert finding["title"] == "CORRAL-TEST-0001 - corral-demo"
    assert finding["severity"] == "CRITICAL" and finding["score"] == 9.8
    assert finding["status"] == "ACTIVE" and finding["fixAvailable"] == "YES"
    pkg = finding["packageVulnerabilityDetails"]["vulnerablePackages"][0]
    assert pkg["fixedInVersion"] == "1.0.1" and pkg["packageManager"] == "PYTHONPKG"
    assert pkg["sourceLayerHash"].startswith("sha256:")
    image = finding["resources"][0]["details"]["awsEcrContainerImage"]
    assert image["platform"] == "DEBIAN_12" and image["imageHash"] == digest

    _import(server, "zero-day.jsonl", [{**ZERO_DAY, "withdrawn": "2026-11-28T00:00:00Z"}])
    _poll(lambda: _enhanced(ecr, "prod-app", digest) == [])
    status = admin(server, "vulndb/status", {})
    assert status["withdrawn"] == 1


def test_registry_scanning_configuration_round_trip(fresh_server):
    server = fresh_server.start()
    ecr = server.client("ecr")
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == {
        "scanType": "BASIC", "rules": []}
    rules = [{"scanFrequency": "SCAN_ON_PUSH",
              "repositoryFilters": [{"filter": "prod", "filterType": "WILDCARD"}]}]
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    got = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    assert got == {"scanType": "BASIC", "rules": rules}
    with pytest.raises(ecr.exceptions.ValidationException):
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[
            {"scanFrequency": "CONTINUOUS_SCAN",
             "repositoryFilters": [{"filter": "x", "filterType": "WILDCARD"}]}])
    for name in ("repo-prod", "other"):
        ecr.create_repository(repositoryName=name)
    out = ecr.batch_get_repository_scanning_configuration(repositoryNames=["repo-prod", "other"])
    freq = {c["repositoryName"]: c["scanFrequency"] for c in out["scanningConfigurations"]}
    assert freq == {"repo-prod": "SCAN_ON_PUSH", "other": "MANUAL"}


def test_scan_api_bad_input_gets_aws_errors_not_500s(server, ecr, repo_name):
    from tests.ecr.push import push_index

    ecr.create_repository(repositoryName=repo_name)
    index, children = push_index(ecr, repo_name)
    with pytest.raises(ecr.exceptions.UnsupportedImageTypeException):
        ecr.start_image_scan(repositoryName=repo_name, imageId={"imageDigest": index.digest})
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.start_image_scan(repositoryName=repo_name, imageId={"imageTag": "nope"})
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_image_scan_findings(repositoryName=repo_name + "-missing",
                                         imageId={"imageTag": "x"})
    ecr.start_image_scan(repositoryName=repo_name, imageId={"imageDigest": children[0].digest})
    wait_scan(ecr, repo_name, children[0].digest)  # random bytes as layers: FAILED, not a 500
    with pytest.raises(ecr.exceptions.InvalidParameterException) as e:
        ecr.describe_image_scan_findings(repositoryName=repo_name,
                                         imageId={"imageDigest": children[0].digest},
                                         nextToken="garbage")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    inspector = server.client("inspector2")
    with pytest.raises(inspector.exceptions.ValidationException):
        inspector.list_findings(nextToken="garbage")
    with pytest.raises(inspector.exceptions.ValidationException):
        inspector.list_finding_aggregations(aggregationType="AMI")
    assert server.health()["status"] == "running"


def test_a_registry_push_to_a_scan_on_push_repository_is_scanned(server, ecr, repo_name,
                                                                 npm_advisories):
    """The /v2 push path (docker, skopeo, oras) queues the scan like PutImage does."""
    from tests.registry.v2 import V2, digest_of

    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    v2 = V2(server.endpoint, token)
    ecr.create_repository(repositoryName=repo_name,
                          imageScanningConfiguration={"scanOnPush": True})
    layer = build.tar_bytes(build.node_module("minimist", "1.2.0"))
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": []}}).encode()
    for blob in (layer, config):
        v2.push_blob(repo_name, blob)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": NPM, "digest": digest_of(layer), "size": len(layer)}]}).encode()
    r = v2.put(f"/v2/{repo_name}/manifests/v1", data=manifest,
               headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    out = wait_scan(ecr, repo_name, digest_of(manifest))
    assert {f["name"] for f in out["imageScanFindings"]["findings"]} >= {"GHSA-xvch-5gv4-984h"}
