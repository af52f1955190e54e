"""Start a real Corral server (``corral up``) in a subprocess on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

ROOT_KEY, ROOT_SECRET = "test", "test"
OTHER_ACCOUNT, OTHER_KEY, OTHER_SECRET = "111111111111", "AKIAOTHERACCOUNT0001", "other-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CorralServer:
    def __init__(self, data_dir: Path, port: int | None = None, **env: str):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "server.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> CorralServer:
        env = {**os.environ, "CORRAL_EXTRA_ACCOUNTS": f"{OTHER_ACCOUNT}:{OTHER_KEY}:{OTHER_SECRET}",
               **self.env}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "corral.cli", "up", "--port", str(self.port),
                 "--data-dir", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"corral up exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if self.health()["status"] == "running":
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"corral up did not answer in {timeout}s:\n{self.log.read_text()}")

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.endpoint}/_corral/health", timeout=2) as r:
            return json.load(r)

    def admin(self, action: str, body: dict | None = None) -> dict:
        """One of Corral's own actions, signed with the root key."""
        from corral.client import CorralClient
        from corral.config import Settings

        return CorralClient(self.endpoint, Settings()).admin(action, body)

    def stop_tasks(self, timeout: float = 90) -> None:
        """Stop every task (as `corral down --stop-tasks` does) and wait until they stopped."""
        self.admin("ecs/stop-all-tasks", {})
        deadline = time.monotonic() + timeout
        while self.admin("ecs/stop-all-tasks", {"wait": True})["active"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"tasks did not stop in {timeout}s")
            time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM, *, stop_tasks: bool = False) -> None:
        if stop_tasks and self.proc and self.proc.poll() is None:
            self.stop_tasks()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self, service: str, *, key: str = ROOT_KEY, secret: str = ROOT_SECRET,
               region: str = "us-east-1", token: str | None = None, retries: int = 0):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=region,
            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
            config=Config(retries={"total_max_attempts": retries + 1}),
        )

    def aws(self, *args: str, key: str = ROOT_KEY, secret: str = ROOT_SECRET,
            region: str = "us-east-1", timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the real aws CLI against this server; JSON output. Waiters (``wait …``) may run
        for minutes (ECS's poll every 15 s)."""
        if "wait" in args:
            timeout = max(timeout, 600)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
               "AWS_DEFAULT_REGION": region, "AWS_MAX_ATTEMPTS": "1"}
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        aws = Path(sys.executable).with_name("aws")
        cmd = [str(aws) if aws.exists() else "aws", "--endpoint-url", self.endpoint,
               "--output", "json", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
