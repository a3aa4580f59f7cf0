"""``convert``: one legacy export + one mapping spec → FHIR R4 resources, rejects and a summary.

Pass one reads, maps, builds and validates every record once, rejecting what fails, and spills the
built resources to a temporary file while a small on-disk ledger notes what supersession needs.
Pass two reads the ledger's verdicts and the spill in input order (a merge join), marks superseded
decisions inactive, drops replaced versions of the same source record, and writes the output.
Memory stays flat however large the export; each record is mapped exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from lxml import etree

from fhir_dnacpr import __version__
from fhir_dnacpr.fhir.build import CAREPLAN_STATUS, CONSENT_STATUS, SharedParties, build_resources
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.writers import Serialised, open_writer, serialise
from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.mapping import MappingSpec
from fhir_dnacpr.model import CareRecord, RecordStatus
from fhir_dnacpr.pipeline.ledger import Ledger, Verdict
from fhir_dnacpr.pipeline.rejects import RejectSink, reason_of
from fhir_dnacpr.pipeline.summary import RunSummary
from fhir_dnacpr.sources.base import RawRecord

Validate = Callable[[dict[str, Any]], list[Issue]]

DECISION, PLAN = "decision", "plan"
ITEM_RESOURCE = {DECISION: "Consent", PLAN: "CarePlan"}


@dataclass
class ConvertOptions:
    """Everything a convert run needs; the CLI fills it from flags, a pipeline can build it directly."""

    input_path: Path
    spec: MappingSpec
    out_dir: Path
    ids: IdFactory
    fmt: str = "bundle"
    chunk_size: int = 100
    validate: Validate | None = None
    max_errors: int | None = None
    reject_raw: bool = False
    progress: bool = False
    overwrite: bool = False
    run_time: datetime = field(default_factory=lambda: datetime.now(UTC))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _raw_digest(raw: RawRecord) -> bytes:
    """Identity of a raw record's content (not its position), for exact-duplicate detection."""
    data = raw.data
    if isinstance(data, etree._Element):
        payload = etree.tostring(data, method="c14n")
    elif data is not None:
        payload = orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)
    else:
        payload = (raw.text or "").encode()
    return hashlib.blake2b(payload, digest_size=16).digest()


def _order_key(last_updated: datetime | None, fallback: date | datetime | None) -> str:
    """Sortable text: last-updated first, else the clinical date; all compared as UTC instants."""
    value = last_updated or fallback
    if value is None:
        return ""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _raw_copy(raw: RawRecord) -> Any:
    """The record exactly as read, for ``--reject-raw`` (XML as text, since elements are not JSON)."""
    if isinstance(raw.data, etree._Element):
        return etree.tostring(raw.data, encoding="unicode")
    return raw.data if raw.data is not None else raw.text


class _LedgerKeys:
    """Keyed hashes for the ledger: a fresh random key per run (the ledger lives only as long as the
    run), so nothing on disk can be linked to a person or compared across runs; keyed BLAKE2b is one
    C call, several times cheaper than the HMAC the resource ids need."""

    __slots__ = ("_key",)

    def __init__(self) -> None:
        self._key = os.urandom(32)

    def __call__(self, *parts: str | None) -> bytes:
        return hashlib.blake2b(orjson.dumps(parts), key=self._key, digest_size=16).digest()


def _note_items(ledger: Ledger, keys: _LedgerKeys, seq: int, record: CareRecord) -> None:
    """Pass one: what the ledger needs about each item, as keyed hashes (no identifiers on disk)."""
    for kind, item in ((DECISION, record.decision), (PLAN, record.plan)):
        if item is None:
            continue
        clinical_date = item.decision_date if kind == DECISION else item.created  # type: ignore[union-attr]
        ledger.add_item(
            seq,
            kind,
            record_key=keys(item.source.system, item.source.record_id),
            patient_key=keys(item.source.system, item.patient.nhs_number),
            order_key=_order_key(item.source.last_updated, clinical_date),
            active=item.status is RecordStatus.ACTIVE,
        )


def _verdict_stream(ledger: Ledger) -> Iterator[tuple[int, dict[str, Verdict]]]:
    """Group the ledger's verdicts by seq so pass two can merge-join them with the spill."""
    current_seq: int | None = None
    bucket: dict[str, Verdict] = {}
    for seq, kind, verdict in ledger.verdicts():
        if seq != current_seq and current_seq is not None:
            yield current_seq, bucket
            bucket = {}
        current_seq = seq
        bucket[kind] = verdict
    if current_seq is not None:
        yield current_seq, bucket


_FRAME = struct.Struct("<I")


def _spill(spill: BinaryIO, seq: int, origin: str, items: list[Serialised]) -> None:
    """One record into the spill: a length-prefixed pickle (cheap to cut back out in pass two)."""
    blob = pickle.dumps((seq, origin, items), pickle.HIGHEST_PROTOCOL)
    spill.write(_FRAME.pack(len(blob)))
    spill.write(blob)


def _spilled(spill: BinaryIO) -> Iterator[tuple[int, str, list[Serialised]]]:
    """The records pass one spilled, in input order.

    Framed by length and unpickled from bytes: ``pickle.load`` on the file costs ~10x more per record
    (a fresh unpickler and many small reads), and a long-lived unpickler keeps every object it loaded.
    """
    read, loads, size = spill.read, pickle.loads, _FRAME.size
    while header := read(size):
        (length,) = _FRAME.unpack(header)
        yield loads(read(length))


class _Progress:
    """A single self-overwriting stderr line, at most twice a second, on a terminal only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0

    def tick(self, phase: str, summary: RunSummary) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            n, rejected = summary.records_in, summary.records_rejected
            sys.stderr.write(f"\r{phase}: {n:,} records, {rejected:,} rejected ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")


def mark_superseded(resource: dict[str, Any]) -> None:
    """Turn a built active Consent/CarePlan into its superseded form, in place.

    Equal to building the record with status SUPERSEDED (a property test holds the builder to it),
    but without keeping the canonical record until pass two.
    """
    status = (CONSENT_STATUS if resource["resourceType"] == "Consent" else CAREPLAN_STATUS)[
        RecordStatus.SUPERSEDED
    ]
    resource["status"] = status
    for tag in resource.get("meta", {}).get("tag", ()):
        if tag.get("code") == RecordStatus.ACTIVE.value:
            tag["code"] = RecordStatus.SUPERSEDED.value


def _apply_verdicts(items: list[Serialised], verdicts: dict[str, Verdict]) -> tuple[list[Serialised], bool]:
    """Drop replaced versions, mark superseded items; returns (what is left, whether superseded).

    Only the few records with a verdict pay for parsing their JSON again.
    """
    superseded = False
    for kind, verdict in verdicts.items():
        resource_type = ITEM_RESOURCE[kind]
        if verdict is Verdict.REPLACED_VERSION:
            items = [item for item in items if item[1] != resource_type]
        elif verdict is Verdict.SUPERSEDED:
            marked = []
            for item in items:
                if item[1] == resource_type:
                    resource = orjson.loads(item[2])
                    mark_superseded(resource)
                    item = (item[0], item[1], orjson.dumps(resource))
                    superseded = True
                marked.append(item)
            items = marked
    if not any(item[1] in ITEM_RESOURCE.values() for item in items):
        return [], superseded
    return items, superseded


def _validation_issues(resources: list[dict[str, Any]], validate: Validate) -> list[Issue]:
    """Validate each built resource; locations are prefixed with the resource so they stay findable."""
    found: list[Issue] = []
    for resource in resources:
        for issue in validate(resource):
            if issue.severity in (Severity.FATAL, Severity.ERROR, Severity.WARNING):
                where = f"{resource['resourceType']}/{resource.get('id', '?')}"
                location = f"{where}: {issue.location}" if issue.location else where
                found.append(dataclasses.replace(issue, location=location))
    return found


class _Run:
    """One convert run: the state both passes share."""

    def __init__(self, options: ConvertOptions, summary: RunSummary, rejects: RejectSink) -> None:
        self.options = options
        self.spec = options.spec
        self.summary = summary
        self.rejects = rejects
        self.progress = _Progress(options.progress)
        self.ledger_keys = _LedgerKeys()
        self.shared_parties = SharedParties(options.ids)
        self.today = self.spec.today or date.today()  # one "today" for the whole run

    def reject(self, raw: RawRecord, stage: str, issues: list[Issue]) -> None:
        copy = _raw_copy(raw) if self.options.reject_raw else self.spec.redact(raw)
        self.rejects.reject(raw.origin, stage, issues, copy)
        self.summary.rejected[(stage, reason_of(issues))] += 1

    def first_pass(self, ledger: Ledger, spill: BinaryIO) -> None:
        """Read, map, build and validate each record once; reject or spill it."""
        options, summary = self.options, self.summary
        for seq, raw in enumerate(self.spec.read(options.input_path)):
            summary.records_in += 1
            self.progress.tick("converting", summary)
            if raw.error is not None:
                read_error = Issue(Severity.ERROR, "structure", raw.error, None, raw.error_id or "read.error")
                self.reject(raw, "read", [read_error])
            elif ledger.is_duplicate(_raw_digest(raw)):
                summary.duplicates_dropped += 1
            else:
                self._convert_one(seq, raw, ledger, spill)
            if options.max_errors is not None and summary.records_rejected >= options.max_errors:
                summary.aborted = (
                    f"stopped after {summary.records_rejected} rejected records (--max-errors "
                    f"{options.max_errors}); records after {raw.origin} were not read"
                )
                return

    def _convert_one(self, seq: int, raw: RawRecord, ledger: Ledger, spill: BinaryIO) -> None:
        result = self.spec.map(raw, today=self.today)
        self.summary.warnings += sum(1 for i in result.issues if not i.is_error)
        if result.record is None:
            self.reject(raw, "map", result.issues)
            return
        resources = build_resources(result.record, self.options.ids, self.shared_parties)
        if self.options.validate is not None:
            issues = _validation_issues(resources, self.options.validate)
            if any(i.is_error for i in issues):
                self.reject(raw, "validate", issues)
                return
            self.summary.warnings += len(issues)
        _note_items(ledger, self.ledger_keys, seq, result.record)
        # Serialised once, here; pass two parses again only records with a verdict.
        _spill(spill, seq, str(raw.origin), serialise(resources))

    def second_pass(self, verdicts: Iterator[tuple[int, dict[str, Verdict]]], spill_path: Path) -> None:
        """Apply the ledger's verdicts to the spilled resources, in input order, and write them."""
        options, summary = self.options, self.summary
        writer = open_writer(
            options.fmt,
            options.out_dir,
            chunk_size=options.chunk_size,
            ids=options.ids,
            source_file=options.input_path.name,
            source_sha256=summary.inputs[0]["sha256"],
            run_time=options.run_time,
            overwrite=options.overwrite,
        )
        next_verdict = next(verdicts, None)
        try:
            with (
                spill_path.open("rb", buffering=1 << 20) as spill,
                (options.out_dir / "replaced.ndjson").open("wb") as replaced,
            ):
                for seq, origin, items in _spilled(spill):
                    record_verdicts: dict[str, Verdict] = {}
                    if next_verdict is not None and next_verdict[0] == seq:
                        record_verdicts = next_verdict[1]
                        next_verdict = next(verdicts, None)
                    if record_verdicts:
                        items, superseded = _apply_verdicts(items, record_verdicts)
                        summary.superseded += superseded
                        if not items:
                            summary.versions_replaced += 1
                            replaced.write(orjson.dumps({"where": origin}) + b"\n")
                            continue
                    summary.warnings += len(writer.write_serialised(origin, items))
                    summary.records_converted += 1
        finally:
            summary.resources_out.update(writer.close())
            summary.warnings += len(writer.closing_issues)


def convert(options: ConvertOptions) -> RunSummary:
    """Run both passes; never raises for bad records, only for unusable options or unreadable files."""
    started = time.perf_counter()
    options.out_dir.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(
        inputs=[{"file": options.input_path.name, "sha256": sha256_of(options.input_path)}],
        settings={
            "format": options.fmt,
            "chunk_size": options.chunk_size,
            "validate": options.validate is not None,
            "max_errors": options.max_errors,
            "id_key": "INSECURE example key" if options.ids.uses_example_key else "configured",
            "tool_version": __version__,
        },
    )
    with (
        tempfile.TemporaryDirectory(prefix="fhir-dnacpr-") as tmp,
        RejectSink(options.out_dir / "rejects.ndjson") as rejects,
    ):
        run = _Run(options, summary, rejects)
        ledger = Ledger(Path(tmp) / "ledger.sqlite")
        spill_path = Path(tmp) / "spill.ndjson"
        try:
            with spill_path.open("wb", buffering=1 << 20) as spill:
                run.first_pass(ledger, spill)
            run.second_pass(_verdict_stream(ledger), spill_path)
        finally:
            ledger.close()
            run.progress.done()
    summary.seconds = time.perf_counter() - started
    summary.write(options.out_dir / "summary.json")
    return summary
