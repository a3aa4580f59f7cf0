"""Writers: built resources → transaction Bundles (JSON or XML) or Bulk Data NDJSON, streaming.

Each writer takes one source record's resources at a time (``write(origin, resources)``), holds at
most one chunk in memory, and records which source record produced which ``Type/id`` in
``entry-origins.ndjson`` so a push client can map a server's answer back to the source row.

Identity rules (docs/fhir-mapping.md, "Output files"):

* A transaction Bundle never holds one resource twice (the spec says such a transaction SHALL
  fail): a resource shared by records in one chunk (the Patient, a practitioner) is one entry. An
  identical repeat is dropped; a different version of the same ``Type/id`` replaces the earlier one
  (the later record wins) and an Issue says so.
* NDJSON holds each resource once per run. What was written is remembered on disk (``WrittenSet``),
  consulted once per batch of records, so memory stays flat in the records; a different later version
  is reported and the first one written is kept (it is already on disk). Because of the batching, a
  conflict with an earlier record may be reported by a later ``write`` call or, for the last batch,
  in ``closing_issues``. A caller that saw every ``Type/id`` beforehand (convert's pass one) passes a
  ``RepeatFilter``; the resources it rules out as repeats skip that check (most of them do). Types
  the caller promises are written at most once (``unique_types``: convert's Consent and CarePlan)
  skip it without asking the filter.
* ``write_serialised`` takes resources already serialised (``serialise``): a pipeline that has the
  JSON bytes anyway (the convert spill) never parses and re-serialises them.
* Entries are ``PUT Type/id`` with ``fullUrl`` = ``{base_url}/Type/id``: PUT needs a fullUrl, it must
  be absolute and agree with the id, and the relative references inside the resources then resolve
  to entries of the same bundle (R4 bundle reference rules). ``base_url`` defaults to a placeholder;
  a push client may pass the server's base.
* Each chunk gets one Provenance whose targets are exactly that chunk's resources.
"""

from __future__ import annotations

import operator
import os
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.provenance import build_provenance
from fhir_dnacpr.fhir.seen import RepeatFilter, WrittenSet
from fhir_dnacpr.issues import Issue, Severity

Resource = dict[str, Any]
T = TypeVar("T")
Serialised = tuple[str, str, bytes]
"""One resource ready to write: (``Type/id``, resource type, compact JSON bytes)."""
_REF_OF = operator.itemgetter(0)

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
    return _merge_versions(origin, [(_ref(r), r, r) for r in resources])


def _merge_versions(origin: str, versions: list[tuple[str, Any, T]]) -> tuple[dict[str, T], list[Issue]]:
    """(ref, content, value) triples → one value per ref, the later winning (first position kept);
    a repeat whose content differs is reported. Content is the dict or its JSON bytes."""
    merged: dict[str, T] = {}
    content: dict[str, Any] = {}
    issues: list[Issue] = []
    for ref, version, value in versions:
        known = content.get(ref)
        if known is not None and known != version:
            issues.append(
                _conflict(ref, origin, "the record holds two versions of it; the later one is written")
            )
        content[ref] = version
        merged[ref] = value
    return merged, issues


def serialise(resources: list[Resource]) -> list[Serialised]:
    """Resources as ``write_serialised`` takes them (compact JSON, the NDJSON line format)."""
    return [(f"{r['resourceType']}/{r['id']}", r["resourceType"], orjson.dumps(r)) for r in resources]


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
        self.closing_issues: list[Issue] = []
        """Issues only found while closing (the NDJSON writer's last batch)."""

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

    def write_serialised(self, origin: str, items: list[Serialised]) -> list[Issue]:
        """``write`` for resources already serialised (see ``serialise``)."""
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
        self._written = WrittenSet()
        self._previous_file: dict[str, str] = {}
        self._digests: dict[str, int] = {}
        """Digest of each pending entry's compact JSON, for the check against earlier bundles."""

    def write(self, origin: str, resources: list[Resource]) -> list[Issue]:
        merged, issues = merge_record(origin, resources)
        digests = {ref: hash(orjson.dumps(resource)) for ref, resource in merged.items()}
        return issues + self._add(origin, merged, digests)

    def write_serialised(self, origin: str, items: list[Serialised]) -> list[Issue]:
        """Parses each resource once for the bundle; its bytes give the digest without re-serialising."""
        merged_items, issues = _merge_versions(origin, [(item[0], item[2], item) for item in items])
        merged = {ref: orjson.loads(data) for ref, (_, _, data) in merged_items.items()}
        digests = {ref: hash(data) for ref, (_, _, data) in merged_items.items()}
        return issues + self._add(origin, merged, digests)

    def _add(self, origin: str, merged: dict[str, Resource], digests: dict[str, int]) -> list[Issue]:
        issues: list[Issue] = []
        new = sum(1 for ref in merged if ref not in self._entries)
        if self._entries and len(self._entries) + new + 1 > self.chunk_size:
            issues += self._flush()
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
            self._digests[ref] = digests[ref]
            self._entry_origin[ref] = origin
            self._origin_pairs.append((ref, origin))
        return issues

    def _flush(self) -> list[Issue]:
        """Write the pending bundle; returns conflicts with versions sent in earlier bundles."""
        if not self._entries:
            return []
        self.chunk_no += 1
        resources = list(self._entries.values())
        issues = self._conflicts_with_earlier_bundles()
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
        self._digests = {}
        self._entry_origin = {}
        self._origin_pairs = []
        return issues

    def _conflicts_with_earlier_bundles(self) -> list[Issue]:
        """A shared resource (a clinician, a relative) sent again with different content: each bundle
        PUTs its version and the server keeps the last, so say so — it is not silent data loss."""
        digests = self._digests
        earlier = self._written.settle(digests, keep="last")
        name = f"bundle-{self.chunk_no:05d}{self.suffix}"
        issues = [
            _conflict(
                ref,
                self._entry_origin[ref],
                f"differs from the version sent in {self._previous_file.get(ref, 'an earlier bundle')}; "
                f"both are written and a server applying them in order keeps this later one ({name})",
            )
            for ref, digest in earlier.items()
            if digest != digests[ref]
        ]
        for ref in digests:
            if ref in self._previous_file or len(self._previous_file) < 65536:  # bounded memory
                self._previous_file[ref] = name
        return issues

    def serialise(self, bundle: Resource) -> bytes:
        return orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)

    def _finish(self) -> None:
        try:
            self.closing_issues = self._flush()
        finally:
            self._written.close()


class XmlBundleWriter(BundleWriter):
    """The same transaction Bundles as FHIR XML (``bundle-00001.xml`` …)."""

    patterns = ("bundle-*.xml",)
    suffix = ".xml"

    def serialise(self, bundle: Resource) -> bytes:
        from fhir_dnacpr.fhirxml import to_xml

        return to_xml(bundle, pretty=True)


_KEPT_FIRST = "differs from the version already written; the first one is kept"


class NdjsonWriter(Writer):
    """Bulk Data layout: ``Type.ndjson`` per resource type, each resource once per run, compact JSON.

    Records are held back in batches of ``batch_records`` so that "written before?" is one disk
    lookup per batch; then they are written in order. A Provenance is written to
    ``Provenance.ndjson`` for every ``chunk_size`` resources written (at a record boundary), targeting
    exactly those resources.

    The per-resource work is kept to a few dict and list operations (it runs ~7 times per source
    record): counts are taken per file when a batch is written, origin lines are joined per record.
    """

    patterns = ("[A-Z]*.ndjson",)

    def __init__(
        self,
        *args: Any,
        batch_records: int = 1000,
        repeats: RepeatFilter | None = None,
        unique_types: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._may_repeat = repeats.may_repeat if repeats is not None else None
        self._unique_types = unique_types
        self._files: dict[str, Any] = {}
        self._buffers: defaultdict[str, list[bytes]] = defaultdict(list)
        self._written = WrittenSet()
        self._settled: dict[str, int] = {}
        """The latest batches' part of ``_written`` (``Type/id`` → digest on disk), bounded: a shared
        resource recurring in every batch is answered here instead of by SQLite."""
        self._targets: list[str] = []
        self._pending: list[tuple[str, list[Serialised]]] = []
        self._batch_records = batch_records

    _SETTLED_MAX = 1 << 12
    """Small on purpose: a shared resource is back in the table one batch after a clear, and a larger
    table mostly holds refs met once more (repeated people), growing peak memory with the input."""

    def write(self, origin: str, resources: list[Resource]) -> list[Issue]:
        return self.write_serialised(origin, serialise(resources))

    def write_serialised(self, origin: str, items: list[Serialised]) -> list[Issue]:
        issues: list[Issue] = []
        if len(items) > 1 and len(set(map(_REF_OF, items))) < len(items):
            items, issues = _merge_serialised(origin, items)
        pending = self._pending
        pending.append((origin, items))
        if len(pending) >= self._batch_records:
            issues += self._settle()
        return issues

    def _on_disk(self, pending: list[tuple[str, list[Serialised]]]) -> tuple[dict[str, int], dict[str, int]]:
        """The refs of ``pending`` that need the exact check (all, or those the caller's RepeatFilter
        cannot rule out), each with the digest of its first version in the batch; and of those, the
        ones an earlier batch wrote, with the digest written. ``_written`` learns the others."""
        first: dict[str, int] = {}
        current: dict[str, int] = {}
        ask: dict[str, int] = {}
        settled = self._settled
        may_repeat, unique_types = self._may_repeat, self._unique_types
        for _, items in pending:
            for ref, rtype, data in items:
                if rtype not in unique_types and ref not in first and (may_repeat is None or may_repeat(ref)):
                    first[ref] = digest = hash(data)  # bytes cache their hash: later calls are free
                    known = settled.get(ref)
                    if known is None:
                        ask[ref] = digest
                    else:
                        current[ref] = known
        if ask:
            current.update(self._written.settle(ask))
        return first, current

    def _settle(self) -> list[Issue]:
        """Write the pending records in order, each resource only if no earlier record wrote it."""
        pending, self._pending = self._pending, []
        first, current = self._on_disk(pending)  # current: ref → digest of the version already on disk
        issues: list[Issue] = []
        buffers, chunk_size = self._buffers, self.chunk_size
        targets = self._targets
        origins: list[str] = []
        for origin, items in pending:
            if not items:
                continue
            for ref, rtype, data in items:
                if ref in first:
                    known = current.get(ref)
                    if known is not None:
                        if known != hash(data):
                            issues.append(_conflict(ref, origin, _KEPT_FIRST))
                        continue
                    current[ref] = hash(data)
                buffers[rtype].append(data)
                targets.append(ref)
            tail = '","origin":' + orjson.dumps(origin).decode() + "}\n"
            origins.append('{"resource":"' + (tail + '{"resource":"').join(map(_REF_OF, items)) + tail)
            if len(targets) >= chunk_size:
                self._write_provenance()
                targets = self._targets
        self._origins.write("".join(origins).encode())
        self._drain()
        if first:
            settled = self._settled
            if len(settled) + len(current) > self._SETTLED_MAX:
                settled.clear()
            settled.update(current)  # every ref of ``first``, with the digest now on disk
        return issues

    def _write_provenance(self) -> None:
        if not self._targets:
            return
        self.chunk_no += 1
        self._buffers["Provenance"].append(orjson.dumps(self.provenance(self._targets)))
        self._targets = []

    def _drain(self) -> None:
        counts = self.counts
        for rtype, lines in self._buffers.items():
            if lines:
                handle = self._files.get(rtype)
                if handle is None:
                    handle = self._files[rtype] = open(self.out_dir / f"{rtype}.ndjson", "wb")  # noqa: SIM115
                counts[rtype] = counts.get(rtype, 0) + len(lines)
                lines.append(b"")
                handle.write(b"\n".join(lines))
                lines.clear()

    def _finish(self) -> None:
        try:
            self.closing_issues = self._settle()
            self._write_provenance()
            self._drain()
        finally:
            self._written.close()
            for handle in self._files.values():
                handle.close()


def _merge_serialised(origin: str, items: list[Serialised]) -> tuple[list[Serialised], list[Issue]]:
    """``merge_record`` for serialised resources: one per ``Type/id``, the later version winning."""
    merged, issues = _merge_versions(origin, [(item[0], item[2], item) for item in items])
    return list(merged.values()), issues


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
    repeats: RepeatFilter | None = None,
    unique_types: frozenset[str] = frozenset(),
) -> Writer:
    """A writer for ``fmt`` (``bundle`` = JSON transaction Bundles, ``xml`` = the same as FHIR XML,
    ``ndjson`` = Bulk Data files) into ``out_dir``; use as a context manager or call ``close()``.

    Refuses a folder that already holds output of the same kind unless ``overwrite`` is true.
    ``repeats`` (NDJSON only) is a caller's promise: every ``Type/id`` it will write was noted in it
    beforehand, so one the filter rules out is written without the on-disk "written before?" check.
    ``unique_types`` (NDJSON only) is another promise: each ``Type/id`` of these types comes at most
    once in the whole run, so they skip the check (and need not be noted in ``repeats``).
    """
    try:
        factory = _WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    extra: dict[str, Any] = (
        {"base_url": base_url}
        if fmt in ("bundle", "xml")
        else {"repeats": repeats, "unique_types": unique_types}
    )
    return factory(
        Path(out_dir), chunk_size, ids, source_file, source_sha256, run_time, overwrite=overwrite, **extra
    )
