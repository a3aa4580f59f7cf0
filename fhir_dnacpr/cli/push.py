"""``fhir-dnacpr push DIR --server URL``: send a convert output directory to a FHIR server.

Exit codes: 0 everything written; 1 finished, but some records were refused (see
push-rejects.ndjson); 3 stopped early (server unreachable or credentials refused) — re-run the same
command to resume from the checkpoint; 4 could not start.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from fhir_dnacpr.cli.server import (
    EXIT_OK,
    EXIT_REJECTS,
    EXIT_STOPPED,
    connection_options,
    fails_cleanly,
    make_client,
)
from fhir_dnacpr.server import Pusher


@click.command("push")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--server", "server_url", required=True, help="FHIR base URL, e.g. https://host/fhir")
@click.option("--mode", type=click.Choice(["transaction", "batch"]), default="transaction", show_default=True)
@click.option("--bundle-size", type=click.IntRange(1, 10000), help="entries per bundle (default: as written)")
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="bundles in flight"
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="results (default: DIR)"
)
@click.option("--restart", is_flag=True, help="ignore the checkpoint and send every bundle again")
@connection_options
@fails_cleanly
def command(
    directory: Path,
    server_url: str,
    mode: str,
    bundle_size: int | None,
    concurrency: int,
    out_dir: Path | None,
    restart: bool,
    **o: Any,
) -> None:
    """Push DIR (bundle-*.json or Type.ndjson from `convert`) to --server; idempotent, resumable."""
    with make_client(server_url, o, pool_size=concurrency) as client:
        pusher = Pusher(client, mode=mode, concurrency=concurrency)
        summary = pusher.push_directory(
            directory, bundle_size=bundle_size, out_dir=out_dir, resume=not restart
        )
    where = out_dir or directory
    click.echo(
        f"pushed {summary.sent} resources in {summary.bundles} bundles "
        f"({summary.bundles_skipped} already acknowledged): created {summary.created}, "
        f"updated {summary.updated}, unchanged {summary.unchanged}, failed {summary.failed}; "
        f"{summary.retries} retries, {summary.seconds:.1f} s",
        err=True,
    )
    if not summary.complete:
        click.echo(
            f"stopped: {summary.stopped_because}; {summary.not_sent} resources not sent. "
            "Run the same command again to resume.",
            err=True,
        )
        sys.exit(EXIT_STOPPED)
    if summary.failed or summary.input_problems or summary.superseded:
        click.echo(f"see {where / 'push-rejects.ndjson'} for what was refused and why", err=True)
        sys.exit(EXIT_REJECTS)
    sys.exit(EXIT_OK)
