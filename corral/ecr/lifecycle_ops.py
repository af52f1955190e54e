"""ECR's lifecycle policy operations (shared/reference/ecr-lifecycle.md §5).

    PutLifecyclePolicy ─ validate (policy.parse) ─ store the text as given
    GetLifecyclePolicy / DeleteLifecyclePolicy ─ with lastEvaluatedAt, the real time of the
        last evaluation (absent until the policy has been evaluated once)
    StartLifecyclePolicyPreview ─ plan now, synchronously, with the given or stored text;
        store the result (status COMPLETE at once, so no preview is ever "in progress")
    GetLifecyclePolicyPreview ─ the stored result, filtered and paged; deletes nothing

Applying a policy is the executor's job (corral.ecr.lifecycle.executor).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.aws import pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.ecr.errors import (
    InvalidParameterException,
    LifecyclePolicyNotFoundException,
    LifecyclePolicyPreviewNotFoundException,
)
from corral.ecr.lifecycle import records
from corral.ecr.lifecycle.executor import evaluate
from corral.ecr.lifecycle.policy import Policy, PolicyInvalid, parse
from corral.ecr.repositories import Repository
from corral.ecr.scope import repository_arn

PREVIEW_PAGE = 100  # GetLifecyclePolicyPreview without maxResults


def _parse(text: str) -> Policy:
    try:
        return parse(text)
    except PolicyInvalid as e:
        raise InvalidParameterException(e.message) from None


def _ids(repo: Repository) -> dict[str, str]:
    return {"registryId": repo.account_id, "repositoryName": repo.name}


def _result_view(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "imageDigest": r["digest"],
        "imagePushedAt": datetime.fromtimestamp(r["pushedAt"], UTC),
        "action": {"type": "EXPIRE"},
        "appliedRulePriority": r["rulePriority"],
        "storageClass": "STANDARD",
    }
    if r["tags"]:
        out["imageTags"] = r["tags"]
    return out


def _named(r: dict[str, Any], ident: dict[str, str]) -> bool:
    digest, tag = ident.get("imageDigest"), ident.get("imageTag")
    if digest is None and tag is None:
        return False
    return (digest is None or digest == r["digest"]) and (tag is None or tag in r["tags"])


def _wanted(r: dict[str, Any], tag_status: str, image_ids: list[dict[str, str]] | None) -> bool:
    """The preview result passes the request's filter (tagStatus) and imageIds."""
    if tag_status == "TAGGED" and not r["tags"]:
        return False
    if tag_status == "UNTAGGED" and r["tags"]:
        return False
    return not image_ids or any(_named(r, ident) for ident in image_ids)


class LifecycleOperations:
    """Mixed into the ECR provider, which supplies ``_repo``."""

    def _stored_policy(self, ctx: RequestContext, repo: Repository) -> records.StoredPolicy:
        stored = records.get_policy(ctx.db, repo.id)
        if stored is None:
            raise LifecyclePolicyNotFoundException(repo.name, repo.account_id)
        return stored

    def _policy_view(self, repo: Repository, stored: records.StoredPolicy) -> dict[str, Any]:
        out = _ids(repo) | {"lifecyclePolicyText": stored.policy_text}
        if stored.last_evaluated_at is not None:
            out["lastEvaluatedAt"] = stored.last_evaluated_at
        return out

    @acts_on(repository_arn)
    def put_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        text = params["lifecyclePolicyText"]
        _parse(text)
        records.put_policy(ctx.db, repo.id, text, datetime.now(UTC))
        return _ids(repo) | {"lifecyclePolicyText": text}

    @acts_on(repository_arn)
    def get_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        return self._policy_view(repo, self._stored_policy(ctx, repo))

    @acts_on(repository_arn)
    def delete_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        stored = self._stored_policy(ctx, repo)
        records.delete_policy(ctx.db, repo.id)
        return self._policy_view(repo, stored)

    @acts_on(repository_arn)
    def start_lifecycle_policy_preview(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        text = params.get("lifecyclePolicyText") or self._stored_policy(ctx, repo).policy_text
        policy = _parse(text)
        now = datetime.now(UTC)
        results = [{"digest": e.image.digest, "tags": e.tags,
                    "pushedAt": e.image.pushed_at.timestamp(), "rulePriority": e.rule_priority}
                   for e in evaluate(ctx.db, repo, policy, now)]
        results.sort(key=lambda r: (r["rulePriority"], r["pushedAt"], r["digest"]))
        records.put_preview(ctx.db, repo.id, text, results, now)
        return _ids(repo) | {"lifecyclePolicyText": text, "status": "COMPLETE"}

    @acts_on(repository_arn)
    def get_lifecycle_policy_preview(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        repo = self._repo(ctx, params)
        preview = records.get_preview(ctx.db, repo.id)
        if preview is None:
            raise LifecyclePolicyPreviewNotFoundException(repo.name, repo.account_id)
        image_ids = params.get("imageIds")
        if image_ids and (params.get("maxResults") or params.get("nextToken")):
            raise InvalidParameterException(
                "Invalid parameter: maxResults and nextToken cannot be used with imageIds")
        tag_status = (params.get("filter") or {}).get("tagStatus", "ANY")
        chosen = [r for r in preview.results if _wanted(r, tag_status, image_ids)]
        try:
            cursor = pagination.decode(params.get("nextToken"), offset=int) or {"offset": 0}
        except ValueError:
            raise InvalidParameterException(
                "Invalid parameter at 'nextToken' failed to satisfy constraint: 'must be a "
                "token returned by a previous GetLifecyclePolicyPreview call'") from None
        start = max(cursor["offset"], 0)
        limit = len(chosen) if image_ids else params.get("maxResults", PREVIEW_PAGE)
        page = chosen[start:start + limit]
        out = _ids(repo) | {
            "lifecyclePolicyText": preview.policy_text, "status": preview.status,
            "previewResults": [_result_view(r) for r in page],
            "summary": {"expiringImageTotalCount": len(preview.results)},
        }
        if start + limit < len(chosen):
            out["nextToken"] = pagination.encode({"offset": start + limit})
        return out
