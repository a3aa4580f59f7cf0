"""The mapper's fast paths (inlined text fields, values remembered by cell, unrolled object fields)
give exactly what the reference path gives: same records, same issues, row after row.

The reference is the same spec with every object's ``build`` written by ``_reference_build`` (each
field through its own ``get``/``one``, nothing remembered, no object or list built inline), the
multi-column list getter replaced by the general one, shared parties not remembered, ``last_updated``
read without its memo, ``record_id`` through its own ``get`` and ``present_if`` always asked through
``_present``.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import care_records, dates_or_datetimes, nhs_numbers

from fhir_dnacpr import model
from fhir_dnacpr.mapping import MappingSpec, checks, load_spec, spec_from_text
from fhir_dnacpr.mapping.fields import (
    INVALID,
    Context,
    EachList,
    FixedList,
    ObjectSpec,
    Scalar,
    _make_one,
    _reference_build,
)
from fhir_dnacpr.mapping.spec import _day, _decision_suspect, _location
from fhir_dnacpr.sources.base import Origin, RawRecord
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number, normalise_nhs_number

EPACCS = Path(__file__).resolve().parent.parent / "examples" / "epaccs"

# Cells that take every branch: blanks, padding, null words in any case, special words, map keys in
# any case, unknown codes, real and impossible dates in each declared format, yes/no words, NHS numbers
# valid, spaced and wrong, ODS codes good and bad, list separators.
CELLS = [
    "",
    " ",
    "N/K",
    "n/k",
    " Not known ",
    "-",
    "Indefinite",
    "INDEFINITE",
    "31/02/2024",
    "29/02/2023",
    "29/02/2024",
    "2024-02-30",
    "2024-01-05",
    "01-Jan-2020",
    "1-jan-2020",
    "32/01/2020",
    "01/13/2020",
    "1/1/2020",
    "01/01/2020 25:00",
    "01/01/2020 12:00",
    "01/03/2024 14:30",
    "01/01/2030",
    "15/06/1950",
    "y",
    "YES",
    "n",
    "maybe",
    "Y ",
    "F",
    "m",
    "x",
    "DNACPR",
    "for cpr",
    "Not for CPR ",
    "Cancelled",
    "entered in error",
    "9991000011",
    "999 100 0011",
    "999-100-0011",
    "9991000012",
    "12345",
    "GMC",
    "nmc",
    "7012345",
    "12A3456B",
    "bad!",
    "RX1",
    "r x 1",
    "Home",
    "hospice",
    "Nowhere",
    "a;b;;c",
    ";",
    "Margaret Ellen",
    "  padded  ",
    "ReSPECT",
    "rcuk",
    "NOK",
    "lpa",
    "stranger",
    "Not assessed",
    "http://example.org/doc",
]


def _reference(spec: MappingSpec) -> MappingSpec:
    """Switch a freshly loaded spec to the reference path, children before parents."""

    def walk(node: Any) -> None:
        if isinstance(node, ObjectSpec):
            for _, child in node.nodes:
                walk(child)
            node.memo_columns = None
            node.build = _reference_build(node)
        elif isinstance(node, FixedList):
            for child in node.items:
                walk(child)
        elif isinstance(node, EachList):
            walk(node.item)
        elif isinstance(node, Scalar) and node.many:
            node.get = node._get_general

    walk(spec.patient)
    for section in spec.sections:
        walk(section.spec)
    spec._build_patient = spec.patient.build
    spec._sections = tuple(
        (section.name, _section_reference(section.spec), section.present_if, None)
        for section in spec.sections
    )
    spec._last_updated_get = spec.last_updated.get if spec.last_updated is not None else None
    spec._record_id_column = None
    return spec


def _section_reference(spec: ObjectSpec) -> Any:
    link = "cpr_decision_record_id" if spec.cls is model.AdvanceCarePlan else None
    return _reference_build(spec, ("source", "patient"), link)


def _template_rows() -> tuple[list[str], list[dict[str, str]]]:
    text = (EPACCS / "register.csv").read_text(encoding="cp1252")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return list(rows[0]), rows


HEADER, TEMPLATES = _template_rows()
FAST = load_spec(EPACCS / "mapping.yaml")  # shared across examples: its memos stay warm
REFERENCE = _reference(load_spec(EPACCS / "mapping.yaml"))
PLAN_ONLY = spec_from_text(
    """\
source: {format: csv}
source_system: https://example.org/register
record_id: id
yields: [plan]
patient:
  nhs_number: nhs
plan:
  created: {path: created, formats: [iso]}
"""
)


def _outcome(spec: MappingSpec, raw: RawRecord, today: date) -> str:
    result = spec.map(raw, today=today)
    issues = [(i.severity, i.code, i.message, i.location, i.message_id) for i in result.issues]
    return repr((result.record, issues))


@st.composite
def rows(draw: st.DrawFn) -> dict[str, str]:
    row = dict(draw(st.sampled_from(TEMPLATES)))
    for column in draw(st.lists(st.sampled_from(HEADER), max_size=8)):
        row[column] = draw(st.sampled_from(CELLS) | st.text(max_size=12))
    if draw(st.integers(0, 9)) == 0:  # now and then a column the spec names is missing altogether
        for column in draw(st.lists(st.sampled_from(HEADER), max_size=2)):
            row.pop(column, None)
    return row


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(rows(), min_size=1, max_size=12),
    st.sampled_from([date(2024, 4, 1), date(1990, 1, 1), date(2031, 1, 1)]),
)
def test_fast_paths_map_like_the_reference(batch: list[dict[str, str]], today: date) -> None:
    for line, row in enumerate(batch * 2, start=2):  # the second round is served from the memos
        raw = RawRecord(Origin("register.csv", line=line), data=row)
        assert _outcome(FAST, raw, today) == _outcome(REFERENCE, raw, today)


def test_the_example_maps_like_the_reference_on_several_days() -> None:
    raws = list(FAST.read(EPACCS / "register.csv"))
    for today in (date(2024, 4, 1), date(2024, 3, 1), date(1940, 1, 1), date(2024, 4, 1)):
        for raw in raws:
            assert _outcome(FAST, raw, today) == _outcome(REFERENCE, raw, today)


def test_a_warning_is_reported_on_every_row_not_only_the_first() -> None:
    """A value that raised an issue is never remembered: the tenth row warns like the first."""
    spec = spec_from_text(
        """\
source: {format: csv}
source_system: https://example.org/register
record_id: id
patient:
  nhs_number: nhs
  gp_practice: {ods_code: gp}
decision:
  decision: {path: status, map: {DNACPR: not-for-cpr}}
  decision_date: {path: decided, formats: [dd/mm/yyyy]}
  form_type: {path: form, map: {RCUK: rcuk-dnacpr}, unmapped: blank}
""",
        today=date(2024, 6, 1),
    )
    row = {"id": "R", "nhs": "9991000011", "gp": "bad!", "status": "DNACPR", "decided": "01/03/2024"}
    for n in range(10):
        result = spec.map(RawRecord(Origin("t.csv", line=n + 2), data={**row, "form": "Other"}))
        assert result.record is not None
        assert sorted(i.message_id for i in result.issues) == [
            "mapping.ods-code.format",
            "mapping.value-map.blanked",
        ]


def test_a_date_remembered_for_one_day_is_checked_again_on_another() -> None:
    """A birth date is checked against today: remembering it by cell must not carry one day's verdict."""
    spec = load_spec(EPACCS / "mapping.yaml")
    row = {**TEMPLATES[0], "dob": "01/01/2025"}
    raw = RawRecord(Origin("register.csv", line=2), data=row)
    early = date(2024, 12, 1)
    late = date(2025, 6, 1)
    assert spec.map(raw, today=late).record is not None
    assert spec.map(raw, today=early).record is None
    assert spec.map(raw, today=late).record is not None


@given(st.sampled_from(CELLS) | st.text(alphabet="0123456789 -\t\u0660\u00b2x", max_size=14) | nhs_numbers())
def test_the_nhs_number_check_skips_only_a_normalising_that_changes_nothing(value: str) -> None:
    """``checks.nhs_number`` leaves out ``normalise_nhs_number`` for ten ASCII digits: a no-op there."""
    if len(value) == 10 and value.isascii() and value.isdigit():
        assert normalise_nhs_number(value) == value
    node = FAST.patient.nodes[0][1]
    ctx = Context(date(2024, 4, 1))
    result = checks.nhs_number(value, ctx, node)
    assert (result == normalise_nhs_number(value)) if not ctx.issues else result is INVALID


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    care_records(kinds=("decision",)),
    st.dates(min_value=date(1985, 1, 1), max_value=date(2040, 1, 1)),
)
def test_a_clean_decision_skips_only_checks_that_would_find_nothing(record: Any, today: date) -> None:
    """``_decision_suspect`` lets a decision skip ``_report_decision``; it may do so only when the
    full report would add nothing."""
    decision = record.decision
    quick, full = Context(today), Context(today)
    if _decision_suspect(decision, today):
        FAST._report_decision(decision, quick)
    FAST._report_decision(decision, full)
    assert [i.message for i in quick.issues] == [i.message for i in full.issues]


@settings(max_examples=150, deadline=None)
@given(
    st.none() | dates_or_datetimes(),
    st.dates(min_value=date(1985, 1, 1), max_value=date(2040, 1, 1)),
)
def test_a_plan_dated_after_today_is_reported_like_the_plain_check(
    created: date | datetime | None, today: date
) -> None:
    """``map`` compares a plan's ``created`` as a plain date when it is one; anything else by its day."""
    row = {"id": "P1", "nhs": "9991000011", "created": "" if created is None else created.isoformat()}
    result = PLAN_ONLY.map(RawRecord(Origin("p.csv", line=2, index=1), data=row), today=today)
    assert result.record is not None or result.issues
    plan = result.record.plan if result.record is not None else None
    assert plan is None or plan.created == created
    future = created is not None and _day(created) > today
    assert [i.message_id for i in result.issues] == (["mapping.date.future"] if future else [])


PPD_CELLS = ["", " ", " \t ", "\u00a0", "Home", " Home ", "N/K"]


@given(st.sampled_from(PPD_CELLS) | st.text(max_size=4) | st.none())
def test_present_if_read_from_the_cell_like_present(ppd: str | None) -> None:
    """``present_if`` on a CSV column is read inline; None here means the column is missing."""
    for template in TEMPLATES:
        row = dict(template)
        if ppd is None:
            del row["ppd"]
        else:
            row["ppd"] = ppd
        raw = RawRecord(Origin("register.csv", line=2), data=row)
        assert _outcome(FAST, raw, date(2024, 4, 1)) == _outcome(REFERENCE, raw, date(2024, 4, 1))


@given(
    st.none() | st.integers(1, 10**7),
    st.none() | st.integers(0, 10**7),
    st.none() | st.sampled_from(["", "/Forms/Form[2]", "records[3]"]),
)
def test_a_csv_rows_location_reads_like_the_general_one(
    line: int | None, index: int | None, path: str | None
):
    """``_location`` writes a CSV row's "line L, record I" directly; the general join says the same."""
    origin = Origin("register.csv", line=line, index=index, path=path)
    parts = [f"line {line}"] if line is not None else []
    parts += [f"record {index}"] if index is not None else []
    parts += [path] if path else []
    assert _location(origin) == ", ".join(parts)


@given(
    st.sampled_from(CELLS)
    | st.text(max_size=14)
    | nhs_numbers()
    | st.integers()
    | st.floats()
    | st.booleans()
)
def test_checked_text_reads_like_the_general_value_pipeline(value: Any) -> None:
    """NHS number and postcode (text with a check) skip the map lookup and the identity conversion."""
    for node in (FAST.patient.nodes[0][1], dict(FAST.patient.nodes)["postcode"]):
        assert node.one.__name__ == "one_checked"
        fast, plain = Context(date(2024, 4, 1)), Context(date(2024, 4, 1))
        got = node.one(value, fast)
        expected = _make_one(node, fast=False)(value, plain)
        assert repr(got) == repr(expected)
        issues = [(i.message, i.location) for i in fast.issues]
        assert issues == [(i.message, i.location) for i in plain.issues]


def test_a_missing_column_is_reported_after_a_row_whose_cells_were_none() -> None:
    """A shared party remembered for a row whose cells are None (a short DictReader row) is not
    answered for a row that lacks one of its columns: that row's missing column is an error."""
    spec = load_spec(EPACCS / "mapping.yaml")
    clin = [column for column in HEADER if column.startswith("clin_")]
    blank = {**TEMPLATES[0], **dict.fromkeys(clin)}
    missing = dict(blank)
    del missing["clin_surname"]
    for row in (blank, missing):
        raw = RawRecord(Origin("register.csv", line=2), data=row)
        assert _outcome(spec, raw, date(2024, 4, 1)) == _outcome(REFERENCE, raw, date(2024, 4, 1))
    result = spec.map(RawRecord(Origin("register.csv", line=3), data=missing), today=date(2024, 4, 1))
    assert "mapping.column.missing" in [i.message_id for i in result.issues]


@given(
    st.text(alphabet="0123456789", min_size=10, max_size=10)
    | nhs_numbers()
    | st.text(alphabet="0123456789 -\u0660\u00b2x", max_size=12)
)
def test_a_clean_nhs_number_is_what_the_full_check_passes_unchanged(value: str) -> None:
    """``clean_nhs_number`` (three table lookups) lets generated code keep a cell as it is; it may say
    yes only where ``checks.nhs_number`` answers the same text with no issue."""
    ctx = Context(date(2024, 4, 1))
    result = checks.nhs_number(value, ctx, FAST.patient.nodes[0][1])
    assert checks.clean_nhs_number(value) == (result == value and not ctx.issues)
    assert checks.clean_nhs_number(value) == is_valid_nhs_number(value)


CODED_OBJECTS = spec_from_text(
    """\
source: {format: csv}
source_system: https://example.org/register
record_id: id
patient:
  nhs_number: nhs
  gp_practice: {ods_code: gp}
decision:
  decision: {path: status, map: {DNACPR: not-for-cpr}}
  decision_date: {path: decided, formats: [dd/mm/yyyy]}
  discussion_date: {path: discussed, formats: [mm/dd/yyyy]}
  recorded_date: {path: recorded, formats: [dd/mm/yyyy]}
plan:
  present_if: place
  created: {path: decided, formats: [dd/mm/yyyy]}
  preferred_place_of_death: {system: "http://snomed.info/sct", code: {path: place}}
  conditions:
    - {code: {path: condition}, text: {path: condition_text}}
"""
)
CODED_REFERENCE = _reference(spec_from_text(CODED_OBJECTS.text, CODED_OBJECTS.name, CODED_OBJECTS.today))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": st.sampled_from(["R1", "", " "]),
                "nhs": st.sampled_from(CELLS),
                "gp": st.sampled_from(CELLS),
                "status": st.sampled_from(CELLS),
                "decided": st.sampled_from(CELLS),
                "discussed": st.sampled_from(CELLS),
                "recorded": st.sampled_from(CELLS),
                "place": st.sampled_from(["", "110481000000108", "unknown-code", " "]),
                "condition": st.sampled_from(["", "C1", "N/K"]),
                "condition_text": st.sampled_from(["", "Heart failure"]),
            }
        ),
        min_size=1,
        max_size=8,
    )
)
def test_objects_finished_by_keyword_and_dates_read_alike_map_like_the_reference(
    batch: list[dict[str, str]],
) -> None:
    """Coded objects (their known display filled in by ``finish``) are built by keyword; date fields
    that parse alike share what they remember, those with other formats do not (01/02 is 1 February
    in one, 2 January in the other)."""
    for line, row in enumerate(batch * 2, start=2):
        raw = RawRecord(Origin("coded.csv", line=line, index=line - 1), data=row)
        today = date(2024, 4, 1)
        assert _outcome(CODED_OBJECTS, raw, today) == _outcome(CODED_REFERENCE, raw, today)


def test_date_fields_with_other_formats_do_not_share_remembered_values() -> None:
    row = {"id": "R1", "nhs": "9991000011", "gp": "", "status": "DNACPR", "decided": "01/02/2024"}
    row |= {"discussed": "01/02/2024", "recorded": "01/02/2024", "place": "", "condition": ""}
    row["condition_text"] = ""
    decision = CODED_OBJECTS.map(RawRecord(Origin("c.csv", line=2), data=row), today=date(2024, 4, 1))
    assert decision.record is not None
    assert decision.record.decision.decision_date == date(2024, 2, 1)
    assert decision.record.decision.recorded_date == date(2024, 2, 1)
    assert decision.record.decision.discussion_date == date(2024, 1, 2)
