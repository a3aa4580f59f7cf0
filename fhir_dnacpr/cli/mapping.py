"""``fhir-dnacpr mapping``: check mapping specs before any data is read."""

from __future__ import annotations

import click

from fhir_dnacpr.mapping import SpecError, load_spec


@click.group("mapping")
def command() -> None:
    """Work with mapping specs (the YAML that maps an export layout to the canonical model)."""


@command.command("check")
@click.argument("spec", type=click.Path(dir_okay=False))
def check(spec: str) -> None:
    """Check SPEC and report every problem with its line; exit 0 when usable, 2 when not."""
    try:
        compiled = load_spec(spec)
    except SpecError as exc:
        click.echo(f"{spec}: {len(exc.problems)} problem(s)", err=True)
        for problem in exc.problems:
            click.echo(f"{spec}:{problem.line or '-'}: {problem.key}: {problem.problem}", err=True)
            if problem.fix:
                click.echo(f"    fix: {problem.fix}", err=True)
        raise SystemExit(2) from None
    fields = ", ".join(compiled.yields)
    click.echo(
        f"{spec}: ok ({compiled.format} source, yields {fields}, source system {compiled.source_system})"
    )
