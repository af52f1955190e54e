"""The ELBv2 tables read and written in one place (the shapes are in the contract: each row's
``doc`` is the Describe output shape plus a private ``x-corral`` object).

Lookups take the ARN and the caller's account and region: an ARN of another account or region
is not found, as on AWS. Deleting a load balancer or listener takes its listeners and rules
with it; a rule's target-group references are read from its actions, never stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, select, update

from corral.aws import arns
from corral.elb import names
from corral.store.schema import (
    elb_listeners,
    elb_load_balancers,
    elb_rules,
    elb_target_groups,
    elb_targets,
)

PRIVATE = "x-corral"


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The AWS shape of a stored document: the private part left out."""
    return {k: v for k, v in doc.items() if k != PRIVATE}


def private(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.setdefault(PRIVATE, {"attributes": {}, "tags": []})


def in_scope(arn: str, account: str, region: str) -> bool:
    parsed = arns.parse(arn)
    return parsed is not None and (parsed.account, parsed.region) == (account, region)


def get(db: Connection, table: Table, arn: str, account: str, region: str) -> Row | None:
    if not in_scope(arn, account, region):
        return None
    return db.execute(select(table).where(table.c.arn == arn)).first()


def put_doc(db: Connection, table: Table, arn: str, doc: dict[str, Any], **columns) -> None:
    db.execute(update(table).where(table.c.arn == arn).values(doc=doc, **columns))


# --- load balancers and target groups (named, per account and region) ------------------------

def named(db: Connection, table: Table, account: str, region: str, name: str) -> Row | None:
    return db.execute(select(table).where(
        table.c.account_id == account, table.c.region == region, table.c.name == name)).first()


def all_in(db: Connection, table: Table, account: str, region: str) -> list[Row]:
    return list(db.execute(select(table).where(
        table.c.account_id == account, table.c.region == region)
        .order_by(table.c.created_at, table.c.arn)))


def delete_load_balancer(db: Connection, arn: str) -> None:
    for listener in listeners_of(db, arn):
        delete_listener(db, listener.arn)
    db.execute(delete(elb_load_balancers).where(elb_load_balancers.c.arn == arn))


def delete_target_group(db: Connection, arn: str) -> None:
    db.execute(delete(elb_targets).where(elb_targets.c.target_group_arn == arn))
    db.execute(delete(elb_target_groups).where(elb_target_groups.c.arn == arn))


# --- listeners and rules ---------------------------------------------------------------------

def listeners_of(db: Connection, lb_arn: str) -> list[Row]:
    return list(db.execute(select(elb_listeners).where(
        elb_listeners.c.load_balancer_arn == lb_arn).order_by(elb_listeners.c.port)))


def listener_on_port(db: Connection, port: int) -> Row | None:
    """Any listener of any account on this machine's ``port`` (one port space for all)."""
    return db.execute(select(elb_listeners).where(elb_listeners.c.port == port)).first()


def delete_listener(db: Connection, arn: str) -> None:
    db.execute(delete(elb_rules).where(elb_rules.c.listener_arn == arn))
    db.execute(delete(elb_listeners).where(elb_listeners.c.arn == arn))


def rules_of(db: Connection, listener_arn: str) -> list[Row]:
    """A listener's rules by priority, the default rule (priority NULL) last."""
    rows = db.execute(select(elb_rules).where(elb_rules.c.listener_arn == listener_arn))
    return sorted(rows, key=lambda r: (r.priority is None, r.priority or 0))


def rule_at(db: Connection, listener_arn: str, priority: int) -> Row | None:
    return db.execute(select(elb_rules).where(elb_rules.c.listener_arn == listener_arn,
                                              elb_rules.c.priority == priority)).first()


def default_rule(db: Connection, listener_arn: str) -> Row:
    return db.execute(select(elb_rules).where(elb_rules.c.listener_arn == listener_arn,
                                              elb_rules.c.priority.is_(None))).one()


# --- target-group references -----------------------------------------------------------------

def forwarded_to(actions: Iterable[dict[str, Any]]) -> set[str]:
    """The target groups a list of actions forwards to."""
    out: set[str] = set()
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            out.add(action["TargetGroupArn"])
        for tg in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            out.add(tg["TargetGroupArn"])
    return out


def references(db: Connection, account: str, region: str) -> dict[str, set[str]]:
    """Target group ARN ⇒ the load balancers whose listeners or rules forward to it (the
    default rule carries the listener's default actions, so rules alone are enough)."""
    prefix = arns.build(names.SERVICE, region, account, "listener/")
    out: dict[str, set[str]] = {}
    rows = db.execute(select(elb_rules.c.listener_arn, elb_rules.c.doc)
                      .where(elb_rules.c.listener_arn.startswith(prefix)))
    for listener_arn, doc in rows:
        for tg in forwarded_to(doc.get("Actions") or []):
            out.setdefault(tg, set()).add(names.lb_of(listener_arn))
    return out
