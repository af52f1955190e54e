"""``corral tasks logs TASK [--follow]``: a task's container output, before CloudWatch Logs."""

from __future__ import annotations

import sys
import time

import click
from rich.console import Console

from corral.scan.cli import _call, endpoint_option

console = Console(highlight=False)


@click.group()
def tasks() -> None:
    """ECS tasks running on this Corral."""


@tasks.command()
@click.argument("task")
@click.option("--container", help="Only this container's output.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output until the task "
              "stops (Ctrl-C to quit).")
@endpoint_option
def logs(task: str, container: str | None, follow: bool, endpoint: str) -> None:
    """Print TASK's container output (TASK: the task id or ARN), each line prefixed with the
    container name and stream."""
    offset: dict = {}
    while True:
        body = {"task": task, "offset": offset, **({"container": container} if container else {})}
        out = _call(endpoint, "ecs/task-logs", body)
        for line in out["lines"]:
            target = sys.stderr if line["stream"] == "stderr" else sys.stdout
            print(f"{line['container']} | {line['text']}", file=target, flush=True)
        offset = out["offset"]
        if not follow or (out["lastStatus"] == "STOPPED" and not out["lines"]):
            return
        time.sleep(0.5)


@click.command()
@click.option("--stop-tasks", is_flag=True, help="Stop every running task first (SIGTERM, then "
              "SIGKILL after its stopTimeout) and wait until they are STOPPED.")
@endpoint_option
def down(stop_tasks: bool, endpoint: str) -> None:
    """Stop the running Corral server. Tasks keep running by default — their supervisors hold
    them, and the next `corral up` adopts them — unless --stop-tasks is given."""
    if stop_tasks:
        out = _call(endpoint, "ecs/stop-all-tasks", {})
        console.print(f"stopping {out['stopping']} tasks…")
        while _call(endpoint, "ecs/stop-all-tasks", {"wait": True})["active"]:
            time.sleep(0.5)
    _call(endpoint, "server/shutdown", {})
    console.print("Corral is shutting down.")
