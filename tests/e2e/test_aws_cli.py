"""The real aws CLI against a real server: the scenario a user types."""

from __future__ import annotations

import json


def test_aws_cli_repository_lifecycle(server):
    out = server.aws("ecr", "create-repository", "--repository-name", "cli/demo",
                     "--image-tag-mutability", "IMMUTABLE", "--tags", "Key=env,Value=dev")
    assert out.returncode == 0, out.stderr
    repo = json.loads(out.stdout)["repository"]
    assert repo["repositoryName"] == "cli/demo"
    assert repo["imageTagMutability"] == "IMMUTABLE"

    out = server.aws("ecr", "describe-repositories", "--repository-names", "cli/demo")
    assert json.loads(out.stdout)["repositories"][0]["repositoryArn"] == repo["repositoryArn"]

    out = server.aws("ecr", "list-tags-for-resource", "--resource-arn", repo["repositoryArn"])
    assert json.loads(out.stdout)["tags"] == [{"Key": "env", "Value": "dev"}]

    out = server.aws("ecr", "delete-repository", "--repository-name", "cli/demo")
    assert out.returncode == 0, out.stderr
    out = server.aws("ecr", "describe-repositories", "--repository-names", "cli/demo")
    assert out.returncode != 0
    assert "RepositoryNotFoundException" in out.stderr


def test_aws_cli_sts_get_caller_identity(server):
    out = server.aws("sts", "get-caller-identity")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "UserId": "000000000000", "Account": "000000000000",
        "Arn": "arn:aws:iam::000000000000:root"}


def test_aws_cli_wrong_secret_is_rejected(server):
    out = server.aws("ecr", "describe-repositories", secret="wrong")
    assert out.returncode != 0
    assert "InvalidSignatureException" in out.stderr
    out = server.aws("sts", "get-caller-identity", secret="wrong")
    assert "SignatureDoesNotMatch" in out.stderr


def test_aws_cli_unknown_key_is_rejected(server):
    out = server.aws("ecr", "describe-repositories", key="AKIANOBODY", secret="x")
    assert "UnrecognizedClientException" in out.stderr
    assert "The security token included in the request is invalid" in out.stderr
    out = server.aws("sts", "get-caller-identity", key="AKIANOBODY", secret="x")
    assert "InvalidClientTokenId" in out.stderr


def test_aws_cli_unimplemented_operation_is_named(server):
    out = server.aws("ecr", "describe-pull-through-cache-rules")
    assert out.returncode != 0
    assert "NotImplemented" in out.stderr
    assert "DescribePullThroughCacheRules" in out.stderr


def test_corral_status_asks_the_server(server):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "corral.cli", "status", "--json",
                          "--endpoint", server.endpoint], capture_output=True, text=True,
                         env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                              "PATH": "/usr/bin:/bin", "HOME": str(server.data_dir)},
                         timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["services"]["ecr"] == "running"
    assert report["identity"]["Account"] == "000000000000"
    assert report["counts"]["ecr"].endswith("repositories")


def test_corral_status_without_a_server_says_what_to_do():
    import subprocess
    import sys

    from tests.server import free_port

    out = subprocess.run([sys.executable, "-m", "corral.cli", "status", "--endpoint",
                          f"http://127.0.0.1:{free_port()}"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "corral up" in out.stdout
