"""`aws logs tail` (AWS CLI v2 only: v1 has no `tail`) against Corral, with Debian's awscli
2.x at /usr/bin/aws: --since, --filter-pattern and --follow."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

AWS2 = Path("/usr/bin/aws")


def aws2(server, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
    return subprocess.run([str(AWS2), "--endpoint-url", server.endpoint, *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def group(server):
    out = subprocess.run([str(AWS2), "--version"], capture_output=True, text=True) \
        if AWS2.exists() else None
    if out is None or not out.stdout.startswith("aws-cli/2."):
        pytest.fail("`aws logs tail` needs AWS CLI v2: apt-get install awscli (Debian 12 ships 2.9)")
    logs = server.client("logs")
    logs.create_log_group(logGroupName="/e2e/tail")
    logs.create_log_stream(logGroupName="/e2e/tail", logStreamName="web")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/e2e/tail", logStreamName="web", logEvents=[
        {"timestamp": now - 1000, "message": "GET / 200"},
        {"timestamp": now, "message": "GET /boom 500 ERROR"}])
    yield logs
    logs.delete_log_group(logGroupName="/e2e/tail")


def test_tail_since_and_filter_pattern(server, group):
    out = aws2(server, "logs", "tail", "/e2e/tail", "--since", "10m")
    assert out.returncode == 0, out.stderr
    assert [line.split(" ", 2)[2] for line in out.stdout.splitlines()] == [
        "GET / 200", "GET /boom 500 ERROR"]
    out = aws2(server, "logs", "tail", "/e2e/tail", "--since", "10m", "--filter-pattern", "ERROR")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith("web GET /boom 500 ERROR")
    assert len(out.stdout.splitlines()) == 1


def test_tail_follow_shows_new_events(server, group):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.Popen([str(AWS2), "--endpoint-url", server.endpoint, "logs", "tail",
                             "/e2e/tail", "--follow", "--since", "1m"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(3)
        group.put_log_events(logGroupName="/e2e/tail", logStreamName="web", logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "followed"}])
        time.sleep(8)  # the CLI polls every 5 s
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert out.splitlines()[-1].endswith("web followed"), out
