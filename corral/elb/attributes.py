"""Load balancer and target group attributes: every key AWS documents for application load
balancers and their (ip / instance) target groups, with its default and the values it takes.

Attributes are strings on the wire. Each key maps to a checker that says whether a value is
valid; a load balancer or target group stores the full map (defaults filled in at create
time), so Describe*Attributes answers every key and the data plane never needs a default.
"""

from __future__ import annotations

from collections.abc import Callable

from corral.elb.errors import ValidationError

Check = Callable[[str], bool]


def _bool(value: str) -> bool:
    return value in ("true", "false")


def _int_range(low: int, high: int) -> Check:
    return lambda v: v.isdigit() and low <= int(v) <= high


def _one_of(*choices: str) -> Check:
    return lambda v: v in choices


def _text(max_len: int) -> Check:
    return lambda v: len(v) <= max_len


def _slow_start(value: str) -> bool:  # 0 disables; otherwise 30–900 s
    return value.isdigit() and (int(value) == 0 or 30 <= int(value) <= 900)


def _count_or_off(value: str) -> bool:
    return value == "off" or (value.isdigit() and int(value) >= 1)


def _percent_or_off(value: str) -> bool:
    return value == "off" or (value.isdigit() and 1 <= int(value) <= 100)


# (default, checker, what a valid value is — for the error message)
LOAD_BALANCER: dict[str, tuple[str, Check, str]] = {
    "access_logs.s3.enabled": ("false", _bool, "true or false"),
    "access_logs.s3.bucket": ("", _text(255), "a bucket name"),
    "access_logs.s3.prefix": ("", _text(1024), "a key prefix"),
    "connection_logs.s3.enabled": ("false", _bool, "true or false"),
    "connection_logs.s3.bucket": ("", _text(255), "a bucket name"),
    "connection_logs.s3.prefix": ("", _text(1024), "a key prefix"),
    "client_keep_alive.seconds": ("3600", _int_range(60, 604800), "60 to 604800"),
    "deletion_protection.enabled": ("false", _bool, "true or false"),
    "idle_timeout.timeout_seconds": ("60", _int_range(1, 4000), "1 to 4000"),
    "load_balancing.cross_zone.enabled": ("true", _bool, "true or false"),
    "routing.http.desync_mitigation_mode": (
        "defensive", _one_of("monitor", "defensive", "strictest"),
        "monitor, defensive or strictest"),
    "routing.http.drop_invalid_header_fields.enabled": ("false", _bool, "true or false"),
    "routing.http.preserve_host_header.enabled": ("false", _bool, "true or false"),
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": ("false", _bool,
                                                                 "true or false"),
    "routing.http.xff_client_port.enabled": ("false", _bool, "true or false"),
    "routing.http.xff_header_processing.mode": (
        "append", _one_of("append", "preserve", "remove"), "append, preserve or remove"),
    "routing.http2.enabled": ("true", _bool, "true or false"),
    "waf.fail_open.enabled": ("false", _bool, "true or false"),
    "zonal_shift.config.enabled": ("false", _bool, "true or false"),
}

TARGET_GROUP: dict[str, tuple[str, Check, str]] = {
    "deregistration_delay.timeout_seconds": ("300", _int_range(0, 3600), "0 to 3600"),
    "slow_start.duration_seconds": ("0", _slow_start, "0 (off) or 30 to 900"),
    "stickiness.enabled": ("false", _bool, "true or false"),
    "stickiness.type": ("lb_cookie", _one_of("lb_cookie", "app_cookie"),
                        "lb_cookie or app_cookie"),
    "stickiness.lb_cookie.duration_seconds": ("86400", _int_range(1, 604800), "1 to 604800"),
    "stickiness.app_cookie.cookie_name": ("", _text(255), "a cookie name"),
    "stickiness.app_cookie.duration_seconds": ("86400", _int_range(1, 604800), "1 to 604800"),
    "load_balancing.algorithm.type": (
        "round_robin", _one_of("round_robin", "least_outstanding_requests", "weighted_random"),
        "round_robin, least_outstanding_requests or weighted_random"),
    "load_balancing.algorithm.anomaly_mitigation": ("off", _one_of("on", "off"), "on or off"),
    "load_balancing.cross_zone.enabled": (
        "use_load_balancer_configuration",
        _one_of("true", "false", "use_load_balancer_configuration"),
        "true, false or use_load_balancer_configuration"),
    "target_group_health.dns_failover.minimum_healthy_targets.count": (
        "1", _count_or_off, "off or a count of at least 1"),
    "target_group_health.dns_failover.minimum_healthy_targets.percentage": (
        "off", _percent_or_off, "off or 1 to 100"),
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": (
        "1", _count_or_off, "a count of at least 1"),
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": (
        "off", _percent_or_off, "off or 1 to 100"),
}

KINDS = {"load balancer": LOAD_BALANCER, "target group": TARGET_GROUP}


def defaults(kind: str) -> dict[str, str]:
    return {key: spec[0] for key, spec in KINDS[kind].items()}


def merged(kind: str, current: dict[str, str], given: list[dict[str, str]]) -> dict[str, str]:
    """``current`` with the ``given`` [{Key, Value}] applied, each key and value checked
    first (nothing changes unless all are valid)."""
    known = KINDS[kind]
    out = dict(current)
    for attr in given:
        key, value = attr.get("Key") or "", attr.get("Value")
        if key not in known:
            raise ValidationError(f"{kind.capitalize()} attribute key '{key}' is not recognized")
        if value is None:
            raise ValidationError(f"{kind.capitalize()} attribute '{key}' needs a value")
        _, check, valid = known[key]
        if not check(value):
            raise ValidationError(f"{kind.capitalize()} attribute '{key}' value '{value}' is "
                                  f"not valid: must be {valid}")
        out[key] = value
    _check_together(kind, out)
    return out


def _check_together(kind: str, attrs: dict[str, str]) -> None:
    """Rules between keys: anomaly mitigation needs weighted_random; slow start does not go
    with least_outstanding_requests nor weighted_random (AWS refuses both pairs)."""
    if kind != "target group":
        return
    algorithm = attrs["load_balancing.algorithm.type"]
    if attrs["load_balancing.algorithm.anomaly_mitigation"] == "on" and \
            algorithm != "weighted_random":
        raise ValidationError("Anomaly mitigation can only be enabled with the "
                              "'weighted_random' load balancing algorithm")
    if attrs["slow_start.duration_seconds"] != "0" and algorithm != "round_robin":
        raise ValidationError(f"Slow start cannot be enabled with the '{algorithm}' load "
                              "balancing algorithm")


def as_list(attrs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(attrs.items())]
