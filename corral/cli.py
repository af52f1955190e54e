"""The ``corral`` command. ``up`` runs the server; every other subcommand talks to a running
server over its AWS APIs, signing requests with the configured credentials."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from corral.config import Settings

console = Console()


def _settings(**overrides) -> Settings:
    try:
        return Settings.from_env().with_(**overrides)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="corral")
def main() -> None:
    """Corral: ECR, ECS, Inspector, CloudWatch and IAM/STS running for real on this machine.

    Start it with `corral up`, then point the aws CLI, boto3 or a registry client at it.
    """


@main.command()
@click.option("--host", help="Interface to listen on (env CORRAL_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (env CORRAL_PORT, default 4566).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where state and blobs live (env CORRAL_DATA_DIR, default ~/.local/share/corral).")
def up(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run Corral in the foreground until Ctrl-C."""
    import uvicorn

    from corral.app import build

    s = _settings(host=host, port=port, data_dir=data_dir)
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    corral = build(s)
    endpoint = s.public_endpoint
    console.print(f"[bold green]Corral[/] serving AWS APIs at [bold]{endpoint}[/]")
    console.print(f"  account  {s.account_id}    region  {s.region}    auth  {s.auth_mode}")
    console.print(f"  credentials  access key [bold]{s.root_access_key}[/]  secret "
                  f"[bold]{s.root_secret_key}[/]  (the account's root)")
    console.print(f"  data dir  {s.data_dir}")
    console.print("\nPoint the aws CLI at it:")
    console.print(f"  export AWS_ACCESS_KEY_ID={s.root_access_key} "
                  f"AWS_SECRET_ACCESS_KEY={s.root_secret_key} AWS_DEFAULT_REGION={s.region}")
    console.print(f"  export AWS_ENDPOINT_URL={endpoint}")
    console.print("  aws ecr create-repository --repository-name hello\n")
    uvicorn.run(corral.asgi, host=s.host, port=s.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5)


@main.command()
@click.option("--endpoint", envvar="CORRAL_ENDPOINT", default="http://localhost:4566",
              show_default=True, help="The running Corral server (env CORRAL_ENDPOINT).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(endpoint: str, as_json: bool) -> None:
    """Show what a running Corral serves, who you are to it, and what it holds."""
    from corral.client import CorralClient, ServerUnreachable

    client = CorralClient(endpoint, _settings())
    try:
        report = client.status()
    except ServerUnreachable as e:
        console.print(f"[red]{e}[/]")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    console.print(f"Corral {report['version']} at [bold]{endpoint}[/]: {report['status']}")
    console.print(f"  you are {report['identity']['Arn']} (account {report['identity']['Account']}, "
                  f"region {report['region']})")
    table = Table("service", "state", "holds")
    for name, state in report["services"].items():
        table.add_row(name, state, report["counts"].get(name, ""))
    console.print(table)


def _add_lifecycle_commands() -> None:
    from corral.ecr.lifecycle.cli import gc, lifecycle

    main.add_command(lifecycle)
    main.add_command(gc)


_add_lifecycle_commands()


def _add_scan_commands() -> None:
    from corral.scan.cli import vulndb

    main.add_command(vulndb)


_add_scan_commands()


def _add_task_commands() -> None:
    from corral.ecs.cli import down, events, tasks

    main.add_command(tasks)
    main.add_command(down)
    main.add_command(events)


_add_task_commands()


if __name__ == "__main__":
    main()
