"""OCI distribution conformance over raw HTTP (distribution-spec v1.1, as ECR serves it).

Each test names the spec rule it checks (end-N ids are the spec's endpoint table; see
/work/shared/reference/ecr-registry-and-auth.md §7). Requests carry
``Authorization: Basic <GetAuthorizationToken's token>``, as docker and skopeo do after login.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from corral.registry.blobs import blob_path
from corral.store import Store
from corral.store.schema import ecr_auth_tokens
from tests.registry import oci_images as oi
from tests.registry.conftest import blob_files, get_token
from tests.registry.v2 import V2, digest_of, error_code


def challenge(server, host: str | None = None) -> str:
    """ECR's Basic challenge; the realm is the advertised host of the registry asked
    (issue 17 item 8: realm="https://<advertised host>/"), here the plain endpoint's."""
    host = host or f"127.0.0.1:{server.port}"
    return f'Basic realm="http://{host}/",service="ecr.amazonaws.com"'


# --- authentication (ECR §3) ----------------------------------------------------------------


def test_base_without_credentials_is_a_basic_challenge(server):
    r = V2(server.endpoint, None).get("/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == challenge(server)
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert error_code(r) == "UNAUTHORIZED"


def test_challenge_realm_names_the_registry_the_request_named(server):
    other = f"111111111111.dkr.ecr.us-east-1.localhost:{server.port}"
    r = requests.get(f"{server.endpoint}/v2/", headers={"Host": other}, timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == challenge(server, other)


def test_base_with_a_token_is_200(v2):
    r = v2.get("/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


@pytest.mark.parametrize("credentials", [
    "garbage!!", "QVdTOg==",  # "AWS:" with no password
    "QVdTOm5vdC1hLXJlYWwtcGFzc3dvcmQ=",  # "AWS:not-a-real-password"
    "dXNlcjpwYXNz",  # "user:pass": the user must be AWS
], ids=["not-base64", "empty-password", "unknown-password", "wrong-user"])
def test_bad_basic_credentials_are_401(server, credentials):
    r = V2(server.endpoint, credentials).get("/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == challenge(server)


def test_bearer_scheme_is_401_with_a_basic_challenge(server, token):
    r = V2(server.endpoint, None).get("/v2/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == challenge(server)


def test_expired_token_is_401(server):
    token = get_token(server)
    assert V2(server.endpoint, token).get("/v2/").status_code == 200
    # Age this one token past its 12 hours, in the state store through its own schema.
    password = base64.b64decode(token).decode().split(":", 1)[1]
    t = ecr_auth_tokens.c
    store = Store(f"sqlite:///{server.data_dir / 'state.db'}")
    try:
        with store.transaction() as db:
            n = db.execute(ecr_auth_tokens.update()
                           .where(t.token_hash == hashlib.sha256(password.encode()).hexdigest())
                           .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))).rowcount
    finally:
        store.close()
    assert n == 1
    r = V2(server.endpoint, token).get("/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == challenge(server)
    assert "expired" in r.json()["errors"][0]["message"]


# --- blob push (end-4a/4b/5/6/13/14) --------------------------------------------------------


def test_monolithic_post_with_digest_is_201(v2, repo):
    data = b"monolithic"
    digest = digest_of(data)
    r = v2.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    head = v2.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest


def test_post_then_put_is_202_then_201(v2, repo):
    data = random.Random(1).randbytes(100_000)
    r = v2.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    r = v2.put(location, params={"digest": digest_of(data)}, data=data,
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest_of(data)}"
    assert v2.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data


def test_chunked_upload_with_status_and_out_of_order_chunk(v2, repo):
    data = random.Random(2).randbytes(3000)
    location = v2.start_upload(repo)
    r = v2.patch(location, data=data[:1000], headers={"Content-Range": "0-999"})
    assert r.status_code == 202
    assert r.headers["Range"] == "0-999"
    location = r.headers["Location"]

    # Re-sending an accepted chunk, or skipping ahead, is 416 with the range held so far.
    for bad in ("0-999", "1500-2499"):
        start, end = map(int, bad.split("-"))
        r = v2.patch(location, data=data[start:end + 1], headers={"Content-Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["Range"] == "0-999"

    status = v2.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-999"
    assert status.headers["Location"] == location

    r = v2.patch(location, data=data[1000:2000], headers={"Content-Range": "1000-1999"})
    assert r.status_code == 202
    assert r.headers["Range"] == "0-1999"
    # The closing PUT carries the last chunk.
    r = v2.put(r.headers["Location"], params={"digest": digest_of(data)}, data=data[2000:],
               headers={"Content-Range": "2000-2999"})
    assert r.status_code == 201
    assert v2.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data
    assert v2.get(location).status_code == 404  # a finished session is gone


def test_streamed_patch_without_content_range(v2, repo):
    data = random.Random(3).randbytes(3 << 20)
    location = v2.start_upload(repo)
    r = v2.patch(location, data=iter([data[i:i + 65536] for i in range(0, len(data), 65536)]))
    assert r.status_code == 202
    assert r.headers["Range"] == f"0-{len(data) - 1}"
    r = v2.put(r.headers["Location"], params={"digest": digest_of(data)})
    assert r.status_code == 201


def test_cancelled_upload_is_204_then_blob_upload_unknown(v2, repo):
    location = v2.start_upload(repo)
    v2.patch(location, data=b"partial", headers={"Content-Range": "0-6"})
    assert v2.delete(location).status_code == 204
    r = v2.get(location)
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UPLOAD_UNKNOWN"
    assert v2.patch(location, data=b"x", headers={"Content-Range": "7-7"}).status_code == 404


def test_upload_session_is_bound_to_its_repository(v2, repo, ecr):
    other = f"{repo}-other"
    ecr.create_repository(repositoryName=other)
    location = v2.start_upload(repo)
    upload_id = location.rsplit("/", 1)[1]
    r = v2.get(f"/v2/{other}/blobs/uploads/{upload_id}")
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_sha512_blob_upload(v2, repo):
    data = b"hashed with sha512"
    digest = v2.push_blob(repo, data, "sha512")
    assert digest.startswith("sha512:") and len(digest) == 7 + 128
    head = v2.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    assert v2.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_sha512_chunked_upload(v2, repo):
    data = random.Random(4).randbytes(5000)
    location = v2.start_upload(repo)
    r = v2.patch(location, data=data[:2000], headers={"Content-Range": "0-1999"})
    r = v2.put(r.headers["Location"], params={"digest": digest_of(data, "sha512")},
               data=data[2000:], headers={"Content-Range": "2000-4999"})
    assert r.status_code == 201
    assert v2.get(f"/v2/{repo}/blobs/{digest_of(data, 'sha512')}").content == data


# --- blob pull, ranges and delete (end-2, end-10) --------------------------------------------

RANGES = [  # (id, Range header, expected status, expected slice or None)
    ("first-bytes", "bytes=0-9", 206, slice(0, 10)),
    ("middle", "bytes=100-199", 206, slice(100, 200)),
    ("open-ended", "bytes=990-", 206, slice(990, 1000)),
    ("suffix", "bytes=-5", 206, slice(995, 1000)),
    ("end-past-size", "bytes=900-5000", 206, slice(900, 1000)),
    ("start-at-size", "bytes=1000-1005", 416, None),
    ("start-past-size", "bytes=5000-", 416, None),
]


@pytest.fixture
def thousand(v2, repo) -> tuple[str, bytes]:
    data = random.Random(5).randbytes(1000)
    return v2.push_blob(repo, data), data


@pytest.mark.parametrize("rid,header,status,part", RANGES, ids=[r[0] for r in RANGES])
def test_blob_get_with_range(v2, repo, thousand, rid, header, status, part):
    digest, data = thousand
    r = v2.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == status
    if status == 206:
        want = data[part]
        assert r.content == want
        assert r.headers["Content-Range"] == f"bytes {part.start}-{part.stop - 1}/1000"
    else:
        assert r.headers["Content-Range"] == "bytes */1000"


def test_blob_get_whole(v2, repo, thousand):
    digest, data = thousand
    r = v2.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Content-Length"] == "1000"


def test_blob_of_another_repository_is_unknown(v2, repo, thousand, ecr):
    other = f"{repo}-other"
    ecr.create_repository(repositoryName=other)
    r = v2.get(f"/v2/{other}/blobs/{thousand[0]}")
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UNKNOWN"
    assert v2.head(f"/v2/{other}/blobs/{thousand[0]}").status_code == 404


BLOB_DELETES = [  # (id, digest to delete): ECR has no blob deletion on /v2/, whatever the blob
    ("config-of-a-tagged-image", "config"),
    ("layer-of-a-tagged-image", "layer"),
    ("unreferenced-blob", "loose"),
    ("never-pushed", "unknown"),
]


@pytest.mark.parametrize("bid,which", BLOB_DELETES, ids=[b[0] for b in BLOB_DELETES])
def test_blob_delete_is_unsupported(server, v2, repo, pushed, thousand, bid, which):
    """end-10 "disabled ⇒ 405" (issue 17 item 2): nothing is unlinked, everything still pulls."""
    image = pushed.images[0]
    digest = {"config": image.config.digest, "layer": image.layers[0].digest,
              "loose": thousand[0], "unknown": digest_of(b"never pushed")}[which]
    r = v2.delete(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == "GET, HEAD"
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    err = r.json()["errors"][0]
    assert err["code"] == "UNSUPPORTED"
    assert err["message"].startswith("The operation is unsupported.")
    for blob in image.blobs:
        got = v2.get(f"/v2/{repo}/blobs/{blob.digest}")
        assert (got.status_code, got.content) == (200, blob.data), blob.digest
        assert (server.data_dir / "registry" / blob_path(blob.digest)).is_file()
    assert v2.get(f"/v2/{repo}/blobs/{thousand[0]}").content == thousand[1]
    assert v2.get(f"/v2/{repo}/manifests/v1").status_code == 200


def test_cancelling_an_upload_removes_only_that_uploads_bytes(server, v2, repo, pushed):
    """A session holding the same bytes as a referenced blob is cancelled: the blob stays."""
    config = pushed.images[0].config
    location = v2.start_upload(repo)
    r = v2.patch(location, data=config.data,
                 headers={"Content-Range": f"0-{config.size - 1}"})
    assert r.status_code == 202
    assert v2.delete(location).status_code == 204
    upload_id = location.rsplit("/", 1)[1]
    assert not (server.data_dir / "registry" / "uploads" / upload_id).exists()
    for bogus in ("%2E%2E", "not-an-upload", "00000000-0000-0000-0000-000000000000"):
        r = v2.delete(f"/v2/{repo}/blobs/uploads/{bogus}")
        assert r.status_code == 404, bogus
        assert error_code(r) == "BLOB_UPLOAD_UNKNOWN", bogus
    assert v2.get(f"/v2/{repo}/blobs/{config.digest}").content == config.data
    assert v2.get(f"/v2/{repo}/manifests/v1").status_code == 200


# --- cross-repository mount (end-11) --------------------------------------------------------


def test_mount_from_another_repository_is_201(v2, repo, thousand, ecr):
    digest, data = thousand
    other = f"{repo}-to"
    ecr.create_repository(repositoryName=other)
    r = v2.post(f"/v2/{other}/blobs/uploads/", params={"mount": digest, "from": repo})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{other}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert v2.get(f"/v2/{other}/blobs/{digest}").content == data


def test_mount_without_from_is_automatic(v2, repo, thousand, ecr):
    digest, _ = thousand
    other = f"{repo}-to"
    ecr.create_repository(repositoryName=other)
    r = v2.post(f"/v2/{other}/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 201
    assert v2.head(f"/v2/{other}/blobs/{digest}").status_code == 200


@pytest.mark.parametrize("source", ["right-repo-unknown-blob", "unknown-repo"])
def test_mount_that_cannot_happen_opens_an_upload_session(v2, repo, source):
    data = b"never pushed anywhere " + source.encode()
    from_repo = repo if source == "right-repo-unknown-blob" else "no/such-repo"
    r = v2.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest_of(data), "from": from_repo})
    assert r.status_code == 202
    location = r.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    r = v2.put(location, params={"digest": digest_of(data)}, data=data)
    assert r.status_code == 201


# --- manifests (end-3, end-7, end-9) --------------------------------------------------------


@pytest.fixture
def pushed(v2, repo) -> oi.Built:
    built = oi.single(31)
    v2.push_image(repo, built, "v1")
    return built


def test_manifest_put_answers_201_with_digest_and_location(v2, repo):
    built = oi.single(32)
    for blob in built.images[0].blobs:
        v2.push_blob(repo, blob.data)
    r = v2.push_manifest(repo, "v1", built.top)
    assert r.status_code == 201
    assert r.headers["Docker-Content-Digest"] == built.digest
    assert r.headers["Location"] == f"/v2/{repo}/manifests/{built.digest}"
    assert "OCI-Subject" not in r.headers


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_manifest_get_and_head(v2, repo, pushed, by):
    ref = "v1" if by == "tag" else pushed.digest
    r = v2.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": oi.OCI_MANIFEST})
    assert r.status_code == 200
    assert r.content == pushed.top.data
    assert r.headers["Content-Type"] == oi.OCI_MANIFEST
    assert r.headers["Docker-Content-Digest"] == pushed.digest
    head = v2.head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": oi.OCI_MANIFEST})
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(pushed.top.size)
    assert head.headers["Docker-Content-Digest"] == pushed.digest
    assert head.content == b""


ACCEPTS = [  # (id, Accept headers, served?)
    ("none", [], True),
    ("exact", [oi.OCI_MANIFEST], True),
    ("among-several", [oi.DOCKER_MANIFEST, oi.OCI_MANIFEST, oi.OCI_INDEX], True),
    ("one-header-comma-list", [f"{oi.DOCKER_MANIFEST}, {oi.OCI_MANIFEST}"], True),
    ("with-q-params", [f"{oi.OCI_MANIFEST};q=0.9"], True),
    ("wildcard", ["*/*"], True),
    ("only-docker-types", [oi.DOCKER_MANIFEST, oi.DOCKER_LIST], False),
]


@pytest.mark.parametrize("aid,accept,served", ACCEPTS, ids=[a[0] for a in ACCEPTS])
def test_manifest_accept_negotiation(server, token, repo, pushed, aid, accept, served):
    # Several Accept headers, as Go clients send them: build the request by hand.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("GET", f"/v2/{repo}/manifests/v1")
    conn.putheader("Authorization", f"Basic {token}")
    for value in accept:
        conn.putheader("Accept", value)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if served:
        assert r.status == 200
        assert body == pushed.top.data
        assert r.getheader("Content-Type") == oi.OCI_MANIFEST
    else:
        assert r.status == 404
        assert json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"


@pytest.mark.parametrize("ref", ["v2", "sha256:" + "0" * 64])
def test_missing_manifest_error_says_requested_image_not_found(v2, repo, pushed, ref):
    """Issue 17 item 10: ECR's words, once (clients print "manifest unknown: <message>")."""
    for method in ("GET", "DELETE"):
        r = v2.request(method, f"/v2/{repo}/manifests/{ref}")
        assert r.status_code == 404, (method, r.text)
        err = r.json()["errors"][0]
        assert (err["code"], err["message"]) == ("MANIFEST_UNKNOWN", "Requested image not found")
        assert err["detail"] == {"repository": repo, "reference": ref}


def test_manifest_by_digest_put_checks_the_digest(v2, repo, pushed):
    other = digest_of(b"something else")
    r = v2.push_manifest(repo, other, pushed.top)
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"


def test_tag_delete_keeps_the_image(v2, repo, pushed):
    v2.push_manifest(repo, "v2", pushed.top)
    assert v2.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    assert v2.get(f"/v2/{repo}/manifests/v1").status_code == 404
    assert v2.get(f"/v2/{repo}/manifests/v2").status_code == 200
    assert v2.get(f"/v2/{repo}/manifests/{pushed.digest}").status_code == 200


def test_manifest_delete_by_digest_removes_it_and_its_tags(v2, repo, pushed):
    v2.push_manifest(repo, "v2", pushed.top)
    assert v2.delete(f"/v2/{repo}/manifests/{pushed.digest}").status_code == 202
    for ref in ("v1", "v2", pushed.digest):
        r = v2.get(f"/v2/{repo}/manifests/{ref}")
        assert r.status_code == 404, ref
        assert error_code(r) == "MANIFEST_UNKNOWN"
    assert v2.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    r = v2.delete(f"/v2/{repo}/manifests/{pushed.digest}")
    assert r.status_code == 404


def test_index_push_and_child_delete_is_refused_while_listed(v2, repo):
    built = oi.multi_platform(33)
    v2.push_image(repo, built, "multi")
    r = v2.get(f"/v2/{repo}/manifests/multi", headers={"Accept": oi.OCI_INDEX})
    assert r.headers["Content-Type"] == oi.OCI_INDEX
    assert r.content == built.top.data
    child = built.images[0].manifest.digest
    assert v2.delete(f"/v2/{repo}/manifests/{child}").status_code in (400, 403, 405)
    assert v2.get(f"/v2/{repo}/manifests/{child}").status_code == 200


def test_manifest_with_a_missing_blob_is_manifest_blob_unknown(v2, repo):
    built = oi.single(34, layers=2)
    v2.push_blob(repo, built.images[0].config.data)
    v2.push_blob(repo, built.images[0].layers[0].data)
    r = v2.push_manifest(repo, "v1", built.top)
    assert r.status_code == 400
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert built.images[0].layers[1].digest in json.dumps(r.json()["errors"][0]["detail"])
    assert v2.get(f"/v2/{repo}/manifests/v1").status_code == 404


def test_index_with_a_missing_child_is_manifest_blob_unknown(v2, repo):
    built = oi.multi_platform(35)
    first = built.images[0]
    for blob in first.blobs:
        v2.push_blob(repo, blob.data)
    assert v2.push_manifest(repo, first.manifest.digest, first.manifest).status_code == 201
    r = v2.push_manifest(repo, "multi", built.top)
    assert r.status_code == 400
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert built.images[1].manifest.digest in json.dumps(r.json()["errors"][0]["detail"])


def test_manifest_with_a_missing_subject_is_accepted(v2, repo):
    absent = oi.Blob(oi.OCI_MANIFEST, b'{"never": "pushed"}')
    empty = oi.Blob("application/vnd.oci.empty.v1+json", b"{}")
    v2.push_blob(repo, empty.data)
    manifest = oi.Blob(oi.OCI_MANIFEST, json.dumps({
        "schemaVersion": 2, "mediaType": oi.OCI_MANIFEST, "artifactType": "application/x.test",
        "config": empty.descriptor(), "layers": [empty.descriptor()],
        "subject": absent.descriptor()}).encode())
    r = v2.push_manifest(repo, manifest.digest, manifest)
    assert r.status_code == 201
    assert r.headers["OCI-Subject"] == absent.digest
    listed = v2.get(f"/v2/{repo}/referrers/{absent.digest}").json()["manifests"]
    assert [d["digest"] for d in listed] == [manifest.digest]


def test_manifest_pushed_by_tag_moves_the_tag(v2, repo, pushed):
    newer = oi.single(36)
    v2.push_image(repo, newer, "v1")
    r = v2.head(f"/v2/{repo}/manifests/v1")
    assert r.headers["Docker-Content-Digest"] == newer.digest
    assert v2.head(f"/v2/{repo}/manifests/{pushed.digest}").status_code == 200


# --- tags and catalog (end-8) ---------------------------------------------------------------

TAGS = ["v1", "B", "a", "latest", "1.0", "_x", "v10", "v2"]


@pytest.fixture
def tagged(v2, repo, pushed) -> list[str]:
    for tag in TAGS:
        assert v2.push_manifest(repo, tag, pushed.top).status_code == 201
    return sorted(set(TAGS))  # Go sort.Strings order: byte-wise


def test_tags_list_is_sorted(v2, repo, tagged):
    r = v2.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": repo, "tags": tagged}
    assert "Link" not in r.headers


def test_tags_list_pages_with_n_last_and_link(v2, repo, tagged):
    seen, path, pages = [], f"/v2/{repo}/tags/list?n=3", 0
    while path:
        r = v2.get(path)
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        pages += 1
        link = r.headers.get("Link")
        if link:
            assert link.endswith('>; rel="next"')
            path = link[1:link.index(">")]
        else:
            path = ""
    assert seen == tagged
    assert pages == 3


def test_tags_list_last_starts_after_that_tag(v2, repo, tagged):
    r = v2.get(f"/v2/{repo}/tags/list", params={"last": tagged[2]})
    assert r.json()["tags"] == tagged[3:]
    r = v2.get(f"/v2/{repo}/tags/list", params={"last": tagged[2], "n": 2})
    assert r.json()["tags"] == tagged[3:5]


def test_tags_list_n_zero_is_empty_without_link(v2, repo, tagged):
    r = v2.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert r.status_code == 200
    assert r.json() == {"name": repo, "tags": []}
    assert "Link" not in r.headers


def test_tags_list_of_an_empty_repository(v2, repo):
    assert v2.get(f"/v2/{repo}/tags/list").json() == {"name": repo, "tags": []}


def test_catalog_lists_repositories_in_order_and_pages(v2, repo, ecr):
    names = [f"{repo}/c{i}" for i in range(3)]
    for name in names:
        ecr.create_repository(repositoryName=name)
    listed = v2.get("/v2/_catalog").json()["repositories"]
    assert listed == sorted(listed)
    assert set(names) <= set(listed)
    r = v2.get("/v2/_catalog", params={"n": 2, "last": repo})
    assert r.json()["repositories"] == names[:2]
    assert r.headers["Link"] == f'</v2/_catalog?n=2&last={names[1].replace("/", "%2F")}>; rel="next"'


# --- bad input (negative cases, one table) ---------------------------------------------------


def _wrong_digest(v2, repo):
    data = b"the real bytes"
    return v2.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(b"other bytes")},
                   data=data)


def _wrong_digest_on_put(v2, repo):
    location = v2.start_upload(repo)
    return v2.put(location, params={"digest": digest_of(b"other bytes")}, data=b"the bytes")


def _put_without_digest(v2, repo):
    return v2.put(v2.start_upload(repo), data=b"bytes")


def _malformed_digest(v2, repo):
    return v2.post(f"/v2/{repo}/blobs/uploads/", params={"digest": "sha256:xyz"}, data=b"x")


def _unsupported_algorithm(v2, repo):
    return v2.post(f"/v2/{repo}/blobs/uploads/", params={"digest": "md5:" + "0" * 32},
                   data=b"x")


def _invalid_json_manifest(v2, repo):
    return v2.put(f"/v2/{repo}/manifests/v1", data=b"{not json",
                  headers={"Content-Type": oi.OCI_MANIFEST})


def _manifest_without_layers(v2, repo):
    return v2.put(f"/v2/{repo}/manifests/v1", data=json.dumps({
        "schemaVersion": 2, "mediaType": oi.OCI_MANIFEST,
        "config": {"mediaType": oi.OCI_CONFIG, "digest": digest_of(b"{}"), "size": 2}}),
        headers={"Content-Type": oi.OCI_MANIFEST})


def _schema_version_1(v2, repo):
    return v2.put(f"/v2/{repo}/manifests/v1", data=json.dumps({"schemaVersion": 1}),
                  headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+json"})


def _huge_manifest(v2, repo):
    doc = {"schemaVersion": 2, "mediaType": oi.OCI_MANIFEST, "layers": [],
           "config": {"mediaType": oi.OCI_CONFIG, "digest": digest_of(b"{}"), "size": 2},
           "annotations": {"pad": "x" * (4 * 1024 * 1024)}}
    return v2.put(f"/v2/{repo}/manifests/v1", data=json.dumps(doc),
                  headers={"Content-Type": oi.OCI_MANIFEST})


def _huge_manifest_streamed(v2, repo):
    """No Content-Length: the cap applies to the bytes as they arrive."""
    chunks = iter([b'{"schemaVersion": 2, "pad": "'] + [b"x" * 65536] * 80 + [b'"}'])
    return v2.put(f"/v2/{repo}/manifests/v1", data=chunks,
                  headers={"Content-Type": oi.OCI_MANIFEST})


def _invalid_name(v2, repo):
    return v2.get("/v2/Upper/Case/tags/list")


def _invalid_name_manifest(v2, repo):
    return v2.get("/v2/a__-b/manifests/v1")


def _invalid_tag(v2, repo):
    return v2.put(f"/v2/{repo}/manifests/-bad-tag", data=oi.single(41).top.data,
                  headers={"Content-Type": oi.OCI_MANIFEST})


def _too_long_tag(v2, repo):
    return v2.get(f"/v2/{repo}/manifests/{'t' * 129}")


def _unknown_repo_tags(v2, repo):
    return v2.get(f"/v2/{repo}-missing/tags/list")


def _unknown_repo_upload(v2, repo):
    return v2.post(f"/v2/{repo}-missing/blobs/uploads/")


def _unknown_repo_manifest(v2, repo):
    return v2.get(f"/v2/{repo}-missing/manifests/v1")


def _unknown_upload(v2, repo):
    return v2.get(f"/v2/{repo}/blobs/uploads/00000000-0000-0000-0000-000000000000")


def _unknown_upload_patch(v2, repo):
    return v2.patch(f"/v2/{repo}/blobs/uploads/00000000-0000-0000-0000-000000000000",
                    data=b"x", headers={"Content-Range": "0-0"})


def _unknown_manifest(v2, repo):
    return v2.get(f"/v2/{repo}/manifests/nope")


def _unknown_blob(v2, repo):
    return v2.get(f"/v2/{repo}/blobs/{digest_of(b'never pushed')}")


def _malformed_content_range(v2, repo):
    return v2.patch(v2.start_upload(repo), data=b"abc", headers={"Content-Range": "zero-two"})


def _first_chunk_not_at_zero(v2, repo):
    return v2.patch(v2.start_upload(repo), data=b"abc", headers={"Content-Range": "1-3"})


def _content_range_length_mismatch(v2, repo):
    return v2.patch(v2.start_upload(repo), data=b"abc", headers={"Content-Range": "0-9"})


def _unsupported_method(v2, repo):
    return v2.post(f"/v2/{repo}/tags/list")


BAD_INPUT = [  # (id, request, status, code); first line of each error body is checked
    ("digest-not-matching-bytes", _wrong_digest, 400, "DIGEST_INVALID"),
    ("digest-not-matching-on-put", _wrong_digest_on_put, 400, "DIGEST_INVALID"),
    ("put-without-digest", _put_without_digest, 400, "DIGEST_INVALID"),
    ("malformed-digest", _malformed_digest, 400, "DIGEST_INVALID"),
    ("unsupported-digest-algorithm", _unsupported_algorithm, 400, "DIGEST_INVALID"),
    ("invalid-manifest-json", _invalid_json_manifest, 400, "MANIFEST_INVALID"),
    ("manifest-without-layers", _manifest_without_layers, 400, "MANIFEST_INVALID"),
    ("docker-schema-1", _schema_version_1, 415, "MANIFEST_INVALID"),
    ("manifest-over-4mib", _huge_manifest, 413, "MANIFEST_INVALID"),
    ("manifest-over-4mib-streamed", _huge_manifest_streamed, 413, "MANIFEST_INVALID"),
    ("invalid-name", _invalid_name, 400, "NAME_INVALID"),
    ("invalid-name-manifest", _invalid_name_manifest, 400, "NAME_INVALID"),
    ("invalid-tag", _invalid_tag, 400, "TAG_INVALID"),
    ("tag-over-128-chars", _too_long_tag, 400, "TAG_INVALID"),
    ("unknown-repo-tags", _unknown_repo_tags, 404, "NAME_UNKNOWN"),
    ("unknown-repo-upload", _unknown_repo_upload, 404, "NAME_UNKNOWN"),
    ("unknown-repo-manifest", _unknown_repo_manifest, 404, "NAME_UNKNOWN"),
    ("unknown-upload", _unknown_upload, 404, "BLOB_UPLOAD_UNKNOWN"),
    ("unknown-upload-patch", _unknown_upload_patch, 404, "BLOB_UPLOAD_UNKNOWN"),
    ("unknown-manifest", _unknown_manifest, 404, "MANIFEST_UNKNOWN"),
    ("unknown-blob", _unknown_blob, 404, "BLOB_UNKNOWN"),
    ("malformed-content-range", _malformed_content_range, 416, "BLOB_UPLOAD_INVALID"),
    ("first-chunk-not-at-zero", _first_chunk_not_at_zero, 416, "BLOB_UPLOAD_INVALID"),
    ("content-range-length-mismatch", _content_range_length_mismatch, 400, "SIZE_INVALID"),
    ("unsupported-method", _unsupported_method, 405, "UNSUPPORTED"),
]


@pytest.mark.parametrize("bid,call,status,code", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gets_a_spec_error(v2, repo, bid, call, status, code):
    r = call(v2, repo)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    err = r.json()["errors"][0]
    assert err["code"] == code
    assert err["message"]
    # Clients print "<code in words>: <message>": the message must not say the code again.
    words = code.lower().replace("_", " ")
    assert not err["message"].lower().startswith(words), err["message"]


def test_digest_mismatch_leaves_no_blob_and_no_upload(server, v2, repo):
    data = b"bytes that do not hash to the claimed digest"
    claimed = digest_of(b"claimed")
    location = v2.start_upload(repo)
    r = v2.put(location, params={"digest": claimed}, data=data)
    assert error_code(r) == "DIGEST_INVALID"
    for digest in (claimed, digest_of(data)):
        assert v2.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        assert blob_files(server.data_dir, digest) == []
    assert v2.get(location).status_code == 404
    upload_id = location.rsplit("/", 1)[1]
    assert not (server.data_dir / "registry" / "uploads" / upload_id).exists()


def test_push_to_a_missing_repository_creates_it_when_configured(fresh_server):
    fresh_server.env["CORRAL_CREATE_ON_PUSH"] = "1"
    fresh_server.start()
    v2 = V2(fresh_server.endpoint, get_token(fresh_server))
    v2.push_image("made/on-push", oi.single(42), "v1")
    assert v2.get("/v2/made/on-push/tags/list").json()["tags"] == ["v1"]
    repos = fresh_server.client("ecr").describe_repositories()["repositories"]
    assert [(r["repositoryName"], r["imageTagMutability"]) for r in repos] == [
        ("made/on-push", "MUTABLE")]


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_pushes_of_the_same_blob_both_succeed_one_copy_stays(server, v2, repo):
    data = random.Random(6).randbytes(4 << 20)
    digest = digest_of(data)
    results: list[int] = []
    barrier = threading.Barrier(4)

    def push_one() -> None:
        client = V2(v2.endpoint, v2.session.headers["Authorization"].split(" ", 1)[1])
        location = client.start_upload(repo)
        barrier.wait()
        r = client.patch(location, data=data, headers={"Content-Range": f"0-{len(data) - 1}"})
        r = client.put(r.headers["Location"], params={"digest": digest})
        results.append(r.status_code)

    threads = [threading.Thread(target=push_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [201] * 4
    assert v2.get(f"/v2/{repo}/blobs/{digest}").content == data
    files = [p for p in blob_files(server.data_dir, digest) if p.is_file()]
    assert len(files) == 1
    assert files[0].read_bytes() == data


def test_out_of_order_closing_put_is_416(v2, repo):
    data = random.Random(7).randbytes(2000)
    location = v2.start_upload(repo)
    r = v2.patch(location, data=data[:1000], headers={"Content-Range": "0-999"})
    r = v2.put(r.headers["Location"], params={"digest": digest_of(data)}, data=data[1500:],
               headers={"Content-Range": "1500-1999"})
    assert r.status_code == 416
    assert r.headers["Range"] == "0-999"
    assert v2.get(location).headers["Range"] == "0-999"


def test_empty_blob(v2, repo):
    digest = v2.push_blob(repo, b"")
    head = v2.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "0"
    assert v2.get(f"/v2/{repo}/blobs/{digest}").content == b""


# --- a refused request changes nothing --------------------------------------------------------


def _uploads(data_dir: Path) -> set[str]:
    root = data_dir / "registry" / "uploads"
    return {p.name for p in root.iterdir()} if root.exists() else set()


@pytest.mark.parametrize("digest", ["sha256:xyz", "md5:" + "0" * 32],
                         ids=["malformed", "unsupported-algorithm"])
def test_bad_digest_on_post_opens_no_session(server, v2, repo, digest):
    before = _uploads(server.data_dir)
    r = v2.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=b"x")
    assert r.status_code == 400
    assert _uploads(server.data_dir) == before


@pytest.mark.parametrize("params", [{}, {"digest": "sha256:xyz"}], ids=["no-digest", "malformed"])
def test_closing_put_with_a_bad_digest_leaves_the_session_as_it_was(v2, repo, params):
    data = b"0123456789"
    location = v2.start_upload(repo)
    r = v2.patch(location, data=data[:4], headers={"Content-Range": "0-3"})
    r = v2.put(r.headers["Location"], params=params, data=data[4:])
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"
    status = v2.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-3"  # the refused PUT's body was not appended
    r = v2.put(location, params={"digest": digest_of(data)}, data=data[4:])
    assert r.status_code == 201


# --- tag immutability (ECR image-tag-mutability) --------------------------------------------


def test_immutable_tag_cannot_move_but_can_be_pushed_again(v2, ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name, imageTagMutability="IMMUTABLE")
    first, second = oi.single(51), oi.single(52)
    v2.push_image(repo_name, first, "v1")
    r = v2.push_manifest(repo_name, "v1", first.top)  # same digest: nothing changes
    assert r.status_code == 201
    for blob in second.images[0].blobs:
        v2.push_blob(repo_name, blob.data)
    r = v2.push_manifest(repo_name, "v1", second.top)
    assert r.status_code == 400
    assert error_code(r) == "TAG_INVALID"
    assert "immutable" in r.json()["errors"][0]["message"]
    assert v2.head(f"/v2/{repo_name}/manifests/v1").headers["Docker-Content-Digest"] == \
        first.digest


# --- registries by Host, accounts as namespaces ----------------------------------------------


def _host(server, account: str, region: str) -> dict[str, str]:
    return {"Host": f"{account}.dkr.ecr.{region}.localhost:{server.port}"}


def test_host_header_selects_account_and_region(server, v2, repo_name):
    west = server.client("ecr", region="us-west-2")
    west.create_repository(repositoryName=repo_name)
    host = _host(server, "000000000000", "us-west-2")
    r = v2.post(f"/v2/{repo_name}/blobs/uploads/", params={"digest": digest_of(b"w")},
                data=b"w", headers=host)
    assert r.status_code == 201
    assert v2.head(f"/v2/{repo_name}/blobs/{digest_of(b'w')}", headers=host).status_code == 200
    # The default host is us-east-1, where no such repository exists.
    assert error_code(v2.get(f"/v2/{repo_name}/tags/list")) == "NAME_UNKNOWN"


@pytest.fixture
def other_v2(server) -> V2:
    from tests.server import OTHER_KEY, OTHER_SECRET

    ecr = server.client("ecr", key=OTHER_KEY, secret=OTHER_SECRET)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return V2(server.endpoint, token)


def test_another_accounts_token_is_denied(other_v2, repo, pushed):
    for r in (other_v2.get(f"/v2/{repo}/manifests/v1"), other_v2.get(f"/v2/{repo}/tags/list"),
              other_v2.post(f"/v2/{repo}/blobs/uploads/")):
        assert r.status_code == 403
        assert error_code(r) == "DENIED"


def test_another_accounts_token_cannot_list_the_catalog(other_v2, repo):
    r = other_v2.get("/v2/_catalog")
    assert r.status_code == 403
    assert error_code(r) == "DENIED"


def test_another_accounts_token_works_on_its_own_registry(server, other_v2, repo_name):
    from tests.server import OTHER_ACCOUNT, OTHER_KEY, OTHER_SECRET

    ecr = server.client("ecr", key=OTHER_KEY, secret=OTHER_SECRET)
    ecr.create_repository(repositoryName=repo_name)
    host = _host(server, OTHER_ACCOUNT, "us-east-1")
    r = other_v2.get(f"/v2/{repo_name}/tags/list", headers=host)
    assert r.status_code == 200
    assert repo_name in other_v2.get("/v2/_catalog", headers=host).json()["repositories"]
