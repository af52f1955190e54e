"""Helpers for lifecycle tests: policy documents, and Corral's admin actions called the way
the CLI calls them (SigV4-signed POST /_corral/api/<action>)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.server import ROOT_KEY, ROOT_SECRET


def rule(priority: int, status: str, count_type: str = "imageCountMoreThan", n: int = 1,
         prefixes=None, patterns=None, **extra) -> dict:
    selection = {"tagStatus": status, "countType": count_type, "countNumber": n}
    if count_type != "imageCountMoreThan":
        selection["countUnit"] = "days"
    if prefixes is not None:
        selection["tagPrefixList"] = prefixes
    if patterns is not None:
        selection["tagPatternList"] = patterns
    return {"rulePriority": priority, "description": f"rule {priority}",
            "selection": selection | extra, "action": {"type": "expire"}}


def policy(*rules: dict) -> str:
    return json.dumps({"rules": list(rules)})


def pad(text: str) -> str:
    """ECR's API takes 100 to 30,720 characters: pad short documents with whitespace."""
    return text + " " * max(0, 100 - len(text))


def admin(server, action: str, body: dict | None = None, *, key: str = ROOT_KEY,
          secret: str = ROOT_SECRET) -> tuple[int, dict]:
    req = AWSRequest(method="POST", url=f"{server.endpoint}/_corral/api/{action}",
                     data=json.dumps(body or {}).encode(),
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "corral", "us-east-1").add_auth(req)
    p = req.prepare()
    http = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    try:
        with urllib.request.urlopen(http, timeout=120) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
