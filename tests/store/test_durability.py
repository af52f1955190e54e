"""State survives restarts and kill -9: every change is one transaction."""

from __future__ import annotations

import signal
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError


def test_state_survives_a_restart(fresh_server):
    fresh_server.start()
    ecr = fresh_server.client("ecr")
    ecr.create_repository(repositoryName="keep/me", tags=[{"Key": "k", "Value": "v"}],
                          imageTagMutability="IMMUTABLE")
    west = fresh_server.client("ecr", region="us-west-2")
    west.create_repository(repositoryName="west/only")
    fresh_server.stop()

    fresh_server.start()
    ecr = fresh_server.client("ecr")
    repo = ecr.describe_repositories(repositoryNames=["keep/me"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [
        {"Key": "k", "Value": "v"}]
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert names == ["keep/me"]
    assert [r["repositoryName"] for r in fresh_server.client("ecr", region="us-west-2")
            .describe_repositories()["repositories"]] == ["west/only"]


def test_kill_9_during_a_burst_leaves_a_consistent_store(fresh_server):
    fresh_server.start()
    tags = [{"Key": f"k{i}", "Value": f"v{i}"} for i in range(20)]
    acknowledged: list[str] = []
    stop = threading.Event()

    def burst(worker: int) -> None:
        ecr = fresh_server.client("ecr")
        for i in range(10_000):
            if stop.is_set():
                return
            name = f"burst/w{worker}-{i:05d}"
            try:
                ecr.create_repository(repositoryName=name, tags=tags)
                acknowledged.append(name)
            except (ClientError, BotoCoreError, HTTPError, OSError):
                return

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh_server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) >= 40

    fresh_server.start()
    ecr = fresh_server.client("ecr")
    repos = [r for p in ecr.get_paginator("describe_repositories").paginate()
             for r in p["repositories"]]
    names = {r["repositoryName"] for r in repos}
    # Every acknowledged create survived the crash…
    assert set(acknowledged) <= names
    # …and every repository present is whole: all its tags are there, none half-written.
    for repo in repos:
        got = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
        assert got == sorted(tags, key=lambda t: t["Key"]), repo["repositoryName"]
