"""ECS task definition operations (a mixin of EcsProvider).

    RegisterTaskDefinition      validate + normalize (taskdef_validation), next revision, store
    DescribeTaskDefinition      family (latest ACTIVE) | family:revision | ARN; include TAGS
    ListTaskDefinitions         by status, exact family, ASC/DESC by family then revision
    ListTaskDefinitionFamilies  families by prefix and status (ACTIVE | INACTIVE | ALL)
    DeregisterTaskDefinition    ACTIVE ⇒ INACTIVE (still describable, not runnable)
    DeleteTaskDefinitions       INACTIVE ⇒ DELETE_IN_PROGRESS; per-item failures

The store is :mod:`corral.ecs.taskdefs`; tags go through :mod:`corral.ecs.tag_ops`.

Naming a taskRoleArn or executionRoleArn *passes* that role to ECS, so Register also needs
``iam:PassRole`` on it with ``iam:PassedToService`` = ``ecs-tasks.amazonaws.com`` (IAM User
Guide, id_roles_use_passrole; ECS Developer Guide, task IAM roles), checked after the definition
validates and before anything is stored. The check is skipped when no authorizer is wired
(a provider built without the app, as unit tests do).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.aws import arns, pagination
from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.ecs import names, paging, taskdefs
from corral.ecs.errors import ClientException, InvalidParameterException
from corral.ecs.tag_ops import store_tags, tags_view
from corral.ecs.taskdef_validation import normalize
from corral.iam.vending import check_pass_role

PASSED_TO = "ecs-tasks.amazonaws.com"  # the service a task definition's roles are passed to
ROLE_FIELDS = ("taskRoleArn", "executionRoleArn")
MAX_DELETE = 10  # task definitions per DeleteTaskDefinitions call [BC]
_UNABLE = "Unable to describe task definition."  # AWS text
_NOT_INACTIVE = ("The specified task definition is still in ACTIVE status. Please deregister "
                 "the target and try again.")
_MISSING = ("The specified task definition does not exist. Specify a valid account, family, "
            "revision and try again.")


def _family_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    """Every revision of the family (the new revision's number is not known yet)."""
    return [arns.build("ecs", ctx.region, ctx.account_id,
                       f"task-definition/{params['family']}:*")]


def _ref_arns(refs: list[str], ctx: RequestContext) -> list[str]:
    out = []
    for ref in refs:
        parsed = taskdefs.parse_ref(ctx.account_id, ctx.region, ref)
        if parsed is None or parsed[1] is None:
            out.append(ref if ref.startswith("arn:") else "*")
        else:
            out.append(names.task_definition_arn(ctx.region, ctx.account_id, *parsed))
    return out


class TaskDefinitionOperations:
    authorizer: Any  # set on EcsProvider by the app; None without one

    @acts_on(_family_arns)
    def register_task_definition(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        body = normalize(params)
        self._check_pass_roles(ctx, body)
        family = body["family"]
        revision = taskdefs.next_revision(ctx.db, ctx.account_id, ctx.region, family)
        doc = {"taskDefinitionArn": names.task_definition_arn(
            ctx.region, ctx.account_id, family, revision), **body, "revision": revision,
            "status": taskdefs.ACTIVE, "registeredAt": datetime.now(UTC),
            "registeredBy": ctx.principal.arn}
        taskdefs.insert(ctx.db, ctx.account_id, ctx.region, doc)
        store_tags(ctx.db, doc["taskDefinitionArn"], params.get("tags"))
        out: dict[str, Any] = {"taskDefinition": doc}
        if params.get("tags"):
            out["tags"] = tags_view(ctx.db, doc["taskDefinitionArn"])
        return out

    def _check_pass_roles(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        """AccessDeniedException naming iam:PassRole unless the caller may pass each role the
        definition names to ECS tasks."""
        if self.authorizer is None:
            return
        for role_arn in dict.fromkeys(body.get(f) for f in ROLE_FIELDS):
            if role_arn:
                check_pass_role(self.authorizer, ctx, role_arn, PASSED_TO)

    def _lookup(self, ctx: RequestContext, ref: str) -> dict[str, Any]:
        """What Describe answers for ``ref``, or ClientException as ECS answers."""
        try:
            names.family_revision(ref)
        except ValueError as e:
            raise ClientException(f"Invalid revision number. Number: {e}") from None
        doc = taskdefs.resolve(ctx.db, ctx.account_id, ctx.region, ref)
        if doc is None:
            raise ClientException(_UNABLE)
        return doc

    def describe_task_definition(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        doc = self._lookup(ctx, params["taskDefinition"])
        out: dict[str, Any] = {"taskDefinition": doc}
        if "TAGS" in (params.get("include") or []):
            out["tags"] = tags_view(ctx.db, doc["taskDefinitionArn"])
        return out

    def list_task_definitions(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        limit = paging.max_results(params)
        cursor = paging.cursor(params, family=str, revision=int)
        after = (cursor["family"], cursor["revision"]) if cursor else None
        rows = taskdefs.page(
            ctx.db, ctx.account_id, ctx.region, family=params.get("familyPrefix"),
            status=params.get("status", taskdefs.ACTIVE),
            descending=params.get("sort", "ASC") == "DESC", after=after, limit=limit + 1)
        out: dict[str, Any] = {"taskDefinitionArns": [
            names.task_definition_arn(ctx.region, ctx.account_id, f, r) for f, r in rows[:limit]]}
        if len(rows) > limit:
            family, revision = rows[limit - 1]
            out["nextToken"] = pagination.encode({"family": family, "revision": revision})
        return out

    def list_task_definition_families(self, ctx: RequestContext, params: dict[str, Any]
                                      ) -> dict:
        limit = paging.max_results(params)
        cursor = paging.cursor(params, after=str)
        families = taskdefs.families_page(
            ctx.db, ctx.account_id, ctx.region, prefix=params.get("familyPrefix"),
            status=params.get("status", "ALL"), after=cursor["after"] if cursor else None,
            limit=limit + 1)
        out: dict[str, Any] = {"families": families[:limit]}
        if len(families) > limit:
            out["nextToken"] = pagination.encode({"after": families[limit - 1]})
        return out

    @acts_on(lambda ctx, p: _ref_arns([p["taskDefinition"]], ctx))
    def deregister_task_definition(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        doc = self._revision(ctx, params["taskDefinition"])
        if doc is None:
            raise ClientException("The specified task definition does not exist.")
        if doc["status"] != taskdefs.ACTIVE:
            raise ClientException("The specified task definition is already inactive.")
        doc["status"], doc["deregisteredAt"] = taskdefs.INACTIVE, datetime.now(UTC)
        taskdefs.update(ctx.db, ctx.account_id, ctx.region, doc)
        return {"taskDefinition": doc}

    def _revision(self, ctx: RequestContext, ref: str) -> dict[str, Any] | None:
        """The revision ``ref`` names (a revision is required), in any status but deleted."""
        try:
            _, revision = names.family_revision(ref)
        except ValueError as e:
            raise ClientException(f"Invalid revision number. Number: {e}") from None
        if revision is None:
            raise ClientException(
                f"Invalid task definition '{ref}': specify family:revision or a full ARN.")
        return taskdefs.resolve(ctx.db, ctx.account_id, ctx.region, ref)

    @acts_on(lambda ctx, p: _ref_arns(p["taskDefinitions"], ctx))
    def delete_task_definitions(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        refs = params["taskDefinitions"]
        if len(refs) > MAX_DELETE:
            raise InvalidParameterException(
                f"You can specify up to {MAX_DELETE} task definitions in one request.")
        deleted, failures = [], []
        now = datetime.now(UTC)
        for ref in dict.fromkeys(refs):
            doc = self._deletable(ctx, ref)
            if isinstance(doc, str):
                failures.append({"arn": self._arn_of(ctx, ref), "reason": doc})
                continue
            if doc["status"] == taskdefs.INACTIVE:
                doc["status"], doc["deleteRequestedAt"] = taskdefs.DELETE_IN_PROGRESS, now
                taskdefs.update(ctx.db, ctx.account_id, ctx.region, doc)
            deleted.append(doc)
        return {"taskDefinitions": deleted, "failures": failures}

    def _deletable(self, ctx: RequestContext, ref: str) -> dict[str, Any] | str:
        """The revision to delete, or the failure reason for it. Asking again for one already
        being deleted answers it again (the request is idempotent)."""
        parsed = taskdefs.parse_ref(ctx.account_id, ctx.region, ref)
        if parsed is None or parsed[1] is None:
            return _MISSING
        doc = taskdefs.get(ctx.db, ctx.account_id, ctx.region, *parsed)
        if doc is None:
            return _MISSING
        if doc["status"] == taskdefs.ACTIVE:
            return _NOT_INACTIVE
        return doc

    @staticmethod
    def _arn_of(ctx: RequestContext, ref: str) -> str:
        parsed = taskdefs.parse_ref(ctx.account_id, ctx.region, ref)
        if ref.startswith("arn:") or parsed is None or parsed[1] is None:
            return ref
        return names.task_definition_arn(ctx.region, ctx.account_id, *parsed)
