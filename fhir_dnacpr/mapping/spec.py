"""A compiled mapping spec, applied to each record. Build one with ``load_spec`` (``mapping.load``).

``spec.read(path)`` streams the export's raw records; ``spec.map(raw)`` is a pure function from one raw
record to a ``MapResult`` (a ``CareRecord`` or the issues that stop it); ``spec.redact(raw)`` masks
identifiers and free text for the reject file; ``spec.unmap(record)`` writes a canonical record back in
the spec's field names (flat CSV and JSON specs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from fhir_dnacpr import model
from fhir_dnacpr.frozen import maker
from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.mapping.fields import (
    INVALID,
    UNSET,
    Context,
    Node,
    ObjectSpec,
    Scalar,
    UnmapError,
    _plain_text,
    remembered_get,
)
from fhir_dnacpr.mapping.paths import ABSENT, Accessor, Column
from fhir_dnacpr.mapping.redact import MASK, redact_flat, redact_json, redact_xml
from fhir_dnacpr.mapping.unroll import generate_build
from fhir_dnacpr.sources.base import Origin, RawRecord
from fhir_dnacpr.sources.dispatch import open_source

SECTIONS = ("decision", "plan")


@dataclass(frozen=True, slots=True)
class MapResult:
    """What mapping one raw record gave: a record (possibly with warnings) or None plus the errors."""

    record: model.CareRecord | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record is not None


@dataclass
class SourceOptions:
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    quotechar: str | None = None
    record_path: str | None = None
    namespaces: dict[str, str] = field(default_factory=dict)
    array_path: str | None = None

    def reader_options(self) -> dict[str, Any]:
        if self.format == "csv":
            return {"encoding": self.encoding, "delimiter": self.delimiter, "quotechar": self.quotechar}
        if self.format == "xml":
            return {"record_path": self.record_path, "namespaces": self.namespaces}
        if self.format == "json":
            return {"array_path": self.array_path, "encoding": self.encoding}
        return {}


@dataclass
class Section:
    name: str
    spec: ObjectSpec
    present_if: Accessor | None = None


class MappingSpec:
    """A compiled spec. Build with ``load_spec``; safe to share between threads; pickles as its text."""

    def __init__(
        self,
        *,
        text: str,
        name: str,
        source: SourceOptions,
        source_system: str,
        id_key_env: str | None,
        record_id: Scalar,
        last_updated: Scalar | None,
        patient: ObjectSpec,
        sections: list[Section],
        safe_paths: set[str],
        keep: set[str],
        mask: set[str],
        today: date | None,
    ) -> None:
        self.text = text
        self.name = name
        self.source = source
        self.source_system = source_system
        self.id_key_env = id_key_env
        self.record_id = record_id
        self.last_updated = last_updated
        self.patient = patient
        self.sections = sections
        self.safe_paths = (safe_paths | keep) - mask
        self.today = today
        self.yields = tuple(s.name for s in sections)
        self._xml = source.format == "xml"
        plain_id = _plain_text(record_id)
        self._record_id_column: str | None = record_id.accessors[0].name if plain_id else None  # type: ignore[attr-defined]
        self._record_id_nulls = record_id.nulls
        self._record_id_short = max((len(v) for v in record_id.nulls), default=-1)
        """``record_id`` read inline (``map``) when it is plain text from one CSV column."""
        self._last_updated_get = None if last_updated is None else remembered_get(last_updated)
        """``last_updated.get``, remembering values by cell: update times recur (a batch, a day)."""
        self._build_patient = generate_build(patient, forced=True)
        self._sections = tuple(
            (
                s.name,
                _section_build(s.spec),
                s.present_if,
                s.present_if.name if isinstance(s.present_if, Column) else None,
            )
            for s in sections
        )
        """Per section: name, its ``build(data, ctx, True, source, patient, decision_id)``,
        ``present_if`` and its CSV column (read inline) when it is one."""

    def __reduce__(self) -> tuple[Any, ...]:
        from fhir_dnacpr.mapping.load import spec_from_text

        return (spec_from_text, (self.text, self.name, self.today))

    @property
    def format(self) -> str:
        return self.source.format

    # -- reading -------------------------------------------------------------------------------
    def read(self, path: str | Path) -> Iterator[RawRecord]:
        """Stream the raw records of an export in this spec's layout."""
        return open_source(path, self.source.format, **self.source.reader_options())

    # -- mapping -------------------------------------------------------------------------------
    def map(self, raw: RawRecord, *, today: date | None = None) -> MapResult:
        """Map one raw record; pure (same input, same output) apart from ``today`` when not fixed."""
        if raw.error is not None:
            message_id = raw.error_id or "read.error"
            return MapResult(None, [Issue(Severity.ERROR, "structure", raw.error, None, message_id)])
        data = raw.data
        if self._xml and isinstance(data, bytes | str):
            data = etree.fromstring(data.encode() if isinstance(data, str) else data)
        # ``Context(today)``, its three slots set here (one fewer call per record).
        ctx = _new(Context)
        ctx.issues = issues = []
        ctx.prefix = ""
        ctx.today = today or self.today or date.today()
        column = self._record_id_column
        if column is not None and data.__class__ is dict and data.get(column).__class__ is str:
            # What the plain-text field's ``get`` answers for a text cell, without its two calls.
            record_id = data[column].strip()
            if not record_id or (
                len(record_id) <= self._record_id_short and record_id.lower() in self._record_id_nulls
            ):
                record_id = ABSENT
        else:
            record_id = self.record_id.get(data, ctx)
        if record_id is ABSENT:
            ctx.add(
                Severity.ERROR,
                "required",
                "mapping.record-id.missing",
                f"the record has no id in {self.record_id.where(ctx)}; every record needs one (record_id)",
                self.record_id.location(ctx),
            )
        last_updated = self._last_updated_get(data, ctx) if self._last_updated_get is not None else None
        person = self._build_patient(data, ctx, True)  # force: the patient is always built
        source = None  # what a section is built with; a record without an id is rejected anyway
        if record_id is not ABSENT and record_id is not INVALID:
            origin = raw.origin
            source = _make_source_ref(
                self.source_system,
                record_id if record_id.__class__ is str else str(record_id),
                None if last_updated is ABSENT or last_updated is INVALID else last_updated,
                origin.file,
                _location(origin),
            )
        present = []
        has_decision = False
        for section in self._sections:
            name, _, present_if, column = section
            if present_if is not None:
                cell = data.get(column) if column is not None and data.__class__ is dict else None
                if cell.__class__ is str:
                    if not cell.strip():  # what ``_present`` says of a CSV cell, without its calls
                        continue
                elif not _present(present_if, data):
                    continue
            present.append(section)
            has_decision = has_decision or name == "decision"
        decision = plan = None
        if not present and not _has_errors(issues):
            ctx.add(
                Severity.ERROR,
                "required",
                "mapping.record.empty",
                "the record holds neither a CPR decision nor a care plan (present_if fields are blank)",
                None,
            )
        # A plan is linked to the decision of its own record, unless the spec maps the link itself.
        link = source.record_id if source is not None and has_decision else UNSET
        for name, build, _, _ in present:
            if name == "decision":
                decision = build(data, ctx, True, source, person)
            else:
                plan = build(data, ctx, True, source, person, link)
        if (issues and _has_errors(issues)) or record_id is INVALID or person is INVALID:
            return MapResult(None, _distinct(issues))
        today = ctx.today
        if decision is not None and _decision_suspect(decision, today):
            self._report_decision(decision, ctx)
        if plan is not None:
            created = plan.created
            if created is not None and (created if created.__class__ is date else _day(created)) > today:
                self._report_plan(ctx)
        if not issues:
            return _result(_make_care_record(decision, plan), [])
        if _has_errors(issues):
            return _result(None, issues)
        warnings = tuple(i.message for i in issues)
        return _result(_make_care_record(decision, plan, warnings), issues)

    def _node(self, section: str, name: str) -> Node | None:
        for s in self.sections:
            if s.name == section:
                return dict(s.spec.nodes).get(name)
        return None

    def _where(self, section: str, name: str, ctx: Context) -> tuple[str, str]:
        node = self._node(section, name)
        if node is None:
            return f"{section}.{name}", f"{section}.{name}"
        return node.where(ctx), node.location(ctx)

    def _report_decision(self, decision: model.CprDecision, ctx: Context) -> None:
        decided = _day(decision.decision_date)
        if decided > ctx.today:
            where, location = self._where("decision", "decision_date", ctx)
            ctx.add(
                Severity.ERROR,
                "value",
                "mapping.decision-date.future",
                f"the decision date in {where} is in the future; correct it in the source system",
                location,
            )
        if decision.review_date is not None and decision.review_date < decided:
            where, location = self._where("decision", "review_date", ctx)
            ctx.add(
                Severity.ERROR,
                "invariant",
                "mapping.review-date.before-decision",
                f"the review date in {where} is before the decision date; correct one of them in the source",
                location,
            )
        if decision.review_date is not None and decision.review_indefinite:
            where, location = self._where("decision", "review_date", ctx)
            ctx.add(
                Severity.WARNING,
                "value",
                "mapping.review-date.indefinite-and-dated",
                f"the review in {where} is both dated and marked indefinite; the date is kept",
                location,
            )
        for name, value in (
            ("recorded_date", decision.recorded_date),
            ("discussion_date", decision.discussion_date),
        ):
            if value is not None and _day(value) > ctx.today:
                where, location = self._where("decision", name, ctx)
                ctx.add(
                    Severity.WARNING,
                    "value",
                    "mapping.date.future",
                    f"the date in {where} is in the future; check it in the source system",
                    location,
                )

    def _report_plan(self, ctx: Context) -> None:
        """The plan's date is after ``ctx.today`` (the caller checked)."""
        where, location = self._where("plan", "created", ctx)
        ctx.add(
            Severity.ERROR,
            "value",
            "mapping.date.future",
            f"the plan date in {where} is in the future; correct it in the source system",
            location,
        )

    # -- reject file ---------------------------------------------------------------------------
    def redact(self, raw: RawRecord) -> dict[str, Any]:
        """A copy of the raw record safe for a reject file: only values mapped to non-identifying,
        non-free-text fields are shown; everything else (identifiers, names, contact details,
        rationale, wishes, notes, unmapped columns) becomes ``***``. Blanks stay blank.
        """
        if raw.error is not None or raw.data is None:
            length = len(raw.text or "")
            return {"text": f"{MASK} ({length} characters not shown)"} if length else {}
        data = raw.data
        if self.source.format == "csv":
            return redact_flat(data, self.safe_paths)
        if self.source.format == "xml":
            if isinstance(data, bytes | str):
                data = etree.fromstring(data.encode() if isinstance(data, str) else data)
            return redact_xml(data, self.safe_paths, self.source.namespaces)
        return redact_json(data, "", self.safe_paths)

    # -- reverse direction ---------------------------------------------------------------------
    def unmap(self, record: model.CareRecord) -> dict[str, Any]:
        """The record in this spec's source field names (inverse transforms), for flat CSV/JSON specs.

        Raises ``UnmapError`` when the layout cannot hold the record without loss (more related people
        than mapped columns, a code with no value-map entry) and for XML specs (not supported).
        """
        if self.source.format == "xml":
            raise UnmapError(
                "unmap is not supported for XML specs: write CSV or JSON with a flat spec instead"
            )
        out: dict[str, Any] = {}
        item = record.decision or record.plan
        if item is None:
            raise UnmapError("the record holds neither a decision nor a plan")
        self.record_id.put(item.source.record_id, out)
        if self.last_updated is not None:
            self.last_updated.put(item.source.last_updated, out)
        self.patient.put(record.patient, out)
        for section in self.sections:
            value = getattr(record, section.name)
            if value is None and section.present_if is None:
                raise UnmapError(f"the spec always yields a {section.name} but the record has none")
            section.spec.put(value, out)
        return out


def _decision_suspect(decision: model.CprDecision, today: date) -> bool:
    """Whether ``_report_decision`` could find anything: one cheap test for the usual clean decision
    (a plain ``date`` is compared as is, anything else goes through ``_day``)."""
    decided = decision.decision_date
    if decided.__class__ is not date:
        decided = _day(decided)
    if decided > today:
        return True
    review = decision.review_date
    if review is not None and (review < decided or decision.review_indefinite):
        return True
    recorded = decision.recorded_date
    if recorded is not None and (recorded if recorded.__class__ is date else _day(recorded)) > today:
        return True
    discussed = decision.discussion_date
    return discussed is not None and (discussed if discussed.__class__ is date else _day(discussed)) > today


def _result(record: model.CareRecord | None, issues: list[Issue]) -> MapResult:
    """``MapResult(record, issues)``, its two slots set directly (one per record mapped)."""
    result = _new(MapResult)
    _set_record(result, record)
    _set_issues(result, issues)
    return result


_make_source_ref = maker(model.SourceRef)
_make_person = maker(model.Person)
_make_decision = maker(model.CprDecision)
_make_plan = maker(model.AdvanceCarePlan)
_make_care_record = maker(model.CareRecord)
_new = object.__new__
_set_record = MapResult.__dict__["record"].__set__
_set_issues = MapResult.__dict__["issues"].__set__


def _section_build(spec: ObjectSpec) -> Callable[..., Any]:
    """A section's builder: its source and patient given, and a plan's link to the decision filled
    in when the spec leaves it empty."""
    names = {f.name for f in dataclasses.fields(spec.cls)}
    fallback = "cpr_decision_record_id" if "cpr_decision_record_id" in names else None
    return generate_build(spec, ("source", "patient"), fallback, forced=True)


def _present(accessor: Accessor, data: Any) -> bool:
    try:
        value = accessor.get(data)
    except Exception:
        return True  # let the mapping report the shape problem
    if value is ABSENT or value is None:
        return False
    return not (isinstance(value, str) and not value.strip())


def _distinct(issues: list[Issue]) -> list[Issue]:
    """One issue per message: a wrong shape high up (``patient`` is a string) fails every path below it."""
    seen: set[str] = set()
    out = []
    for issue in issues:
        if issue.message not in seen:
            seen.add(issue.message)
            out.append(issue)
    return out


def _has_errors(issues: list[Issue]) -> bool:
    return any(i.severity is Severity.ERROR or i.severity is Severity.FATAL for i in issues)


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _location(origin: Origin) -> str:
    line, index = origin.line, origin.index
    if line is not None and index is not None and not origin.path:  # a CSV row: one format, no list
        return f"line {line}, record {index}"
    parts = []
    if origin.line is not None:
        parts.append(f"line {origin.line}")
    if origin.index is not None:
        parts.append(f"record {origin.index}")
    if origin.path:
        parts.append(origin.path)
    return ", ".join(parts)


__all__ = ["MASK", "SECTIONS", "MapResult", "MappingSpec", "Section", "SourceOptions"]
