"""``corral lifecycle run|history`` and ``corral gc``: ask a running server (its admin
actions, SigV4-signed with your credentials) and print what happened."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

console = Console()

endpoint_option = click.option(
    "--endpoint", envvar="CORRAL_ENDPOINT", default=None,
    help="The running Corral server (env CORRAL_ENDPOINT; default: the one serving the data "
         "dir, else http://localhost:4566).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def _call(endpoint: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    from corral.cli import _settings
    from corral.client import CorralClient, CorralError, ServerUnreachable

    try:
        return CorralClient(endpoint, _settings()).admin(action, body)
    except ServerUnreachable as e:
        console.print(f"[red]{e}[/]")
    except CorralError as e:
        console.print(f"[red]{e.code}[/]: {e.message}")
    sys.exit(1)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _print_gc(gc: dict[str, Any] | None) -> None:
    if gc is None:
        return
    console.print(
        f"garbage collection: [bold]{gc['blobs_deleted']}[/] blobs deleted, "
        f"[bold]{_size(gc['bytes_reclaimed'])}[/] reclaimed ({gc['bytes_reclaimed']} bytes); "
        f"{gc['links_removed']} stale repository links removed, {gc['uploads_cancelled']} "
        f"abandoned uploads cancelled; {gc['blobs_scanned']} blobs scanned in {gc['seconds']}s")


def _events_table(events: list[dict[str, Any]], *, when: bool) -> Table:
    table = Table("repository", "image digest", "tags", "rule")
    if when:
        table.add_column("expired at")
        table.add_column("by")
    for e in events:
        row = [e["repositoryName"], e["imageDigest"][:19] + "…",
               ", ".join(e["imageTags"]) or "<untagged>", str(e["appliedRulePriority"])]
        if when:
            row += [e["expiredAt"], e["actor"]]
        table.add_row(*row)
    return table


@click.group()
def lifecycle() -> None:
    """Apply ECR lifecycle policies now, and list what they expired.

    The server applies every repository's policy on its own every CORRAL_LIFECYCLE_INTERVAL
    seconds (default 3600); preview a policy first with
    `aws ecr start-lifecycle-policy-preview`.
    """


@lifecycle.command()
@click.option("--repository", "-r", metavar="NAME",
              help="Only this repository (default: every repository with a policy).")
@click.option("--now", metavar="ISO-8601", hidden=True,
              help="Plan as if it were this time (testing only).")
@endpoint_option
@json_option
def run(repository: str | None, now: str | None, endpoint: str, as_json: bool) -> None:
    """Apply lifecycle policies now, then collect garbage; print what expired."""
    body = {k: v for k, v in (("repository", repository), ("now", now)) if v}
    out = _call(endpoint, "lifecycle/run", body)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    expired = out["expired"]
    n = out["repositories"]
    console.print(f"evaluated {n} {'repository' if n == 1 else 'repositories'} with a "
                  f"lifecycle policy: [bold]{len(expired)}[/] "
                  f"{'image' if len(expired) == 1 else 'images'} expired")
    if expired:
        console.print(_events_table(expired, when=False))
    _print_gc(out["gc"])


@lifecycle.command()
@click.option("--repository", "-r", metavar="NAME", help="Only this repository.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="How many records, newest first.")
@endpoint_option
@json_option
def history(repository: str | None, limit: int, endpoint: str, as_json: bool) -> None:
    """List images lifecycle policies expired: which rule, when, and who ran it."""
    body: dict[str, Any] = {"limit": limit} | ({"repository": repository} if repository else {})
    events = _call(endpoint, "lifecycle/history", body)["events"]
    if as_json:
        click.echo(json.dumps(events, indent=2))
        return
    if not events:
        console.print("no images have been expired by a lifecycle policy")
        return
    console.print(_events_table(events, when=True))


@click.command()
@endpoint_option
@json_option
def gc(endpoint: str, as_json: bool) -> None:
    """Delete blobs no image references any more and print the space reclaimed.

    Safe while pushes continue: blobs and repository links younger than CORRAL_GC_GRACE
    seconds (default 3600) are kept, and uploads idle for longer than CORRAL_UPLOAD_MAX_AGE
    (default 86400) are cancelled. The server also collects after each lifecycle run.
    """
    out = _call(endpoint, "gc", {})["gc"]
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    _print_gc(out)
