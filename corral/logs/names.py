"""CloudWatch Logs ARNs and log-group references: built and parsed here only.

    log group    arn:aws:logs:<region>:<account>:log-group:<name>        (logGroupArn)
                 arn:aws:logs:<region>:<account>:log-group:<name>:*      (arn: IAM's form)
    log stream   arn:aws:logs:<region>:<account>:log-group:<name>:log-stream:<stream>

DescribeLogGroups answers both group forms: ``arn`` with the trailing ``:*`` (what IAM
policies name for most actions), ``logGroupArn`` without it (what ``logGroupIdentifier`` and
the tagging APIs take) [BC LogGroup.arn, LogGroup.logGroupArn]. Group names never hold ``:``
(pattern ``[.\\-_/#A-Za-z0-9]+``), so the name is everything between ``log-group:`` and the
next ``:``.
"""

from __future__ import annotations

from corral.aws import arns
from corral.aws.context import RequestContext


def group_arn(region: str, account: str, name: str) -> str:
    return arns.build("logs", region, account, f"log-group:{name}")


def group_arn_any(region: str, account: str, name: str) -> str:
    """The ``:*`` form: the log group and everything in it, as IAM resources name it."""
    return group_arn(region, account, name) + ":*"


def stream_arn(region: str, account: str, group: str, stream: str) -> str:
    return group_arn(region, account, group) + f":log-stream:{stream}"


def all_groups(region: str, account: str) -> str:
    """The resource of account-wide reads (DescribeLogGroups)."""
    return arns.build("logs", region, account, "log-group:*")


def parse_group_arn(text: str) -> tuple[str, str, str] | None:
    """(region, account, name) of a log-group ARN (with or without ``:*``); None when the
    text is not one."""
    parsed = arns.parse(text)
    if parsed is None or parsed.service != "logs" or not parsed.resource.startswith("log-group:"):
        return None
    rest = parsed.resource.removeprefix("log-group:")
    name, _, tail = rest.partition(":")
    if not name or tail not in ("", "*"):
        return None
    return parsed.region, parsed.account, name


def group_name(ctx: RequestContext, params: dict) -> str:
    """The log group a request names by ``logGroupName`` or ``logGroupIdentifier`` (a name
    or an ARN). An ARN of another account or region names no group of the caller's: ``""``
    (which no group is called), so the operation answers ResourceNotFoundException."""
    ref = params.get("logGroupName") or params.get("logGroupIdentifier") or ""
    if not ref.startswith("arn:"):
        return ref
    parsed = parse_group_arn(ref)
    if parsed is None or parsed[:2] != (ctx.region, ctx.account_id):
        return ""
    return parsed[2]


def _ref_parts(ctx: RequestContext, params: dict) -> tuple[str, str, str]:
    """(region, account, name) of the group a request names, for IAM: an ARN's own parts."""
    ref = params.get("logGroupName") or params.get("logGroupIdentifier") or ""
    parsed = parse_group_arn(ref) if ref.startswith("arn:") else None
    return parsed or (ctx.region, ctx.account_id, ref or "*")


def request_group_arn(ctx: RequestContext, params: dict) -> str:
    """IAM's resource for an operation on the group the request names."""
    return group_arn_any(*_ref_parts(ctx, params))


def request_stream_arn(ctx: RequestContext, params: dict) -> str:
    """IAM's resource for an operation on the stream the request names."""
    return stream_arn(*_ref_parts(ctx, params), params.get("logStreamName") or "*")
