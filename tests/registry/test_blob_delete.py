"""Issue 17 item 2: a blob DELETE never breaks an image, judged by a real client.

ECR has no blob deletion on /v2/: ``DELETE /v2/<name>/blobs/<digest>`` is 405 ``UNSUPPORTED``
and unlinks nothing, so the image whose config blob was "deleted" still pulls with docker
(Debian's dockerd 20.10 under tests/runtime/dockerd.py, driven by the docker CLI). A blob
that loses its last reference — its image deleted — is garbage collection's to reclaim.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.registry.conftest import blob_files, get_token
from tests.registry.v2 import V2, error_code
from tests.runtime import imagebuild
from tests.runtime.dockerd import Dockerd

DOCKER = "docker"


@pytest.fixture
def dockerd():
    """A private dockerd of this test's own (a short /tmp path: unix sockets cap at 108)."""
    if os.geteuid() != 0:
        pytest.fail("this test runs a private dockerd, which needs root: run it as root, "
                    "as CI does")
    try:
        daemon = Dockerd(Path(tempfile.mkdtemp(prefix="corral-pull-"))).start()
    except RuntimeError as e:
        pytest.fail(str(e))
    yield daemon
    daemon.stop()


def docker(daemon: Dockerd, config: Path, *args: str, stdin: str | None = None):
    """The docker CLI against ``daemon``, with a config dir (credentials) of the test's own."""
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": f"unix://{daemon.socket}"}
    return subprocess.run([DOCKER, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=180)


def test_referenced_blob_survives_delete_and_image_still_pulls_with_docker(
        server, ecr, repo_name, dockerd, tmp_path):
    try:
        image = imagebuild.Image(layers=[imagebuild.busybox_layer()],
                                 config=imagebuild.config(cmd=["sh"]))
    except RuntimeError as e:  # busybox-static missing: say what to install
        pytest.fail(str(e))
    imagebuild.push(ecr, repo_name, "v1", image)
    config_digest = imagebuild.sha256(image.config_bytes())
    v2 = V2(server.endpoint, get_token(server))

    r = v2.delete(f"/v2/{repo_name}/blobs/{config_digest}")
    assert r.status_code == 405, r.text
    assert error_code(r) == "UNSUPPORTED"

    # 127.0.0.0/8 is an insecure registry to dockerd by default: https is tried, then http.
    host = f"127.0.0.1:{server.port}"
    password = server.aws("ecr", "get-login-password")
    assert password.returncode == 0, password.stderr
    login = docker(dockerd, tmp_path, "login", "--username", "AWS", "--password-stdin", host,
                   stdin=password.stdout)
    assert login.returncode == 0, login.stderr
    pull = docker(dockerd, tmp_path, "pull", f"{host}/{repo_name}:v1")
    assert pull.returncode == 0, f"docker pull failed:\n{pull.stdout}\n{pull.stderr}"
    inspect = docker(dockerd, tmp_path, "image", "inspect", "--format",
                     "{{.Id}} {{index .RepoDigests 0}}", f"{host}/{repo_name}:v1")
    assert inspect.returncode == 0, inspect.stderr
    assert inspect.stdout.split() == [config_digest, f"{host}/{repo_name}@{image.digest}"]
    described = ecr.describe_images(repositoryName=repo_name)["imageDetails"]
    assert [(d["imageDigest"], d["imageTags"]) for d in described] == [(image.digest, ["v1"])]


def test_blob_of_a_deleted_image_is_collected_by_gc(fresh_server):
    """Refusing the DELETE leaves reclaiming to gc: once the image goes, its blobs go too."""
    fresh_server.env["CORRAL_GC_GRACE"] = "0"
    srv = fresh_server.start()
    ecr = srv.client("ecr")
    kept, gone = (imagebuild.Image(layers=[imagebuild.make_layer(
        [(name, name.encode() * 100, 0o644, tarfile.REGTYPE, "")])]) for name in ("kept", "gone"))
    imagebuild.push(ecr, "gc/app", "kept", kept)
    imagebuild.push(ecr, "gc/app", "gone", gone)
    v2 = V2(srv.endpoint, get_token(srv))
    layer = gone.layers[0].digest
    assert v2.delete(f"/v2/gc/app/blobs/{layer}").status_code == 405
    assert srv.admin("gc", {})["gc"]["blobs_deleted"] == 0  # everything is still referenced

    assert v2.delete(f"/v2/gc/app/manifests/{gone.digest}").status_code == 202
    report = srv.admin("gc", {})["gc"]
    assert report["blobs_deleted"] == 3  # the manifest, its config and its layer
    assert report["bytes_reclaimed"] == (len(gone.manifest_bytes()) + len(gone.config_bytes())
                                         + len(gone.layers[0].gz))
    assert blob_files(srv.data_dir, layer) == []
    assert v2.get(f"/v2/gc/app/blobs/{layer}").status_code == 404
    for blob in (kept.config_bytes(), kept.layers[0].gz):
        assert v2.get(f"/v2/gc/app/blobs/{imagebuild.sha256(blob)}").content == blob
