"""Canonical records ⇄ FHIR R4: keyed ids, the builder, the parser, Provenance and output writers.

    from fhir_dnacpr.fhir import IdFactory, build_resources, parse_records, index_resources, open_writer

    ids = IdFactory.from_env()                      # FHIR_DNACPR_ID_KEY; warn if ids.uses_example_key
    resources = build_resources(record, ids)        # list of FHIR JSON dicts (treat as read-only)
    with open_writer("ndjson", out_dir, ids=ids, source_file=name, source_sha256=sha, run_time=now) as w:
        issues = w.write("export.csv, line 12", resources)
    result = parse_records(index_resources(resources))   # ParseResult(records, record_refs, issues)

The mapping itself is specified in docs/fhir-mapping.md.
"""

from __future__ import annotations

from fhir_dnacpr.fhir.build import build_resources
from fhir_dnacpr.fhir.ids import DEFAULT_EXAMPLE_KEY, ID_KEY_ENV, IdFactory
from fhir_dnacpr.fhir.parse import ParseResult, index_resources, parse_records
from fhir_dnacpr.fhir.provenance import build_provenance
from fhir_dnacpr.fhir.representable import representation_issues
from fhir_dnacpr.fhir.writers import FORMATS, PLACEHOLDER_BASE, Writer, open_writer

__all__ = [
    "DEFAULT_EXAMPLE_KEY",
    "FORMATS",
    "ID_KEY_ENV",
    "PLACEHOLDER_BASE",
    "IdFactory",
    "ParseResult",
    "Writer",
    "build_provenance",
    "build_resources",
    "index_resources",
    "open_writer",
    "parse_records",
    "representation_issues",
]
