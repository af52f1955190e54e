"""``corral vulndb import PATH`` / ``corral vulndb status``.

By default the server reads PATH from its own filesystem (Corral runs on this machine), so a
20 MB advisory file is not pushed through an HTTP body; ``--upload`` streams the file's bytes
instead, for a server on another machine (one request, up to the server's 64 MiB body limit).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()
endpoint_option = click.option(
    "--endpoint", envvar="CORRAL_ENDPOINT", default=None,
    help="The running Corral server (env CORRAL_ENDPOINT; default: the one serving the data "
         "dir, else http://localhost:4566).")


def _client(endpoint: str):
    from corral.cli import _settings
    from corral.client import CorralClient

    return CorralClient(endpoint, _settings())


def _call(endpoint: str, action: str, body: dict) -> dict:
    from corral.client import CorralError, ServerUnreachable

    try:
        return _client(endpoint).admin(action, body)
    except (CorralError, ServerUnreachable) as e:
        console.print(f"[red]{e}[/]")
        sys.exit(1)


@click.group()
def vulndb() -> None:
    """The advisory database image scans match against (OSV records, Debian DSA/DLA lists,
    Alpine secdb)."""


@vulndb.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--source", help="Name the source (default: the file or directory name).")
@click.option("--upload", is_flag=True, help="Send the file's bytes instead of its path.")
@endpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def import_(path: Path, source: str | None, upload: bool, endpoint: str, as_json: bool) -> None:
    """Import advisories from PATH: a directory, .json, .jsonl, .zip (osv.dev all.zip), a
    Debian DSA/DLA list or an Alpine secdb .jsonl. Re-importing is incremental."""
    body: dict = {"source": source} if source else {}
    if upload:
        if path.is_dir():
            raise click.UsageError("--upload takes a file, not a directory")
        body |= {"name": path.name, "content": base64.b64encode(path.read_bytes()).decode()}
    else:
        body["path"] = str(path.resolve())
    out = _call(endpoint, "vulndb/import", body)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    console.print(f"imported [bold]{out['source']}[/]: {out['records']} records, "
                  f"{out['changed']} new or changed, {out['withdrawn']} withdrawn, "
                  f"{out['packages']} packages affected, in {out['seconds']}s")


@vulndb.command()
@endpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(endpoint: str, as_json: bool) -> None:
    """Sources, record counts per ecosystem, and when each source was imported."""
    out = _call(endpoint, "vulndb/status", {})
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    console.print(f"{out['advisories']} advisories ({out['withdrawn']} withdrawn), "
                  f"last import {out['updated_at'] or 'never'}")
    table = Table("source", "records", "changed", "withdrawn", "imported at", "seconds")
    for s in out["sources"]:
        table.add_row(s["name"], str(s["records"]), str(s["changed"]), str(s["withdrawn"]),
                      str(s["imported_at"]), str(s["seconds"]))
    console.print(table)
    eco = Table("ecosystem", "advisories")
    for name, n in sorted(out["by_ecosystem"].items()):
        eco.add_row(name, str(n))
    console.print(eco)
