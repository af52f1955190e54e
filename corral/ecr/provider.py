"""ECR API operations: repositories, their settings and tags; the image and layer operations
come from :class:`~corral.ecr.image_ops.ImageOperations`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.aws import arns, pagination
from corral.aws.context import RequestContext
from corral.aws.provider import Provider, acts_on
from corral.aws.validate import Violation, invalid_parameter_message
from corral.config import Settings
from corral.ecr import auth as ecr_auth
from corral.ecr import images, repositories
from corral.ecr.errors import (
    InvalidParameterException,
    InvalidTagParameterException,
    RepositoryAlreadyExistsException,
    RepositoryNotEmptyException,
    RepositoryNotFoundException,
    TooManyTagsException,
)
from corral.ecr.image_ops import ImageOperations
from corral.ecr.lifecycle_ops import LifecycleOperations
from corral.ecr.policy_ops import RepositoryPolicyOperations
from corral.ecr.repositories import Repository
from corral.ecr.scan_ops import ScanOperations
from corral.ecr.scope import registry_host as _registry_host
from corral.ecr.scope import registry_id as _registry_id
from corral.ecr.scope import repository_arn as _repo_arn
from corral.registry.blobs import BlobStore
from corral.store import tags as tag_store

MAX_TAGS = 50  # per resource (ECR service quotas)
WITH_EXCLUSION = ("IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")


def _repo_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    names = params.get("repositoryNames")
    if not names:
        return [arns.ecr_repository(ctx.region, _registry_id(ctx, params), "*")]
    return [arns.ecr_repository(ctx.region, _registry_id(ctx, params), n) for n in names]


def _resource_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [params["resourceArn"]]


class EcrProvider(ImageOperations, LifecycleOperations, RepositoryPolicyOperations,
                  ScanOperations, Provider):
    service = "ecr"

    def __init__(self, settings: Settings, blobs: BlobStore):
        self.settings = settings
        self.blobs = blobs

    def validation_error(self, found: list[Violation]):
        return InvalidParameterException(invalid_parameter_message(found))

    # --- helpers -------------------------------------------------------------------------

    def registry_host(self, account_id: str, region: str) -> str:
        """Where this account's registry answers, as clients are told (repositoryUri,
        proxyEndpoint, downloadUrl): ``corral.ecr.scope.registry_host``."""
        return _registry_host(self.settings, account_id, region)

    def _view(self, repo: Repository) -> dict[str, Any]:
        out = {
            "repositoryArn": repo.arn,
            "registryId": repo.account_id,
            "repositoryName": repo.name,
            "repositoryUri": f"{self.registry_host(repo.account_id, repo.region)}/{repo.name}",
            "createdAt": repo.created_at,
            "imageTagMutability": repo.image_tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": repo.scan_on_push},
            "encryptionConfiguration": {"encryptionType": repo.encryption_type},
        }
        if repo.mutability_exclusion_filters:
            out["imageTagMutabilityExclusionFilters"] = repo.mutability_exclusion_filters
        if repo.kms_key:
            out["encryptionConfiguration"]["kmsKey"] = repo.kms_key
        return out

    def _repo(self, ctx: RequestContext, params: dict[str, Any]) -> Repository:
        registry = _registry_id(ctx, params)
        repo = repositories.get(ctx.db, registry, ctx.region, params["repositoryName"])
        if repo is None:
            raise RepositoryNotFoundException(params["repositoryName"], registry)
        return repo

    def _repo_by_arn(self, ctx: RequestContext, resource_arn: str) -> Repository:
        arn = arns.parse(resource_arn)
        if arn is None or arn.service != "ecr" or arn.resource_type != "repository":
            raise InvalidParameterException(
                f"Invalid parameter at 'resourceArn' failed to satisfy constraint: "
                f"'must be the ARN of an ECR repository, not {resource_arn}'"
            )
        repo = repositories.get(ctx.db, arn.account, arn.region, arn.resource_id)
        if repo is None or arn.region != ctx.region:
            raise RepositoryNotFoundException(arn.resource_id, arn.account)
        return repo

    @staticmethod
    def _check_mutability(mutability: str, filters: list | None) -> None:
        if mutability in WITH_EXCLUSION and not filters:
            raise InvalidParameterException(
                f"imageTagMutabilityExclusionFilters are required when imageTagMutability is "
                f"{mutability}"
            )
        if mutability not in WITH_EXCLUSION and filters:
            raise InvalidParameterException(
                "imageTagMutabilityExclusionFilters can only be used with "
                "IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION"
            )

    @staticmethod
    def _tags_from(params_tags: list[dict[str, str]] | None) -> dict[str, str]:
        tags = {}
        for t in params_tags or []:
            key = t.get("Key")
            if key is None or t.get("Value") is None:
                raise InvalidTagParameterException("Each tag must have a Key and a Value")
            if key.lower().startswith("aws:"):
                raise InvalidTagParameterException(
                    f"Invalid parameter: tag key '{key}' uses the reserved prefix 'aws:'"
                )
            tags[key] = t["Value"]
        return tags

    def _put_tags(self, ctx: RequestContext, arn: str, new: dict[str, str]) -> None:
        current = tag_store.get(ctx.db, arn)
        if len(current | new) > MAX_TAGS:
            raise TooManyTagsException(
                f"A resource can have at most {MAX_TAGS} tags; this request would leave "
                f"{len(current | new)}"
            )
        tag_store.put(ctx.db, arn, new)

    # --- operations ----------------------------------------------------------------------

    @acts_on(_repo_arn)
    def create_repository(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        registry, name = _registry_id(ctx, params), params["repositoryName"]
        if repositories.get(ctx.db, registry, ctx.region, name) is not None:
            raise RepositoryAlreadyExistsException(name, registry)
        mutability = params.get("imageTagMutability", "MUTABLE")
        filters = params.get("imageTagMutabilityExclusionFilters") or []
        self._check_mutability(mutability, filters)
        enc = params.get("encryptionConfiguration") or {}
        enc_type = enc.get("encryptionType", "AES256")
        kms_key = enc.get("kmsKey")
        if enc_type == "AES256" and kms_key:
            raise InvalidParameterException(
                "Invalid parameter at 'encryptionConfiguration.kmsKey' failed to satisfy "
                "constraint: 'kmsKey can only be given with encryptionType KMS or KMS_DSSE'"
            )
        if enc_type != "AES256" and not kms_key:
            kms_key = arns.build("kms", ctx.region, registry, "alias/aws/ecr")
        tags = self._tags_from(params.get("tags"))
        repo = repositories.insert(
            ctx.db, account_id=registry, region=ctx.region, name=name,
            created_at=datetime.now(UTC), image_tag_mutability=mutability,
            mutability_exclusion_filters=filters,
            scan_on_push=bool((params.get("imageScanningConfiguration") or {}).get("scanOnPush")),
            encryption_type=enc_type, kms_key=kms_key,
        )
        self._put_tags(ctx, repo.arn, tags)
        return {"repository": self._view(repo)}

    @acts_on(_repo_arns)
    def describe_repositories(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        registry = _registry_id(ctx, params)
        names = params.get("repositoryNames")
        if names:
            if params.get("maxResults") or params.get("nextToken"):
                raise InvalidParameterException(
                    "Invalid parameter: maxResults and nextToken cannot be used with "
                    "repositoryNames"
                )
            found = []
            for name in dict.fromkeys(names):
                repo = repositories.get(ctx.db, registry, ctx.region, name)
                if repo is None:
                    raise RepositoryNotFoundException(name, registry)
                found.append(repo)
            return {"repositories": [self._view(r) for r in found]}
        try:
            cursor = pagination.decode(params.get("nextToken"), after=int) or {"after": 0}
        except ValueError:
            raise InvalidParameterException(
                "Invalid parameter at 'nextToken' failed to satisfy constraint: "
                "'must be a token returned by a previous DescribeRepositories call'"
            ) from None
        limit = params.get("maxResults", 100)
        rows = repositories.page(ctx.db, registry, ctx.region, after_id=cursor["after"],
                                 limit=limit + 1)
        out: dict[str, Any] = {"repositories": [self._view(r) for r in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = pagination.encode({"after": rows[limit - 1].id})
        return out

    @acts_on(_repo_arn)
    def delete_repository(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        if images.count(ctx.db, repo.id) and not params.get("force"):
            raise RepositoryNotEmptyException(repo.name, repo.account_id)
        view = self._view(repo)
        self.drop_uploads(ctx, repo)
        self.drop_repository_policy(ctx, repo)
        repositories.remove(ctx.db, repo)
        return {"repository": view}

    def get_authorization_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        registries = params.get("registryIds") or [ctx.account_id]
        data = []
        scheme = self.settings.scheme
        for registry in registries:
            token, expires = ecr_auth.issue(ctx.db, ctx.principal, datetime.now(UTC))
            data.append({
                "authorizationToken": token, "expiresAt": expires,
                "proxyEndpoint": f"{scheme}://{self.registry_host(registry, ctx.region)}",
            })
        return {"authorizationData": data}

    @acts_on(_repo_arn)
    def put_image_tag_mutability(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        mutability = params["imageTagMutability"]
        filters = params.get("imageTagMutabilityExclusionFilters") or []
        self._check_mutability(mutability, filters)
        repositories.update(ctx.db, repo, image_tag_mutability=mutability,
                            mutability_exclusion_filters=filters)
        out = {"registryId": repo.account_id, "repositoryName": repo.name,
               "imageTagMutability": mutability}
        if filters:
            out["imageTagMutabilityExclusionFilters"] = filters
        return out

    @acts_on(_repo_arn)
    def put_image_scanning_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        scan_on_push = bool(params["imageScanningConfiguration"].get("scanOnPush"))
        repositories.update(ctx.db, repo, scan_on_push=scan_on_push)
        return {"registryId": repo.account_id, "repositoryName": repo.name,
                "imageScanningConfiguration": {"scanOnPush": scan_on_push}}

    @acts_on(_resource_arn)
    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo_by_arn(ctx, params["resourceArn"])
        self._put_tags(ctx, repo.arn, self._tags_from(params["tags"]))
        return {}

    @acts_on(_resource_arn)
    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo_by_arn(ctx, params["resourceArn"])
        tag_store.remove(ctx.db, repo.arn, params["tagKeys"])
        return {}

    @acts_on(_resource_arn)
    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo_by_arn(ctx, params["resourceArn"])
        tags = tag_store.get(ctx.db, repo.arn)
        return {"tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
