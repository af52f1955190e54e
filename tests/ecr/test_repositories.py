"""ECR repositories end to end, driven by boto3 against a real server."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from tests.server import OTHER_ACCOUNT, OTHER_KEY, OTHER_SECRET


def error_of(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return exc.value


def test_create_repository_returns_the_repository_as_ecr_does(ecr, server, repo_name):
    out = ecr.create_repository(
        repositoryName=repo_name, imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "KMS"},
        tags=[{"Key": "team", "Value": "platform"}],
    )["repository"]
    assert out["repositoryName"] == repo_name
    assert out["repositoryArn"] == f"arn:aws:ecr:us-east-1:000000000000:repository/{repo_name}"
    assert out["registryId"] == "000000000000"
    # the host the server listens on (127.0.0.1 here), not "localhost" (issue 17 item 10)
    assert out["repositoryUri"] == f"127.0.0.1:{server.port}/{repo_name}"
    assert out["imageTagMutability"] == "IMMUTABLE"
    assert out["imageScanningConfiguration"] == {"scanOnPush": True}
    assert out["encryptionConfiguration"] == {
        "encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:000000000000:alias/aws/ecr"}
    assert abs(out["createdAt"] - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    tags = ecr.list_tags_for_resource(resourceArn=out["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "platform"}]


def test_defaults_are_mutable_unscanned_aes256(ecr, repo_name):
    out = ecr.create_repository(repositoryName=repo_name)["repository"]
    assert out["imageTagMutability"] == "MUTABLE"
    assert out["imageScanningConfiguration"] == {"scanOnPush": False}
    assert out["encryptionConfiguration"] == {"encryptionType": "AES256"}


def test_duplicate_name_is_repository_already_exists(ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name)
    err = error_of(ecr.create_repository, repositoryName=repo_name)
    assert err.response["Error"]["Code"] == "RepositoryAlreadyExistsException"
    assert err.response["Error"]["Message"] == (
        f"The repository with name '{repo_name}' already exists in the registry with id "
        "'000000000000'")
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


VALID_NAMES = ["ab", "a/b", "team/app-1", "a.b_c__d---e/f", "x" * 256, "0a"]
INVALID_NAMES = [
    ("upper-case", "Hello"), ("leading-slash", "/ab"), ("trailing-slash", "ab/"),
    ("double-slash", "a//b"), ("leading-dash", "-ab"), ("triple-underscore", "a___b"),
    ("dot-dot", "a..b"), ("space", "a b"), ("too-short", "a"), ("too-long", "x" * 257),
]


@pytest.mark.parametrize("name", VALID_NAMES, ids=lambda n: n[:20])
def test_valid_repository_names_are_accepted(server, name):
    ecr = server.client("ecr", region="eu-west-3")  # its own namespace, no clashes
    try:
        ecr.create_repository(repositoryName=name)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "RepositoryAlreadyExistsException"
    assert ecr.describe_repositories(repositoryNames=[name])["repositories"][0][
        "repositoryName"] == name


@pytest.mark.parametrize("why,name", INVALID_NAMES, ids=[w for w, _ in INVALID_NAMES])
def test_invalid_repository_names_are_invalid_parameter(server, why, name):
    # The aws CLI and boto3 validate min length client-side; send with validation off.
    import boto3
    from botocore.config import Config

    ecr = boto3.client("ecr", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=Config(parameter_validation=False))
    err = error_of(ecr.create_repository, repositoryName=name)
    assert err.response["Error"]["Code"] == "InvalidParameterException"
    msg = err.response["Error"]["Message"]
    assert msg.startswith("Invalid parameter at 'repositoryName' failed to satisfy constraint: ")
    if why == "too-short":
        assert "'must have length greater than or equal to 2'" in msg
    elif why == "too-long":
        assert "'must have length less than or equal to 256'" in msg
    else:
        assert "must satisfy regular expression" in msg


def test_describe_repositories_paginates_with_next_token(server):
    ecr = server.client("ecr", region="ap-south-1")
    names = [f"page/repo-{i:02d}" for i in range(23)]
    for n in names:
        ecr.create_repository(repositoryName=n)
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"maxResults": 5} | ({"nextToken": token} if token else {})
        out = ecr.describe_repositories(**kwargs)
        pages += 1
        assert len(out["repositories"]) <= 5
        seen += [r["repositoryName"] for r in out["repositories"]]
        token = out.get("nextToken")
        if not token:
            break
    assert pages == 5
    assert seen == names  # creation order, each once
    paginated = [r["repositoryName"] for p in ecr.get_paginator("describe_repositories")
                 .paginate(PaginationConfig={"PageSize": 7}) for r in p["repositories"]]
    assert paginated == names


def test_describe_by_names_and_missing_name(ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name)
    out = ecr.describe_repositories(repositoryNames=[repo_name])["repositories"]
    assert [r["repositoryName"] for r in out] == [repo_name]
    err = error_of(ecr.describe_repositories, repositoryNames=[repo_name, "missing/one"])
    assert err.response["Error"]["Code"] == "RepositoryNotFoundException"
    assert "'missing/one'" in err.response["Error"]["Message"]


def test_bad_next_token_is_invalid_parameter(ecr):
    err = error_of(ecr.describe_repositories, nextToken="not-a-token")
    assert err.response["Error"]["Code"] == "InvalidParameterException"


def test_delete_repository(ecr, repo_name):
    arn = ecr.create_repository(repositoryName=repo_name, tags=[{"Key": "k", "Value": "v"}])[
        "repository"]["repositoryArn"]
    out = ecr.delete_repository(repositoryName=repo_name)["repository"]
    assert out["repositoryName"] == repo_name
    err = error_of(ecr.describe_repositories, repositoryNames=[repo_name])
    assert err.response["Error"]["Code"] == "RepositoryNotFoundException"
    err = error_of(ecr.delete_repository, repositoryName=repo_name)
    assert err.response["Error"]["Code"] == "RepositoryNotFoundException"
    # Tags went with it: a new repository of the same name starts untagged.
    ecr.create_repository(repositoryName=repo_name)
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_tag_untag_list(ecr, repo_name):
    arn = ecr.create_repository(repositoryName=repo_name)["repository"]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "3"}])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    ecr.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]


TAG_ERRORS = [
    ("reserved-prefix", [{"Key": "aws:owner", "Value": "x"}], "InvalidTagParameterException"),
    ("over-50", [{"Key": f"k{i}", "Value": "v"} for i in range(51)], "TooManyTagsException"),
]


@pytest.mark.parametrize("why,tags,code", TAG_ERRORS, ids=[t[0] for t in TAG_ERRORS])
def test_bad_tags_are_rejected_and_nothing_is_created(ecr, repo_name, why, tags, code):
    err = error_of(ecr.create_repository, repositoryName=repo_name, tags=tags)
    assert err.response["Error"]["Code"] == code
    # One transaction per change: the failed create left no repository behind.
    err = error_of(ecr.describe_repositories, repositoryNames=[repo_name])
    assert err.response["Error"]["Code"] == "RepositoryNotFoundException"


def test_tagging_an_unknown_repository(ecr):
    arn = "arn:aws:ecr:us-east-1:000000000000:repository/nope/nope"
    err = error_of(ecr.tag_resource, resourceArn=arn, tags=[{"Key": "a", "Value": "b"}])
    assert err.response["Error"]["Code"] == "RepositoryNotFoundException"
    err = error_of(ecr.list_tags_for_resource, resourceArn="arn:aws:sqs:us-east-1:000000000000:q")
    assert err.response["Error"]["Code"] == "InvalidParameterException"


def test_put_image_tag_mutability_and_scanning_configuration(ecr, repo_name):
    ecr.create_repository(repositoryName=repo_name)
    out = ecr.put_image_tag_mutability(repositoryName=repo_name, imageTagMutability="IMMUTABLE")
    assert out == {**out, "repositoryName": repo_name, "imageTagMutability": "IMMUTABLE",
                   "registryId": "000000000000"}
    out = ecr.put_image_scanning_configuration(
        repositoryName=repo_name, imageScanningConfiguration={"scanOnPush": True})
    assert out["imageScanningConfiguration"] == {"scanOnPush": True}
    repo = ecr.describe_repositories(repositoryNames=[repo_name])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}


def test_mutability_with_exclusions_requires_filters(ecr, repo_name):
    err = error_of(ecr.create_repository, repositoryName=repo_name,
                   imageTagMutability="IMMUTABLE_WITH_EXCLUSION")
    assert err.response["Error"]["Code"] == "InvalidParameterException"
    out = ecr.create_repository(
        repositoryName=repo_name, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest*"}],
    )["repository"]
    assert out["imageTagMutabilityExclusionFilters"] == [
        {"filterType": "WILDCARD", "filter": "latest*"}]


def test_accounts_are_namespaces(server, repo_name):
    mine = server.client("ecr")
    theirs = server.client("ecr", key=OTHER_KEY, secret=OTHER_SECRET)
    mine.create_repository(repositoryName=repo_name)
    assert repo_name not in [r["repositoryName"] for r in theirs.describe_repositories()[
        "repositories"]]
    # The same name is free in the other account, with that account's ARN.
    out = theirs.create_repository(repositoryName=repo_name)["repository"]
    assert out["repositoryArn"] == f"arn:aws:ecr:us-east-1:{OTHER_ACCOUNT}:repository/{repo_name}"
    # Reaching into another account's registry is denied, not answered.
    err = error_of(theirs.describe_repositories, registryId="000000000000",
                   repositoryNames=[repo_name])
    assert err.response["Error"]["Code"] == "AccessDeniedException"
    assert server.client("sts", key=OTHER_KEY, secret=OTHER_SECRET).get_caller_identity()[
        "Account"] == OTHER_ACCOUNT


def test_regions_are_namespaces(server, repo_name):
    east = server.client("ecr", region="us-east-1")
    west = server.client("ecr", region="us-west-2")
    east.create_repository(repositoryName=repo_name)
    err = error_of(west.describe_repositories, repositoryNames=[repo_name])
    assert err.response["Error"]["Code"] == "RepositoryNotFoundException"
    out = west.create_repository(repositoryName=repo_name)["repository"]
    assert out["repositoryArn"].startswith("arn:aws:ecr:us-west-2:")
    assert out["repositoryUri"].startswith("000000000000.dkr.ecr.us-west-2.localhost:")
