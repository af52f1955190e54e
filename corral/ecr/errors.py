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


def image_id_text(image_id: dict[str, str]) -> str:
    """An imageId as ECR prints it in messages: ``{imageDigest:'…', imageTag:'…'}``, with
    ``null`` for the part not given."""
    digest, tag = image_id.get("imageDigest") or "null", image_id.get("imageTag") or "null"
    return f"{{imageDigest:'{digest}', imageTag:'{tag}'}}"


class ImageNotFoundException(EcrError):
    code = "ImageNotFoundException"

    def __init__(self, image_id: dict[str, str], name: str, registry_id: str):
        super().__init__(
            f"The image with imageId {image_id_text(image_id)} does not exist within the "
            f"repository with name '{name}' in the registry with id '{registry_id}'"
        )


class ImageAlreadyExistsException(EcrError):
    code = "ImageAlreadyExistsException"

    def __init__(self, digest: str, tag: str | None, name: str, registry_id: str):
        super().__init__(
            f"Image with digest '{digest}' and tag '{tag or 'null'}' already exists in the "
            f"repository with name '{name}' in registry with id '{registry_id}'"
        )


class ImageTagAlreadyExistsException(EcrError):
    code = "ImageTagAlreadyExistsException"


class ImageDigestDoesNotMatchException(EcrError):
    code = "ImageDigestDoesNotMatchException"

    def __init__(self, given: str, actual: str):
        super().__init__(
            f"Provided digest '{given}' does not match the digest '{actual}' calculated for "
            "the image manifest"
        )


class LayersNotFoundException(EcrError):
    code = "LayersNotFoundException"


class ReferencedImagesNotFoundException(EcrError):
    code = "ReferencedImagesNotFoundException"


class UploadNotFoundException(EcrError):
    code = "UploadNotFoundException"

    def __init__(self, upload_id: str, name: str, registry_id: str):
        super().__init__(
            f"The upload with id '{upload_id}' does not exist in the repository with name "
            f"'{name}' in the registry with id '{registry_id}'"
        )


class InvalidLayerPartException(EcrError):
    """ECR's shape also carries ``lastValidByteReceived``; the message states it."""

    code = "InvalidLayerPartException"


class InvalidLayerException(EcrError):
    code = "InvalidLayerException"


class LayerAlreadyExistsException(EcrError):
    code = "LayerAlreadyExistsException"

    def __init__(self, digest: str, name: str, registry_id: str):
        super().__init__(
            f"The layer with digest '{digest}' already exists in the repository with name "
            f"'{name}' in registry with id '{registry_id}'"
        )


class EmptyUploadException(EcrError):
    code = "EmptyUploadException"

    def __init__(self, upload_id: str):
        super().__init__(f"The upload with id '{upload_id}' does not contain any layer parts")


class LifecyclePolicyNotFoundException(EcrError):
    code = "LifecyclePolicyNotFoundException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            f"Lifecycle policy does not exist for the repository with name '{name}' in the "
            f"registry with id '{registry_id}'"
        )


class LifecyclePolicyPreviewNotFoundException(EcrError):
    """AWS documents the meaning ("There is no dry run for this repository"), not the text."""

    code = "LifecyclePolicyPreviewNotFoundException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            f"There is no lifecycle policy preview for the repository with name '{name}' in "
            f"the registry with id '{registry_id}'; start one with StartLifecyclePolicyPreview"
        )
