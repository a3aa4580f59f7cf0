"""Each transform of a field mapping, through a small spec and one record."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fhir_dnacpr import model
from fhir_dnacpr.mapping import spec_from_text
from fhir_dnacpr.sources.base import Origin, RawRecord

TODAY = date(2024, 6, 1)
BASE = {"id": "R1", "nhs": "9991000011", "status": "DNACPR", "decided": "01/03/2024"}


def csv_spec(decision_extra: str = "", patient_extra: str = "", top: str = "", plan: str = "") -> Any:
    text = f"""\
source: {{format: csv}}
source_system: https://example.org/register
record_id: id
defaults:
  date_formats: [dd/mm/yyyy, dd-MMM-yyyy, yyyy-mm-dd]
{top}
patient:
  nhs_number: nhs
{textwrap.indent(textwrap.dedent(patient_extra), "  ")}
decision:
  decision: {{path: status, map: {{DNACPR: not-for-cpr, For CPR: for-cpr}}}}
  decision_date: decided
{textwrap.indent(textwrap.dedent(decision_extra), "  ")}
{plan}
"""
    return spec_from_text(text, today=TODAY)


def mapped(spec: Any, **values: str) -> model.CareRecord:
    result = spec.map(RawRecord(Origin("t.csv", line=2, index=1), data={**BASE, **values}))
    assert result.record is not None, result.issues
    return result.record


def issues(spec: Any, **values: str) -> list[Any]:
    result = spec.map(RawRecord(Origin("t.csv", line=2, index=1), data={**BASE, **values}))
    assert result.record is None
    return result.issues


def test_date_formats_are_tried_in_order() -> None:
    spec = csv_spec()
    assert mapped(spec, decided="01/03/2024").decision.decision_date == date(2024, 3, 1)
    assert mapped(spec, decided="1-Mar-2024").decision.decision_date == date(2024, 3, 1)
    assert mapped(spec, decided="01-MAR-2024").decision.decision_date == date(2024, 3, 1)
    assert mapped(spec, decided="2024-03-01").decision.decision_date == date(2024, 3, 1)


def test_date_times_naive_become_london_and_offsets_are_kept() -> None:
    spec = csv_spec("recorded_date: {path: at, formats: [dd/MM/yyyy HH:mm, iso]}\n")
    summer = mapped(spec, at="01/03/2024 09:30").decision.recorded_date
    assert summer == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)  # GMT in March
    bst = mapped(spec, at="01/05/2024 09:30").decision.recorded_date
    assert bst.utcoffset() == timedelta(hours=1)
    offset = mapped(spec, at="2024-03-01T09:30:00+02:00").decision.recorded_date
    assert offset.utcoffset() == timedelta(hours=2)


def test_field_timezone_overrides_the_default() -> None:
    spec = csv_spec("recorded_date: {path: at, formats: [dd/MM/yyyy HH:mm], timezone: America/New_York}\n")
    assert mapped(spec, at="01/03/2024 09:30").decision.recorded_date.utcoffset() == timedelta(hours=-5)


def test_special_value_sets_a_flag_and_null_values_become_none() -> None:
    spec = csv_spec("review_date: {path: review, special: {Indefinite: {review_indefinite: true}}}\n")
    record = mapped(spec, review="INDEFINITE").decision
    assert (record.review_date, record.review_indefinite) == (None, True)
    record = mapped(spec, review="N/K").decision
    assert (record.review_date, record.review_indefinite) == (None, False)
    assert mapped(spec, review="  ").decision.review_date is None
    assert mapped(spec, review="01/09/2024").decision.review_date == date(2024, 9, 1)


def test_field_null_values_add_to_the_defaults() -> None:
    spec = csv_spec("rationale: {path: why, null_values: [none given]}\n")
    assert mapped(spec, why="None given").decision.rationale is None
    assert mapped(spec, why="not known").decision.rationale is None
    assert mapped(spec, why="Frailty").decision.rationale == "Frailty"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Y", True), ("yes", True), ("TRUE", True), ("1", True), ("n", False), ("No", False), ("false", False)],
)
def test_yes_no_booleans(raw: str, expected: bool) -> None:
    spec = csv_spec("discussed_with_patient: talked\n")
    assert mapped(spec, talked=raw).decision.discussed_with_patient is expected


def test_custom_true_false_words() -> None:
    spec = csv_spec("discussed_with_patient: {path: talked, true: [Discussed], false: [Not discussed]}\n")
    assert mapped(spec, talked="discussed").decision.discussed_with_patient is True
    [issue] = issues(spec, talked="Y")
    assert issue.message_id == "mapping.boolean.unknown"


def test_value_maps_are_case_insensitive_unless_told() -> None:
    assert mapped(csv_spec(), status="dnacpr").decision.decision is model.CprDecisionValue.NOT_FOR_CPR
    strict = csv_spec().text.replace(
        "map: {DNACPR: not-for-cpr, For CPR: for-cpr}", "map: {DNACPR: not-for-cpr}, ignore_case: false"
    )
    spec = spec_from_text(strict, today=TODAY)
    [issue] = issues(spec, status="dnacpr")
    assert issue.message_id == "mapping.value-map.unknown"


def test_unmapped_keep_and_blank() -> None:
    spec = csv_spec(
        "capacity: {path: cap, map: {Y: has-capacity}, unmapped: keep}\n"
        "form_type: {path: form, map: {R: respect}, unmapped: blank}\n"
    )
    record = mapped(spec, cap="lacks-capacity", form="other")
    assert record.decision.capacity is model.Capacity.LACKS_CAPACITY
    assert record.decision.form_type is None
    result = spec.map(RawRecord(Origin("t.csv"), data={**BASE, "cap": "Y", "form": "other"}), today=TODAY)
    assert [i.message_id for i in result.issues] == ["mapping.value-map.blanked"]
    assert result.record is not None and result.record.warnings


def test_enums_accept_their_own_values_without_a_map() -> None:
    spec = csv_spec("capacity: cap\n")
    assert mapped(spec, cap="Not-Assessed").decision.capacity is model.Capacity.NOT_ASSESSED
    [issue] = issues(spec, cap="maybe")
    assert "has-capacity, lacks-capacity, not-assessed" in issue.message


def test_split_trim_upper_and_concatenation() -> None:
    spec = csv_spec(
        patient_extra="""\
        given_names: {path: given, split: " "}
        address_lines: {paths: [a1, a2, a3]}
        postcode: {path: pc, upper: true}
        family_name: {paths: [prefix, surname], join: " "}
        """
    )
    person = mapped(
        spec,
        given="  Mary   Ann ",
        a1="1 High St",
        a2="",
        a3="Town",
        pc="ex1 2ab",
        prefix="",
        surname="Smith",
    ).patient
    assert person.given_names == ("Mary", "Ann")
    assert person.address_lines == ("1 High St", "Town")
    assert person.postcode == "EX1 2AB"
    assert person.family_name == "Smith"


def test_trim_can_be_switched_off() -> None:
    spec = csv_spec("rationale: {path: why, trim: false}\n")
    assert mapped(spec, why="  spaced  ").decision.rationale == "  spaced  "


def test_constants_and_defaults() -> None:
    spec = csv_spec(
        "form_type: {const: rcuk-dnacpr}\n"
        "status: {path: state, map: {Cancelled: cancelled}, default: active}\n"
    )
    record = mapped(spec, state="").decision
    assert (record.form_type, record.status) == (model.FormType.RCUK_DNACPR, model.RecordStatus.ACTIVE)
    assert mapped(spec, state="cancelled").decision.status is model.RecordStatus.CANCELLED


def test_nested_objects_appear_only_with_source_data() -> None:
    spec = csv_spec(
        """\
        decision_maker:
          family_name: clin
          role: {const: Consultant}
          organisation: {ods_code: clin_ods}
        """
    )
    assert mapped(spec, clin="", clin_ods="").decision.decision_maker is None
    maker = mapped(spec, clin="Okafor", clin_ods="rx1").decision.decision_maker
    assert maker == model.Professional(
        family_name="Okafor", role="Consultant", organisation=model.Organisation("RX1")
    )


def test_fixed_lists_skip_empty_items_and_drop_nameless_ones_with_a_warning() -> None:
    spec = csv_spec(
        """\
        others_consulted:
          - {name: n1, phone: p1, role: {const: relative}}
          - {name: n2, phone: p2}
        """
    )
    record = mapped(spec, n1="Ann", p1="1", n2="", p2="")
    assert [p.name for p in record.decision.others_consulted] == ["Ann"]
    result = spec.map(
        RawRecord(Origin("t.csv"), data={**BASE, "n1": "Ann", "p1": "1", "n2": "", "p2": "07700"}),
        today=TODAY,
    )
    assert result.record is not None
    assert [i.message_id for i in result.issues] == ["mapping.item.dropped"]
    assert "07700" not in result.issues[0].message


def test_each_with_split_makes_coded_text_items() -> None:
    spec = csv_spec(plan="plan:\n  conditions: {each: dx, split: ';'}\n", top="yields: [decision, plan]")
    plan = mapped(spec, dx="Heart failure; COPD ;").plan
    assert plan.conditions == (model.Coded(text="Heart failure"), model.Coded(text="COPD"))


def test_coded_value_map_fills_system_and_known_display() -> None:
    spec = csv_spec(
        plan=(
            "plan:\n  preferred_place_of_death:\n    path: ppd\n"
            "    map: {Home: '110481000000108', Elsewhere: {text: other place}}\n"
        ),
        top="yields: [decision, plan]",
    )
    place = mapped(spec, ppd="home").plan.preferred_place_of_death
    assert place == model.Coded(
        system="http://snomed.info/sct",
        code="110481000000108",
        display="Preferred place of death: home (finding)",
    )
    assert mapped(spec, ppd="elsewhere").plan.preferred_place_of_death == model.Coded(text="other place")


def test_integers() -> None:
    spec = csv_spec(plan="plan:\n  care_priority_score: score\n", top="yields: [decision, plan]")
    assert mapped(spec, score="80").plan.care_priority_score == 80
    [issue] = issues(spec, score="eighty")
    assert issue.message_id == "mapping.integer.invalid"
    [issue] = issues(spec, score="120")
    assert issue.message_id == "mapping.care-priority.range"


def test_plan_links_to_the_decision_from_the_same_record() -> None:
    spec = csv_spec(plan="plan:\n  wishes: w\n", top="yields: [decision, plan]")
    assert mapped(spec, w="At home").plan.cpr_decision_record_id == "R1"


def test_present_if_skips_a_section() -> None:
    spec = csv_spec(plan="plan:\n  present_if: w\n  wishes: w\n", top="yields: [decision, plan]")
    assert mapped(spec, w="").plan is None
    assert mapped(spec, w="home").plan is not None


def json_spec(body: str) -> Any:
    return spec_from_text(
        "source: {format: ndjson}\nsource_system: https://example.org/app\nrecord_id: id\n"
        "patient:\n  nhs_number: person.nhs\n  given_names: person.names[0].given\n" + textwrap.dedent(body),
        today=TODAY,
    )


def test_json_paths_with_indexes_nested_arrays_and_native_types() -> None:
    spec = json_spec(
        """\
        plan:
          care_priority_score: priorities.score
          has_adrt: adrt
          people_to_involve:
            each: people
            fields:
              name: name
              phone: contact.phone
              role: {path: kind, map: {family: relative}, default: other}
        """
    )
    data = {
        "id": 7,
        "person": {"nhs": 9991000011, "names": [{"given": ["Ann", "May"]}]},
        "priorities": {"score": 60},
        "adrt": True,
        "people": [{"name": "Bob", "kind": "family", "contact": {"phone": "07700"}}, {"name": "Cy"}],
    }
    record = spec.map(RawRecord(Origin("x.ndjson", line=1), data=data)).record
    assert record is not None
    assert record.plan.source.record_id == "7"
    assert record.patient.nhs_number == "9991000011" and record.patient.given_names == ("Ann", "May")
    assert record.plan.care_priority_score == 60 and record.plan.has_adrt is True
    assert [(p.name, p.role, p.phone) for p in record.plan.people_to_involve] == [
        ("Bob", model.PartyRole.RELATIVE, "07700"),
        ("Cy", model.PartyRole.OTHER, None),
    ]


def test_xml_xpaths_attributes_and_repeated_elements(tmp_path: Any) -> None:
    from lxml import etree

    spec = spec_from_text(
        textwrap.dedent(
            """\
            source: {format: xml, record_path: /x:E/x:F, namespaces: {x: "urn:x"}}
            source_system: https://example.org/forms
            record_id: "@id"
            patient:
              nhs_number: x:P/x:Nhs
              given_names: x:P/x:Given
            plan:
              care_priority_score: "x:Score/@value"
              treatment_recommendations:
                each: x:Rec
                fields:
                  treatment: {system: http://snomed.info/sct, code: "@code", text: .}
                  do_not_perform: "@dnp"
            """
        ),
        today=TODAY,
    )
    element = etree.fromstring(
        '<x:F xmlns:x="urn:x" id="F1"><x:P><x:Nhs>999 100 0011</x:Nhs>'
        "<x:Given>A</x:Given><x:Given>B</x:Given></x:P>"
        '<x:Score value="70"/><x:Rec code="305351004" dnp="true">ICU</x:Rec></x:F>'
    )
    record = spec.map(RawRecord(Origin("f.xml", index=1), data=element)).record
    assert record is not None
    assert record.patient.nhs_number == "9991000011" and record.patient.given_names == ("A", "B")
    [rec] = record.plan.treatment_recommendations
    assert rec == model.TreatmentRecommendation(
        treatment=model.Coded("http://snomed.info/sct", "305351004", None, "ICU"), do_not_perform=True
    )
    again = spec.map(RawRecord(Origin("f.xml", index=1), data=etree.tostring(element))).record
    assert again == record


def test_registration_numbers_in_the_wrong_format_are_kept_with_a_warning() -> None:
    spec = csv_spec(
        """\
        decision_maker:
          family_name: clin
          registration_body: {path: body, map: {GMC: gmc, NMC: nmc}}
          registration_number: reg
        """
    )
    good = spec.map(RawRecord(Origin("t.csv"), data={**BASE, "clin": "A", "body": "GMC", "reg": "7012345"}))
    assert good.issues == []
    odd = spec.map(RawRecord(Origin("t.csv"), data={**BASE, "clin": "A", "body": "NMC", "reg": "7012345"}))
    assert odd.record is not None and odd.record.decision.decision_maker.registration_number == "7012345"
    [issue] = odd.issues
    assert (issue.message_id, issue.location) == ("mapping.registration-number.format", "reg")
    assert "7012345" not in issue.message
