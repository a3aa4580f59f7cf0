"""The builder's speed shortcuts change nothing: ids stay the ones servers already hold, shared fragments
stay unchanged, and each inlined check equals the plain computation it replaces."""

from __future__ import annotations

import re
from dataclasses import replace

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import care_records
from test_fhir_build import RESPECT

from fhir_dnacpr.fhir import build
from fhir_dnacpr.fhir.build import SharedParties, build_resources, is_url
from fhir_dnacpr.fhir.ids import DEFAULT_EXAMPLE_KEY, IdFactory
from fhir_dnacpr.model import CareRecord, Coded, RelatedParty
from fhir_dnacpr.pipeline.convert import mark_superseded

IDS = IdFactory(DEFAULT_EXAMPLE_KEY)

RESPECT_REFS = [
    "Consent/ff59a654987639136700c437869e1065156a39c7",
    "Organization/245c6341a3885c01df65e3471b02a9a1b52e6807",
    "Patient/61d36c92a8850ad41f13d25bbf5d4376e52e3161",
    "Practitioner/d0e81b18b2fe9d489d2941bd4a6e104152a7f04d",
    "Practitioner/c9e7da0adb7515a298d25dee2daee340faed7ffe",
    "Organization/34894a1369cb317adb41985f707ebc04084fdbab",
    "DocumentReference/b563a1a348de989088e1c5c55602b417ffdfdafd",
    "RelatedPerson/326c4f30c65b94f9ff8d2bf74d3625c78b845909",
    "CarePlan/6d7e140bafceef5ed3d5bc20114eb24a2431b099",
    "Condition/f3c98590c3d0f7e5d473634f5a6f32e46fe65c1c",
    "Condition/39527b579c11da3c54fb1374c9caf6c84ff4993e",
    "RelatedPerson/ec41644cc9c69c316221a31775fad913cba97c9d",
]
"""What the builder gave before any of its speed-ups (example key): PUT is idempotent across releases
only while these never change, so a change here is a breaking change, never a test to update."""


def _refs(resources: list[dict]) -> list[str]:
    return [f"{r['resourceType']}/{r['id']}" for r in resources]


def test_ids_and_order_are_the_ones_servers_already_hold() -> None:
    assert _refs(build_resources(RESPECT, IDS)) == RESPECT_REFS
    shared = SharedParties(IDS)
    for _ in range(2):  # built, then served from the shared table
        assert _refs(build_resources(RESPECT, IDS, shared)) == RESPECT_REFS


_PLAIN_URL = re.compile(r"(?:https?|ftp|file)://\S+\Z")
_locations = st.text(max_size=30) | st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from(["http://", "https://", "ftp://", "file://", "HTTP://", "mailto:", "://", "x://"]),
    st.text(max_size=20),
)


@given(_locations)
def test_is_url_equals_the_plain_regex(location: str) -> None:
    assert is_url(location) == (_PLAIN_URL.match(location) is not None)


def test_fixed_meta_blocks_are_shared_and_left_as_they_were() -> None:
    """Patient, Practitioner … share one ``meta``; Consent and CarePlan get their own (supersession
    marking changes their tag), so marking every record leaves the shared blocks untouched."""
    fixed = {
        name: orjson.dumps(getattr(build, name))
        for name in dir(build)
        if name.startswith("_META_") and isinstance(getattr(build, name), dict)
    }
    assert len(fixed) == 6
    first, second = build_resources(RESPECT, IDS), build_resources(RESPECT, IDS)
    by_type = {r["resourceType"]: r for r in first}
    assert by_type["Patient"]["meta"] is build._META_PATIENT
    assert by_type["Consent"]["meta"] is not second[0]["meta"]
    for resource in [*first, *second]:
        if resource["resourceType"] in ("Consent", "CarePlan"):
            mark_superseded(resource)
    assert {name: orjson.dumps(getattr(build, name)) for name in fixed} == fixed
    assert orjson.dumps(build_resources(RESPECT, IDS)) != orjson.dumps(first)  # marking did change those


def test_enum_values_given_as_plain_text_or_unknown_build_like_members() -> None:
    """The inlined enum-table lookups: a plain ``str`` equal to a member finds the member's extension;
    text outside the enum is built as a coded extension of its own."""
    decision = RESPECT.decision
    as_text = replace(decision, capacity=str(decision.capacity), form_type=str(decision.form_type))
    assert orjson.dumps(build_resources(CareRecord(decision=as_text), IDS)) == orjson.dumps(
        build_resources(CareRecord(decision=decision), IDS)
    )
    odd = build_resources(CareRecord(decision=replace(decision, capacity="odd", form_type="local-odd")), IDS)
    extensions = {e["url"]: e for e in odd[0]["extension"]}
    capacity = next(e for url, e in extensions.items() if url.endswith("mental-capacity"))
    form = next(e for url, e in extensions.items() if url.endswith("form-type"))
    assert capacity["valueCodeableConcept"]["coding"][0]["code"] == "odd"
    assert form["valueCoding"]["code"] == "local-odd"


def test_parties_and_conditions_met_twice_in_a_record_are_kept_once_or_both_when_they_differ() -> None:
    plan = RESPECT.plan
    party = plan.lpa[0] if plan.lpa else RelatedParty(name="Ann Example")
    condition = Coded(system="http://snomed.info/sct", code="84114007", display="Heart failure")
    twice = replace(plan, lpa=(party, party), conditions=(condition, condition))
    resources = build_resources(CareRecord(plan=twice), IDS)
    refs = _refs(resources)
    assert len(refs) == len(set(refs))
    differing = replace(plan, lpa=(party, replace(party, phone="07700 900999")))
    refs = _refs(build_resources(CareRecord(plan=differing), IDS))
    person_refs = [ref for ref in refs if ref.startswith("RelatedPerson/")]
    assert len(person_refs) == len(set(person_refs)) + 1  # the same id, two versions: both returned


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(care_records(), st.booleans())
def test_a_plan_for_a_copy_of_the_person_builds_like_one_for_the_same_person(
    record: CareRecord, equal_copy: bool
) -> None:
    """The decision's and the plan's person are usually one object (built once); an equal copy or a
    different version of the same person goes the general way and must give what it always gave."""
    if record.decision is None or record.plan is None:
        return
    person = record.decision.patient
    other = replace(person) if equal_copy else replace(person, family_name="Othername")
    copied = replace(record, plan=replace(record.plan, patient=other))
    refs = _refs(build_resources(copied, IDS))
    patients = [ref for ref in refs if ref.startswith("Patient/")]
    assert patients == [f"Patient/{IDS.id_for('Patient', person.nhs_number)}"] * (1 if equal_copy else 2)
    if equal_copy:
        assert orjson.dumps(build_resources(copied, IDS)) == orjson.dumps(build_resources(record, IDS))


def test_naive_times_cached_by_value_keep_their_fold() -> None:
    """Naive fold-0 times are cached by the bare value; the fold-1 twin of an ambiguous local time (equal
    to it, same hash) must still get its own offset, whichever of the two comes first."""
    from datetime import datetime

    from fhir_dnacpr.fhir.build import fhir_datetime

    for minute in (10, 20):  # a fresh pair each time: fold 0 first, then fold 1 first
        first = datetime(2023, 10, 29, 1, minute)  # 01:xx happens twice in London that night
        second = first.replace(fold=1)
        assert first == second and hash(first) == hash(second)
        order = (first, second) if minute == 10 else (second, first)
        for value in order * 2:
            expected = "+01:00" if value.fold == 0 else "+00:00"
            assert fhir_datetime(value) == f"2023-10-29T01:{minute}:00{expected}"


def test_a_version_met_again_after_another_version_is_returned_once() -> None:
    """A resource counts as met when equal to any one already returned, not only to the first of its id:
    versions A, B, B (B met twice, as two equal objects) give A and B."""
    plan = RESPECT.plan
    first = plan.lpa[0]
    second = replace(first, phone="07700 900999")
    record = CareRecord(plan=replace(plan, lpa=(first, second, replace(second)), people_to_involve=()))
    people = [r for r in build_resources(record, IDS) if r["resourceType"] == "RelatedPerson"]
    assert [p.get("telecom", [{}])[0].get("value") for p in people] == [first.phone, "07700 900999"]
    assert len({p["id"] for p in people}) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(care_records(kinds=("plan", "both")))
def test_parties_met_again_as_equal_copies_add_no_resource(record: CareRecord) -> None:
    """Oracle: each related party given twice more (the object again, then an equal copy) leaves every
    resource but the CarePlan (whose ``supportingInfo`` lists each) exactly as built from the record."""
    plan = record.plan
    tripled = replace(
        record,
        plan=replace(
            plan,
            lpa=tuple(p for party in plan.lpa for p in (party, party, replace(party))),
            people_to_involve=tuple(p for party in plan.people_to_involve for p in (party, replace(party))),
        ),
    )

    def without_plan(resources: list[dict]) -> bytes:
        return orjson.dumps([r for r in resources if r["resourceType"] != "CarePlan"])

    assert without_plan(build_resources(tripled, IDS)) == without_plan(build_resources(record, IDS))
