"""What ELBv2 checks in a request beyond the model's own constraints (those — Port 1–65535,
priorities 1–50000, health-check ranges, enums — the wire layer checks from botocore's model
before an operation runs). Pure functions: they normalise the given shapes to what Describe
returns, or raise ``ValidationError`` with AWS's text.

    names        load balancer and target group names (32 chars, alphanumerics and hyphens)
    matcher      HttpCode "200", "200,202", "200-299" within 200–499
    actions      forward (TargetGroupArn or ForwardConfig with weights), fixed-response,
                 redirect; exactly one terminal action, the last by Order
    conditions   path-pattern, host-header, http-header, http-request-method, query-string,
                 source-ip in the legacy ``Values`` and the ``*Config`` forms; AWS's per-rule
                 limits (5 condition values, 5 wildcards)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from corral.elb.errors import InvalidLoadBalancerAction, ValidationError

_NAME = re.compile(r"^[A-Za-z0-9-]+$")
MAX_NAME = 32


def check_name(name: str, what: str) -> None:
    """``what`` is "load balancer" or "target group" (AWS's texts differ only in that)."""
    label = what.capitalize()
    if len(name) > MAX_NAME:
        raise ValidationError(f"{label} name '{name}' cannot be longer than '{MAX_NAME}' "
                              "characters")
    if not name or not _NAME.match(name):
        raise ValidationError(f"{label} name '{name}' can only contain characters that are "
                              "alphanumeric characters or hyphens(-)")
    if name.startswith("-") or name.endswith("-"):
        raise ValidationError(f"{label} name '{name}' cannot begin or end with '-'")
    if what == "load balancer" and name.lower().startswith("internal-"):
        raise ValidationError(f"Load balancer name '{name}' cannot begin with 'internal-'")


# --- health checks ---------------------------------------------------------------------------

def check_matcher(matcher: dict[str, Any] | None) -> dict[str, str]:
    """``{"HttpCode": …}`` with codes, lists and ranges inside 200–499 (ALB's rule)."""
    if not matcher:
        return {"HttpCode": "200"}
    if matcher.get("GrpcCode"):
        raise ValidationError("A gRPC code matcher is only valid for target groups with the "
                              "'GRPC' protocol version")
    code = (matcher.get("HttpCode") or "").strip()
    for part in code.split(","):
        low, sep, high = part.partition("-")
        bounds = [low] + ([high] if sep else [])
        if not all(b.isdigit() and 200 <= int(b) <= 499 for b in bounds) or \
                (sep and int(low) > int(high)):
            raise ValidationError(f"Health check matcher HTTP code '{code}' must be a code, "
                                  "a list of codes (200,202) or a range (200-299) within "
                                  "'200-499'")
    return {"HttpCode": code}


def check_health_port(port: str | None) -> str:
    if port is None or port == "traffic-port":
        return "traffic-port"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValidationError(f"Health check port '{port}' must be 'traffic-port' or a port "
                              "from 1 to 65535")
    return str(int(port))


def check_health_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValidationError(f"Health check path '{path}' must begin with a '/' character")
    return path


def check_timing(doc: dict[str, Any]) -> None:
    """The timeout must be shorter than the interval (AWS's text)."""
    timeout, interval = doc["HealthCheckTimeoutSeconds"], doc["HealthCheckIntervalSeconds"]
    if timeout >= interval:
        raise ValidationError(f"Health check timeout '{timeout}' must be smaller than the "
                              f"interval '{interval}'")


# --- actions ---------------------------------------------------------------------------------

TERMINAL = ("forward", "fixed-response", "redirect")
CONTENT_TYPES = ("text/plain", "text/css", "text/html", "application/javascript",
                 "application/json")
MAX_WEIGHT = 999
MAX_STICKINESS = 604800
MAX_FORWARD_GROUPS = 5


def check_actions(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalised actions (Order filled in, forward actions in both forms, as AWS echoes them)
    in Order; raise when they are not exactly one terminal action, last."""
    if not actions:
        raise ValidationError("At least one action must be specified")
    for index, action in enumerate(actions, 1):
        if action["Type"] not in TERMINAL:
            raise InvalidLoadBalancerAction(
                f"Action type '{action['Type']}' is not supported by Corral; use forward, "
                "redirect or fixed-response")
        action.setdefault("Order", index)
    orders = [a["Order"] for a in actions]
    if len(set(orders)) != len(orders):
        raise ValidationError("Each action must have a unique order")
    out = sorted(actions, key=lambda a: a["Order"])
    if len(out) > 1:
        raise ValidationError("You can specify only one of the action types forward, redirect "
                              "or fixed-response per rule, as its last action")
    return [_ACTION[a["Type"]](a) for a in out]


def _forward(action: dict[str, Any]) -> dict[str, Any]:
    single, config = action.get("TargetGroupArn"), action.get("ForwardConfig")
    groups = (config or {}).get("TargetGroups") or []
    if not single and not groups:
        raise ValidationError("A target group ARN must be specified for a forward action")
    if any(not g.get("TargetGroupArn") for g in groups):
        raise ValidationError("A target group ARN must be specified for each target group of "
                              "a forward config")
    if single and groups and (len(groups) != 1 or groups[0]["TargetGroupArn"] != single):
        raise ValidationError("You cannot specify both a target group ARN and a forward "
                              "config with different target groups")
    if len(groups) > MAX_FORWARD_GROUPS:
        raise ValidationError(f"A forward action can have at most '{MAX_FORWARD_GROUPS}' "
                              "target groups")
    groups = groups or [{"TargetGroupArn": single}]
    arns = [g["TargetGroupArn"] for g in groups]
    if len(set(arns)) != len(arns):
        raise ValidationError("A target group can appear only once in a forward action")
    weighted = []
    for group in groups:
        weight = group.get("Weight", 1)
        if not 0 <= weight <= MAX_WEIGHT:
            raise ValidationError(f"Target group weight '{weight}' must be between 0 and "
                                  f"{MAX_WEIGHT}")
        weighted.append({"TargetGroupArn": group["TargetGroupArn"], "Weight": weight})
    out = {"Type": "forward", "Order": action["Order"],
           "ForwardConfig": {"TargetGroups": weighted,
                             "TargetGroupStickinessConfig": _stickiness(config)}}
    if len(weighted) == 1:
        out["TargetGroupArn"] = weighted[0]["TargetGroupArn"]
    return out


def _stickiness(config: dict[str, Any] | None) -> dict[str, Any]:
    given = (config or {}).get("TargetGroupStickinessConfig") or {}
    if not given.get("Enabled"):
        return {"Enabled": False}
    duration = given.get("DurationSeconds")
    if duration is None or not 1 <= duration <= MAX_STICKINESS:
        raise ValidationError("Target group stickiness duration must be between 1 and "
                              f"{MAX_STICKINESS} seconds")
    return {"Enabled": True, "DurationSeconds": duration}


def _fixed_response(action: dict[str, Any]) -> dict[str, Any]:
    config = action.get("FixedResponseConfig")
    if not config:
        raise ValidationError("A fixed-response action must have a fixed-response config")
    content_type = config.get("ContentType")
    if content_type is not None and content_type not in CONTENT_TYPES:
        raise ValidationError(f"Content type '{content_type}' must be one of "
                              f"'{', '.join(CONTENT_TYPES)}'")
    if len((config.get("MessageBody") or "").encode()) > 1024:
        raise ValidationError("The fixed-response message body cannot be longer than 1024 "
                              "bytes")
    return {"Type": "fixed-response", "Order": action["Order"], "FixedResponseConfig": config}


_PLACEHOLDER = re.compile(r"#\{([^}]*)\}")
_REDIRECT_KEYS = {"Protocol": {"protocol"}, "Port": {"port"},
                  "Host": {"host", "path", "port"}, "Path": {"host", "path", "port"},
                  "Query": {"host", "path", "port", "query"}}
_REDIRECT_DEFAULTS = {"Protocol": "#{protocol}", "Port": "#{port}", "Host": "#{host}",
                      "Path": "/#{path}", "Query": "#{query}"}


def _redirect(action: dict[str, Any]) -> dict[str, Any]:
    config = dict(action.get("RedirectConfig") or {})
    if not config.get("StatusCode"):
        raise ValidationError("A redirect action must have a redirect config with a status "
                              "code (HTTP_301 or HTTP_302)")
    for key, allowed in _REDIRECT_KEYS.items():
        value = config.get(key)
        if value is None:
            config[key] = _REDIRECT_DEFAULTS[key]
            continue
        for name in _PLACEHOLDER.findall(value):
            if name not in allowed:
                raise ValidationError(f"The redirect {key.lower()} '{value}' can only use the "
                                      f"placeholders {sorted('#{' + a + '}' for a in allowed)}")
    _check_redirect_parts(config)
    if all(config[k] == v for k, v in _REDIRECT_DEFAULTS.items()):
        raise ValidationError("The redirect must change at least one of protocol, port, host, "
                              "path or query, or it would redirect to itself")
    return {"Type": "redirect", "Order": action["Order"], "RedirectConfig": config}


def _check_redirect_parts(config: dict[str, str]) -> None:
    protocol, port, path = config["Protocol"], config["Port"], config["Path"]
    if protocol not in ("HTTP", "HTTPS", "#{protocol}"):
        raise ValidationError(f"Redirect protocol '{protocol}' must be one of 'HTTP, HTTPS, "
                              "#{protocol}'")
    if port != "#{port}" and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValidationError(f"Redirect port '{port}' must be a port from 1 to 65535 or "
                              "'#{port}'")
    if not path.startswith("/"):
        raise ValidationError(f"Redirect path '{path}' must begin with a '/' character")
    if config["Query"].startswith("?"):
        raise ValidationError("The redirect query cannot begin with a '?' character")


_ACTION = {"forward": _forward, "fixed-response": _fixed_response, "redirect": _redirect}


# --- conditions ------------------------------------------------------------------------------

MAX_CONDITION_VALUES = 5
MAX_WILDCARDS = 5
MAX_PATTERN = 128
_CONFIG = {"path-pattern": "PathPatternConfig", "host-header": "HostHeaderConfig",
           "http-header": "HttpHeaderConfig", "http-request-method": "HttpRequestMethodConfig",
           "query-string": "QueryStringConfig", "source-ip": "SourceIpConfig"}
_ONCE = ("path-pattern", "host-header", "http-request-method", "source-ip")
_METHOD = re.compile(r"^[A-Z_-]{1,40}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$")


def check_conditions(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not conditions:
        raise ValidationError("A rule must have at least one condition")
    out = [_condition(c) for c in conditions]
    fields = [c["Field"] for c in out]
    for field in _ONCE:
        if fields.count(field) > 1:
            raise ValidationError(f"A rule can only have one '{field}' condition")
    values = [v for c in out for v in _values_of(c)]
    if len(values) > MAX_CONDITION_VALUES:
        raise ValidationError(f"A rule can only have '{MAX_CONDITION_VALUES}' condition values")
    wildcards = sum(v.count("*") + v.count("?") for c in out if c["Field"] != "source-ip"
                    for v in _values_of(c, regexes=False))
    if wildcards > MAX_WILDCARDS:
        raise ValidationError(f"A rule can only have '{MAX_WILDCARDS}' wildcards")
    return out


def _values_of(condition: dict[str, Any], *, regexes: bool = True) -> list[str]:
    config = condition[_CONFIG[condition["Field"]]]
    if condition["Field"] == "query-string":
        return [(v.get("Key") or "") + (v.get("Value") or "") for v in config["Values"]]
    return [*config.get("Values", []), *(config.get("RegexValues", []) if regexes else [])]


def _condition(condition: dict[str, Any]) -> dict[str, Any]:
    field = condition.get("Field")
    if field not in _CONFIG:
        raise ValidationError(f"Condition field '{field}' must be one of "
                              f"'[{', '.join(_CONFIG)}]'")
    legacy, config = condition.get("Values"), condition.get(_CONFIG[field])
    if legacy and config:
        raise ValidationError(f"You cannot specify both 'Values' and '{_CONFIG[field]}' for "
                              f"the '{field}' condition")
    if legacy and field not in ("path-pattern", "host-header"):
        raise ValidationError(f"The '{field}' condition must use '{_CONFIG[field]}'")
    config = dict(config or {"Values": legacy or []})
    if field not in _REGEX_FIELDS:
        config.pop("RegexValues", None)
    if not config.get("Values") and not config.get("RegexValues"):
        raise ValidationError(f"A '{field}' condition must have at least one value")
    config = {k: v for k, v in config.items() if k not in ("Values", "RegexValues") or v}
    _CHECK[field](config)
    _check_regexes(field, config.get("RegexValues") or [])
    out = {"Field": field, _CONFIG[field]: config}
    if field in ("path-pattern", "host-header") and config.get("Values"):
        out["Values"] = list(config["Values"])  # AWS echoes both forms for these two
    return out


_REGEX_FIELDS = ("path-pattern", "host-header", "http-header")  # botocore's RegexValues


def _check_regexes(field: str, regexes: list[str]) -> None:
    """RegexValues are searched with Python's ``re``: one that does not compile is refused
    here, so it can never reach a listener."""
    for value in regexes:
        try:
            re.compile(value)
        except re.error as e:
            raise ValidationError(f"The '{field}' regex value '{value}' is not a valid regular "
                                  f"expression: {e}") from None


def _check_pattern(label: str, limit: int = MAX_PATTERN):
    def check(config: dict[str, Any]) -> None:
        for value in config.get("Values") or []:
            if not value or len(value) > limit:
                raise ValidationError(f"The '{label}' value '{value}' must be 1 to {limit} "
                                      "characters long")
    return check


def _check_header(config: dict[str, Any]) -> None:
    name = config.get("HttpHeaderName") or ""
    if not _HEADER_NAME.match(name):
        raise ValidationError(f"HTTP header name '{name}' is not valid")
    _check_pattern("http-header")(config)


def _check_method(config: dict[str, Any]) -> None:
    for value in config["Values"]:
        if not _METHOD.match(value):
            raise ValidationError(f"HTTP request method '{value}' is not valid: use upper-case "
                                  "letters, '-' and '_', at most 40 characters")


def _check_query(config: dict[str, Any]) -> None:
    for pair in config["Values"]:
        if not pair.get("Value"):
            raise ValidationError("A query-string condition value must have a 'Value'")
        if len((pair.get("Key") or "") + pair["Value"]) > MAX_PATTERN:
            raise ValidationError(f"A query-string key and value must be at most {MAX_PATTERN} "
                                  "characters together")


def _check_source_ip(config: dict[str, Any]) -> None:
    for value in config["Values"]:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValidationError(f"The source IP '{value}' is not a valid CIDR block") \
                from None
        if "/" not in value:
            raise ValidationError(f"The source IP '{value}' must be a CIDR block "
                                  "(address/prefix)")


_CHECK = {"path-pattern": _check_pattern("path-pattern"),
          "host-header": _check_pattern("host-header"), "http-header": _check_header,
          "http-request-method": _check_method, "query-string": _check_query,
          "source-ip": _check_source_ip}
