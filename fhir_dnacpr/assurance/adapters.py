"""Inputs for the audit: legacy exports (through a mapping spec), FHIR files, or a FHIR server.

Each adapter yields canonical records and sends whatever it cannot turn into one to a ``RejectSink``
with where (file and line/record, or resource ``Type/id``) and why, so nothing is dropped silently.
The modules doing the real work belong to other parts of the project: ``fhir_dnacpr.mapping``
(legacy layouts), ``fhir_dnacpr.fhir.parse`` (FHIR → canonical) and ``fhir_dnacpr.server.client``.
"""

from __future__ import annotations

import csv
import dataclasses
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from fhir_dnacpr.issues import Issue, error
from fhir_dnacpr.model import CareRecord

FHIR_SUFFIXES = (".ndjson", ".json")
CHUNK = 500
REJECT_COLUMNS = ("origin", "stage", "severity", "code", "location", "message_id", "message")


class RejectSink:
    """Counts rejects and writes them to CSV (origin + located reason; never the record's content)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._writer = csv.writer(stream, lineterminator="\n") if stream is not None else None
        if self._writer is not None:
            self._writer.writerow(REJECT_COLUMNS)
        self.count = 0
        self.read = 0

    def reject(self, origin: str, stage: str, issues: Iterable[Issue]) -> None:
        self.count += 1
        issues = [i for i in issues if i.is_error] or list(issues)
        if not issues:
            issues = [error("processing", "record could not be used")]
        if self._writer is not None:
            for issue in issues:
                self._writer.writerow(
                    (
                        origin,
                        stage,
                        str(issue.severity),
                        issue.code,
                        issue.location or "",
                        issue.message_id or "",
                        issue.message,
                    )
                )


def _with_origin(record: CareRecord, file: str, location: str) -> CareRecord:
    """Fill in where a record came from when the producer did not."""
    decision, plan = record.decision, record.plan
    if decision is not None and decision.source.file is None:
        decision = dataclasses.replace(
            decision, source=dataclasses.replace(decision.source, file=file, location=location)
        )
    if plan is not None and plan.source.file is None:
        plan = dataclasses.replace(
            plan, source=dataclasses.replace(plan.source, file=file, location=location)
        )
    if decision is record.decision and plan is record.plan:
        return record
    return dataclasses.replace(record, decision=decision, plan=plan)


# -- legacy exports through a mapping spec ---------------------------------------------------------


def records_from_export(paths: Iterable[Path], spec_path: Path, rejects: RejectSink) -> Iterator[CareRecord]:
    """Map each record of each export with the spec; unmappable ones go to ``rejects``."""
    from fhir_dnacpr.mapping import load_spec

    spec = load_spec(spec_path)
    for path in paths:
        for raw in spec.read(path):
            rejects.read += 1
            result = spec.map(raw)
            if result.record is None:
                rejects.reject(str(raw.origin), "map", result.issues)
                continue
            yield _with_origin(result.record, str(path), _location(raw.origin))


def _location(origin: Any) -> str:
    line, index = getattr(origin, "line", None), getattr(origin, "index", None)
    if line is not None:
        return f"line {line}"
    if index is not None:
        return f"record {index}"
    return ""


# -- FHIR files: Bundles (.json) and NDJSON (one resource per line) ------------------------------


def fhir_files(paths: Iterable[Path]) -> list[Path]:
    """The FHIR files among ``paths``; folders are searched (not recursively) for .json/.ndjson."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in FHIR_SUFFIXES and p.is_file())
        else:
            out.append(path)
    return out


def looks_like_fhir(path: Path) -> bool:
    """A folder of FHIR files, an .ndjson file, or a .json file holding a resource (not a legacy array)."""
    if path.is_dir():
        return any(p.suffix in FHIR_SUFFIXES for p in path.iterdir())
    if path.suffix == ".ndjson":
        with path.open("rb") as f:
            first = f.readline()
        try:
            return isinstance(orjson.loads(first), dict) and "resourceType" in orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
    if path.suffix == ".json":
        with path.open("rb") as f:
            head = f.read(4096)
        return b'"resourceType"' in head and not head.lstrip().startswith(b"[")
    return False


class _SupportIndex:
    """Resources that Consents and CarePlans point at (Patient, Practitioner …), kept on disk by
    ``Type/id`` so an NDJSON export of any size is read with flat memory."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="dnacpr-audit-fhir-")
        self._db = sqlite3.connect(Path(self._dir.name) / "support.sqlite", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE r (ref TEXT PRIMARY KEY, body BLOB)")
        self._batch: list[tuple[str, bytes]] = []

    def add(self, ref: str, body: bytes) -> None:
        self._batch.append((ref, body))
        if len(self._batch) >= 5000:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO r VALUES (?, ?)", self._batch)
            self._db.execute("COMMIT")
            self._batch.clear()

    def get(self, ref: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM r WHERE ref = ?", (ref,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()


class _ChunkView(Mapping[str, Any]):
    """What ``parse_records`` sees: iterates one chunk of Consents/CarePlans, resolves references in
    the chunk first, then in the support index."""

    def __init__(self, chunk: dict[str, Any], support: _SupportIndex) -> None:
        self._chunk = chunk
        self._support = support
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._chunk:
            return self._chunk[key]
        if key not in self._cache:
            self._cache[key] = self._support.get(key)
        value = self._cache[key]
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._chunk)

    def __len__(self) -> int:
        return len(self._chunk)


def records_from_fhir(paths: Iterable[Path], rejects: RejectSink) -> Iterator[CareRecord]:
    """Canonical records from FHIR Bundles (.json) and NDJSON files (two passes over the NDJSON)."""
    from fhir_dnacpr.fhir.parse import index_resources, parse_records

    files = fhir_files(paths)
    for path in (p for p in files if p.suffix == ".json"):
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            rejects.read += 1
            rejects.reject(str(path), "read", [error("structure", f"not JSON: {exc}")])
            continue
        resources = (
            [e.get("resource") for e in data.get("entry", ()) if isinstance(e, dict)]
            if data.get("resourceType") == "Bundle"
            else [data]
        )
        indexed = index_resources(resources)
        yield from _parsed(parse_records(indexed), str(path), rejects, {}, _decision_refs(indexed))
    ndjson = [p for p in files if p.suffix == ".ndjson"]
    if not ndjson:
        return
    support = _SupportIndex()
    try:
        for path in ndjson:  # pass 1: everything a decision or plan may refer to
            with path.open("rb") as f:
                for line in f:
                    if b'"Consent"' in line[:200] or b'"CarePlan"' in line[:200] or not line.strip():
                        continue
                    try:
                        resource = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue  # reported in pass 2
                    support.add(f"{resource.get('resourceType')}/{resource.get('id')}", line)
        support.flush()
        for path in ndjson:  # pass 2: decisions and plans, a chunk at a time
            chunk: dict[str, Any] = {}
            lines: dict[str, int] = {}
            with path.open("rb") as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        resource = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        rejects.read += 1
                        rejects.reject(
                            f"{path}, line {number}", "read", [error("structure", f"not JSON: {exc}")]
                        )
                        continue
                    if resource.get("resourceType") not in ("Consent", "CarePlan"):
                        continue
                    ref = f"{resource['resourceType']}/{resource.get('id')}"
                    chunk[ref] = resource
                    lines[ref] = number
                    if len(chunk) >= CHUNK:
                        view = _ChunkView(chunk, support)
                        yield from _parsed(parse_records(view), str(path), rejects, lines, list(chunk))
                        chunk, lines = {}, {}
            if chunk:
                view = _ChunkView(chunk, support)
                yield from _parsed(parse_records(view), str(path), rejects, lines, list(chunk))
    finally:
        support.close()


def _parsed(
    result: Any, file: str, rejects: RejectSink, lines: Mapping[str, int], inputs: Iterable[str]
) -> Iterator[CareRecord]:
    """Records from one ``parse_records`` call; each input Consent/CarePlan not read is a reject."""
    used = {ref for refs in result.record_refs for ref in refs}
    for ref in inputs:
        if ref in used:
            continue
        rejects.read += 1
        mine = [i for i in result.issues if i.is_error and i.message.startswith(f"{ref}:")]
        where = f"{file}, line {lines[ref]}" if ref in lines else f"{file}, {ref}"
        rejects.reject(
            where, "parse", mine or [error("processing", f"{ref}: not read as a DNACPR decision or plan")]
        )
    for record, refs in zip(result.records, result.record_refs, strict=True):
        rejects.read += 1
        location = ", ".join(f"line {lines[r]}" if r in lines else r for r in refs)
        yield _with_origin(record, file, location)


def _decision_refs(resources: Mapping[str, Any]) -> list[str]:
    return [ref for ref in resources if ref.startswith(("Consent/", "CarePlan/"))]


# -- a FHIR server -------------------------------------------------------------------------------


def records_from_server(
    base_url: str,
    rejects: RejectSink,
    *,
    page_size: int = 200,
    client: Any = None,
    extra_params: Iterable[tuple[str, str]] = (),
) -> Iterator[CareRecord]:
    """Canonical records from a FHIR server: DNACPR Consents and ACP CarePlans with what they refer to.

    ``extra_params`` narrows both searches (e.g. ``[("_lastUpdated", "ge2021-01-01")]``).
    Pages through ``Consent?category=dnr`` and ``CarePlan?category=736366004`` with ``_include`` so each
    page parses on its own; memory holds one page. A CarePlan and its Consent arrive as separate records
    (the audit's rules look at each on its own).
    """
    from fhir_dnacpr.fhir.parse import index_resources, parse_records
    from fhir_dnacpr.server.client import FhirClient

    own = client is None
    client = client or FhirClient(base_url)
    extra = list(extra_params)
    try:
        searches = (
            (
                "Consent",
                [
                    ("category", "http://terminology.hl7.org/CodeSystem/consentcategorycodes|dnr"),
                    ("_include", "Consent:patient"),
                    ("_include", "Consent:organization"),
                    ("_count", str(page_size)),
                    *extra,
                ],
            ),
            (
                "CarePlan",
                [
                    ("category", "http://snomed.info/sct|736366004"),
                    ("_include", "CarePlan:subject"),
                    ("_count", str(page_size)),
                    *extra,
                ],
            ),
        )
        for resource_type, params in searches:
            url: str | None = resource_type
            query: list[tuple[str, str]] | None = params
            page = 0
            while url:
                page += 1
                bundle = client.get_json(url, params=query) if query else client.get_json(url)
                entries = [e.get("resource") for e in bundle.get("entry", ()) if isinstance(e, dict)]
                resources = index_resources(entries)
                _fetch_missing(client, resources)
                matches = [
                    f"{e['resource'].get('resourceType')}/{e['resource'].get('id')}"
                    for e in bundle.get("entry", ())
                    if isinstance(e, dict)
                    and isinstance(e.get("resource"), dict)
                    and (e.get("search") or {}).get("mode", "match") == "match"
                    and e["resource"].get("resourceType") == resource_type
                ]
                where = f"{base_url.rstrip('/')}/{resource_type} page {page}"
                yield from _parsed(parse_records(resources), where, rejects, {}, matches)
                url = next(
                    (link.get("url") for link in bundle.get("link", ()) if link.get("relation") == "next"),
                    None,
                )
                query = None
    finally:
        if own:
            client.close()


def _references(value: Any) -> Iterator[str]:
    """Every ``Type/id`` reference inside a resource (nested elements and extensions included)."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref.count("/") == 1 and not ref.startswith("#"):
            yield ref
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _fetch_missing(client: Any, resources: dict[str, Any]) -> None:
    """Fetch what a page's resources refer to but ``_include`` did not bring (Consent has no search
    parameter for ``performer``, so practitioners never come with the page): one search per type."""
    missing: dict[str, set[str]] = {}
    for resource in list(resources.values()):
        for ref in _references(resource):
            if ref not in resources:
                rtype, rid = ref.split("/")
                missing.setdefault(rtype, set()).add(rid)
    for rtype, rids in sorted(missing.items()):
        ordered = sorted(rids)
        for start in range(0, len(ordered), 50):
            chunk = ordered[start : start + 50]
            bundle = client.get_json(rtype, params=[("_id", ",".join(chunk)), ("_count", str(len(chunk)))])
            for entry in bundle.get("entry", ()):
                found = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(found, dict) and found.get("id"):
                    resources[f"{found.get('resourceType')}/{found['id']}"] = found
