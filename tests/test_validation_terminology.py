"""Bindings and code-system checks that can be decided offline."""

from __future__ import annotations

import pytest

from fhir_dnacpr.validation import Validator


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def error_ids(validator, resource):
    return [i.message_id for i in validator.validate(resource) if i.is_error]


def test_required_binding_on_code(validator):
    found = error_ids(validator, {"resourceType": "Patient", "gender": "asdf"})
    assert found == ["UNABLE_TO_INFER_CODESYSTEM", "Terminology_TX_NoValid_16"]


def test_required_binding_accepts_member(validator):
    assert error_ids(validator, {"resourceType": "Patient", "gender": "other"}) == []


def test_extensible_binding_gives_warning_only(validator):
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]
        },
        "category": [{"coding": [{"system": "http://example.org/x", "code": "zzz"}]}],
        "patient": {"display": "x"},
        "policyRule": {"text": "x"},
    }
    issues = Validator().validate(consent)
    assert not [i for i in issues if i.is_error]
    assert any(i.message_id == "Terminology_TX_NoValid_2_CC" for i in issues)


def test_unknown_code_in_complete_code_system(validator):
    found = error_ids(
        validator,
        {
            "resourceType": "Patient",
            "maritalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "NOPE"}
                ]
            },
        },
    )
    assert "Unknown_Code_in_Version" in found


def test_snomed_codes_are_not_judged_offline(validator):
    assert (
        error_ids(
            validator,
            {
                "resourceType": "Condition",
                "subject": {"display": "x"},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "123456789"}]},
            },
        )
        == []
    )


def test_value_set_expansion_with_is_a_filter(validator):
    expansion = validator.terminology.expand("http://terminology.hl7.org/ValueSet/v3-ActEncounterCode")
    assert expansion is not None
    assert ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB") in expansion.codes
    assert ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "_ActEncounterCode") not in expansion.codes
