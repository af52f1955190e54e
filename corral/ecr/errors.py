"""ECR error codes, with the message wordings AWS uses (shared/reference/ecr-registry-and-auth.md)."""

from __future__ import annotations

from corral.aws.errors import AwsError


class EcrError(AwsError):
    status = 400


class InvalidParameterException(EcrError):
    code = "InvalidParameterException"


class InvalidTagParameterException(EcrError):
    code = "InvalidTagParameterException"


class TooManyTagsException(EcrError):
    code = "TooManyTagsException"


class RepositoryNotFoundException(EcrError):
    code = "RepositoryNotFoundException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            f"The repository with name '{name}' does not exist in the registry with id "
            f"'{registry_id}'"
        )


class RepositoryAlreadyExistsException(EcrError):
    code = "RepositoryAlreadyExistsException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            f"The repository with name '{name}' already exists in the registry with id "
            f"'{registry_id}'"
        )


class RepositoryNotEmptyException(EcrError):
    code = "RepositoryNotEmptyException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            f"The repository with name '{name}' in registry with id '{registry_id}' cannot be "
            "deleted because it still contains images"
        )
