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
import json
import operator
import os
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
from fhir_dnacpr.fhir.seen import RepeatFilter
from fhir_dnacpr.fhir.writers import Serialised, open_writer
from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.mapping import MappingSpec
from fhir_dnacpr.model import CareRecord, RecordStatus
from fhir_dnacpr.pipeline.frames import read_frames, write_frame
from fhir_dnacpr.pipeline.ledger import Ledger, Verdict
from fhir_dnacpr.pipeline.rejects import RejectSink, reason_of
from fhir_dnacpr.pipeline.summary import RunSummary
from fhir_dnacpr.sources.base import RawRecord

Validate = Callable[[dict[str, Any]], list[Issue]]

DECISION, PLAN = "decision", "plan"
ITEM_RESOURCE = {DECISION: "Consent", PLAN: "CarePlan"}
UNIQUE_TYPES = frozenset(ITEM_RESOURCE.values())
"""Types whose ``Type/id`` pass two writes at most once per run, by construction: their id is a keyed
hash of (source system, source record id), exactly the ledger's record key, and of the items sharing
a record key every one but the latest gets ``REPLACED_VERSION`` and is dropped. So they are neither
noted in the ``RepeatFilter`` nor checked by the NDJSON writer."""


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
        payload = b"xml:" + etree.tostring(data, method="c14n")
    elif data is not None:
        try:
            payload = b"json:" + orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)
        except TypeError:  # what orjson cannot write (an integer beyond 64 bits from a JSON array)
            payload = b"py:" + json.dumps(data, sort_keys=True, default=str).encode()
    else:
        payload = b"text:" + (raw.text or "").encode()
    return hashlib.blake2b(payload, digest_size=16).digest()


class _RawDigests:
    """``_raw_digest`` with the cost of a flat row (every CSV row, most JSON records) cut in half.

    Such rows share one key order, so the keys are sorted and hashed once per key order, and each row
    hashes only its values in that sorted order (picked out by one ``itemgetter``). The digest is a
    function of the content alone (keys as a set, values by key), like ``_raw_digest``'s, but not
    equal to it: digests are compared only within one run.
    """

    __slots__ = ("_layouts",)
    _MAX_LAYOUTS = 64

    def __init__(self) -> None:
        self._layouts: dict[tuple[Any, ...], tuple[Callable[[Any], Any], Any]] = {}

    def __call__(self, raw: RawRecord) -> bytes:
        data = raw.data
        if type(data) is not dict or len(data) < 2:
            return _raw_digest(raw)
        keys = tuple(data)
        layout = self._layouts.get(keys)
        if layout is None:
            if len(self._layouts) >= self._MAX_LAYOUTS:
                self._layouts.clear()
            ordered = sorted(keys)
            prefix = hashlib.blake2b(b"row:" + orjson.dumps(ordered), digest_size=16)
            layout = self._layouts[keys] = (operator.itemgetter(*ordered), prefix)
        values, prefix = layout
        try:
            # Nested objects are sorted as _raw_digest sorts them; JSON arrays delimit keys from values.
            payload = orjson.dumps(values(data), option=orjson.OPT_SORT_KEYS, default=str)
        except TypeError:
            return _raw_digest(raw)  # the same content always takes this path
        state = prefix.copy()
        state.update(payload)
        return state.digest()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_EPOCH_DAY = date(1970, 1, 1)
_DAY = 86_400_000_000  # microseconds
NO_ORDER = -(1 << 63)
"""The order key of an item with no date at all: below every instant (SQLite's smallest integer)."""


def _order_key(last_updated: datetime | None, fallback: date | datetime | None) -> int:
    """Sort key: last-updated first, else the clinical date, as microseconds since 1970-01-01 UTC.

    A date counts as its midnight UTC and a time without a zone as UTC. An integer because it is made
    without converting zones or formatting text (this runs for every item) and SQLite compares it in
    one step; it orders items exactly as the UTC ISO 8601 text of the instant would.
    """
    value = last_updated or fallback
    if value is None:
        return NO_ORDER
    if not isinstance(value, datetime):
        return (value - _EPOCH_DAY).days * _DAY
    # The timedelta's microseconds, added up here: ``delta // _MICROSECOND`` costs several times more.
    delta = value - (_NAIVE_EPOCH if value.tzinfo is None else _EPOCH)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _raw_copy(raw: RawRecord) -> Any:
    """The record exactly as read, for ``--reject-raw`` (XML as text, since elements are not JSON)."""
    if isinstance(raw.data, etree._Element):
        return etree.tostring(raw.data, encoding="unicode")
    return raw.data if raw.data is not None else raw.text


class _LedgerKeys:
    """Keyed hashes for the ledger: a fresh random key per run (the ledger lives only as long as the
    run), so nothing on disk can be linked to a person or compared across runs. Keyed BLAKE2b, its
    key block hashed once and the prepared state copied per call: several times cheaper than the
    HMAC the resource ids need."""

    __slots__ = ("_keyed",)

    def __init__(self) -> None:
        self._keyed = hashlib.blake2b(key=os.urandom(32), digest_size=16)

    def __call__(self, *parts: str | None) -> bytes:
        state = self._keyed.copy()
        state.update(orjson.dumps(parts))
        return state.digest()


def _note_items(ledger: Ledger, keys: _LedgerKeys, seq: int, record: CareRecord) -> None:
    """Pass one: what the ledger needs about each item, as keyed hashes (no identifiers on disk).

    A record's plan nearly always shares its decision's person, source record and last-updated time,
    so each keyed hash and order key is made once per record and only remade when the plan's differs.
    """
    add_item = ledger.add_item
    decision, plan = record.decision, record.plan
    if decision is None:
        if plan is not None:
            source = plan.source
            add_item(
                seq,
                PLAN,
                keys(source.system, source.record_id),
                keys(source.system, plan.patient.nhs_number),
                _order_key(source.last_updated, plan.created),
                plan.status is _ACTIVE,
            )
        return
    source = decision.source
    system, record_id, nhs_number = source.system, source.record_id, decision.patient.nhs_number
    record_key, patient_key = keys(system, record_id), keys(system, nhs_number)
    last_updated = source.last_updated
    order = _order_key(last_updated, decision.decision_date)
    add_item(seq, DECISION, record_key, patient_key, order, decision.status is _ACTIVE)
    if plan is None:
        return
    source = plan.source
    if source.system != system or source.record_id != record_id:
        record_key = keys(source.system, source.record_id)
    if source.system != system or plan.patient.nhs_number != nhs_number:
        patient_key = keys(source.system, plan.patient.nhs_number)
    if last_updated is None or source.last_updated is not last_updated:
        order = _order_key(source.last_updated, plan.created)
    add_item(seq, PLAN, record_key, patient_key, order, plan.status is _ACTIVE)


_ACTIVE = RecordStatus.ACTIVE


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


_SPILL_BATCH = 16
"""Records per spill frame. One ``marshal`` blob holds a resource object it meets in several records
(a shared party's serialised item, see ``_Serialiser``) once, and reads back as one object. Small:
``marshal.dumps`` grows its buffer in small steps, so a blob of megabytes costs several times more
per record than one of tens of kilobytes."""


class _Spill:
    """Pass one's records, to be read back in order in pass two: frames of ``_SPILL_BATCH`` records."""

    __slots__ = ("_batch", "_file")

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._batch: list[tuple[int, str, list[Serialised]]] = []

    def add(self, seq: int, origin: str, items: list[Serialised]) -> None:
        batch = self._batch
        batch.append((seq, origin, items))
        if len(batch) >= _SPILL_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            write_frame(self._file, self._batch)
            self._batch = []


def _spilled(spill: BinaryIO) -> Iterator[tuple[int, str, list[Serialised]]]:
    """The records pass one spilled, in input order."""
    for batch in read_frames(spill):
        yield from batch


_PARTY_TYPES = frozenset({"Organization", "Practitioner"})
"""The resource types ``SharedParties`` shares between records (one dict object per party)."""


class _Serialiser:
    """``serialise`` for pass one, noting each ``Type/id`` in the run's ``RepeatFilter`` as it goes.

    ``SharedParties`` hands out one read-only dict for a party that recurs (the GP practice, a
    clinician on thousands of forms): such an object, met again, reuses its serialised item and is not
    noted again (the filter already holds it as a repeat, so noting it would change nothing). Only a
    party's object (the types ``SharedParties`` hands out) whose ``Type/id`` the filter may have met
    before is remembered, by identity: every other resource is built afresh per record, so keeping it
    would only hold memory (at 10^6 rows, thousands of repeated people's Patients). The table keeps
    the object alive (so its id cannot be reused) and is cleared when full. Resources of
    ``unique_types`` are not noted at all: the writer is told not to check them.
    """

    __slots__ = ("_memo", "_note_one", "_unique_types")
    MAX_ENTRIES = 4096

    def __init__(self, repeats: RepeatFilter, unique_types: frozenset[str] = frozenset()) -> None:
        self._memo: dict[int, tuple[dict[str, Any], Serialised]] = {}
        self._note_one = repeats.note_one
        self._unique_types = unique_types

    def __call__(self, resources: list[dict[str, Any]]) -> list[Serialised]:
        memo, note_one, dumps, unique_types = self._memo, self._note_one, orjson.dumps, self._unique_types
        items: list[Serialised] = []
        for resource in resources:
            known = memo.get(id(resource))
            if known is not None and known[0] is resource:
                items.append(known[1])
                continue
            resource_type = resource["resourceType"]
            ref = f"{resource_type}/{resource['id']}"
            item = (ref, resource_type, dumps(resource))
            items.append(item)
            if resource_type in unique_types:
                continue
            if note_one(ref) and resource_type in _PARTY_TYPES:
                if len(memo) >= self.MAX_ENTRIES:
                    memo.clear()
                memo[id(resource)] = (resource, item)
        return items


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
        self.raw_digest = _RawDigests()
        self.shared_parties = SharedParties(options.ids)
        # NDJSON writes each Type/id once per run: pass one notes them all, so pass two checks on disk
        # only those that may occur more than once (fixed memory). Bundles do not need it; the
        # serialiser uses it for every format to recognise shared resources.
        self.repeats = RepeatFilter()
        self.serialise = _Serialiser(self.repeats, UNIQUE_TYPES)
        self.today = self.spec.today or date.today()  # one "today" for the whole run

    def reject(self, raw: RawRecord, stage: str, issues: list[Issue]) -> None:
        copy = _raw_copy(raw) if self.options.reject_raw else self.spec.redact(raw)
        self.rejects.reject(raw.origin, stage, issues, copy)
        self.summary.rejected[(stage, reason_of(issues))] += 1

    def first_pass(self, ledger: Ledger, spill: _Spill) -> None:
        """Read, map, build and validate each record once; reject or spill it."""
        options, summary = self.options, self.summary
        progress = self.progress if self.progress.enabled else None
        is_duplicate, raw_digest, convert_one = ledger.is_duplicate, self.raw_digest, self._convert_one
        for seq, raw in enumerate(self.spec.read(options.input_path)):
            summary.records_in += 1
            if progress is not None:
                progress.tick("converting", summary)
            if raw.error is not None:
                read_error = Issue(Severity.ERROR, "structure", raw.error, None, raw.error_id or "read.error")
                self.reject(raw, "read", [read_error])
            elif is_duplicate(raw_digest(raw)):
                summary.duplicates_dropped += 1
            else:
                convert_one(seq, raw, ledger, spill)
            if options.max_errors is not None and summary.records_rejected >= options.max_errors:
                summary.aborted = (
                    f"stopped after {summary.records_rejected} rejected records (--max-errors "
                    f"{options.max_errors}); records after {raw.origin} were not read"
                )
                return

    def _convert_one(self, seq: int, raw: RawRecord, ledger: Ledger, spill: _Spill) -> None:
        result = self.spec.map(raw, today=self.today)
        if result.issues:
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
        spill.add(seq, str(raw.origin), self.serialise(resources))

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
            repeats=self.repeats if options.fmt == "ndjson" else None,
            unique_types=UNIQUE_TYPES,
        )
        # Counted in locals (this loop runs once per record) and added to the summary at the end.
        converted = warnings = 0
        write = writer.write_serialised
        no_verdict = (-1, {})
        next_seq, record_verdicts = next(verdicts, no_verdict)
        try:
            with (
                spill_path.open("rb", buffering=0) as spill,
                (options.out_dir / "replaced.ndjson").open("wb") as replaced,
            ):
                for seq, origin, items in _spilled(spill):
                    if seq == next_seq:
                        items, superseded = _apply_verdicts(items, record_verdicts)
                        summary.superseded += superseded
                        next_seq, record_verdicts = next(verdicts, no_verdict)
                        if not items:
                            summary.versions_replaced += 1
                            replaced.write(orjson.dumps({"where": origin}) + b"\n")
                            continue
                    issues = write(origin, items)
                    if issues:
                        warnings += len(issues)
                    converted += 1
        finally:
            summary.records_converted += converted
            summary.warnings += warnings
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
            with spill_path.open("wb", buffering=0) as spill_file:
                spill = _Spill(spill_file)
                try:
                    run.first_pass(ledger, spill)
                finally:
                    spill.flush()
            run.second_pass(_verdict_stream(ledger), spill_path)
        finally:
            ledger.close()
            run.progress.done()
    summary.seconds = time.perf_counter() - started
    summary.write(options.out_dir / "summary.json")
    return summary
