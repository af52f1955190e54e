"""Image resolution against a real Corral server's state: every ECR URI form, tags, digests,
indexes, AWS's CannotPullContainerError wordings, and IAM's real decision for users, roles
and other accounts. The resolver runs in this process on the server's store and blobs."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from corral.aws.context import Principal
from corral.config import Settings
from corral.ecr.scope import registry_of_host
from corral.iam.enforce import PolicyAuthorizer
from corral.registry.blobs import BlobStore
from corral.registry.storage import FilesystemDriver
from corral.runtime.driver import RuntimeFailure
from corral.runtime.images import (
    ImageResolver,
    PullFailure,
    account_principal,
    role_principal,
)
from corral.store import Store
from corral.store.schema import access_keys
from tests.runtime.imagebuild import Image, busybox_layer, config, make_layer, push, sha256
from tests.server import OTHER_ACCOUNT

ACCOUNT = "000000000000"
ECS_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


def policy(*actions: str, effect: str = "Allow") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Action": list(actions), "Resource": "*"}]})


@pytest.fixture(scope="module")
def state(server):
    store = Store(f"sqlite:///{server.data_dir / 'state.db'}")
    yield store
    store.close()


def _fresh(server, state) -> ImageResolver:
    """A resolver with a fresh authorizer: its policy cache follows IAM writes made in
    *this* process, and the tests change IAM through the server."""
    settings = Settings(port=server.port, data_dir=server.data_dir)
    blobs = BlobStore(FilesystemDriver(server.data_dir / "registry"))
    return ImageResolver(state, blobs, PolicyAuthorizer(state), settings)


@pytest.fixture
def resolver(server, state):
    return _fresh(server, state)


@pytest.fixture(scope="module")
def pushed(server):
    """One busybox image in ``img/app`` tagged v1 and latest: (repo, digest, image)."""
    ecr = server.client("ecr")
    image = Image([busybox_layer(), make_layer([("app/marker", b"m", 0o644, tarfile.REGTYPE, "")])],
                  config(cmd=["sh"], workdir="/app"))
    digest = push(ecr, "img/app", "v1", image)
    push(ecr, "img/app", "latest", image, create=False)
    return "img/app", digest, image


ROOT = account_principal(ACCOUNT)


def forms(port: int, repo: str, digest: str) -> list[str]:
    return [f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{repo}:v1",
            f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{repo}",  # default tag latest
            f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{repo}@{digest}",
            f"{ACCOUNT}.dkr.ecr.us-east-1.localhost:{port}/{repo}:v1",
            f"{ACCOUNT}.dkr.ecr.us-east-1.localhost/{repo}:latest",
            f"localhost:{port}/{repo}:v1",
            f"127.0.0.1:{port}/{repo}@{digest}",
            f"localhost:{port}/{repo}:v1@{digest}"]


def test_every_uri_form_resolves_to_the_same_content(server, resolver, pushed):
    repo, digest, image = pushed
    for uri in forms(server.port, repo, digest):
        got = resolver.resolve(uri, ROOT, "us-east-1")
        assert got.digest == digest, uri
        assert got.config["config"]["Cmd"] == ["sh"]
        assert got.config["rootfs"]["diff_ids"] == [x.diff_id for x in image.layers]
        assert [d for d, _, _ in got.layers] == [x.digest for x in image.layers]
        for layer_digest, media_type, path in got.layers:
            assert media_type.endswith("tar+gzip")
            assert sha256(path.read_bytes()) == layer_digest  # the real bytes, on disk
        assert got.reference == f"127.0.0.1:{server.port}/{repo}@{digest}"


def test_auth_is_a_working_registry_credential(server, resolver, pushed):
    repo, digest, _ = pushed
    got = resolver.resolve(f"localhost:{server.port}/{repo}:v1", ROOT, "us-east-1")
    user, password = got.auth
    assert user == "AWS"
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"{server.endpoint}/v2/{repo}/manifests/{digest}", headers={
        "Authorization": f"Basic {basic}",
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Docker-Content-Digest"] == digest
    # reused, not one token per pull
    assert resolver.resolve(f"localhost:{server.port}/{repo}:v1", ROOT, "us-east-1").auth \
        == got.auth


def test_pull_records_last_pull_time(server, resolver, pushed):
    repo, digest, _ = pushed
    before = datetime.now(UTC) - timedelta(seconds=2)
    resolver.resolve(f"localhost:{server.port}/{repo}@{digest}", ROOT, "us-east-1")
    ecr = server.client("ecr")
    detail = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])
    assert detail["imageDetails"][0]["lastRecordedPullTime"] >= before


def test_index_picks_the_linux_amd64_child(server, resolver):
    ecr = server.client("ecr")
    children = {arch: Image([make_layer([(f"arch-{arch}", arch.encode(), 0o644, tarfile.REGTYPE, "")])],
                            config(cmd=["true"], arch=arch)) for arch in ("arm64", "amd64")}
    for img in children.values():
        push(ecr, "img/multi", None, img)
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": img.digest, "size": len(img.manifest_bytes()),
                       "platform": {"os": "linux", "architecture": arch}}
                      for arch, img in children.items()]})
    ecr.put_image(repositoryName="img/multi", imageManifest=index, imageTag="multi")
    got = resolver.resolve(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/img/multi:multi",
                           ROOT, "us-east-1")
    assert got.digest == sha256(index.encode())  # ECS reports the digest the tag names
    assert got.config["architecture"] == "amd64"
    assert [d for d, _, _ in got.layers] == [children["amd64"].layers[0].digest]


def _not_found(ref: str) -> str:
    return (f"pull image manifest has been retried 1 time(s): failed to resolve ref {ref}: "
            f"{ref}: not found")


MISSING = [
    ("missing-repository", "img/nope:v1"),
    ("missing-tag", "img/app:v404"),
    ("missing-digest", "img/app@sha256:" + "0" * 64),
]


@pytest.mark.parametrize("ref", [m[1] for m in MISSING], ids=[m[0] for m in MISSING])
def test_missing_image_is_not_found(resolver, pushed, ref):
    uri = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{ref}"
    with pytest.raises(PullFailure) as e:
        resolver.resolve(uri, ROOT, "us-east-1")
    assert str(e.value) == _not_found(uri)
    assert e.value.kind == "CannotPullContainerError"


ELSEWHERE = [
    ("bare-name-is-docker-hub", "nginx", "docker.io/library/nginx:latest",
     "registry-1.docker.io/v2/library/nginx/manifests/latest"),
    ("hub-user-repo", "team/app:1.0", "docker.io/team/app:1.0",
     "registry-1.docker.io/v2/team/app/manifests/1.0"),
    ("other-registry", "quay.io/org/tool:v2", "quay.io/org/tool:v2",
     "quay.io/v2/org/tool/manifests/v2"),
    ("local-registry-on-another-port", "localhost:1/app", "localhost:1/app:latest",
     "localhost:1/v2/app/manifests/latest"),
]


@pytest.mark.parametrize("uri,ref,url", [e[1:] for e in ELSEWHERE],
                         ids=[e[0] for e in ELSEWHERE])
def test_other_registries_are_unreachable(resolver, uri, ref, url):
    with pytest.raises(PullFailure) as e:
        resolver.resolve(uri, ROOT, "us-east-1")
    assert str(e.value).startswith(
        "pull image manifest has been retried 1 time(s): failed to resolve ref "
        f'{ref}: failed to do request: Head "https://{url}": dial tcp')


@pytest.mark.parametrize("uri", [f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/img/app:bad tag",
                                 f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/img/app@sha256:xyz"],
                         ids=["bad-tag", "bad-digest"])
def test_invalid_reference(resolver, uri):
    with pytest.raises(PullFailure, match="invalid reference format"):
        resolver.resolve(uri, ROOT, "us-east-1")


REGISTRY_HOSTS = [  # one grammar, shared by the registry endpoint's Host and image URIs
    ("aws", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", ("123456789012", "eu-west-1")),
    ("aws-china", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
     ("123456789012", "cn-north-1")),
    ("aws-fips", "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
     ("123456789012", "us-east-1")),
    ("local", "123456789012.dkr.ecr.us-west-2.localhost:4566", ("123456789012", "us-west-2")),
    ("local-no-port", "123456789012.dkr.ecr.us-west-2.localhost", ("123456789012", "us-west-2")),
    ("upper-case-host", "123456789012.DKR.ECR.us-west-2.LOCALHOST:1",
     ("123456789012", "us-west-2")),
    ("plain-endpoint", "localhost:4566", None),
    ("short-account", "12345.dkr.ecr.us-east-1.amazonaws.com", None),
    ("other-domain", "123456789012.dkr.ecr.us-east-1.example.com", None),
    ("docker-hub", "docker.io", None),
]


@pytest.mark.parametrize("host,expected", [h[1:] for h in REGISTRY_HOSTS],
                         ids=[h[0] for h in REGISTRY_HOSTS])
def test_registry_host_names(host, expected):
    assert registry_of_host(host) == expected

# --- IAM's decision ------------------------------------------------------------------------

def _user(server, name: str, doc: str | None) -> Principal:
    iam = server.client("iam")
    user = iam.create_user(UserName=name)["User"]
    if doc:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc)
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    return Principal(ACCOUNT, user["Arn"], user["UserId"], key, "User")


def _role(server, name: str, doc: str | None, trust: str = ECS_TRUST) -> str:
    iam = server.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    if doc:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc)
    return arn


def _session(state, arn: str, name: str = "task-1") -> Principal:
    with state.transaction() as db:
        return role_principal(db, arn, name)


def _forbidden(uri: str, host: str, ref: str) -> str:
    return (f"pull image manifest has been retried 1 time(s): failed to resolve ref {uri}: "
            f"pulling from host {host} failed with status code [manifests {ref}]: 403 Forbidden")


HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"


def test_user_without_pull_permission_is_denied(server, state, pushed):
    who = _user(server, f"nopull-{uuid.uuid4().hex[:8]}", policy("ecr:DescribeImages"))
    resolver = _fresh(server, state)
    uri = f"{HOST}/img/app:v1"
    with pytest.raises(PullFailure) as e:
        resolver.resolve(uri, who, "us-east-1")
    assert str(e.value) == _forbidden(uri, HOST, "v1")


def test_user_with_pull_permission_pulls(server, state, pushed):
    who = _user(server, f"puller-{uuid.uuid4().hex[:8]}",
                policy("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"))
    got = _fresh(server, state).resolve(f"{HOST}/img/app:v1", who, "us-east-1")
    assert got.digest == pushed[1]


def test_allowed_execution_role_pulls(server, state, pushed):
    arn = _role(server, f"exec-ok-{uuid.uuid4().hex[:8]}",
                policy("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                       "ecr:GetAuthorizationToken"))
    who = _session(state, arn)
    assert who.type == "AssumedRole" and ":assumed-role/" in who.arn
    got = _fresh(server, state).resolve(f"{HOST}/img/app@{pushed[1]}", who, "us-east-1")
    assert got.digest == pushed[1] and got.auth is not None


def test_role_without_pull_permission_is_denied(server, state, pushed):
    arn = _role(server, f"exec-none-{uuid.uuid4().hex[:8]}", None)
    uri = f"{HOST}/img/app:latest"
    with pytest.raises(PullFailure) as e:
        _fresh(server, state).resolve(uri, _session(state, arn), "us-east-1")
    assert str(e.value) == _forbidden(uri, HOST, "latest")


def test_role_with_explicit_deny_is_denied(server, state, pushed):
    arn = _role(server, f"exec-deny-{uuid.uuid4().hex[:8]}", json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*"}]}))
    with pytest.raises(PullFailure, match="403 Forbidden"):
        _fresh(server, state).resolve(f"{HOST}/img/app:v1", _session(state, arn), "us-east-1")


def test_role_without_layer_download_is_denied_at_the_blob(server, state, pushed):
    arn = _role(server, f"exec-nolayer-{uuid.uuid4().hex[:8]}", policy("ecr:BatchGetImage"))
    with pytest.raises(PullFailure) as e:
        _fresh(server, state).resolve(f"{HOST}/img/app:v1", _session(state, arn), "us-east-1")
    assert str(e.value).startswith("ref pull has been retried 1 time(s): failed to copy: "
                                   f"httpReadSeeker: failed open: unexpected status code "
                                   f"https://{HOST}/v2/img/app/blobs/sha256:")
    assert str(e.value).endswith(": 403 Forbidden")


def test_missing_repository_is_403_when_pull_is_not_allowed(server, state):
    # IAM decides before the repository is looked up: no existence oracle.
    who = _user(server, f"probe-{uuid.uuid4().hex[:8]}", None)
    with pytest.raises(PullFailure, match="403 Forbidden"):
        _fresh(server, state).resolve(f"{HOST}/img/secret-name:v1", who, "us-east-1")


def test_role_sessions_are_reused_and_renewed(server, state):
    arn = _role(server, f"exec-reuse-{uuid.uuid4().hex[:8]}", None)
    first = _session(state, arn, "task-a")
    assert _session(state, arn, "task-a").access_key_id == first.access_key_id
    assert _session(state, arn, "task-b").access_key_id != first.access_key_id
    with state.transaction() as db:  # within an hour of expiry: a new session
        db.execute(access_keys.update().where(
            access_keys.c.access_key_id == first.access_key_id).values(
            expires_at=datetime.now(UTC) + timedelta(minutes=30)))
    assert _session(state, arn, "task-a").access_key_id != first.access_key_id


@pytest.mark.parametrize("case", ["missing-role", "role-not-trusting-ecs-tasks"])
def test_unusable_execution_role(server, state, case):
    if case == "missing-role":
        arn = f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"
    else:
        trust = ECS_TRUST.replace("ecs-tasks.amazonaws.com", "ec2.amazonaws.com")
        arn = _role(server, f"exec-ec2-{uuid.uuid4().hex[:8]}", None, trust)
    with pytest.raises(RuntimeFailure) as e:
        _session(state, arn)
    assert e.value.kind == "ResourceInitializationError"
    assert str(e.value).startswith(f"ECS was unable to assume the role '{arn}'")


def test_cross_account_pull_needs_the_repository_policy(server, state, pushed):
    other = account_principal(OTHER_ACCOUNT)
    uri = f"{HOST}/img/app:v1"
    with pytest.raises(PullFailure, match="403 Forbidden"):
        _fresh(server, state).resolve(uri, other, "us-east-1")
    ecr = server.client("ecr")
    ecr.set_repository_policy(repositoryName="img/app", policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "other", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}))
    try:
        got = _fresh(server, state).resolve(uri, other, "us-east-1")
        assert got.digest == pushed[1]
    finally:
        ecr.delete_repository_policy(repositoryName="img/app")


def test_digest_is_of_the_real_manifest_bytes(server, resolver, pushed):
    repo, digest, image = pushed
    got = resolver.resolve(f"localhost:{server.port}/{repo}:v1", ROOT, "us-east-1")
    assert got.digest == "sha256:" + hashlib.sha256(image.manifest_bytes()).hexdigest()
