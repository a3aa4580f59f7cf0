"""Every mapping-stage reject: located, explained, and never quoting the patient's values."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_dnacpr.issues import Severity
from fhir_dnacpr.mapping import spec_from_text
from fhir_dnacpr.sources.base import Origin, RawRecord

SPEC = """\
source: {format: csv}
source_system: https://example.org/register
record_id: id
defaults: {date_formats: [dd/mm/yyyy]}
patient:
  nhs_number: nhs_no
  birth_date: dob
decision:
  decision: {path: cpr, map: {DNACPR: not-for-cpr, For CPR: for-cpr}}
  decision_date: decided
  review_date: review
"""
GOOD = {
    "id": "R1",
    "nhs_no": "9991000011",
    "dob": "01/02/1940",
    "cpr": "DNACPR",
    "decided": "01/03/2024",
    "review": "",
}
TODAY = date(2024, 6, 1)


def reject(**changes: str) -> list[Any]:
    spec = spec_from_text(SPEC, today=TODAY)
    data = {**GOOD, **changes}
    result = spec.map(RawRecord(Origin("reg.csv", line=7, index=6), data=data))
    assert result.record is None, "the record should be rejected"
    for issue in result.issues:
        for value in changes.values():
            if len(value) > 3:
                assert value not in issue.message, "messages must not quote source values"
    return result.issues


def test_good_record_maps() -> None:
    spec = spec_from_text(SPEC, today=TODAY)
    result = spec.map(RawRecord(Origin("reg.csv", line=2), data=GOOD))
    assert result.record is not None and result.issues == []
    assert result.record.decision.source.location == "line 2"


@pytest.mark.parametrize(
    ("changes", "message_id", "location", "words"),
    [
        ({"nhs_no": "9991000012"}, "mapping.nhs-number.check-digit", "nhs_no", "Modulus 11"),
        ({"nhs_no": "99910000"}, "mapping.nhs-number.format", "nhs_no", "10 digits"),
        ({"nhs_no": ""}, "mapping.required.missing", "nhs_no", "required"),
        ({"decided": "31/02/2024"}, "mapping.date.impossible", "decided", "not a real calendar date"),
        ({"decided": "March 2024"}, "mapping.date.unparseable", "decided", "dd/mm/yyyy"),
        ({"decided": "01/01/2099"}, "mapping.decision-date.future", "decided", "in the future"),
        (
            {"review": "01/01/2024"},
            "mapping.review-date.before-decision",
            "review",
            "before the decision date",
        ),
        ({"cpr": "Maybe later"}, "mapping.value-map.unknown", "cpr", "not in the value map"),
        ({"cpr": ""}, "mapping.required.missing", "cpr", "required"),
        ({"dob": "01/01/2090"}, "mapping.date.future", "dob", "in the future"),
        ({"id": ""}, "mapping.record-id.missing", "id", "needs one"),
    ],
)
def test_reject_reasons(changes: dict[str, str], message_id: str, location: str, words: str) -> None:
    [issue] = reject(**changes)
    assert issue.severity is Severity.ERROR
    assert (issue.message_id, issue.location) == (message_id, location)
    assert words in issue.message


def test_all_problems_of_a_record_are_reported_together() -> None:
    found = reject(nhs_no="1234567890", decided="31/02/2024", cpr="??")
    assert {i.location for i in found} == {"nhs_no", "decided", "cpr"}


def test_missing_column_is_located() -> None:
    data = {k: v for k, v in GOOD.items() if k != "review"}
    result = spec_from_text(SPEC, today=TODAY).map(RawRecord(Origin("reg.csv"), data=data))
    [issue] = result.issues
    assert issue.message_id == "mapping.column.missing" and issue.location == "review"


def test_unreadable_raw_record_becomes_an_issue() -> None:
    raw = RawRecord(
        Origin("reg.csv", line=9),
        text="a,b",
        error="the row has 2 fields but the header has 6",
        error_id="read.csv.field-count",
    )
    result = spec_from_text(SPEC).map(raw)
    assert result.record is None and result.issues[0].message_id == "read.csv.field-count"


JSON_SPEC = """\
source: {format: ndjson}
source_system: https://example.org/app
record_id: id
patient: {nhs_number: patient.nhs}
plan:
  people_to_involve: {each: people, fields: {name: name}}
  care_priority_score: score
"""


@pytest.mark.parametrize(
    ("data", "location", "words"),
    [
        (
            {"id": "1", "patient": 9991000011},
            "patient.nhs",
            "expected an object at patient but found a number",
        ),
        (
            {"id": "1", "patient": {"nhs": "9991000011"}, "people": {"name": "x"}},
            "people",
            "expected an array",
        ),
        ({"id": "1", "patient": {"nhs": {"v": "9991000011"}}}, "patient.nhs", "found an object"),
        ({"id": "1", "patient": {"nhs": ["9991000011"]}}, "patient.nhs", "found 1 values"),
        (
            {"id": "1", "patient": {"nhs": "9991000011"}, "people": [{"name": ["a", "b"]}]},
            "people[0].name",
            "found 2 values",
        ),
    ],
)
def test_wrong_json_types(data: dict[str, Any], location: str, words: str) -> None:
    result = spec_from_text(JSON_SPEC, today=TODAY).map(RawRecord(Origin("a.ndjson", line=1), data=data))
    assert result.record is None
    [issue] = result.issues
    assert issue.location == location and words in issue.message
    assert "9991000011" not in issue.message
