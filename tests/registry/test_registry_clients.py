"""Real registry clients against a real server: skopeo and oras push and pull, byte for byte.

Principle 2 of the design: the registry is done when the clients people use do the job. Every
push here goes through the real login flow (``aws ecr get-login-password`` piped into
``skopeo login``; oras with username ``AWS`` and that password), every pull is compared with
the bytes that were built, and what ECR's own API reports is checked against the same digests.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registry import oci_images as oi
from tests.registry.v2 import digest_of

# --- what gets pushed, and how --------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One kind of image: how to build it, which skopeo transport holds it, which flags."""

    id: str
    build: Callable[[], oi.Built]
    layout: str  # "oci" (OCI image layout) or "dir" (skopeo dir:, keeps Docker types as-is)
    flags: tuple[str, ...] = ()

    def source(self, root: Path, built: oi.Built) -> str:
        if self.layout == "oci":
            return f"oci:{oi.write_oci_layout(root, built)}:v1"
        return f"dir:{oi.write_dir_layout(root, built)}"

    def pull(self, skopeo, repo: str, ref: str, root: Path) -> tuple[str, dict[str, bytes]]:
        if self.layout == "oci":
            # Without the flag skopeo would gzip uncompressed layers on the way in.
            skopeo.pull(repo, ref, f"oci:{root}:v1", *self.flags,
                        "--dest-oci-accept-uncompressed-layers")
            return oi.read_oci_layout(root)
        skopeo.pull(repo, ref, f"dir:{root}", *self.flags)
        return oi.read_dir_layout(root)


CASES = [
    Case("oci-image-gzip", lambda: oi.single(11, layers=3), "oci"),
    Case("oci-image-uncompressed", lambda: oi.single(12, layers=2, compress=False), "oci"),
    Case("oci-index-two-platforms", lambda: oi.multi_platform(13), "oci", ("--all",)),
    Case("docker-schema2", lambda: oi.single(14, docker=True), "dir"),
    Case("docker-manifest-list", lambda: oi.multi_platform(15, docker=True), "dir", ("--all",)),
]
BY_ID = {c.id: c for c in CASES}


def push(case: Case, skopeo, repo: str, tmp_path: Path, tag: str = "v1") -> oi.Built:
    built = case.build()
    skopeo.push(case.source(tmp_path / "src", built), repo, tag, *case.flags)
    return built


# --- skopeo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_skopeo_push_then_pull_is_byte_identical(case, skopeo, repo, v2, tmp_path):
    built = push(case, skopeo, repo, tmp_path)

    head = v2.head(f"/v2/{repo}/manifests/v1", headers={"Accept": built.top.media_type})
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == built.digest
    assert head.headers["Content-Type"] == built.top.media_type
    assert v2.get(f"/v2/{repo}/tags/list").json() == {"name": repo, "tags": ["v1"]}

    top, files = case.pull(skopeo, repo, "v1", tmp_path / "pulled")
    assert top == built.digest
    for digest, blob in built.blobs.items():
        assert files.get(digest) == blob.data, f"{digest} ({blob.media_type}) differs"


def test_skopeo_pulls_by_digest(skopeo, repo, tmp_path):
    case = BY_ID["oci-image-gzip"]
    built = push(case, skopeo, repo, tmp_path)
    top, files = case.pull(skopeo, repo, built.digest, tmp_path / "pulled")
    assert top == built.digest
    assert files[built.images[0].config.digest] == built.images[0].config.data


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_skopeo_picks_one_platform_from_the_index(arch, skopeo, repo, tmp_path):
    case = BY_ID["oci-index-two-platforms"]
    built = push(case, skopeo, repo, tmp_path)
    want = next(i for i in built.images if i.platform[1] == arch)
    root = tmp_path / "pulled"
    skopeo.pull(repo, "v1", f"oci:{root}:v1", "--override-os", "linux", "--override-arch", arch)
    top, files = oi.read_oci_layout(root)
    assert top == want.manifest.digest
    assert all(files[b.digest] == b.data for b in want.blobs)


def test_skopeo_converts_oci_to_docker_schema2_on_push(skopeo, repo, v2, tmp_path):
    built = oi.single(16)
    src = f"oci:{oi.write_oci_layout(tmp_path / 'src', built)}:v1"
    # --format changes the manifest, so no --preserve-digests here.
    skopeo.run("copy", "--authfile", str(skopeo.authfile), "--dest-tls-verify=false",
               "--format", "v2s2", src, f"docker://{skopeo.host}/{repo}:v1")
    r = v2.get(f"/v2/{repo}/manifests/v1", headers={"Accept": oi.DOCKER_MANIFEST})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == oi.DOCKER_MANIFEST
    assert r.headers["Docker-Content-Digest"] == digest_of(r.content)
    doc = r.json()
    assert doc["config"]["digest"] == built.images[0].config.digest
    assert [layer["digest"] for layer in doc["layers"]] == [b.digest for b in built.images[0].layers]

    top, files = oi.read_dir_layout(_pull_dir(skopeo, repo, tmp_path / "pulled"))
    assert top == digest_of(r.content)
    assert all(files[b.digest] == b.data for b in built.images[0].blobs)


def _pull_dir(skopeo, repo: str, root: Path) -> Path:
    skopeo.pull(repo, "v1", f"dir:{root}")
    return root


def test_skopeo_second_push_to_another_repository_mounts_blobs(skopeo, ecr, repo, v2, tmp_path):
    case = BY_ID["oci-image-gzip"]
    built = push(case, skopeo, repo, tmp_path)
    other = f"{repo}-copy"
    ecr.create_repository(repositoryName=other)
    skopeo.run("copy", "--authfile", str(skopeo.authfile), "--src-tls-verify=false",
               "--dest-tls-verify=false", "--preserve-digests",
               f"docker://{skopeo.host}/{repo}:v1", f"docker://{skopeo.host}/{other}:v2")
    for blob in built.images[0].blobs:
        assert v2.head(f"/v2/{other}/blobs/{blob.digest}").status_code == 200
    head = v2.head(f"/v2/{other}/manifests/v2", headers={"Accept": built.top.media_type})
    assert head.headers["Docker-Content-Digest"] == built.digest


# --- what ECR's API says about pushed images -----------------------------------------------


@pytest.mark.parametrize("case", [BY_ID["oci-image-gzip"], BY_ID["oci-index-two-platforms"],
                                  BY_ID["docker-schema2"]], ids=lambda c: c.id)
def test_describe_images_reports_the_pushed_digest_and_tags(case, skopeo, ecr, repo, tmp_path):
    built = push(case, skopeo, repo, tmp_path)
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}
    top = details[built.digest]
    assert top["imageTags"] == ["v1"]
    assert top["repositoryName"] == repo
    assert top["registryId"] == "000000000000"
    assert top["imageManifestMediaType"] == built.top.media_type
    # imageSizeInBytes: the layers as pushed; for an index the largest image it lists.
    assert top["imageSizeInBytes"] == max(i.size for i in built.images)
    if built.is_index:  # each platform image is an image of its own, untagged
        for image in built.images:
            assert "imageTags" not in details[image.manifest.digest]
    listed = ecr.list_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})
    assert listed["imageIds"] == [{"imageDigest": built.digest, "imageTag": "v1"}]


# --- oras -----------------------------------------------------------------------------------


@dataclass
class Oras:
    """oras-py's registry client, logged in as ``AWS`` with the ECR password."""

    client: object
    config: Path  # the docker-style config login wrote (this test's own)
    host: str

    def push(self, repo: str, tag: str, files: list[str], **kw):
        return self.client.push(target=f"{self.host}/{repo}:{tag}", files=files,
                                disable_path_validation=True, config_path=str(self.config), **kw)

    def pull(self, repo: str, tag: str, outdir: Path) -> list[str]:
        return self.client.pull(target=f"{self.host}/{repo}:{tag}", outdir=str(outdir),
                                config_path=str(self.config))


@pytest.fixture
def oras_registry(server, tmp_path) -> Oras:
    import oras.client as client_module
    password = server.aws("ecr", "get-login-password")
    assert password.returncode == 0, password.stderr
    host = f"127.0.0.1:{server.port}"
    client = client_module.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    config = tmp_path / "docker-config.json"
    client.login(username="AWS", password=password.stdout.strip(), hostname=host,
                 config_path=str(config))
    return Oras(client, config, host)


def test_oras_pushes_and_pulls_an_artifact(oras_registry, repo, v2, tmp_path):
    src = tmp_path / "in" / "model.bin"
    src.parent.mkdir()
    data = random.Random(21).randbytes(300_000)
    src.write_bytes(data)
    r = oras_registry.push(repo, "artifact", [str(src)],
                           manifest_annotations={"org.example.purpose": "test"})
    assert r.status_code == 201
    digest = r.headers["Docker-Content-Digest"]

    manifest = v2.get(f"/v2/{repo}/manifests/artifact", headers={"Accept": oi.OCI_MANIFEST})
    assert digest_of(manifest.content) == digest
    assert manifest.json()["layers"][0]["digest"] == digest_of(data)

    out = oras_registry.pull(repo, "artifact", tmp_path / "out")
    assert [Path(p).name for p in out] == ["model.bin"]
    assert Path(out[0]).read_bytes() == data


def test_oras_pushes_a_referrer_listed_by_the_referrers_api(oras_registry, repo, v2, tmp_path):
    from oras.oci import Subject

    image = oi.single(22)
    v2.push_image(repo, image)
    sbom = tmp_path / "sbom.json"
    sbom.write_text(json.dumps({"packages": ["busybox"]}))
    config = tmp_path / "config.json"
    config.write_text("{}")
    sbom_type = "application/vnd.example.sbom.v1+json"
    r = oras_registry.push(
        repo, "sbom", [f"{sbom}:application/json"], manifest_config=f"{config}:{sbom_type}",
        manifest_annotations={"org.example.kind": "sbom"},
        subject=Subject(image.top.media_type, image.digest, image.top.size))
    assert r.status_code == 201
    # OCI distribution v1.1: a manifest with a subject is answered with OCI-Subject.
    assert r.headers["OCI-Subject"] == image.digest
    sbom_digest = r.headers["Docker-Content-Digest"]
    signature = _push_signature(v2, repo, image)

    listing = v2.get(f"/v2/{repo}/referrers/{image.digest}")
    assert listing.status_code == 200
    assert listing.headers["Content-Type"] == oi.OCI_INDEX
    assert "OCI-Filters-Applied" not in listing.headers
    found = {d["digest"]: d for d in listing.json()["manifests"]}
    assert set(found) == {sbom_digest, signature.digest}
    assert found[sbom_digest]["artifactType"] == sbom_type  # the config's media type
    assert found[sbom_digest]["annotations"] == {"org.example.kind": "sbom"}
    assert found[signature.digest] == signature.descriptor(
        artifactType="application/vnd.example.signature.v1")

    filtered = v2.get(f"/v2/{repo}/referrers/{image.digest}",
                      params={"artifactType": sbom_type})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sbom_digest]


def _push_signature(v2, repo: str, image: oi.Built) -> oi.Blob:
    """An OCI 1.1 artifact: explicit artifactType, the empty config, one layer."""
    empty = oi.Blob("application/vnd.oci.empty.v1+json", b"{}")
    payload = oi.Blob("application/octet-stream", b"signature bytes")
    v2.push_blob(repo, empty.data)
    v2.push_blob(repo, payload.data)
    manifest = oi.Blob(oi.OCI_MANIFEST, json.dumps({
        "schemaVersion": 2, "mediaType": oi.OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature.v1",
        "config": empty.descriptor(), "layers": [payload.descriptor()],
        "subject": image.top.descriptor(),
    }).encode())
    r = v2.push_manifest(repo, manifest.digest, manifest)
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == image.digest
    return manifest


def test_referrers_of_a_digest_without_any_is_an_empty_index_not_404(v2, repo):
    digest = digest_of(b"nothing refers to this")
    r = v2.get(f"/v2/{repo}/referrers/{digest}")
    assert r.status_code == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": oi.OCI_INDEX, "manifests": []}


def test_referrers_with_an_invalid_digest_is_400(v2, repo):
    r = v2.get(f"/v2/{repo}/referrers/sha256:nothex")
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "DIGEST_INVALID"
