"""AddTags, RemoveTags, DescribeTags (a mixin of ElbProvider) on load balancers, target
groups, listeners and rules. Tags live in each resource's document (``x-corral.tags``, in the
order they were added), so deleting a resource deletes its tags with it."""

from __future__ import annotations

from typing import Any

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.elb import lookups, names, records
from corral.elb.errors import DuplicateTagKeys, TooManyTags, ValidationError

MAX_TAGS = 50


def checked(tags: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """Tags as given to a Create call or AddTags: no key twice (AWS's DuplicateTagKeys)."""
    tags = tags or []
    keys = [t["Key"] for t in tags]
    for key in keys:
        if keys.count(key) > 1:
            raise DuplicateTagKeys(f"Tag key '{key}' was specified more than once")
    if len(tags) > MAX_TAGS:
        raise TooManyTags(f"A resource can have at most {MAX_TAGS} tags")
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]


def merged(current: list[dict[str, str]], added: list[dict[str, str]]) -> list[dict[str, str]]:
    new = {t["Key"]: t["Value"] for t in added}
    out = [{"Key": t["Key"], "Value": new.pop(t["Key"], t["Value"])} for t in current]
    out += [{"Key": k, "Value": v} for k, v in new.items()]
    if len(out) > MAX_TAGS:
        raise TooManyTags("The quota for the number of tags that can be assigned to a "
                          "resource has been reached")
    return out


def _resource(ctx: RequestContext, arn: str):
    kind = names.kind_of(arn)
    if kind is None:
        raise ValidationError(f"'{arn}' is not a valid resource ARN")
    return lookups.TABLES[kind], lookups.find(ctx, arn, kind)


def _arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return list(params.get("ResourceArns") or [])


class TagOperations:
    @acts_on(_arns)
    def add_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        added = checked(params["Tags"])
        found = [_resource(ctx, arn) for arn in params["ResourceArns"]]  # all, before writing
        for table, row in found:
            doc = row.doc
            records.private(doc)["tags"] = merged(records.private(doc)["tags"], added)
            records.put_doc(ctx.db, table, row.arn, doc)
        return {}

    @acts_on(_arns)
    def remove_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        keys = set(params["TagKeys"])
        for table, row in [_resource(ctx, arn) for arn in params["ResourceArns"]]:
            doc = row.doc
            private = records.private(doc)
            private["tags"] = [t for t in private["tags"] if t["Key"] not in keys]
            records.put_doc(ctx.db, table, row.arn, doc)
        return {}

    @acts_on(_arns)
    def describe_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        if len(params["ResourceArns"]) > 20:
            raise ValidationError("At most 20 resource ARNs can be described at a time")
        out = []
        for arn in params["ResourceArns"]:
            _, row = _resource(ctx, arn)
            out.append({"ResourceArn": arn, "Tags": records.private(row.doc)["tags"]})
        return {"TagDescriptions": out}
