"""Target operations (a mixin of ElbProvider): RegisterTargets, DeregisterTargets,
DescribeTargetHealth — the API face of :mod:`corral.elb.targets`.

DeregisterTargets refuses targets that are not registered (InvalidTarget, AWS's text), and so
does DescribeTargetHealth for a target id its group's type cannot hold; a well-formed target
that is not registered is ``unused`` / ``Target.NotRegistered``. The ``target-deregistered``
waiter succeeds on either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.elb import lookups, targets
from corral.elb.errors import InvalidTarget


def _tg_arn(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    return [params["TargetGroupArn"]]


def _label(target: dict[str, Any]) -> str:
    return f"'{target['Id']}'" + (f" (port {target['Port']})" if target.get("Port") else "")


class TargetOperations:
    @acts_on(_tg_arn)
    def register_targets(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        tg = lookups.find(ctx, params["TargetGroupArn"], "targetgroup")
        targets.register(ctx.db, tg, params["Targets"], datetime.now(UTC))
        return {}

    @acts_on(_tg_arn)
    def deregister_targets(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        tg = lookups.find(ctx, params["TargetGroupArn"], "targetgroup")
        now = datetime.now(UTC)
        known = targets.registered(ctx.db, tg, params["Targets"], now)
        missing = [t for t in params["Targets"] if t not in known]
        if missing:
            raise InvalidTarget(f"The following targets are not registered in target group "
                                f"'{tg.arn}': {', '.join(_label(t) for t in missing)}")
        targets.deregister(ctx.db, tg.arn, params["Targets"], now)
        return {}

    @acts_on(_tg_arn)
    def describe_target_health(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        tg = lookups.find(ctx, params["TargetGroupArn"], "targetgroup")
        asked = params.get("Targets")
        if asked:
            targets.check(ctx.db, tg, asked)
        return {"TargetHealthDescriptions": targets.health(ctx.db, tg.arn, asked or None)}
