"""ECR repository policies: SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy.

A repository policy is a resource-based IAM policy (usually ``"Version": "2008-10-17"``, with
``Principal`` and no ``Resource``); enforcement (``corral.iam.enforce``) reads it for every API
call and every ``/v2/`` request on the repository, which is how another account's principals
get pull access. Documents are validated by ``corral.iam.policy`` (kind ``resource``); ECR
answers ``InvalidParameterException`` for a bad one. Quota: 10,240 characters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.ecr.errors import EcrError, InvalidParameterException
from corral.ecr.scope import repository_arn
from corral.iam import entities
from corral.iam import policy as pol
from corral.store.schema import ecr_repository_policies

MAX_POLICY = 10240


class RepositoryPolicyNotFoundException(EcrError):
    code = "RepositoryPolicyNotFoundException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(f"Repository policy does not exist for the repository with name "
                         f"'{name}' in the registry with id '{registry_id}'")


class RepositoryPolicyOperations:
    def _policy_key(self, repo) -> dict[str, Any]:
        return dict(account_id=repo.account_id, region=repo.region, name=repo.name)

    def _policy_text(self, ctx: RequestContext, repo) -> str | None:
        t = ecr_repository_policies.c
        return ctx.db.execute(select(t.policy).where(
            t.account_id == repo.account_id, t.region == repo.region,
            t.name == repo.name)).scalar()

    @acts_on(repository_arn)
    def set_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        text = params["policyText"]
        if pol.size(text) > MAX_POLICY:
            raise InvalidParameterException(
                f"Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Policy "
                f"length must be less than or equal to {MAX_POLICY}'")
        try:
            pol.parse(text, "resource")
        except pol.MalformedPolicy as e:
            raise InvalidParameterException(
                f"Invalid parameter at 'PolicyText' failed to satisfy constraint: "
                f"'Invalid repository policy provided: {e.reason}'") from None
        key = self._policy_key(repo)
        t = ecr_repository_policies.c
        ctx.db.execute(delete(ecr_repository_policies).where(
            t.account_id == repo.account_id, t.region == repo.region, t.name == repo.name))
        ctx.db.execute(ecr_repository_policies.insert().values(**key, policy=text))
        entities.changed(ctx.db)
        return {"registryId": repo.account_id, "repositoryName": repo.name, "policyText": text}

    @acts_on(repository_arn)
    def get_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        text = self._policy_text(ctx, repo)
        if text is None:
            raise RepositoryPolicyNotFoundException(repo.name, repo.account_id)
        return {"registryId": repo.account_id, "repositoryName": repo.name, "policyText": text}

    @acts_on(repository_arn)
    def delete_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        text = self._policy_text(ctx, repo)
        if text is None:
            raise RepositoryPolicyNotFoundException(repo.name, repo.account_id)
        t = ecr_repository_policies.c
        ctx.db.execute(delete(ecr_repository_policies).where(
            t.account_id == repo.account_id, t.region == repo.region, t.name == repo.name))
        entities.changed(ctx.db)
        return {"registryId": repo.account_id, "repositoryName": repo.name, "policyText": text}

    def drop_repository_policy(self, ctx: RequestContext, repo) -> None:
        """DeleteRepository takes its policy along."""
        t = ecr_repository_policies.c
        ctx.db.execute(delete(ecr_repository_policies).where(
            t.account_id == repo.account_id, t.region == repo.region, t.name == repo.name))
        entities.changed(ctx.db)
