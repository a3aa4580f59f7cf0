"""The ``fhir-dnacpr`` command line: a thin layer over the library, one module per command group."""

from __future__ import annotations

import click

from fhir_dnacpr import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fhir-dnacpr")
def main() -> None:
    """Convert, validate, push, pull and audit DNACPR decisions and advance care plans as FHIR R4."""


def _register() -> None:
    """Attach each command group; modules are imported here so `--help` lists them all."""
    from fhir_dnacpr.cli import audit, convert, mapping, pull, push, server, validate

    for module in (convert, mapping, validate, push, pull, server, audit):
        main.add_command(module.command)


_register()
