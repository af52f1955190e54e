#!/usr/bin/env python3
"""IAM enforcement cost, measured against its baselines in the same run.

1. Decisions/second of the pure evaluator for a principal with 10 policies of 10 statements
   with conditions (the allowing statement is the last one evaluated), beside the baseline of
   a principal with one allow-all statement.
2. API throughput with enforcement on versus off for the same IAM user: one Corral app in
   process (``corral.app.build`` in a temp dir), real SigV4-signed ECR DescribeRepositories
   requests driven through ``Gateway.handle`` (the whole pipeline: authentication, parsing,
   validation, authorization, the provider, serialization), alternating the gateway's
   authorizer between ``PolicyAuthorizer`` and an allow-all one in interleaved slices.
   In-process (no HTTP) makes enforcement a larger share of each call than over the wire, so
   the ratio is conservative. Aim: enforcement costs under 10%.

Run: python bench/iam.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from corral.iam import evaluator as ev
from corral.iam import policy as pol

ACCOUNT = "000000000000"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app"


def ten_policies() -> list[str]:
    """10 policies x 10 statements with conditions; only the very last statement allows."""
    docs = []
    for p in range(10):
        statements = []
        for s in range(10):
            last = p == 9 and s == 9
            statements.append({
                "Sid": f"P{p}S{s}", "Effect": "Allow",
                "Action": ["ecr:Describe*", "ecr:List*"] if last else [f"ecs:Action{s}*",
                                                                       f"logs:Get{p}*"],
                "Resource": f"arn:aws:ecr:*:{ACCOUNT}:repository/*" if last else
                f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/c{p}-{s}",
                "Condition": {
                    "StringEquals": {"aws:RequestedRegion": "us-east-1"},
                    "IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]},
                    "StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"},
                    "Bool": {"aws:SecureTransport": "false"},
                },
            })
        docs.append(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return docs


def bench_decisions(seconds: float) -> tuple[float, float]:
    caller = ev.Caller(f"arn:aws:iam::{ACCOUNT}:user/bench", ACCOUNT, "User")
    ctx = ev.context_of({"aws:RequestedRegion": "us-east-1", "aws:SourceIp": "127.0.0.1",
                         "aws:PrincipalArn": caller.arn, "aws:SecureTransport": "false"})
    req = ev.Request("ecr:DescribeRepositories", REPO, caller, ctx)
    heavy = [ev.Named(f"p{i}", pol.parse(d)) for i, d in enumerate(ten_policies())]
    light = [ev.Named("all", pol.parse(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]})))]
    assert ev.evaluate(req, heavy).allowed and ev.evaluate(req, light).allowed

    def rate(policies) -> float:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(200):
                ev.evaluate(req, policies)
            n += 200
        return n / (time.perf_counter() - start)

    return rate(heavy), rate(light)


class AllowAll:
    def authorize(self, ctx, action, resources) -> None:
        return None


def _signed(endpoint: str, key: str, secret: str):
    from corral.aws.protocols import HttpRequest

    body = b"{}"
    req = AWSRequest(method="POST", url=f"{endpoint}/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"})
    SigV4Auth(Credentials(key, secret), "ecr", "us-east-1").add_auth(req)
    host = endpoint.split("://", 1)[1]
    headers = [("host", host)] + [(k.lower(), v) for k, v in req.headers.items()]
    return HttpRequest("POST", "/", "", headers, body, client="127.0.0.1")


def bench_api(calls: int, rounds: int) -> tuple[float, float, list[float], list[float]]:
    from corral.app import build
    from corral.aws.context import RequestContext
    from corral.config import Settings
    from corral.iam.credentials import root_principal
    from corral.iam.enforce import PolicyAuthorizer

    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-iam-"))
    corral = build(Settings(data_dir=tmp, port=45999))
    gateway = corral.gateway
    iam, ecr = gateway.providers["iam"], gateway.providers["ecr"]
    root = RequestContext("b", "iam", "Setup", "us-east-1", root_principal(ACCOUNT, "test"),
                          corral.settings.public_endpoint, extras={"params": {}})
    with corral.store.transaction() as db:
        root.db = db
        iam.create_user(root, {"UserName": "bench"})
        for i, doc in enumerate(ten_policies()):
            arn = iam.create_policy(root, {"PolicyName": f"bench{i}",
                                           "PolicyDocument": doc})["Policy"]["Arn"]
            iam.attach_user_policy(root, {"UserName": "bench", "PolicyArn": arn})
        key = iam.create_access_key(root, {"UserName": "bench"})["AccessKey"]
        for i in range(20):
            ecr.create_repository(root, {"repositoryName": f"team/app{i}"})
    host = corral.settings.public_endpoint
    enforced = gateway.authorizer
    assert isinstance(enforced, PolicyAuthorizer)
    request = _signed(host, key["AccessKeyId"], key["SecretAccessKey"])

    def run(authorizer, n: int) -> float:
        gateway.authorizer = authorizer
        start = time.perf_counter()
        for _ in range(n):
            out = gateway.handle(request)
            assert out.status == 200, out.body[:300]
        return n / (time.perf_counter() - start)

    run(enforced, 50), run(AllowAll(), 50)  # warm-up (caches, connections)
    on, off = [], []
    for _ in range(rounds):
        on.append(run(enforced, calls // rounds))
        off.append(run(AllowAll(), calls // rounds))
    corral.store.close()
    return statistics.median(on), statistics.median(off), on, off


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    args = ap.parse_args()
    seconds, calls, rounds = (0.5, 400, 4) if args.quick else (2.0, 3000, 10)

    heavy, light = bench_decisions(seconds)
    print("Policy evaluator (pure), decisions/second")
    print(f"  {'principal':<44} {'decisions/s':>12}")
    print(f"  {'10 policies x 10 statements, 4 conditions':<44} {heavy:>12,.0f}")
    print(f"  {'baseline: 1 allow-all statement':<44} {light:>12,.0f}")
    print(f"  ratio heavy/baseline: {heavy / light:.2f}")
    print()
    on, off, on_all, off_all = bench_api(calls, rounds)
    cost = 1 - on / off
    print("ECR DescribeRepositories through the gateway, same IAM user (10 policies attached)")
    print(f"  {'mode':<28} {'calls/s (median)':>16}   slices")
    print(f"  {'enforcement on':<28} {on:>16,.0f}   " + " ".join(f"{x:.0f}" for x in on_all))
    print(f"  {'baseline: enforcement off':<28} {off:>16,.0f}   "
          + " ".join(f"{x:.0f}" for x in off_all))
    print(f"  ratio on/off: {on / off:.3f}  (enforcement cost {cost:.1%}; aim < 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
