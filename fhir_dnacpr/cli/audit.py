"""``fhir-dnacpr audit``: find the DNACPR failure patterns the regulator described, and report them."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click

from fhir_dnacpr.model import CareRecord

EXIT_OK, EXIT_REJECTS, EXIT_USAGE = 0, 1, 2


@click.command("audit")
@click.argument("inputs", metavar="INPUT...", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (created if missing).",
)
@click.option(
    "--mapping",
    "spec_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Mapping spec for legacy exports (CSV/XML/JSON); without it INPUT must be FHIR.",
)
@click.option(
    "--server",
    "server_url",
    metavar="URL",
    help="Also read DNACPR Consents and ACP CarePlans from this FHIR server.",
)
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML switching rules on/off and setting thresholds (see docs/assurance.md).",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Date overdue reviews are judged against (default: today).",
)
@click.option(
    "--show-identifiers",
    is_flag=True,
    help="Show NHS numbers and names in the report and CSV (default: pseudonyms).",
)
@click.option(
    "--id-key-env",
    default="FHIR_DNACPR_ID_KEY",
    show_default=True,
    help="Environment variable holding the secret key for pseudonyms.",
)
@click.option(
    "--report-limit",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Findings per rule shown in report.html (findings.csv has them all).",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
def command(
    inputs: tuple[Path, ...],
    out_dir: Path,
    spec_path: Path | None,
    server_url: str | None,
    rules_path: Path | None,
    as_of: date | None,
    show_identifiers: bool,
    id_key_env: str,
    report_limit: int,
    quiet: bool,
) -> None:
    """Audit DNACPR decisions for blanket decisions, discriminatory rationale, missing discussion,
    capacity and endorsement, overdue reviews, conflicts between services and incomplete records.

    INPUT is FHIR (Bundle .json, .ndjson, or a folder of them) or, with --mapping, any legacy export
    that `convert` reads. Writes report.html, findings.csv, metrics.csv, measure-report.json (FHIR),
    summary.json and, if any input could not be used, rejects.csv. Exit codes: 0 done, 1 done with
    rejects, 2 usage error.

    \b
    Examples:
      fhir-dnacpr audit out/epaccs/ --out audit/ --as-of 2021-03-31
      fhir-dnacpr audit register.csv --mapping epaccs.yaml --out audit/ --rules rules.yaml
      fhir-dnacpr audit --server https://fhir.example.org/R4 --out audit/
    """
    from fhir_dnacpr.assurance.adapters import RejectSink, looks_like_fhir
    from fhir_dnacpr.assurance.config import AuditConfig, ConfigError, key_from_env
    from fhir_dnacpr.assurance.outputs import run_audit
    from fhir_dnacpr.assurance.terms import TermsError

    if not inputs and not server_url:
        raise click.UsageError("give at least one INPUT or --server URL")
    if inputs and spec_path is None:
        not_fhir = [str(p) for p in inputs if not looks_like_fhir(p)]
        if not_fhir:
            raise click.UsageError(f"not FHIR, so --mapping is needed: {', '.join(not_fhir)}")
    config = AuditConfig(
        show_identifiers=show_identifiers,
        pseudonym_key=key_from_env(id_key_env),
        max_findings_kept=report_limit,
    )
    try:
        if rules_path is not None:
            config = config.with_rules_file(rules_path)
        if as_of is not None:
            config = dataclasses.replace(config, as_of=as_of.date())
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if config.uses_insecure_key and not quiet:
        click.echo(
            f"warning: ${id_key_env} is not set, so pseudonyms use the INSECURE example key.", err=True
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    rejects_path = out_dir / "rejects.csv"
    with rejects_path.open("w", newline="", encoding="utf-8") as rejects_file:
        rejects = RejectSink(rejects_file)
        try:
            records = _records(inputs, spec_path, server_url, rejects)
            result, _ = run_audit(
                records, config, out_dir, lambda: {"input_records": rejects.read, "rejects": rejects.count}
            )
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except TermsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except _SpecProblem as exc:
            click.echo(str(exc), err=True)
            sys.exit(EXIT_USAGE)
    if rejects.count == 0:
        rejects_path.unlink()
    if not quiet:
        click.echo(
            f"audited {result.records:,} records: {result.total_findings:,} findings, "
            f"{len(result.clusters):,} possible blanket clusters, {rejects.count:,} rejects",
            err=True,
        )
        for rule_id, count in sorted(result.rule_counts.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {count:>8,}  {rule_id}", err=True)
        click.echo(
            f"output: {out_dir} (report.html, findings.csv, metrics.csv, measure-report.json)", err=True
        )
    if result.unreadable_count and not quiet:
        click.echo(f"{result.unreadable_count:,} records could not be audited (see summary.json)", err=True)
    sys.exit(EXIT_REJECTS if rejects.count or result.unreadable_count else EXIT_OK)


class _SpecProblem(Exception):
    pass


def _records(
    inputs: tuple[Path, ...], spec_path: Path | None, server_url: str | None, rejects: object
) -> Iterator[CareRecord]:
    from fhir_dnacpr.assurance.adapters import records_from_export, records_from_fhir, records_from_server

    streams: list[Iterator[CareRecord]] = []
    if inputs:
        if spec_path is not None:
            from fhir_dnacpr.mapping import SpecError, load_spec

            try:
                load_spec(spec_path)  # fail before the run starts, with every problem listed
            except SpecError as exc:
                raise _SpecProblem(str(exc)) from exc
            streams.append(records_from_export(inputs, spec_path, rejects))  # type: ignore[arg-type]
        else:
            streams.append(records_from_fhir(inputs, rejects))  # type: ignore[arg-type]
    if server_url:
        streams.append(records_from_server(server_url, rejects))  # type: ignore[arg-type]
    return itertools.chain.from_iterable(streams)
