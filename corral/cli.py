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


def _setup_logging(s: Settings) -> None:
    logging.basicConfig(level=s.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from corral.registry.access_log import install_log_filters

    install_log_filters()  # uvicorn's TLS-probe warning becomes one explained debug line


@main.command()
@click.option("--host", help="Interface to listen on (env CORRAL_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (env CORRAL_PORT, default 4566).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where state and blobs live (env CORRAL_DATA_DIR, default "
                   "~/.local/share/corral).")
@click.option("--tls", is_flag=True, default=None,
              help="Also serve TLS with a local CA's certificate (env CORRAL_TLS=1).")
@click.option("--tls-port", type=int,
              help="Port of the TLS listener (env CORRAL_TLS_PORT, default the port + 1).")
@click.option("--registry-host",
              help="Registry host clients are told, [:port] optional (env CORRAL_REGISTRY_HOST).")
def up(host: str | None, port: int | None, data_dir: Path | None, tls: bool | None,
       tls_port: int | None, registry_host: str | None) -> None:
    """Run Corral in the foreground until Ctrl-C."""
    import os

    from corral import serve, server_file
    from corral.app import build

    s = _settings(host=host, port=port, data_dir=data_dir, tls=tls, tls_port=tls_port,
                  registry_host=registry_host.lower() if registry_host else None)
    _setup_logging(s)
    try:
        sockets = serve.bind(s)  # before anything starts: a taken port is one clear line
    except serve.ListenerError as e:
        raise click.ClickException(str(e)) from None
    corral = build(s)
    files = _tls_files(s) if s.tls else None
    _banner(s, files)
    info = server_file.starting(
        os.getpid(), s.local_endpoint, public_endpoint=s.public_endpoint,
        tls_endpoint=s.local_tls_endpoint if s.tls else None)
    try:
        serve.run(corral.asgi, s, files, sockets,
                  on_ready=lambda: server_file.write(s.data_dir, info))
    finally:
        server_file.remove(s.data_dir, info.pid)


def _tls_files(s: Settings):
    from corral import tls as local_tls

    return local_tls.ensure(s.data_dir, local_tls.names_for(s, local_tls.ecr_regions()))


def _banner(s: Settings, files) -> None:
    from corral import tls as local_tls

    endpoint = s.local_endpoint
    console.print(f"[bold green]Corral[/] serving AWS APIs at [bold]{endpoint}[/]")
    if files is not None:
        console.print(f"  TLS at port {s.tls_listen_port}; trust the CA [bold]{files.ca_cert}[/] "
                      "(`corral ca` shows how)")
    console.print(f"  registry  [bold]{s.public_netloc}[/]")
    console.print(f"  account  {s.account_id}    region  {s.region}    auth  {s.auth_mode}")
    console.print(f"  credentials  access key [bold]{s.root_access_key}[/]  secret "
                  f"[bold]{s.root_secret_key}[/]  (the account's root)")
    console.print(f"  data dir  {s.data_dir}")
    console.print("\nPoint the aws CLI at it:")
    console.print(f"  export AWS_ACCESS_KEY_ID={s.root_access_key} "
                  f"AWS_SECRET_ACCESS_KEY={s.root_secret_key} AWS_DEFAULT_REGION={s.region}")
    console.print(f"  export AWS_ENDPOINT_URL={endpoint}")
    console.print("  aws ecr create-repository --repository-name hello")
    console.print("\nRegistry hosts of other accounts resolve for docker and podman with these "
                  "/etc/hosts lines:")
    for line in local_tls.hosts_lines(s):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print()


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The server's data dir (env CORRAL_DATA_DIR).")
@click.option("--path", "path_only", is_flag=True, help="Print only the CA file's path.")
def ca(data_dir: Path | None, path_only: bool) -> None:
    """The local CA that `corral up --tls` certificates chain to, and how to trust it.
    Creates the CA when it does not exist yet; the server certificate is `up`'s alone. The
    registry host and TLS endpoint are the running server's (its server file), else what
    `corral up --tls` would use with these settings."""
    from corral import server_file
    from corral import tls as local_tls

    s = _settings(data_dir=data_dir)
    ca_cert = local_tls.ensure_ca(s.data_dir)
    if path_only:
        click.echo(str(ca_cert))
        return
    running = server_file.read(s.data_dir)
    guess = s.with_(tls=True)
    public = (running.public_endpoint if running and running.public_endpoint
              else guess.public_endpoint)
    tls_endpoint = running.tls_endpoint if running else guess.local_tls_endpoint
    host = public.partition("://")[2]
    click.echo(f"{ca_cert}\n")
    if running is not None and not tls_endpoint:
        click.echo("(the running server has no TLS listener: start it with `corral up --tls`)\n")
    click.echo("Trust it:")
    click.echo(f"  docker (per registry host; no --insecure-registry needed):\n"
               f"    mkdir -p /etc/docker/certs.d/{host}\n"
               f"    cp {ca_cert} /etc/docker/certs.d/{host}/ca.crt")
    click.echo(f"  podman, skopeo: the same under /etc/containers/certs.d/{host}/ca.crt")
    click.echo(f"  aws CLI, boto3:          export AWS_CA_BUNDLE={ca_cert}"
               + (f" AWS_ENDPOINT_URL={tls_endpoint}" if tls_endpoint else ""))
    click.echo(f"  Go tools (crane, regctl, docker-credential-ecr-login), curl, Python ssl:\n"
               f"    export SSL_CERT_FILE={ca_cert}")
    click.echo("  the whole machine (Debian):\n"
               f"    cp {ca_cert} /usr/local/share/ca-certificates/corral.crt && "
               "update-ca-certificates")


@main.command()
@click.option("--endpoint", envvar="CORRAL_ENDPOINT", default=None,
              help="The running Corral server (env CORRAL_ENDPOINT; default: the one serving "
                   "the data dir, else http://localhost:4566).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(endpoint: str | None, as_json: bool) -> None:
    """Show what a running Corral serves, who you are to it, and what it holds."""
    from corral.client import CorralClient, ServerUnreachable

    client = CorralClient(endpoint, _settings())
    try:
        report = client.status()
    except ServerUnreachable as e:
        console.print(f"[red]{e}[/]")
        sys.exit(1)
    report["endpoint"] = client.endpoint
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    console.print(f"Corral {report['version']} at [bold]{client.endpoint}[/]: {report['status']}")
    who = report["identity"]
    console.print(f"  you are {who['Arn']} (account {who['Account']}, region {report['region']})")
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
