"""``fhir-dnacpr convert``: a legacy export and its mapping spec in, FHIR R4 out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fhir_dnacpr.pipeline import ConvertOptions, ExitCode, convert


def load_id_factory(key_env: str):
    """The keyed-hash id factory; warns loudly when falling back to the insecure example key."""
    from fhir_dnacpr.fhir.ids import IdFactory

    ids = IdFactory.from_env(key_env)
    if ids.uses_example_key:
        click.echo(
            f"warning: ${key_env} is not set, so resource ids use the INSECURE example key. "
            "Fine for the bundled examples and tests; set a secret key for real data.",
            err=True,
        )
    return ids


@click.command("convert")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    "spec_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Mapping spec (YAML) for this export's layout.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (created if missing).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["bundle", "ndjson", "xml"]),
    default="bundle",
    show_default=True,
    help="Transaction Bundles (JSON), NDJSON per resource type, or Bundles as FHIR XML.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Entries per output Bundle / records per Provenance chunk.",
)
@click.option(
    "--validate/--no-validate",
    default=True,
    show_default=True,
    help="Validate every resource against its profiles; non-conforming records go to the rejects.",
)
@click.option(
    "--max-errors",
    type=click.IntRange(min=1),
    default=None,
    help="Stop cleanly after N rejected records (exit code 3).",
)
@click.option(
    "--reject-raw", is_flag=True, help="Keep identifiers and free text in rejects.ndjson (default: masked)."
)
@click.option(
    "--id-key-env",
    default="FHIR_DNACPR_ID_KEY",
    show_default=True,
    help="Environment variable holding the secret key for resource ids.",
)
@click.option("--overwrite", is_flag=True, help="Replace output already in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
def command(
    input_path: Path,
    spec_path: Path,
    out_dir: Path,
    fmt: str,
    chunk_size: int,
    validate: bool,
    max_errors: int | None,
    reject_raw: bool,
    id_key_env: str,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Convert INPUT (CSV, XML, JSON or NDJSON) into FHIR R4 using the mapping spec.

    Writes the resources, rejects.ndjson (every record that could not be converted, with where and
    why) and summary.json to --out. Exit codes: 0 clean, 1 finished with rejects, 2 usage or spec
    error, 3 stopped by --max-errors.

    \b
    Examples:
      fhir-dnacpr convert examples/epaccs/register.csv --mapping examples/epaccs/mapping.yaml --out out/epaccs
      fhir-dnacpr convert forms.xml --mapping respect.yaml --out out/ --format ndjson --max-errors 100
    """
    from fhir_dnacpr.mapping import SpecError, load_spec

    try:
        spec = load_spec(spec_path)
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(ExitCode.USAGE)
    validator = None
    if validate:
        from fhir_dnacpr.validation import default_validator

        validator = default_validator().validate
    options = ConvertOptions(
        input_path=input_path,
        spec=spec,
        out_dir=out_dir,
        ids=load_id_factory(id_key_env),
        fmt=fmt,
        chunk_size=chunk_size,
        validate=validator,
        max_errors=max_errors,
        reject_raw=reject_raw,
        progress=not quiet,
        overwrite=overwrite,
    )
    summary = convert(options)
    if not quiet:
        click.echo(summary.brief(), err=True)
        click.echo(f"output: {out_dir}  (summary.json, rejects.ndjson)", err=True)
    sys.exit(summary.exit_code)
