"""The bundled examples: what maps, what is rejected and why, redaction, and unmap∘map identity."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr import model
from fhir_dnacpr.mapping import MASK, MappingSpec, UnmapError, load_spec
from fhir_dnacpr.sources.base import Origin, RawRecord

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TODAY = date(2024, 4, 1)
LAYOUTS = {
    "epaccs": (
        "register.csv",
        13,
        {
            "mapping.nhs-number.check-digit",
            "mapping.date.impossible",
            "mapping.value-map.unknown",
            "mapping.review-date.before-decision",
            "mapping.decision-date.future",
            "read.csv.field-count",
        },
    ),
    "respect": (
        "respect-forms.xml",
        9,
        {
            "mapping.nhs-number.check-digit",
            "mapping.date.impossible",
            "mapping.value-map.unknown",
            "read.xml.malformed",
        },
    ),
    "acp-app": (
        "plans.ndjson",
        9,
        {
            "mapping.nhs-number.check-digit",
            "mapping.date.impossible",
            "mapping.value-map.unknown",
            "mapping.json.wrong-type",
            "read.json.invalid",
        },
    ),
}


def load(name: str) -> tuple[MappingSpec, list[RawRecord]]:
    spec = load_spec(EXAMPLES / name / "mapping.yaml", today=TODAY)
    return spec, list(spec.read(EXAMPLES / name / LAYOUTS[name][0]))


def without_origin(record: model.CareRecord) -> model.CareRecord:
    def strip(item: Any) -> Any:
        if item is None:
            return None
        return dataclasses.replace(item, source=dataclasses.replace(item.source, file=None, location=None))

    return dataclasses.replace(record, decision=strip(record.decision), plan=strip(record.plan))


@pytest.mark.parametrize("name", LAYOUTS)
def test_examples_map_and_reject_as_documented(name: str) -> None:
    spec, raws = load(name)
    results = [spec.map(raw) for raw in raws]
    _, good, reasons = LAYOUTS[name]
    assert sum(r.record is not None for r in results) == good
    found = {i.message_id for r in results if r.record is None for i in r.issues}
    assert found == reasons
    assert all(r.issues == [] for r in results if r.record is not None)


@pytest.mark.parametrize("name", LAYOUTS)
def test_examples_hold_one_duplicate_and_one_superseded_decision(name: str) -> None:
    spec, raws = load(name)
    records = [r.record for r in (spec.map(raw) for raw in raws) if r.record is not None]
    keys = [(r.patient.nhs_number, (r.decision or r.plan).source.record_id) for r in records]
    assert len(keys) - len(set(keys)) == 1
    by_patient: dict[str, set[str]] = {}
    for nhs, record_id in keys:
        by_patient.setdefault(nhs, set()).add(record_id)
    assert sum(len(ids) > 1 for ids in by_patient.values()) == 1


def test_examples_cover_every_model_field() -> None:
    seen: dict[type, set[str]] = {}

    def visit(value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                inner = getattr(value, f.name)
                if inner not in (None, (), False) or (
                    f.name in ("do_not_perform", "has_adrt") and inner is False
                ):
                    seen.setdefault(type(value), set()).add(f.name)
                visit(inner)
        elif isinstance(value, tuple):
            for item in value:
                visit(item)

    for name in LAYOUTS:
        spec, raws = load(name)
        for raw in raws:
            result = spec.map(raw)
            if result.record is not None:
                visit(result.record.decision)
                visit(result.record.plan)
    for cls in (
        model.Person,
        model.Professional,
        model.RelatedParty,
        model.Organisation,
        model.Endorsement,
        model.CprDecision,
        model.AdvanceCarePlan,
        model.TreatmentRecommendation,
        model.Coded,
    ):
        missing = {f.name for f in dataclasses.fields(cls)} - seen.get(cls, set())
        assert not missing, f"{cls.__name__} fields never filled by an example: {sorted(missing)}"


@pytest.mark.parametrize("name", ["epaccs", "acp-app"])
def test_unmap_then_map_gives_the_same_record(name: str) -> None:
    spec, raws = load(name)
    checked = 0
    for raw in raws:
        result = spec.map(raw)
        if result.record is None:
            continue
        written = spec.unmap(result.record)
        again = spec.map(RawRecord(Origin("unmapped"), data=json.loads(json.dumps(written))))
        assert again.record is not None, again.issues
        assert without_origin(again.record) == without_origin(result.record)
        checked += 1
    assert checked == LAYOUTS[name][1]


def test_unmap_writes_the_source_field_names_and_forms() -> None:
    spec, raws = load("epaccs")
    written = spec.unmap(spec.map(raws[0]).record)
    assert set(written) <= set(raws[0].data)
    fields = ("decision_date", "review_date", "cpr_status", "discussed_with_patient")
    assert {k: written[k] for k in fields} == {
        "decision_date": "01/03/2024",
        "review_date": "Indefinite",
        "cpr_status": "Not for CPR",
        "discussed_with_patient": "N",
    }


def test_unmap_is_refused_for_xml_specs() -> None:
    spec, raws = load("respect")
    with pytest.raises(UnmapError, match="XML"):
        spec.unmap(spec.map(raws[0]).record)


def test_unmap_refuses_to_lose_related_people() -> None:
    spec, raws = load("epaccs")
    record = spec.map(raws[0]).record
    extra = model.RelatedParty(name="Third Person")
    decision = dataclasses.replace(
        record.decision, others_consulted=(*record.decision.others_consulted, extra)
    )
    with pytest.raises(UnmapError, match="3 items"):
        spec.unmap(dataclasses.replace(record, decision=decision))


@pytest.mark.parametrize("name", LAYOUTS)
def test_redaction_masks_identifiers_and_free_text(name: str) -> None:
    spec, raws = load(name)
    for raw in raws:
        redacted = json.dumps(spec.redact(raw), ensure_ascii=False)
        result = spec.map(raw)
        if result.record is not None:
            person = result.record.patient
            for secret in (person.nhs_number, person.family_name, *person.given_names, person.postcode):
                assert secret is None or secret not in redacted
            decision = result.record.decision
            if decision is not None and decision.rationale:
                assert decision.rationale[:20] not in redacted
    first = spec.redact(raws[0])
    assert MASK in json.dumps(first)


def test_redaction_keeps_codes_and_dates_that_help_fix_a_reject() -> None:
    spec, raws = load("epaccs")
    redacted = spec.redact(raws[0])
    assert redacted["cpr_status"] == "Not for CPR" and redacted["decision_date"] == "01/03/2024"
    assert redacted["nhs_no"] == MASK and redacted["rationale"] == MASK
    broken = spec.redact(raws[-1])
    assert set(broken) == {"text"} and "9991005935" not in broken["text"]


@settings(max_examples=40, deadline=None)
@given(
    decided=st.dates(min_value=date(2000, 1, 1), max_value=TODAY),
    review_after=st.one_of(st.none(), st.integers(min_value=0, max_value=2000)),
    fmt=st.sampled_from(["%d/%m/%Y", "%d-%b-%Y", "%Y-%m-%d"]),
)
def test_decision_and_review_dates_round_trip_through_unmap_and_map(
    decided: date, review_after: int | None, fmt: str
) -> None:
    spec, raws = load("epaccs")
    review = "Indefinite" if review_after is None else (decided + timedelta(days=review_after)).strftime(fmt)
    data = {**raws[0].data, "decision_date": decided.strftime(fmt), "review_date": review}
    record = spec.map(RawRecord(Origin("x.csv"), data=data)).record
    assert record is not None
    assert record.decision.decision_date == decided
    again = spec.map(RawRecord(Origin("x.csv"), data=spec.unmap(record))).record
    assert again is not None and without_origin(again) == without_origin(record)


def _shared_party_specs(spec: MappingSpec) -> list[Any]:
    from fhir_dnacpr.mapping.fields import FixedList, ObjectSpec

    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, ObjectSpec):
            found.append(node)
            for _, child in node.nodes:
                walk(child)
        elif isinstance(node, FixedList):
            for child in node.items:
                walk(child)

    walk(spec.patient)
    for section in spec.sections:
        walk(section.spec)
    return [node for node in found if node.memo_columns is not None]


def test_shared_parties_are_remembered_without_changing_any_result() -> None:
    """Clinicians and organisations are mapped once per distinct set of cells; every row still gets
    its own issues (an odd ODS code warns on each row that has it)."""
    spec = load_spec(EXAMPLES / "epaccs" / "mapping.yaml")
    remembered = _shared_party_specs(spec)
    assert {node.label for node in remembered} >= {"decision.decision_maker", "decision.custodian"}
    raws = list(spec.read(EXAMPLES / "epaccs" / "register.csv"))
    odd = [
        dataclasses.replace(raw, data={**raw.data, "clin_ods": "not an ods code"})
        for raw in raws
        if isinstance(raw.data, dict)
    ]
    rows = (raws + odd) * 2  # the second round is served from the memo
    with_memo = [spec.map(raw, today=TODAY) for raw in rows]
    assert all(node._memo for node in remembered), "every shared-party spec remembered something"
    for node in remembered:
        node.memo_columns = None
    without = [spec.map(raw, today=TODAY) for raw in rows]
    assert with_memo == without
    warned = [r for r in with_memo[len(raws) : len(raws) + len(odd)] if r.record is not None]
    assert warned and all("mapping.ods-code.format" in {i.message_id for i in r.issues} for r in warned)
