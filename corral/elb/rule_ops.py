"""Listener rule operations (a mixin of ElbProvider): Create/Describe/Modify/DeleteRule,
SetRulePriorities; and the action checks listeners share.

A listener's rules are rows of ``elb_rules``; its default rule (no conditions, priority
NULL, ``"Priority": "default"``, ``IsDefault``) is created with the listener and carries its
DefaultActions. Priorities are unique per listener (PriorityInUse); rules are evaluated lowest
first, the default rule last (the data plane's ``corral.elb.rules``).

Forward actions must name target groups of the caller's account and region, and a target
group serves one load balancer at most (TargetGroupAssociationLimit, as on AWS).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.elb import lookups, names, records, tag_ops
from corral.elb import validation as check
from corral.elb.errors import (
    OperationNotPermitted,
    PriorityInUse,
    TargetGroupAssociationLimit,
    TargetGroupNotFound,
    TooManyRules,
    ValidationError,
)
from corral.store.db import emit
from corral.store.schema import elb_listeners, elb_rules, elb_target_groups

MAX_RULES = 100  # per load balancer, the default rules not counted (AWS's quota)


def checked_actions(ctx: RequestContext, lb_arn: str,
                    actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actions normalised and checked, the target groups they forward to looked up."""
    out = check.check_actions(actions)
    refs = records.references(ctx.db, ctx.account_id, ctx.region)
    for tg in sorted(records.forwarded_to(out)):
        lookups.check_arn(tg, "targetgroup")
        if records.get(ctx.db, elb_target_groups, tg, ctx.account_id, ctx.region) is None:
            raise TargetGroupNotFound(f"Target group '{tg}' not found")
        if refs.get(tg, set()) - {lb_arn}:
            raise TargetGroupAssociationLimit(
                "The following target groups cannot be associated with more than one load "
                f"balancer: {tg}")
    return out


def rule_doc(arn: str, priority: int | None, conditions: list, actions: list,
             tags: list | None = None) -> dict[str, Any]:
    return {"RuleArn": arn, "Priority": "default" if priority is None else str(priority),
            "Conditions": conditions, "Actions": actions, "IsDefault": priority is None,
            records.PRIVATE: {"attributes": {}, "tags": tags or []}}


def _rule_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    if params.get("RuleArn"):
        return [params["RuleArn"]]
    if params.get("RulePriorities"):
        return [p["RuleArn"] for p in params["RulePriorities"]]
    return list(params.get("RuleArns") or [params.get("ListenerArn") or "*"])


def _count_rules(ctx: RequestContext, lb_arn: str) -> int:
    return sum(1 for listener in records.listeners_of(ctx.db, lb_arn)
               for rule in records.rules_of(ctx.db, listener.arn) if rule.priority is not None)


class RuleOperations:
    @acts_on(_rule_arns)
    def create_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        listener = lookups.find(ctx, params["ListenerArn"], "listener")
        priority = params["Priority"]
        conditions = check.check_conditions(params["Conditions"])
        actions = checked_actions(ctx, listener.load_balancer_arn, params["Actions"])
        tags = tag_ops.checked(params.get("Tags"))
        if records.rule_at(ctx.db, listener.arn, priority) is not None:
            raise PriorityInUse(f"Priority '{priority}' is currently in use")
        if _count_rules(ctx, listener.load_balancer_arn) >= MAX_RULES:
            raise TooManyRules(f"A load balancer can have at most {MAX_RULES} rules")
        arn = names.rule_arn(listener.arn, names.new_id())
        doc = rule_doc(arn, priority, conditions, actions, tags)
        ctx.db.execute(elb_rules.insert().values(arn=arn, listener_arn=listener.arn,
                                                 priority=priority, doc=doc))
        emit(ctx.db, "elb.changed", arn=arn)
        return {"Rules": [records.public(doc)]}

    @acts_on(_rule_arns)
    def describe_rules(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        lookups.exclusive(params, "ListenerArn", "RuleArns")
        if params.get("ListenerArn"):
            listener = lookups.find(ctx, params["ListenerArn"], "listener")
            rows = records.rules_of(ctx.db, listener.arn)
        elif params.get("RuleArns"):
            rows = lookups.find_all(ctx, params["RuleArns"], "listener-rule")
        else:
            raise ValidationError("You must specify either listener rule ARNs or a listener ARN")
        return lookups.page([records.public(r.doc) for r in rows], params, "Rules")

    @acts_on(_rule_arns)
    def modify_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        """The default rule takes new actions (they become the listener's DefaultActions)
        but never conditions."""
        row = lookups.find(ctx, params["RuleArn"], "listener-rule")
        doc = row.doc
        if params.get("Conditions") is not None:
            if row.priority is None:
                raise OperationNotPermitted("The default rule's conditions cannot be modified")
            doc["Conditions"] = check.check_conditions(params["Conditions"])
        if params.get("Actions") is not None:
            doc["Actions"] = checked_actions(ctx, names.lb_of(row.arn), params["Actions"])
            if row.priority is None:
                self._set_default_actions(ctx, row.listener_arn, doc["Actions"])
        records.put_doc(ctx.db, elb_rules, row.arn, doc)
        emit(ctx.db, "elb.changed", arn=row.arn)
        return {"Rules": [records.public(doc)]}

    def _set_default_actions(self, ctx: RequestContext, listener_arn: str,
                             actions: list[dict[str, Any]]) -> None:
        listener = records.get(ctx.db, elb_listeners, listener_arn, ctx.account_id, ctx.region)
        doc = listener.doc
        doc["DefaultActions"] = actions
        records.put_doc(ctx.db, elb_listeners, listener_arn, doc)

    @acts_on(_rule_arns)
    def delete_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["RuleArn"], "listener-rule")
        if row.priority is None:
            raise OperationNotPermitted("A listener's default rule cannot be deleted")
        ctx.db.execute(elb_rules.delete().where(elb_rules.c.arn == row.arn))
        emit(ctx.db, "elb.changed", arn=row.arn)
        return {}

    @acts_on(_rule_arns)
    def set_rule_priorities(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        wanted = params["RulePriorities"]
        priorities = [p["Priority"] for p in wanted]
        for priority in priorities:
            if priorities.count(priority) > 1:
                raise ValidationError(f"Priority '{priority}' was provided multiple times")
        rows = {r.arn: r for r in lookups.find_all(ctx, [p["RuleArn"] for p in wanted],
                                                   "listener-rule")}
        if any(r.priority is None for r in rows.values()):
            raise OperationNotPermitted("The default rule's priority cannot be changed")
        for p in wanted:
            other = records.rule_at(ctx.db, rows[p["RuleArn"]].listener_arn, p["Priority"])
            if other is not None and other.arn not in rows:
                raise PriorityInUse(f"Priority '{p['Priority']}' is currently in use")
        self._reprioritise(ctx, rows, wanted)
        return {"Rules": [records.public(records.get(ctx.db, elb_rules, p["RuleArn"],
                                                     ctx.account_id, ctx.region).doc)
                          for p in wanted]}

    def _reprioritise(self, ctx: RequestContext, rows: dict, wanted: list[dict]) -> None:
        """Two steps so swapped priorities never collide on the unique index: first out of
        the way (negative, never a real priority), then into place."""
        for index, p in enumerate(wanted, 1):
            ctx.db.execute(update(elb_rules).where(elb_rules.c.arn == p["RuleArn"])
                           .values(priority=-index))
        for p in wanted:
            doc = rows[p["RuleArn"]].doc
            doc["Priority"] = str(p["Priority"])
            records.put_doc(ctx.db, elb_rules, p["RuleArn"], doc, priority=p["Priority"])
            emit(ctx.db, "elb.changed", arn=p["RuleArn"])
