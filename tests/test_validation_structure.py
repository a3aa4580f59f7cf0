"""Structure, cardinality, types and primitive formats against base R4 (small instances)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.validation import Validator


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def errors(validator: Validator, resource: dict, profile: str | None = None) -> list:
    return [i for i in validator.validate(resource, profile) if i.is_error]


def ids(issues) -> list[str]:
    return [i.message_id for i in issues]


def test_minimal_valid_patient_has_no_errors(validator):
    assert errors(validator, {"resourceType": "Patient", "id": "p1", "gender": "female"}) == []


def test_missing_required_element_reported_at_parent(validator):
    found = errors(validator, {"resourceType": "Observation", "status": "final"})
    assert ids(found) == ["Validation_VAL_Profile_Minimum"]
    assert found[0].location == "Observation"
    assert "Observation.code: minimum required = 1" in found[0].message


def test_too_many_values_for_single_element(validator):
    consent = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"text": "x"},
        "date": "2020-01-01",
        "author": [{"display": "a"}],
        "title": "t",
        "subject": [{"display": "a"}, {"display": "b"}],
    }
    found = errors(validator, consent)
    assert "Validation_VAL_Profile_Maximum" in ids(
        found
    ) or "This_property_must_be_an_simple_value_not_an_array" in ids(found)


def test_unknown_property(validator):
    found = errors(validator, {"resourceType": "Patient", "unknownElement": 1})
    assert ids(found) == ["Unrecognised_property_"]


def test_array_required_for_repeating_element(validator):
    found = errors(validator, {"resourceType": "Patient", "name": {"family": "X"}})
    assert "This_property_must_be_an_Array_not_an_Object" in ids(found)


def test_empty_array_is_an_error(validator):
    found = errors(validator, {"resourceType": "Patient", "name": []})
    assert ids(found) == ["Array_cannot_be_empty"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2020", True),
        ("2020-02-29", True),
        ("2021-02-29", False),
        ("not a date", False),
        ("2020-13-01", False),
    ],
)
def test_date_format(validator, value, ok):
    found = errors(validator, {"resourceType": "Patient", "birthDate": value})
    assert (found == []) is ok


def test_datetime_with_time_needs_timezone(validator):
    found = errors(
        validator,
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"text": "x"},
            "category": [{"text": "x"}],
            "policyRule": {"text": "x"},
            "dateTime": "2020-01-01T10:00:00",
        },
    )
    assert "Type_Specific_Checks_DT_DateTime_TZ" in ids(found)


def test_resource_id_rules(validator):
    assert ids(errors(validator, {"resourceType": "Patient", "id": "bad_id"})) == [
        "Resource_RES_ID_Malformed_Chars"
    ]
    assert ids(errors(validator, {"resourceType": "Patient", "id": "a" * 65})) == [
        "Resource_RES_ID_Malformed_Length"
    ]


def test_primitive_json_type(validator):
    found = errors(validator, {"resourceType": "Patient", "active": "true"})
    assert ids(found) == ["Error_parsing_JSON_the_primitive_value_must_be_a_boolean"]


def test_primitive_without_value_or_extension(validator):
    found = errors(validator, {"resourceType": "Patient", "_active": {}})
    assert set(ids(found)) == {
        "Type_Specific_Checks_DT_Primitive_ValueExt",
        "http://hl7.org/fhir/StructureDefinition/Element#ele-1",
    }


def test_choice_type_with_wrong_type(validator):
    found = errors(
        validator, {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueFoo": "1"}
    )
    assert len(found) == 1


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=64))
def test_any_legal_id_is_accepted(validator, rid):
    assert errors(validator, {"resourceType": "Basic", "id": rid, "code": {"text": "x"}}) == []


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_integers_in_range_accepted_positive_int_rule(validator, number):
    found = errors(
        validator,
        {
            "resourceType": "ImmunizationRecommendation",
            "patient": {"display": "x"},
            "date": "2020-01-01",
            "recommendation": [
                {
                    "vaccineCode": [{"text": "x"}],
                    "forecastStatus": {"text": "x"},
                    "doseNumberPositiveInt": number,
                }
            ],
        },
    )
    assert ("Type_Specific_Checks_DT_Integer_LT1" in ids(found)) is (number < 1)
