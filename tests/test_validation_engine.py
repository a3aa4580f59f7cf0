"""The one-pass engine: every definition that applies to a value reports as if walked on its own,
remembered findings are replayed at the right place, messages never echo free text, and the
HAPI-compatible options behave as HAPI's FhirInstanceValidator does."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fhir_dnacpr.validation import ValidationOptions, Validator, default_validator, read_resource

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "profiles" / "examples"
DNACPR = "https://fhir-dnacpr.github.io/fhir/StructureDefinition/DnacprDecision"
SECRET = "Mrs Jane Doe said no"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


@pytest.fixture(scope="module")
def validator() -> Validator:
    return default_validator()


def errors(issues) -> list[tuple[str, str]]:
    return sorted((i.location or "", i.message_id or "") for i in issues if i.is_error)


def test_base_and_profile_each_report_a_missing_required_element(validator):
    consent = example("consent-valid-not-for-cpr.json")
    del consent["status"]  # required by base R4 and by the profile's snapshot
    found = [i for i in validator.validate(consent) if i.message_id == "Validation_VAL_Profile_Minimum"]
    assert {i.message.rsplit("(from ", 1)[1] for i in found} == {
        "http://hl7.org/fhir/StructureDefinition/Consent|4.0.1)",
        DNACPR + "|0.1.0)",
    }


def test_slice_and_extension_definition_rules_reach_the_value(validator):
    consent = example("consent-valid-not-for-cpr.json")
    finding = next(e for e in consent["extension"] if e["url"].endswith("dnacpr-decision-finding"))
    finding["valueCodeableConcept"]["coding"][0]["code"] = "304253006"
    assert ("Consent.extension[0].value.ofType(CodeableConcept)", "Terminology_TX_NoValid_1_CC") in errors(
        validator.validate(consent)
    )


def test_remembered_coding_findings_are_replayed_at_each_location(validator):
    bad_tag = {"system": "https://fhir-dnacpr.github.io/fhir/CodeSystem/source-record-status", "code": "nope"}
    for index in (0, 1):
        consent = example("consent-valid-not-for-cpr.json")
        consent.setdefault("meta", {})["tag"] = [{"system": "http://example.org/t", "code": "x"}] * index + [
            bad_tag
        ]
        found = [i for i in validator.validate(consent) if i.message_id == "Unknown_Code_in_Version"]
        assert [i.location for i in found] == [f"Consent.meta.tag[{index}]"]


def test_validating_twice_gives_the_same_findings(validator):
    consent = example("consent-invalid-finding-disagrees.json")
    assert validator.validate(consent) == validator.validate(copy.deepcopy(consent))


def test_free_text_is_never_quoted_in_messages(validator):
    consent = example("consent-valid-not-for-cpr.json")
    consent["extension"].append(
        {
            "url": "https://fhir-dnacpr.github.io/fhir/StructureDefinition/dnacpr-clinical-rationale",
            "valueString": f" {SECRET} ",
        }
    )
    consent["dateTime"] = SECRET
    consent["provision"]["period"]["start"] = SECRET
    issues = validator.validate(consent)
    assert any(i.message_id == "Type_Specific_Checks_DT_String_WS" for i in issues)
    assert any(i.message_id == "Type_Specific_Checks_DT_DateTime_Valid" for i in issues)
    assert not [i.message for i in issues if "Jane" in i.message]


def test_xml_decimals_are_validated_as_written(tmp_path):
    path = tmp_path / "obs.xml"
    path.write_text(
        '<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="x"/></code>'
        '<valueQuantity><value value="1.50"/></valueQuantity></Observation>'
    )
    resource, issues = read_resource(path)
    assert issues == [] and str(resource["valueQuantity"]["value"]) == "1.50"
    assert not [i for i in Validator().validate(resource) if i.is_error]


def test_unknown_extensions_error_by_default_and_are_noted_with_hapi_options():
    patient = {
        "resourceType": "Patient",
        "extension": [{"url": "https://example.net/no-such-extension", "valueString": "x"}],
    }
    assert errors(Validator().validate(patient)) == [
        ("Patient.extension[0]", "Extension_EXT_Unknown_NotHere")
    ]
    relaxed = Validator(options=ValidationOptions.hapi()).validate(patient)
    assert errors(relaxed) == [] and any(i.message_id == "Extension_EXT_Unknown" for i in relaxed)


def test_wrong_extension_value_type_is_reported_on_the_extension(validator):
    consent = example("consent-invalid-senior-flag-type.json")
    found = errors(validator.validate(consent))
    assert ("Consent.extension[5]", "Extension_EXT_Type") in found


def test_profiles_by_type_reach_resources_inside_bundles(validator):
    consent = example("consent-valid-not-for-cpr.json")
    consent.pop("meta", None)
    del consent["provision"]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:6d9e8b9a-3c55-4b55-8f57-2b0f1d8a9b01", "resource": consent}],
    }
    assert not errors(validator.validate(bundle))
    found = errors(validator.validate(bundle, profiles_by_type={"Consent": [DNACPR]}))
    assert any(loc.startswith("Bundle.entry[0].resource") for loc, _ in found)
