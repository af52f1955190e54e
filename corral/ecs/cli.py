"""``corral tasks logs TASK [--follow]``: a task's container output — from CloudWatch Logs for
a container with the awslogs driver (the stream the shipper delivers to), else from the
container's local log; a first line on stderr says which.
``corral events [--follow] [--json]``: ECS task and service state changes as EventBridge
events (``corral.ecs.event_stream``), read from the server's in-memory stream."""

from __future__ import annotations

import json
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
    told: set[str] = set()
    while True:
        body = {"task": task, "offset": offset, **({"container": container} if container else {})}
        out = _call(endpoint, "ecs/task-logs", body)
        for name, source in (out.get("sources") or {}).items():
            if name not in told:
                told.add(name)
                print(f"# {name}: {_source(source)}", file=sys.stderr, flush=True)
        for line in out["lines"]:
            target = sys.stderr if line["stream"] == "stderr" else sys.stdout
            print(f"{line['container']} | {line['text']}", file=target, flush=True)
        offset = out["offset"]
        if not follow or (out["lastStatus"] == "STOPPED" and not out["lines"]):
            return
        time.sleep(0.5)


def _source(source: str) -> str:
    """``logs:<region>:<group>:<stream>`` → words (group names hold no ``:``)."""
    if not source.startswith("logs:"):
        return "the container's local log"
    _, region, group, stream = source.split(":", 3)
    return f"CloudWatch Logs, log group {group}, stream {stream} ({region})"


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


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events (Ctrl-C to quit).")
@click.option("--json", "as_json", is_flag=True, help="Print each event's EventBridge envelope "
              "as one JSON object per line.")
@endpoint_option
def events(follow: bool, as_json: bool, endpoint: str) -> None:
    """Print ECS task and service state changes ("ECS Task State Change", "ECS Service
    Action", "ECS Deployment State Change") of your account and region: those the server
    still holds (the last 10,000), then with --follow each new one as it happens."""
    after = 0
    try:
        while True:
            out = _call(endpoint, "ecs/events", {"after": after})
            for event in out["events"]:
                click.echo(json.dumps(event) if as_json else event_line(event))
            caught_up = out["next"] == after or not out["events"]
            after = out["next"]
            if not follow:
                if caught_up:
                    return
                continue  # more than one call's worth is buffered: read on at once
            if caught_up:
                time.sleep(0.5)
    except KeyboardInterrupt:  # Ctrl-C is how --follow ends: no traceback
        return


def event_line(event: dict) -> str:
    """``time detail-type resource: status | message``, e.g. ``2024-05-01T10:00:00Z ECS Task
    State Change task/default/0123…: RUNNING/RUNNING | web:2`` (the task definition, or
    why the task stopped)."""
    d = event["detail"]
    resource = event["resources"][0].split(":", 5)[-1]
    if event["detail-type"] == "ECS Task State Change":
        status = f"{d.get('lastStatus')}/{d.get('desiredStatus')}"
        message = d.get("stoppedReason") or d.get("taskDefinitionArn", "").rsplit("/", 1)[-1]
    elif "deploymentId" in d:
        status = f"{d['eventType']} {d['eventName']}"
        message = d.get("reason") or d["deploymentId"]
    else:
        status = f"{d['eventType']} {d['eventName']}"
        message = ", ".join(d.get("reasons", [])) or d.get("clusterArn", "")
    return f"{event['time']} {event['detail-type']} {resource}: {status} | {message}"
