"""``fhir-dnacpr validate``: FHIR resources in, findings out — offline, HL7-validator verdicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


@click.command("validate")
@click.argument(
    "paths", metavar="PATHS...", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option(
    "--profile",
    "profiles",
    metavar="URL",
    multiple=True,
    help="Also validate every resource of this profile's type against it (repeatable).",
)
@click.option(
    "--ig",
    "igs",
    metavar="PATH",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Load an implementation guide: folder, package .tgz or file (repeatable), e.g. UK Core.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "outcome"]),
    default="table",
    show_default=True,
    help="Human table, JSON list of issues, or OperationOutcome (a Bundle of them for several resources).",
)
@click.option("--quiet", "-q", is_flag=True, help="Errors only, no summary.")
def command(
    paths: tuple[Path, ...], profiles: tuple[str, ...], igs: tuple[Path, ...], fmt: str, quiet: bool
) -> None:
    """Validate FHIR R4 resources in PATHS against base R4, their meta.profile and our profiles.

    PATHS are JSON or XML files, NDJSON files (each line) or folders (searched recursively).
    A Bundle is validated as a whole: findings inside entries are located as
    Bundle.entry[i].resource/*Type/id*/... Messages quote codes and URLs, never free text.

    Exit code: 0 no errors, 1 errors found, 2 usage error.

    \b
    Examples:
      fhir-dnacpr validate out/epaccs/
      fhir-dnacpr validate consent.xml --profile https://fhir-dnacpr.github.io/fhir/StructureDefinition/DnacprDecision
      fhir-dnacpr validate patients.ndjson --ig ../shared/fhir-packages/uk-core --format outcome
    """
    from fhir_dnacpr.resources import profiles_dir
    from fhir_dnacpr.validation import Validator
    from fhir_dnacpr.validation.inputs import Skipped, validate_paths
    from fhir_dnacpr.validation.report import outcome, rows, summary, table

    validator = Validator()
    try:
        validator.load_ig(profiles_dir())
        for ig in igs:
            validator.load_ig(ig)
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"cannot load definitions: {exc}") from exc
    unknown = [url for url in profiles if validator.structure(url) is None]
    if unknown:
        raise click.UsageError(f"unknown profile: {', '.join(unknown)} (load its IG with --ig)")
    results = []
    skipped = []
    for entry in validate_paths(validator, paths, profiles):
        if isinstance(entry, Skipped):
            skipped.append(entry)
        else:
            results.append(entry)
    if fmt == "table":
        text = table(results, errors_only=quiet)
        if text:
            click.echo(text)
    elif fmt == "json":
        click.echo(json.dumps(rows(results, errors_only=quiet), indent=1))
    else:
        click.echo(json.dumps(outcome(results, errors_only=quiet), indent=1))
    if not quiet:
        for item in skipped:
            click.echo(f"skipped {item.file}: {item.reason}", err=True)
        click.echo(summary(results, len(skipped)), err=True)
    sys.exit(EXIT_ERRORS if any(r.has_errors for r in results) else EXIT_OK)
