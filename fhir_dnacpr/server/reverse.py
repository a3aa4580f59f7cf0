"""Pulled FHIR back into a legacy layout: NDJSON → canonical records → a mapping spec's field names.

The reverse of ``convert``: ``fhir.parse`` reads the resources into ``CareRecord``s and the spec's
``unmap`` writes each in the source layout (CSV with the spec's delimiter, a JSON array — under
``array_path`` when the spec reads one from there — or NDJSON), so ``pull`` output can be fed to
``convert`` again with the same spec. What cannot be read or written back goes to
``pull-rejects.ndjson`` with the opaque ``Type/id`` of the resources behind it and the reason.

All resources of the pull are held in memory while records are assembled (a record's Consent,
CarePlan, Patient … may sit in any file); for very large pulls use NDJSON output.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fhir_dnacpr.fhir.parse import index_resources, parse_records
from fhir_dnacpr.mapping import MappingSpec, UnmapError

REJECTS_FILE = "pull-rejects.ndjson"


@dataclass
class ReverseSummary:
    output: str
    records: int = 0
    rejected: int = 0
    parse_errors: int = 0
    parse_warnings: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_ndjson_dir(directory: Path) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for path in sorted(directory.glob("[A-Z]*.ndjson")):
        with path.open("rb") as lines:
            for line in lines:
                if line.strip():
                    try:
                        resources.append(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        continue
    return resources


def output_name(spec: MappingSpec, fmt: str) -> str:
    """``records.csv`` / ``records.json`` / ``records.ndjson``, checked against the spec's format."""
    source = spec.format
    if fmt == "csv":
        if source != "csv":
            raise ValueError(f"the mapping spec reads {source}, so its records cannot be written as CSV")
        return "records.csv"
    if fmt == "json":
        if source not in ("json", "ndjson"):
            raise ValueError(f"the mapping spec reads {source}; use --format csv or ndjson")
        return "records.ndjson" if source == "ndjson" else "records.json"
    raise ValueError(f"unknown record format {fmt!r}")


def reverse_map(directory: str | Path, spec: MappingSpec, fmt: str) -> ReverseSummary:
    """Write ``records.*`` and ``pull-rejects.ndjson`` into ``directory`` from its ``Type.ndjson``."""
    folder = Path(directory)
    name = output_name(spec, fmt)
    parsed = parse_records(index_resources(read_ndjson_dir(folder)))
    summary = ReverseSummary(output=name)
    rows: list[dict[str, Any]] = []
    with (folder / REJECTS_FILE).open("wb") as rejects:
        for issue in parsed.issues:
            if issue.is_error:
                summary.parse_errors += 1
                rejects.write(
                    orjson.dumps({"stage": "parse", "location": issue.location, "outcome": issue.to_fhir()})
                    + b"\n"
                )
            else:
                summary.parse_warnings += 1
        for record, refs in zip(parsed.records, parsed.record_refs, strict=True):
            try:
                rows.append(spec.unmap(record))
            except UnmapError as exc:
                summary.rejected += 1
                rejects.write(
                    orjson.dumps({"stage": "unmap", "resources": list(refs), "reason": str(exc)}) + b"\n"
                )
    summary.records = len(rows)
    target = folder / name
    if name.endswith(".csv"):
        _write_csv(target, rows, spec)
    elif name.endswith(".ndjson"):
        target.write_bytes(b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows))
    else:
        document: Any = rows
        for key in reversed([k for k in (spec.source.array_path or "").split(".") if k]):
            document = {key: document}
        target.write_bytes(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2) + b"\n")
    return summary


def _write_csv(target: Path, rows: list[dict[str, Any]], spec: MappingSpec) -> None:
    columns: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    delimiter = spec.source.delimiter or ","
    quotechar = spec.source.quotechar or '"'
    encoding = spec.source.encoding if spec.source.encoding not in (None, "", "auto") else "utf-8"
    with target.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(
            handle, columns, delimiter=delimiter, quotechar=quotechar, extrasaction="ignore"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
