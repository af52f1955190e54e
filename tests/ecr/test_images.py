"""ECR image and layer operations end to end: boto3 against a real server, images pushed
through the ECR API itself (tests/ecr/push.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.ecr.push import (
    OCI_INDEX,
    OCI_MANIFEST,
    image_manifest,
    index_manifest,
    push_image,
    push_index,
    sha256,
    upload_blob,
)

ACCOUNT = "000000000000"


def error_of(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return exc.value


def code_of(call, *args, **kwargs) -> str:
    return error_of(call, *args, **kwargs).response["Error"]["Code"]


@pytest.fixture
def repo(ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name)
    return repo_name


def details(ecr, repo: str, **kwargs) -> dict[str, dict]:
    out = ecr.describe_images(repositoryName=repo, **kwargs)["imageDetails"]
    return {d["imageDigest"]: d for d in out}


def listed(ecr, repo: str, **kwargs) -> list[tuple[str, str | None]]:
    ids = [i for p in ecr.get_paginator("list_images").paginate(repositoryName=repo, **kwargs)
           for i in p["imageIds"]]
    return sorted((i["imageDigest"], i.get("imageTag")) for i in ids)


def basic_auth(ecr) -> str:
    return "Basic " + ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]


def registry_get(server, ecr, path: str, accept: str | None = None) -> bytes:
    req = urllib.request.Request(f"{server.endpoint}{path}",
                                 headers={"Authorization": basic_auth(ecr),
                                          **({"Accept": accept} if accept else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


# --- push and describe ---------------------------------------------------------------------


def test_pushed_image_is_described_as_ecr_does(ecr, repo):
    before = dt.datetime.now(dt.UTC)
    image = push_image(ecr, repo, tag="v1", layer_sizes=(1234, 5678, 10))
    d = details(ecr, repo)[image.digest]
    assert image.digest == sha256(image.manifest.encode())  # digest of the exact bytes
    assert d["registryId"] == ACCOUNT and d["repositoryName"] == repo
    assert d["imageTags"] == ["v1"]
    assert d["imageSizeInBytes"] == 1234 + 5678 + 10  # the layers as pushed, not the config
    assert d["imageManifestMediaType"] == OCI_MANIFEST
    assert d["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert d["imageStatus"] == "ACTIVE"
    assert before - dt.timedelta(seconds=2) <= d["imagePushedAt"] <= dt.datetime.now(dt.UTC)
    assert "lastRecordedPullTime" not in d  # never pulled yet
    assert "subjectManifestDigest" not in d


def test_index_size_is_the_largest_child_and_children_are_untagged(ecr, repo):
    index, children = push_index(ecr, repo, tag="multi", sizes=((3000, 4000), (100, 200)))
    d = details(ecr, repo)
    assert d[index.digest]["imageSizeInBytes"] == 7000
    assert d[index.digest]["imageManifestMediaType"] == OCI_INDEX
    assert "artifactMediaType" not in d[index.digest]
    assert [d[c.digest]["imageSizeInBytes"] for c in children] == [7000, 300]
    assert all("imageTags" not in d[c.digest] for c in children)
    assert listed(ecr, repo) == sorted([(index.digest, "multi")] +
                                       [(c.digest, None) for c in children])


def test_retag_with_batch_get_image_and_put_image(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    got = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert got["failures"] == []
    [entry] = got["images"]
    assert entry["imageManifest"] == image.manifest  # the exact text pushed
    assert entry["imageId"] == {"imageDigest": image.digest, "imageTag": "v1"}
    assert entry["imageManifestMediaType"] == OCI_MANIFEST
    out = ecr.put_image(repositoryName=repo, imageManifest=entry["imageManifest"],
                        imageTag="prod")["image"]
    assert out["imageId"] == {"imageDigest": image.digest, "imageTag": "prod"}
    assert details(ecr, repo)[image.digest]["imageTags"] == ["prod", "v1"]
    assert listed(ecr, repo) == [(image.digest, "prod"), (image.digest, "v1")]


def test_pushing_again_is_image_already_exists(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    err = error_of(ecr.put_image, repositoryName=repo, imageManifest=image.manifest,
                   imageTag="v1")
    assert err.response["Error"]["Code"] == "ImageAlreadyExistsException"
    assert err.response["Error"]["Message"] == (
        f"Image with digest '{image.digest}' and tag 'v1' already exists in the repository "
        f"with name '{repo}' in registry with id '{ACCOUNT}'")
    assert code_of(ecr.put_image, repositoryName=repo,
                   imageManifest=image.manifest) == "ImageAlreadyExistsException"


def test_moving_a_mutable_tag_leaves_the_old_image_untagged(ecr, repo):
    old = push_image(ecr, repo, tag="latest")
    new = push_image(ecr, repo, tag="latest")
    d = details(ecr, repo)
    assert d[new.digest]["imageTags"] == ["latest"]
    assert "imageTags" not in d[old.digest]
    assert listed(ecr, repo, filter={"tagStatus": "UNTAGGED"}) == [(old.digest, None)]
    assert listed(ecr, repo, filter={"tagStatus": "TAGGED"}) == [(new.digest, "latest")]


def test_immutable_tags_cannot_move(ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name, imageTagMutability="IMMUTABLE")
    first = push_image(ecr, repo_name, tag="v1")
    text, _, _ = image_manifest(ecr, repo_name)
    err = error_of(ecr.put_image, repositoryName=repo_name, imageManifest=text, imageTag="v1")
    assert err.response["Error"]["Code"] == "ImageTagAlreadyExistsException"
    assert "'v1'" in err.response["Error"]["Message"]
    # Nothing changed: v1 still names the first image and the second was not recorded.
    assert set(details(ecr, repo_name)) == {first.digest}
    # A new tag on the same image is fine: immutability is about moving tags.
    ecr.put_image(repositoryName=repo_name, imageManifest=first.manifest, imageTag="v1-alias")
    assert details(ecr, repo_name)[first.digest]["imageTags"] == ["v1", "v1-alias"]


def test_immutable_with_exclusion_lets_excluded_tags_move(ecr, repo_name):
    ecr.create_repository(
        repositoryName=repo_name, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest*"}])
    push_image(ecr, repo_name, tag="latest-dev")
    moved = push_image(ecr, repo_name, tag="latest-dev")
    assert details(ecr, repo_name)[moved.digest]["imageTags"] == ["latest-dev"]
    push_image(ecr, repo_name, tag="v1")
    text, _, _ = image_manifest(ecr, repo_name)
    assert code_of(ecr.put_image, repositoryName=repo_name, imageManifest=text,
                   imageTag="v1") == "ImageTagAlreadyExistsException"


# --- PutImage errors -------------------------------------------------------------------------


def test_put_image_digest_mismatch(ecr, repo):
    text, _, _ = image_manifest(ecr, repo)
    wrong = sha256(b"something else")
    err = error_of(ecr.put_image, repositoryName=repo, imageManifest=text, imageDigest=wrong)
    assert err.response["Error"]["Code"] == "ImageDigestDoesNotMatchException"
    assert wrong in err.response["Error"]["Message"]
    right = sha256(text.encode())
    out = ecr.put_image(repositoryName=repo, imageManifest=text, imageDigest=right)["image"]
    assert out["imageId"] == {"imageDigest": right}


def test_put_image_with_missing_layers_records_nothing(ecr, repo):
    text, _, layers = image_manifest(ecr, repo, upload=False)
    err = error_of(ecr.put_image, repositoryName=repo, imageManifest=text, imageTag="v1")
    assert err.response["Error"]["Code"] == "LayersNotFoundException"
    assert layers[0] in err.response["Error"]["Message"]
    assert ecr.list_images(repositoryName=repo)["imageIds"] == []


def test_index_with_a_missing_child_is_referenced_images_not_found(ecr, repo):
    child = push_image(ecr, repo)
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": child.digest}])
    text = index_manifest([(child, "amd64")])
    err = error_of(ecr.put_image, repositoryName=repo, imageManifest=text)
    assert err.response["Error"]["Code"] == "ReferencedImagesNotFoundException"
    assert child.digest in err.response["Error"]["Message"]


INVALID_PUTS = [
    ("not-json", "{not json", {}),
    ("schema-1", json.dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}), {}),
    ("no-layers", json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": {"mediaType": "a/b", "digest": sha256(b""), "size": 0}}),
     {}),
    ("bad-layer-digest", json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "a/b", "digest": sha256(b""), "size": 0},
        "layers": [{"mediaType": "a/b", "digest": "sha256:xyz", "size": 1}]}), {}),
    ("media-type-disagrees", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                         "manifests": []}),
     {"imageManifestMediaType": OCI_MANIFEST}),
    ("unknown-media-type", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                       "manifests": []}),
     {"imageManifestMediaType": "text/plain"}),
    ("bad-tag", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
     {"imageTag": "-leading-dash"}),
    ("bad-digest", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
     {"imageDigest": "md5:abcdef"}),
]


@pytest.mark.parametrize("why,text,extra", INVALID_PUTS, ids=[c[0] for c in INVALID_PUTS])
def test_invalid_put_image_is_invalid_parameter(ecr, repo, why, text, extra):
    assert code_of(ecr.put_image, repositoryName=repo, imageManifest=text,
                   **extra) == "InvalidParameterException"
    assert ecr.list_images(repositoryName=repo)["imageIds"] == []


def test_put_image_in_a_missing_repository(ecr):
    assert code_of(ecr.put_image, repositoryName="no/such-repo",
                   imageManifest="{}") == "RepositoryNotFoundException"


# --- BatchGetImage ---------------------------------------------------------------------------


def test_accepted_media_types(ecr, repo):
    index, children = push_index(ecr, repo, tag="multi")
    only_manifests = [OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"]
    out = ecr.batch_get_image(repositoryName=repo, acceptedMediaTypes=only_manifests,
                              imageIds=[{"imageTag": "multi"},
                                        {"imageDigest": children[0].digest}])
    assert [i["imageId"] for i in out["images"]] == [{"imageDigest": children[0].digest}]
    [failure] = out["failures"]
    assert failure["imageId"] == {"imageTag": "multi"}
    assert failure["failureCode"] == "ImageNotFound"
    assert OCI_INDEX in failure["failureReason"]
    out = ecr.batch_get_image(repositoryName=repo, acceptedMediaTypes=[OCI_INDEX],
                              imageIds=[{"imageTag": "multi"}])
    assert out["failures"] == []
    assert out["images"][0]["imageManifest"] == index.manifest
    assert out["images"][0]["imageManifestMediaType"] == OCI_INDEX


BATCH_FAILURES = [  # (why, image id built from the pushed image, failureCode)
    ("missing-tag", lambda d: {"imageTag": "nope"}, "ImageNotFound"),
    ("missing-digest", lambda d: {"imageDigest": sha256(b"nope")}, "ImageNotFound"),
    ("bad-digest", lambda d: {"imageDigest": "sha256:xyz"}, "InvalidImageDigest"),
    ("bad-tag", lambda d: {"imageTag": "bad tag!"}, "InvalidImageTag"),
    ("neither", lambda d: {}, "MissingDigestAndTag"),
    ("tag-of-another-image", lambda d: {"imageDigest": d, "imageTag": "other"},
     "ImageTagDoesNotMatchDigest"),
]


@pytest.fixture
def two_images(ecr, repo):
    push_image(ecr, repo, tag="other")
    return push_image(ecr, repo, tag="v1")


@pytest.mark.parametrize("why,make_id,code", BATCH_FAILURES, ids=[c[0] for c in BATCH_FAILURES])
def test_batch_get_image_failures_are_listed_not_raised(ecr, repo, two_images, why, make_id, code):
    bad = make_id(two_images.digest)
    out = ecr.batch_get_image(repositoryName=repo, imageIds=[bad, {"imageTag": "v1"}])
    assert [i["imageId"] for i in out["images"]] == [
        {"imageDigest": two_images.digest, "imageTag": "v1"}]
    assert [(f["imageId"], f["failureCode"]) for f in out["failures"]] == [(bad, code)]
    assert out["failures"][0]["failureReason"]


@pytest.mark.parametrize("why,make_id,code", BATCH_FAILURES, ids=[c[0] for c in BATCH_FAILURES])
def test_batch_delete_image_failures_are_listed_and_delete_nothing(ecr, repo, two_images, why,
                                                                   make_id, code):
    bad = make_id(two_images.digest)
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[bad])
    assert out["imageIds"] == []
    assert [(f["imageId"], f["failureCode"]) for f in out["failures"]] == [(bad, code)]
    assert len(listed(ecr, repo)) == 2


def test_batch_get_image_records_the_pull(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    assert "lastRecordedPullTime" not in details(ecr, repo)[image.digest]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": image.digest}])
    pulled = details(ecr, repo)[image.digest]["lastRecordedPullTime"]
    assert before <= pulled <= dt.datetime.now(dt.UTC)


def test_registry_serves_what_the_ecr_api_pushed(server, ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    got = registry_get(server, ecr, f"/v2/{repo}/manifests/v1", accept=OCI_MANIFEST)
    assert got == image.manifest.encode()
    assert "lastRecordedPullTime" in details(ecr, repo)[image.digest]  # a registry pull


# --- BatchDeleteImage ------------------------------------------------------------------------


def test_delete_by_tag_removes_the_tag_then_the_image_with_its_last_tag(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    ecr.put_image(repositoryName=repo, imageManifest=image.manifest, imageTag="prod")
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert out == {**out, "imageIds": [{"imageDigest": image.digest, "imageTag": "v1"}],
                   "failures": []}
    assert details(ecr, repo)[image.digest]["imageTags"] == ["prod"]
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "prod"}])
    assert out["imageIds"] == [{"imageDigest": image.digest, "imageTag": "prod"}]
    assert ecr.describe_images(repositoryName=repo)["imageDetails"] == []


def test_delete_by_digest_removes_the_image_and_all_its_tags(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    ecr.put_image(repositoryName=repo, imageManifest=image.manifest, imageTag="prod")
    keep = push_image(ecr, repo)
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": image.digest}])
    assert sorted(out["imageIds"], key=lambda i: i["imageTag"]) == [
        {"imageDigest": image.digest, "imageTag": "prod"},
        {"imageDigest": image.digest, "imageTag": "v1"}]
    assert listed(ecr, repo) == [(keep.digest, None)]
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": keep.digest}])
    assert out["imageIds"] == [{"imageDigest": keep.digest}]
    # The tags went with the image: pushing the same manifest again starts untagged.
    ecr.put_image(repositoryName=repo, imageManifest=image.manifest)
    assert "imageTags" not in details(ecr, repo)[image.digest]


def test_an_image_a_manifest_list_names_cannot_be_deleted(ecr, repo):
    index, children = push_index(ecr, repo, tag="multi")
    out = ecr.batch_delete_image(repositoryName=repo,
                                 imageIds=[{"imageDigest": children[0].digest}])
    assert out["imageIds"] == []
    [failure] = out["failures"]
    assert failure["failureCode"] == "ImageReferencedByManifestList"
    assert index.digest in failure["failureReason"]
    assert children[0].digest in details(ecr, repo)


def test_deleting_a_child_with_its_index_in_one_request_works_in_any_order(ecr, repo):
    index, children = push_index(ecr, repo, tag="multi")
    ids = [{"imageDigest": c.digest} for c in children] + [{"imageTag": "multi"}]
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=ids)
    assert out["failures"] == []
    assert len(out["imageIds"]) == 3
    assert ecr.list_images(repositoryName=repo)["imageIds"] == []


# --- listing and pagination --------------------------------------------------------------------


@pytest.fixture
def seven_images(ecr, repo):
    """Seven images: five tagged (one of them twice), two untagged: eight list entries."""
    pushed = [push_image(ecr, repo, tag=f"t{i}", layer_sizes=(10,)) for i in range(5)]
    ecr.put_image(repositoryName=repo, imageManifest=pushed[2].manifest, imageTag="t2-alias")
    pushed += [push_image(ecr, repo, layer_sizes=(10,)) for _ in range(2)]
    return pushed


PAGE_CASES = [("any", {}, 8), ("tagged", {"filter": {"tagStatus": "TAGGED"}}, 6),
              ("untagged", {"filter": {"tagStatus": "UNTAGGED"}}, 2),
              ("archived-only", {"filter": {"imageStatus": "ARCHIVED"}}, 0)]


@pytest.mark.parametrize("why,kwargs,count", PAGE_CASES, ids=[c[0] for c in PAGE_CASES])
def test_list_images_pages_through_every_entry_once(ecr, repo, seven_images, why, kwargs, count):
    entries, token, pages = [], None, 0
    while True:
        out = ecr.list_images(repositoryName=repo, maxResults=3,
                              **kwargs | ({"nextToken": token} if token else {}))
        pages += 1
        assert len(out["imageIds"]) <= 3
        entries += [(i["imageDigest"], i.get("imageTag")) for i in out["imageIds"]]
        token = out.get("nextToken")
        if not token:
            break
    assert len(entries) == len(set(entries)) == count
    assert pages == max(1, -(-count // 3))
    assert sorted(entries) == listed(ecr, repo, **kwargs)


@pytest.mark.parametrize("why,kwargs,count", [("any", {}, 7), ("untagged", {
    "filter": {"tagStatus": "UNTAGGED"}}, 2)], ids=["any", "untagged"])
def test_describe_images_pages(ecr, repo, seven_images, why, kwargs, count):
    pages = list(ecr.get_paginator("describe_images").paginate(
        repositoryName=repo, PaginationConfig={"PageSize": 2}, **kwargs))
    got = [d["imageDigest"] for p in pages for d in p["imageDetails"]]
    assert len(got) == len(set(got)) == count
    assert all(len(p["imageDetails"]) <= 2 for p in pages)
    if not kwargs:
        assert got == [p.digest for p in seven_images]  # push order
        aliased = [d for p in pages for d in p["imageDetails"]
                   if d["imageDigest"] == seven_images[2].digest][0]
        assert aliased["imageTags"] == ["t2", "t2-alias"]


def test_describe_images_by_id_and_missing_ids(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    out = ecr.describe_images(repositoryName=repo, imageIds=[
        {"imageTag": "v1"}, {"imageDigest": image.digest}])["imageDetails"]
    assert [d["imageDigest"] for d in out] == [image.digest]  # one detail per image
    err = error_of(ecr.describe_images, repositoryName=repo, imageIds=[{"imageTag": "nope"}])
    assert err.response["Error"]["Code"] == "ImageNotFoundException"
    assert err.response["Error"]["Message"] == (
        "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within "
        f"the repository with name '{repo}' in the registry with id '{ACCOUNT}'")
    missing = sha256(b"missing")
    err = error_of(ecr.describe_images, repositoryName=repo, imageIds=[{"imageDigest": missing}])
    assert f"{{imageDigest:'{missing}', imageTag:'null'}}" in err.response["Error"]["Message"]


LISTING_ERRORS = [
    ("bad-token", "list_images", {"nextToken": "garbage"}, "InvalidParameterException"),
    ("bad-token-describe", "describe_images", {"nextToken": "garbage"},
     "InvalidParameterException"),
    ("ids-with-max-results", "describe_images",
     {"imageIds": [{"imageTag": "x"}], "maxResults": 5}, "InvalidParameterException"),
    ("bad-tag-status", "list_images", {"filter": {"tagStatus": "SOME"}},
     "InvalidParameterException"),
]


@pytest.mark.parametrize("why,op,kwargs,code", LISTING_ERRORS, ids=[c[0] for c in LISTING_ERRORS])
def test_listing_errors(server, repo, why, op, kwargs, code):
    import boto3
    from botocore.config import Config

    raw = boto3.client("ecr", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=Config(parameter_validation=False))
    assert code_of(getattr(raw, op), repositoryName=repo, **kwargs) == code


def test_listing_a_missing_repository(ecr):
    for op in (ecr.list_images, ecr.describe_images):
        assert code_of(op, repositoryName="no/such-repo") == "RepositoryNotFoundException"


# --- layers ------------------------------------------------------------------------------------


def test_initiate_layer_upload_answers_a_uuid_and_part_size(ecr, repo):
    out = ecr.initiate_layer_upload(repositoryName=repo)
    assert len(out["uploadId"]) == 36 and out["uploadId"].count("-") == 4
    assert out["partSize"] == 10 * 1024 * 1024


def test_upload_layer_part_out_of_order_is_invalid_layer_part(ecr, repo):
    data = os.urandom(300)
    uid = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0, partLastByte=99,
                          layerPartBlob=data[:100])
    for first, last in [(200, 299), (50, 149), (0, 99)]:  # a gap, an overlap, a repeat
        err = error_of(ecr.upload_layer_part, repositoryName=repo, uploadId=uid,
                       partFirstByte=first, partLastByte=last, layerPartBlob=data[first:last + 1])
        assert err.response["Error"]["Code"] == "InvalidLayerPartException"
        assert "lastValidByteReceived: 99" in err.response["Error"]["Message"]
    # Last byte that disagrees with the part's length.
    assert code_of(ecr.upload_layer_part, repositoryName=repo, uploadId=uid, partFirstByte=100,
                   partLastByte=150, layerPartBlob=data[100:300]) == "InvalidLayerPartException"
    # The upload is intact: the right next part continues it.
    out = ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=100,
                                partLastByte=299, layerPartBlob=data[100:])
    assert out == {**out, "lastByteReceived": 299, "uploadId": uid, "repositoryName": repo,
                   "registryId": ACCOUNT}
    out = ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[sha256(data)])
    assert out["layerDigest"] == sha256(data)


def test_complete_layer_upload_with_the_wrong_digest_is_invalid_layer(ecr, repo):
    data = os.urandom(500)
    uid = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0, partLastByte=499,
                          layerPartBlob=data)
    wrong = sha256(b"other")
    err = error_of(ecr.complete_layer_upload, repositoryName=repo, uploadId=uid,
                   layerDigests=[wrong])
    assert err.response["Error"]["Code"] == "InvalidLayerException"
    assert sha256(data) in err.response["Error"]["Message"]
    out = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[wrong, sha256(data)])
    assert out["layers"] == []
    # The failed upload is gone.
    assert code_of(ecr.complete_layer_upload, repositoryName=repo, uploadId=uid,
                   layerDigests=[sha256(data)]) == "UploadNotFoundException"


def test_complete_layer_upload_errors(ecr, repo, repo_name):
    data = os.urandom(64)
    upload_blob(ecr, repo, data)
    # The same layer again: its content is verified, then LayerAlreadyExists.
    uid = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0, partLastByte=63,
                          layerPartBlob=data)
    assert code_of(ecr.complete_layer_upload, repositoryName=repo, uploadId=uid,
                   layerDigests=[sha256(data)]) == "LayerAlreadyExistsException"
    # Nothing uploaded.
    uid = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    assert code_of(ecr.complete_layer_upload, repositoryName=repo, uploadId=uid,
                   layerDigests=[sha256(b"")]) == "EmptyUploadException"
    # An upload id this repository never issued (another repository's, or made up).
    other = repo_name + "-other"
    ecr.create_repository(repositoryName=other)
    assert code_of(ecr.upload_layer_part, repositoryName=other, uploadId=uid, partFirstByte=0,
                   partLastByte=0, layerPartBlob=b"x") == "UploadNotFoundException"
    made_up = "12345678-1234-1234-1234-123456789012"
    err = error_of(ecr.complete_layer_upload, repositoryName=repo, uploadId=made_up,
                   layerDigests=[sha256(data)])
    assert err.response["Error"]["Code"] == "UploadNotFoundException"
    assert made_up in err.response["Error"]["Message"]


def test_batch_check_layer_availability(ecr, repo, repo_name):
    data = os.urandom(321)
    digest = upload_blob(ecr, repo, data)
    missing = sha256(b"missing")
    out = ecr.batch_check_layer_availability(repositoryName=repo,
                                             layerDigests=[digest, missing, "sha256:zz"])
    assert out["layers"] == [{"layerDigest": digest, "layerAvailability": "AVAILABLE",
                              "layerSize": 321}]
    assert [(f["layerDigest"], f["failureCode"]) for f in out["failures"]] == [
        (missing, "MissingLayerDigest"), ("sha256:zz", "InvalidLayerDigest")]
    # Blobs belong to the repository they were pushed to.
    other = repo_name + "-other"
    ecr.create_repository(repositoryName=other)
    out = ecr.batch_check_layer_availability(repositoryName=other, layerDigests=[digest])
    assert out["layers"] == [] and out["failures"][0]["failureCode"] == "MissingLayerDigest"


def test_get_download_url_for_layer_serves_the_layer_with_registry_auth(server, ecr, repo):
    image = push_image(ecr, repo, tag="v1", layer_sizes=(777,))
    out = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=image.layers[0])
    assert out["layerDigest"] == image.layers[0]
    assert out["downloadUrl"] == (
        f"http://127.0.0.1:{server.port}/v2/{repo}/blobs/{image.layers[0]}")
    path = out["downloadUrl"].split(str(server.port), 1)[1]
    data = registry_get(server, ecr, path)
    assert sha256(data) == image.layers[0] and len(data) == 777
    err = error_of(ecr.get_download_url_for_layer, repositoryName=repo,
                   layerDigest=sha256(b"missing"))
    assert err.response["Error"]["Code"] == "LayersNotFoundException"


def test_describe_image_replication_status(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    out = ecr.describe_image_replication_status(repositoryName=repo, imageId={"imageTag": "v1"})
    assert out["repositoryName"] == repo
    assert out["imageId"] == {"imageDigest": image.digest, "imageTag": "v1"}
    assert out["replicationStatuses"] == []
    assert code_of(ecr.describe_image_replication_status, repositoryName=repo,
                   imageId={"imageTag": "nope"}) == "ImageNotFoundException"


# --- repositories with images ----------------------------------------------------------------


def test_delete_repository_needs_force_when_images_remain(ecr, repo):
    image = push_image(ecr, repo, tag="v1")
    pending = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    err = error_of(ecr.delete_repository, repositoryName=repo)
    assert err.response["Error"]["Code"] == "RepositoryNotEmptyException"
    assert details(ecr, repo)[image.digest]["imageTags"] == ["v1"]
    ecr.delete_repository(repositoryName=repo, force=True)
    assert code_of(ecr.list_images, repositoryName=repo) == "RepositoryNotFoundException"
    # A new repository of the same name starts empty: no images, blobs or uploads.
    ecr.create_repository(repositoryName=repo)
    assert ecr.list_images(repositoryName=repo)["imageIds"] == []
    out = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[image.layers[0]])
    assert out["layers"] == []
    assert code_of(ecr.upload_layer_part, repositoryName=repo, uploadId=pending, partFirstByte=0,
                   partLastByte=0, layerPartBlob=b"x") == "UploadNotFoundException"


def test_image_operations_in_another_account_registry(server):
    from tests.server import OTHER_ACCOUNT, OTHER_KEY, OTHER_SECRET

    other = server.client("ecr", key=OTHER_KEY, secret=OTHER_SECRET)
    other.create_repository(repositoryName="other/images")
    image = push_image(other, "other/images", tag="v1")
    d = details(other, "other/images")[image.digest]
    assert d["registryId"] == OTHER_ACCOUNT
    url = other.get_download_url_for_layer(repositoryName="other/images",
                                           layerDigest=image.layers[0])["downloadUrl"]
    assert f"{OTHER_ACCOUNT}.dkr.ecr.us-east-1.localhost:{server.port}" in url


def test_manifest_text_round_trips_unicode_exactly(server, ecr, repo):
    text, _, _ = image_manifest(ecr, repo)
    doc = json.loads(text)
    doc["annotations"] = {"org.opencontainers.image.description": "café ☕ — naïve"}
    text = json.dumps(doc, ensure_ascii=False)
    out = ecr.put_image(repositoryName=repo, imageManifest=text, imageTag="u")["image"]
    assert out["imageId"]["imageDigest"] == sha256(text.encode("utf-8"))
    got = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "u"}])["images"][0]
    assert got["imageManifest"] == text
    assert registry_get(server, ecr, f"/v2/{repo}/manifests/u") == text.encode("utf-8")
