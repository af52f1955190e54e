"""Listener operations (a mixin of ElbProvider): Create/Describe/Modify/DeleteListener.

A listener with ``Port: 8080`` is served on this machine's port 8080 (on ``settings.host``),
so ``curl http://<DNSName>:8080/`` reaches it as on AWS. One machine has one port space, so
before a listener takes a port it must be free: another listener of the same load balancer
on it is AWS's DuplicateListener; any other listener in the store (of any load balancer, any
account) or another program bound to it is InvalidConfigurationRequest, found by the store and
by a probe bind (SO_REUSEADDR off, bind and close). The data plane binds it for real.

Each listener has a default rule (``rule_ops.rule_doc`` with no priority) carrying its
DefaultActions; ModifyListener keeps the two equal. Deleting a listener deletes its rules.
Listeners speak HTTP; HTTPS is refused with a clear error (Corral has no certificates yet).
"""

from __future__ import annotations

import socket
from typing import Any

from corral.aws.context import RequestContext
from corral.aws.provider import acts_on
from corral.elb import lookups, names, records, tag_ops
from corral.elb.errors import (
    DuplicateListener,
    InvalidConfigurationRequest,
    TooManyListeners,
    UnsupportedProtocol,
    ValidationError,
)
from corral.elb.rule_ops import checked_actions, rule_doc
from corral.store.db import emit
from corral.store.schema import elb_listeners, elb_rules

MAX_LISTENERS = 50  # per load balancer (AWS's quota)


def _listener_arns(ctx: RequestContext, params: dict[str, Any]) -> list[str]:
    if params.get("ListenerArn"):
        return [params["ListenerArn"]]
    return list(params.get("ListenerArns") or [params.get("LoadBalancerArn") or "*"])


def _check_protocol(protocol: str) -> None:
    if protocol == "HTTP":
        return
    if protocol == "HTTPS":
        raise UnsupportedProtocol("Corral does not serve HTTPS listeners yet; use Protocol "
                                  "HTTP")
    raise ValidationError(f"Listener protocol '{protocol}' must be one of 'HTTPS, HTTP'")


def port_is_free(host: str, port: int) -> bool:
    """Whether this machine's ``port`` on ``host`` can be bound right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class ListenerOperations:
    settings: Any  # the provider's Settings

    def _claim_port(self, ctx: RequestContext, lb_arn: str, port: int) -> None:
        taken = records.listener_on_port(ctx.db, port)
        if taken is not None and taken.load_balancer_arn == lb_arn:
            raise DuplicateListener("A listener already exists on this port for this load "
                                    f"balancer '{lb_arn}'")
        if taken is not None or not port_is_free(self.settings.host, port):
            raise InvalidConfigurationRequest(
                f"Port {port} is already in use on this machine (another load balancer's "
                "listener or another program); Corral serves each listener on its own host "
                "port: choose another Port")

    @acts_on(_listener_arns)
    def create_listener(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        lb = lookups.find(ctx, params["LoadBalancerArn"], "loadbalancer")
        protocol = params.get("Protocol") or "HTTP"
        _check_protocol(protocol)
        if params.get("Port") is None:
            raise ValidationError("A listener port must be specified")
        actions = checked_actions(ctx, lb.arn, params["DefaultActions"])
        tags = tag_ops.checked(params.get("Tags"))
        if len(records.listeners_of(ctx.db, lb.arn)) >= MAX_LISTENERS:
            raise TooManyListeners(f"A load balancer can have at most {MAX_LISTENERS} "
                                   "listeners")
        self._claim_port(ctx, lb.arn, params["Port"])
        arn = names.listener_arn(lb.arn, names.new_id())
        doc = {"ListenerArn": arn, "LoadBalancerArn": lb.arn, "Port": params["Port"],
               "Protocol": protocol, "DefaultActions": actions,
               records.PRIVATE: {"attributes": {}, "tags": tags}}
        ctx.db.execute(elb_listeners.insert().values(
            arn=arn, load_balancer_arn=lb.arn, account_id=ctx.account_id, region=ctx.region,
            port=params["Port"], doc=doc))
        default = names.rule_arn(arn, names.new_id())
        ctx.db.execute(elb_rules.insert().values(arn=default, listener_arn=arn, priority=None,
                                                 doc=rule_doc(default, None, [], actions)))
        emit(ctx.db, "elb.changed", arn=arn)
        return {"Listeners": [records.public(doc)]}

    @acts_on(_listener_arns)
    def describe_listeners(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        lookups.exclusive(params, "LoadBalancerArn", "ListenerArns")
        if params.get("LoadBalancerArn"):
            lb = lookups.find(ctx, params["LoadBalancerArn"], "loadbalancer")
            rows = records.listeners_of(ctx.db, lb.arn)
        elif params.get("ListenerArns"):
            rows = lookups.find_all(ctx, params["ListenerArns"], "listener")
        else:
            raise ValidationError("You must specify either listener ARNs or a load balancer "
                                  "ARN")
        return lookups.page([records.public(r.doc) for r in rows], params, "Listeners")

    @acts_on(_listener_arns)
    def modify_listener(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["ListenerArn"], "listener")
        doc = row.doc
        if params.get("Protocol"):
            _check_protocol(params["Protocol"])
            doc["Protocol"] = params["Protocol"]
        if params.get("DefaultActions") is not None:
            doc["DefaultActions"] = checked_actions(ctx, row.load_balancer_arn,
                                                    params["DefaultActions"])
            default = records.default_rule(ctx.db, row.arn)
            rule = default.doc
            rule["Actions"] = doc["DefaultActions"]
            records.put_doc(ctx.db, elb_rules, default.arn, rule)
        port = params.get("Port")
        if port is not None and port != row.port:
            self._claim_port(ctx, row.load_balancer_arn, port)
            doc["Port"] = port
        records.put_doc(ctx.db, elb_listeners, row.arn, doc, port=doc["Port"])
        emit(ctx.db, "elb.changed", arn=row.arn)
        return {"Listeners": [records.public(doc)]}

    @acts_on(_listener_arns)
    def delete_listener(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        row = lookups.find(ctx, params["ListenerArn"], "listener")
        records.delete_listener(ctx.db, row.arn)
        emit(ctx.db, "elb.changed", arn=row.arn)
        return {}
