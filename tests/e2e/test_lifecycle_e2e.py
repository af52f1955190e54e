"""Lifecycle end to end, with the tools a user types: skopeo pushes real images that share a
base layer, the aws CLI puts a policy and previews it, `corral lifecycle run` applies it; the
previewed images vanish from DescribeImages, their blob files vanish from disk (bytes counted),
and the surviving image — sharing a layer and a moved tag with the expired ones — still pulls.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

from tests.ecr.lifecycle_helpers import admin, policy, rule
from tests.ecr.push import push_image
from tests.registry.conftest import blob_files, skopeo_login
from tests.registry.oci_images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Built,
    Image,
    _json,
    read_oci_layout,
    sha256,
    tar_layer,
    write_oci_layout,
)
from tests.registry.v2 import V2
from tests.server import ROOT_KEY, ROOT_SECRET

REPO = "e2e/lifecycle"


def image_with(layers: list[bytes], name: str) -> Built:
    """An OCI image over the given (uncompressed tar) layers."""
    blobs = tuple(Blob(OCI_LAYER, t) for t in layers)
    config = Blob(OCI_CONFIG, _json({
        "architecture": "amd64", "os": "linux", "config": {"Labels": {"name": name}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layers]}}))
    manifest = Blob(OCI_MANIFEST, _json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
        "layers": [b.descriptor() for b in blobs]}))
    image = Image(manifest, config, blobs, tuple(sha256(t) for t in layers), ("linux", "amd64"))
    return Built(manifest, (image,))


def corral(server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ROOT_KEY, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET,
           "AWS_DEFAULT_REGION": "us-east-1"}
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "corral.cli", *args, "--endpoint",
                           server.endpoint], capture_output=True, text=True, env=env, timeout=120)


def aws_json(server, *args: str) -> dict:
    out = server.aws(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}


@pytest.fixture
def srv(fresh_server):
    fresh_server.env.update(CORRAL_GC_GRACE="0", CORRAL_LIFECYCLE_INTERVAL="86400")
    return fresh_server.start()


def test_policy_preview_run_reclaims_exactly_the_previewed_images(srv, tmp_path):
    rng = random.Random(4)
    base = tar_layer(rng, files=4, max_size=200_000)
    old1, old2, keep = (image_with([base, tar_layer(rng, max_size=100_000)], n)
                        for n in ("old1", "old2", "keep"))
    aws_json(srv, "ecr", "create-repository", "--repository-name", REPO)
    skopeo = skopeo_login(srv, tmp_path / "auth.json")
    for built, tags in ((old1, ["build-1", "stable"]), (old2, ["build-2"]),
                        (keep, ["build-3", "stable"])):  # "stable" moves to the newest
        layout = write_oci_layout(tmp_path / built.digest[7:19], built)
        for tag in tags:
            skopeo.push(f"oci:{layout}:v1", REPO, tag)

    text = policy(rule(1, "tagged", prefixes=["build"], n=1))
    aws_json(srv, "ecr", "put-lifecycle-policy", "--repository-name", REPO,
             "--lifecycle-policy-text", text)
    started = aws_json(srv, "ecr", "start-lifecycle-policy-preview", "--repository-name", REPO)
    assert started["status"] == "COMPLETE"
    preview = aws_json(srv, "ecr", "get-lifecycle-policy-preview", "--repository-name", REPO)
    previewed = {r["imageDigest"] for r in preview["previewResults"]}
    assert previewed == {old1.digest, old2.digest}
    assert preview["summary"]["expiringImageTotalCount"] == 2

    # What the expired images hold alone: their manifests, configs and own layers.
    unique = {d: b for built in (old1, old2) for d, b in built.blobs.items()
              if d not in keep.blobs}
    assert sha256(base) not in unique and len(unique) == 6
    for digest in unique:
        assert blob_files(srv.data_dir, digest), f"{digest} should be on disk before the run"

    out = corral(srv, "lifecycle", "run", "--repository", REPO, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {e["imageDigest"] for e in report["expired"]} == previewed
    assert report["gc"]["blobs_deleted"] == len(unique)
    assert report["gc"]["bytes_reclaimed"] == sum(b.size for b in unique.values())

    described = aws_json(srv, "ecr", "describe-images", "--repository-name", REPO)
    assert [(d["imageDigest"], sorted(d["imageTags"])) for d in described["imageDetails"]] == [
        (keep.digest, ["build-3", "stable"])]
    for digest in unique:
        assert blob_files(srv.data_dir, digest) == [], f"{digest} is still on disk"
    for digest in keep.blobs:
        assert blob_files(srv.data_dir, digest), f"survivor blob {digest} was deleted"

    skopeo.pull(REPO, "stable", f"oci:{tmp_path / 'pulled'}:v1")
    top, files = read_oci_layout(tmp_path / "pulled")
    assert top == keep.digest
    assert files[sha256(base)] == base

    history = corral(srv, "lifecycle", "history", "--repository", REPO)
    assert history.returncode == 0, history.stderr
    assert "build-1" in history.stdout and "build-2" in history.stdout
    again = corral(srv, "gc")
    assert again.returncode == 0, again.stderr
    assert "0 blobs deleted" in again.stdout


def test_cli_reports_errors_clearly(srv):
    out = corral(srv, "lifecycle", "run", "--repository", "no/such-repo")
    assert out.returncode == 1
    assert "RepositoryNotFoundException" in out.stdout
    out = subprocess.run([sys.executable, "-m", "corral.cli", "gc", "--endpoint",
                          "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "No Corral server answers" in out.stdout


def test_the_controller_applies_policies_on_its_interval(fresh_server):
    """No command: the lifecycle controller's own pass expires images, audited as
    "lifecycle", and stamps lastEvaluatedAt."""
    srv = fresh_server
    srv.env.update(CORRAL_LIFECYCLE_INTERVAL="1")
    srv.start()
    ecr = srv.client("ecr")
    ecr.create_repository(repositoryName="ctl/app")
    pushed = [push_image(ecr, "ctl/app", tag=f"v{i}", layer_sizes=(128,)) for i in range(3)]
    ecr.put_lifecycle_policy(repositoryName="ctl/app",
                             lifecyclePolicyText=policy(rule(1, "any", n=1)))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = ecr.describe_images(repositoryName="ctl/app")["imageDetails"]
        if len(left) == 1:
            break
        time.sleep(0.2)
    assert [d["imageDigest"] for d in left] == [pushed[-1].digest]
    assert "lastEvaluatedAt" in ecr.get_lifecycle_policy(repositoryName="ctl/app")
    status, hist = admin(srv, "lifecycle/history", {"repository": "ctl/app"})
    assert status == 200
    assert {e["actor"] for e in hist["events"]} == {"lifecycle"}
    assert {e["imageDigest"] for e in hist["events"]} == {p.digest for p in pushed[:2]}


def test_gc_while_pushing_never_loses_a_layer(fresh_server):
    """Pushes through both surfaces (the /v2 registry and ECR's layer API) while `gc` runs in
    a loop over a store full of old garbage — some of which the pushes upload again. Every
    pushed image stays whole and pullable; only the garbage nobody pushed again goes."""
    srv = fresh_server.start()
    ecr = srv.client("ecr")
    ecr.create_repository(repositoryName="gc/online")
    rng = random.Random(11)
    garbage = [rng.randbytes(rng.randrange(100, 3000)) for _ in range(300)]
    old = time.time() - 7200
    for data in garbage:
        path = srv.data_dir / "registry" / "blobs" / "sha256" / sha256(data)[7:9] / \
            sha256(data)[7:] / "data"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (old, old))
    reused = garbage[:20]  # pushed again while GC wants them gone (or has just deleted)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    v2 = V2(srv.endpoint, token)
    pushed: list[Built] = []
    failures: list[BaseException] = []

    def registry_pusher():
        try:
            for i in range(20):
                built = image_with([reused[i], tar_layer(rng, max_size=20_000)], f"r{i}")
                v2.push_image("gc/online", built, tag=f"reg-{i}")
                pushed.append(built)
        except BaseException as e:  # noqa: BLE001 — reported by the main thread
            failures.append(e)

    def ecr_pusher():
        try:
            client = srv.client("ecr")
            for i in range(20):
                pushed_image = push_image(client, "gc/online", tag=f"ecr-{i}",
                                          layer_sizes=(500, 700))
                assert pushed_image.digest
        except BaseException as e:  # noqa: BLE001
            failures.append(e)

    threads = [threading.Thread(target=registry_pusher), threading.Thread(target=ecr_pusher)]
    for t in threads:
        t.start()
    deleted = 0
    while any(t.is_alive() for t in threads):
        status, out = admin(srv, "gc")
        assert status == 200, out
        deleted += out["gc"]["blobs_deleted"]
    for t in threads:
        t.join()
    assert not failures, failures
    status, out = admin(srv, "gc")
    deleted += out["gc"]["blobs_deleted"]
    assert len(garbage) - len(reused) <= deleted <= len(garbage)
    for data in garbage[len(reused):]:
        assert blob_files(srv.data_dir, sha256(data)) == []
    for built in pushed:
        r = v2.get(f"/v2/gc/online/manifests/{built.digest}",
                   headers={"Accept": built.top.media_type})
        assert r.status_code == 200 and sha256(r.content) == built.digest
        for digest, blob in built.blobs.items():
            r = v2.get(f"/v2/gc/online/blobs/{digest}")
            assert r.status_code == 200, (digest, r.status_code)
            assert r.content == blob.data
    described = ecr.describe_images(repositoryName="gc/online", maxResults=100)["imageDetails"]
    assert len(described) == 40
