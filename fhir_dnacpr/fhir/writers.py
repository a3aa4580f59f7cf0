"""Writers: built resources → transaction Bundles (JSON or XML) or Bulk Data NDJSON, streaming.

Each writer takes one source record's resources at a time (``write(origin, resources)``), holds at
most one chunk in memory, and records which source record produced which ``Type/id`` in
``entry-origins.ndjson`` so a push client can map a server's answer back to the source row.

Identity rules (docs/fhir-mapping.md, "Output files"):

* A transaction Bundle never holds one resource twice (the spec says such a transaction SHALL
  fail): a resource shared by records in one chunk (the Patient, a practitioner) is one entry. An
  identical repeat is dropped; a different version of the same ``Type/id`` replaces the earlier one
  (the later record wins) and an Issue says so.
* NDJSON holds each resource once per run. Only a 64-bit digest of each ``Type/id`` and of its JSON
  is remembered (``DigestTable``), so memory stays flat in the records; a different later version is
  reported and the first one written is kept (it is already on disk).
* Entries are ``PUT Type/id`` with ``fullUrl`` = ``{base_url}/Type/id``: PUT needs a fullUrl, it must
  be absolute and agree with the id, and the relative references inside the resources then resolve
  to entries of the same bundle (R4 bundle reference rules). ``base_url`` defaults to a placeholder;
  a push client may pass the server's base.
* Each chunk gets one Provenance whose targets are exactly that chunk's resources.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.provenance import build_provenance
from fhir_dnacpr.fhir.seen import DigestTable
from fhir_dnacpr.issues import Issue, Severity

Resource = dict[str, Any]

PLACEHOLDER_BASE = "https://fhir-dnacpr.invalid/fhir"
"""Base for ``fullUrl`` when the target server is not known (``.invalid`` is reserved: RFC 2606)."""
DEFAULT_CHUNK_SIZE = 100
ORIGINS_FILE = "entry-origins.ndjson"
FORMATS = ("bundle", "ndjson", "xml")


def _ref(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _conflict(ref: str, origin: str, message: str) -> Issue:
    return Issue(
        Severity.WARNING, "conflict", f"{ref} from {origin}: {message}", ref, "WRITE_CONFLICTING_DUPLICATE"
    )


def merge_record(origin: str, resources: list[Resource]) -> tuple[dict[str, Resource], list[Issue]]:
    """One record's resources keyed by ``Type/id``; a conflicting repeat replaces the first (issue)."""
    merged: dict[str, Resource] = {}
    issues: list[Issue] = []
    for resource in resources:
        ref = _ref(resource)
        known = merged.get(ref)
        if known is not None and known != resource:
            issues.append(
                _conflict(ref, origin, "the record holds two versions of it; the later one is written")
            )
        merged[ref] = resource
    return merged, issues


class Writer:
    """Common part: output folder, origins log, counts, Provenance ids."""

    patterns: tuple[str, ...] = ()

    def __init__(
        self,
        out_dir: Path,
        chunk_size: int,
        ids: IdFactory,
        source_file: str,
        source_sha256: str,
        run_time: datetime,
        overwrite: bool = False,
    ) -> None:
        if chunk_size < 2:
            raise ValueError("chunk_size must be at least 2 (a chunk carries its Provenance)")
        if run_time.tzinfo is None:
            raise ValueError("run_time must carry a time zone")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._clear_previous(overwrite)
        self.chunk_size = chunk_size
        self.ids = ids
        self.source_file = source_file
        self.source_sha256 = source_sha256
        self.run_time = run_time
        self.counts: dict[str, int] = {}
        self.chunk_no = 0
        self._origins = open(self.out_dir / ORIGINS_FILE, "wb")  # noqa: SIM115 (closed in close())
        self._closed = False

    def _clear_previous(self, overwrite: bool) -> None:
        previous = [p for pattern in (*self.patterns, ORIGINS_FILE) for p in self.out_dir.glob(pattern)]
        if previous and not overwrite:
            raise FileExistsError(
                f"{self.out_dir} already holds output ({previous[0].name} …); overwrite=True replaces it"
            )
        for path in previous:
            path.unlink()

    def provenance(self, targets: list[Resource]) -> Resource:
        return build_provenance(
            targets, self.source_file, self.source_sha256, self.run_time, self.chunk_no, self.ids
        )

    def _count(self, resource_type: str) -> None:
        self.counts[resource_type] = self.counts.get(resource_type, 0) + 1

    def write(self, origin: str, resources: list[Resource]) -> list[Issue]:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def close(self) -> dict[str, int]:
        """Flush the last chunk, close the files; returns resources written per type."""
        if not self._closed:
            self._closed = True
            try:
                self._finish()
            finally:
                self._origins.close()
        return dict(self.counts)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BundleWriter(Writer):
    """Transaction Bundles of at most ``chunk_size`` entries (Provenance included), whole records only.

    A record is never split across bundles (its references must resolve in one transaction); a record
    needing more entries than ``chunk_size`` gets a bundle of its own.
    """

    patterns = ("bundle-*.json",)
    suffix = ".json"

    def __init__(self, *args: Any, base_url: str = PLACEHOLDER_BASE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base_url = base_url.rstrip("/")
        self._entries: dict[str, Resource] = {}
        self._entry_origin: dict[str, str] = {}
        self._origin_pairs: list[tuple[str, str]] = []

    def write(self, origin: str, resources: list[Resource]) -> list[Issue]:
        merged, issues = merge_record(origin, resources)
        new = sum(1 for ref in merged if ref not in self._entries)
        if self._entries and len(self._entries) + new + 1 > self.chunk_size:
            self._flush()
        entries = self._entries
        for ref, resource in merged.items():
            known = entries.get(ref)
            if known is not None and known != resource:
                issues.append(
                    _conflict(
                        ref,
                        origin,
                        f"differs from the version from {self._entry_origin[ref]} "
                        "in the same bundle; the later one is written",
                    )
                )
            entries[ref] = resource  # a dict keeps the first position, takes the later content
            self._entry_origin[ref] = origin
            self._origin_pairs.append((ref, origin))
        return issues

    def _flush(self) -> None:
        if not self._entries:
            return
        self.chunk_no += 1
        resources = list(self._entries.values())
        resources.append(self.provenance(resources))
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"{self.base_url}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in resources
            ],
        }
        name = f"bundle-{self.chunk_no:05d}{self.suffix}"
        tmp = self.out_dir / (name + ".tmp")
        tmp.write_bytes(self.serialise(bundle))
        os.replace(tmp, self.out_dir / name)
        for r in resources:
            self._count(r["resourceType"])
        file_json = orjson.dumps(name)
        lines = [
            b'{"resource":"'
            + ref.encode()
            + b'","origin":'
            + orjson.dumps(origin)
            + b',"file":'
            + file_json
            + b"}\n"
            for ref, origin in self._origin_pairs
        ]
        self._origins.write(b"".join(lines))
        self._entries = {}
        self._entry_origin = {}
        self._origin_pairs = []

    def serialise(self, bundle: Resource) -> bytes:
        return orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)

    def _finish(self) -> None:
        self._flush()


class XmlBundleWriter(BundleWriter):
    """The same transaction Bundles as FHIR XML (``bundle-00001.xml`` …)."""

    patterns = ("bundle-*.xml",)
    suffix = ".xml"

    def serialise(self, bundle: Resource) -> bytes:
        from fhir_dnacpr.fhirxml import to_xml

        return to_xml(bundle, pretty=True)


class NdjsonWriter(Writer):
    """Bulk Data layout: ``Type.ndjson`` per resource type, each resource once per run, compact JSON.

    A Provenance is written to ``Provenance.ndjson`` for every ``chunk_size`` resources written (at a
    record boundary), targeting exactly those resources.
    """

    patterns = ("[A-Z]*.ndjson",)
    _BUFFER_BYTES = 1 << 20

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._files: dict[str, Any] = {}
        self._buffers: dict[str, list[bytes]] = {}
        self._buffered = 0
        self._seen = DigestTable(1 << 16)
        self._targets: list[Resource] = []

    def write(self, origin: str, resources: list[Resource]) -> list[Issue]:
        if len(resources) > 1:
            merged, issues = merge_record(origin, resources)
            items = merged.items()
        else:
            issues = []
            items = [(_ref(r), r) for r in resources]
        tail = b'","origin":' + orjson.dumps(origin) + b"}\n"
        seen, buffers, targets = self._seen, self._buffers, self._targets
        origins = []
        for ref, resource in items:
            data = orjson.dumps(resource)
            digest = hash(data)
            known = seen.setdefault(hash(ref), digest)
            if known is None:
                rtype = resource["resourceType"]
                buffer = buffers.get(rtype)
                if buffer is None:
                    buffer = buffers[rtype] = []
                buffer.append(data)
                self._buffered += len(data)
                self.counts[rtype] = self.counts.get(rtype, 0) + 1
                targets.append(resource)
            elif known != digest:
                issues.append(
                    _conflict(ref, origin, "differs from the version already written; the first one is kept")
                )
            origins.append(b'{"resource":"' + ref.encode() + tail)
        self._origins.write(b"".join(origins))
        if len(targets) >= self.chunk_size:
            self._write_provenance()
        if self._buffered >= self._BUFFER_BYTES:
            self._drain()
        return issues

    def _write_provenance(self) -> None:
        if not self._targets:
            return
        self.chunk_no += 1
        self._buffers.setdefault("Provenance", []).append(orjson.dumps(self.provenance(self._targets)))
        self._count("Provenance")
        self._targets = []

    def _drain(self) -> None:
        for rtype, lines in self._buffers.items():
            if lines:
                handle = self._files.get(rtype)
                if handle is None:
                    handle = self._files[rtype] = open(self.out_dir / f"{rtype}.ndjson", "wb")  # noqa: SIM115
                lines.append(b"")
                handle.write(b"\n".join(lines))
                lines.clear()
        self._buffered = 0

    def _finish(self) -> None:
        try:
            self._write_provenance()
            self._drain()
        finally:
            for handle in self._files.values():
                handle.close()


_WRITERS: dict[str, Callable[..., Writer]] = {
    "bundle": BundleWriter,
    "ndjson": NdjsonWriter,
    "xml": XmlBundleWriter,
}


def open_writer(
    fmt: str,
    out_dir: str | Path,
    *,
    ids: IdFactory,
    source_file: str,
    source_sha256: str,
    run_time: datetime,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    base_url: str = PLACEHOLDER_BASE,
    overwrite: bool = False,
) -> Writer:
    """A writer for ``fmt`` (``bundle`` = JSON transaction Bundles, ``xml`` = the same as FHIR XML,
    ``ndjson`` = Bulk Data files) into ``out_dir``; use as a context manager or call ``close()``.

    Refuses a folder that already holds output of the same kind unless ``overwrite`` is true.
    """
    try:
        factory = _WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    extra = {"base_url": base_url} if fmt in ("bundle", "xml") else {}
    return factory(
        Path(out_dir), chunk_size, ids, source_file, source_sha256, run_time, overwrite=overwrite, **extra
    )
