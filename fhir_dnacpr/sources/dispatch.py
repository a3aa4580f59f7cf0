"""Pick the reader for an export by declared format or file extension."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir_dnacpr.sources.base import RawRecord
from fhir_dnacpr.sources.csv import read_csv
from fhir_dnacpr.sources.json import read_json_array, read_ndjson
from fhir_dnacpr.sources.xml import read_xml

FORMATS = ("csv", "xml", "json", "ndjson")
_BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xml": "xml",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """The declared format, else the one the extension implies; ValueError when neither says."""
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"unknown source format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    found = _BY_EXTENSION.get(Path(path).suffix.lower())
    if found is None:
        raise ValueError(f"cannot tell the format of {Path(path).name}; declare it ({', '.join(FORMATS)})")
    return found


def open_source(path: str | Path, fmt: str | None = None, **options: Any) -> Iterator[RawRecord]:
    """Stream the records of an export.

    Options by format: csv ``encoding``, ``delimiter`` (``.tsv`` defaults to tab), ``quotechar``;
    xml ``record_path`` (required), ``namespaces``; json ``array_path``, ``encoding``; ndjson none.
    Options that are None are ignored so callers can pass a spec's settings through unchanged.
    """
    chosen = format_for(path, fmt)
    options = {k: v for k, v in options.items() if v is not None}
    if chosen == "csv":
        if Path(path).suffix.lower() == ".tsv":
            options.setdefault("delimiter", "\t")
        return read_csv(path, **options)
    if chosen == "xml":
        if "record_path" not in options:
            raise ValueError("an XML source needs record_path (the record element, e.g. /ex:Export/ex:Form)")
        return read_xml(path, **options)
    if chosen == "json":
        return read_json_array(path, **options)
    return read_ndjson(path, **options)
