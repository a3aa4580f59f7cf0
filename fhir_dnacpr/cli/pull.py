"""``fhir-dnacpr pull --server URL --out DIR``: fetch decisions and plans back, as NDJSON or a legacy layout.

Search by ``--patient`` (NHS number), ``--category``, ``--status``, ``--since``; ``--incremental``
continues from the watermark of the previous pull of the same query; ``--bulk`` uses Bulk Data
``$export`` where the server offers it. ``--format csv|json --mapping SPEC`` also writes the records
in that spec's field names (pull → convert round-trips).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from fhir_dnacpr.cli.server import EXIT_OK, EXIT_REJECTS, connection_options, fails_cleanly, make_client
from fhir_dnacpr.server import BulkExporter, Puller, PullQuery, PullSummary, WatermarkStore
from fhir_dnacpr.server.pull import DEFAULT_TYPES
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number, normalise_nhs_number


@click.command("pull")
@click.option("--server", "server_url", required=True, help="FHIR base URL")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--patient", help="one person's NHS number (never logged)")
@click.option("--since", help="only resources changed at or after this instant (ISO 8601)")
@click.option("--incremental", is_flag=True, help="start from, and then move, the stored watermark")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), help="watermark file")
@click.option(
    "--type", "types", multiple=True, help=f"resource types to search (default {', '.join(DEFAULT_TYPES)})"
)
@click.option("--category", help="category token (system|code); 'any' for no filter (default: DNACPR/ACP)")
@click.option("--status", help="status filter, e.g. active")
@click.option(
    "--format", "fmt", type=click.Choice(["ndjson", "csv", "json"]), default="ndjson", show_default=True
)
@click.option(
    "--mapping", "mapping_path", type=click.Path(exists=True, dir_okay=False), help="spec for csv/json"
)
@click.option("--bulk", is_flag=True, help="use Bulk Data $export instead of searches")
@click.option(
    "--poll-max", type=float, default=120.0, show_default=True, help="$export: longest wait between polls"
)
@connection_options
@fails_cleanly
def command(
    server_url: str,
    out_dir: Path,
    patient: str | None,
    since: str | None,
    incremental: bool,
    state_file: Path | None,
    types: tuple[str, ...],
    category: str | None,
    status: str | None,
    fmt: str,
    mapping_path: str | None,
    bulk: bool,
    poll_max: float,
    **o: Any,
) -> None:
    """Pull DNACPR decisions and care plans from --server into --out."""
    spec = None
    if fmt != "ndjson":
        if not mapping_path:
            raise click.UsageError(f"--format {fmt} needs --mapping SPEC (whose field names to use)")
        from fhir_dnacpr.mapping import load_spec
        from fhir_dnacpr.server.reverse import output_name

        spec = load_spec(mapping_path)
        try:
            output_name(spec, fmt)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    if patient is not None:
        patient = normalise_nhs_number(patient)
        if not is_valid_nhs_number(patient):
            raise click.UsageError("--patient is not a valid NHS number (10 digits, Modulus 11)")
    if bulk and patient:
        raise click.UsageError("--bulk exports whole types; use a search (without --bulk) for one --patient")
    query = PullQuery(
        patient=patient, types=types or DEFAULT_TYPES, category=category, status=status, since=since
    )
    with make_client(server_url, o) as client:
        if bulk:
            summary = _bulk(client, query, out_dir, poll_max)
        else:
            store = WatermarkStore(state_file) if (incremental or state_file) else None
            summary = Puller(client).pull(query, out_dir, state=store, incremental=incremental, hide=_hider())
    exit_code = EXIT_OK
    if spec is not None:
        from fhir_dnacpr.server.reverse import reverse_map

        reversed_ = reverse_map(out_dir, spec, fmt)
        summary.reverse = reversed_.to_json()
        summary.write(out_dir)
        if reversed_.rejected or reversed_.parse_errors:
            exit_code = EXIT_REJECTS
        click.echo(f"{reversed_.records} records written to {out_dir / reversed_.output}", err=True)
    click.echo(
        f"pulled {sum(summary.resources.values())} resources "
        + ", ".join(f"{k} {v}" for k, v in summary.resources.items())
        + (f"; watermark {summary.watermark}" if summary.watermark else ""),
        err=True,
    )
    sys.exit(exit_code)


BULK_COMPANIONS = (
    "Patient",
    "Practitioner",
    "Organization",
    "RelatedPerson",
    "DocumentReference",
    "Condition",
)


def _bulk(client: Any, query: PullQuery, out_dir: Path, poll_max: float) -> PullSummary:
    import time

    started = time.monotonic()
    exporter = BulkExporter(client, max_wait=poll_max)
    types = tuple(dict.fromkeys((*query.types, *BULK_COMPANIONS)))
    filters = tuple(
        f"{t}?{name}={value}"
        for t in query.types
        for name, value in query.params(t)
        if name in ("category", "status")
    )
    result = exporter.run(out_dir, types=types, since=query.since, type_filters=filters)
    summary = PullSummary(
        server=client.base_url, complete=True, resources=result.resources, since=query.since
    )
    summary.watermark = result.manifest.get("transactionTime")
    summary.bulk = {
        "polls": result.polls,
        "resumed": result.resumed,
        "errors": result.errors,
        "deleted": result.deleted,
        "cleaned_up": result.cleaned_up,
    }
    summary.seconds = time.monotonic() - started
    summary.write(out_dir)
    return summary


def _hider() -> Any:
    """Keyed hash for NHS numbers in the watermark file (the deployment's id key)."""
    from fhir_dnacpr.fhir.ids import IdFactory

    ids = IdFactory.from_env()
    return lambda nhs: ids.id_for("PullWatermark", nhs)
