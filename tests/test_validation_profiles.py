"""Profiles: snapshot generation from differentials, fixed/pattern, slicing, extensions, invariants,
references — each with a small hand-made profile."""

from __future__ import annotations

import pytest

from fhir_dnacpr.validation import Validator

BASE = "http://example.org/fhir/StructureDefinition/"


def profile(name: str, rtype: str, elements: list[dict], **extra) -> dict:
    return {
        "resourceType": "StructureDefinition",
        "url": BASE + name,
        "name": name,
        "status": "active",
        "kind": "resource",
        "abstract": False,
        "type": rtype,
        "derivation": "constraint",
        "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
        "differential": {"element": [{"id": rtype, "path": rtype}, *elements]},
        **extra,
    }


@pytest.fixture
def validator() -> Validator:
    v = Validator()
    v.add_definition(
        profile("MinName", "Patient", [{"id": "Patient.name", "path": "Patient.name", "min": 1}])
    )
    v.add_definition(
        profile(
            "FixedGender",
            "Patient",
            [{"id": "Patient.gender", "path": "Patient.gender", "fixedCode": "other"}],
        )
    )
    v.add_definition(
        profile(
            "IdSystem",
            "Patient",
            [
                {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1},
                {
                    "id": "Patient.identifier.system",
                    "path": "Patient.identifier.system",
                    "min": 1,
                    "fixedUri": "https://fhir.nhs.uk/Id/nhs-number",
                },
            ],
        )
    )
    v.add_definition(
        profile(
            "SlicedCategory",
            "Consent",
            [
                {
                    "id": "Consent.category",
                    "path": "Consent.category",
                    "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"},
                },
                {
                    "id": "Consent.category:dnr",
                    "path": "Consent.category",
                    "sliceName": "dnr",
                    "min": 1,
                    "max": "1",
                    "patternCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes",
                                "code": "dnr",
                            }
                        ]
                    },
                },
            ],
        )
    )
    v.add_definition(
        profile(
            "Invariant",
            "Consent",
            [
                {
                    "id": "Consent",
                    "path": "Consent",
                    "constraint": [
                        {
                            "key": "t-1",
                            "severity": "error",
                            "human": "deny only",
                            "expression": "provision.type = 'deny'",
                        }
                    ],
                }
            ],
        )
    )
    v.add_definition(
        {
            "resourceType": "StructureDefinition",
            "url": BASE + "ext-flag",
            "name": "Flag",
            "status": "active",
            "kind": "complex-type",
            "abstract": False,
            "type": "Extension",
            "derivation": "constraint",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
            "context": [{"type": "element", "expression": "Patient"}],
            "differential": {
                "element": [
                    {"id": "Extension", "path": "Extension"},
                    {"id": "Extension.url", "path": "Extension.url", "fixedUri": BASE + "ext-flag"},
                    {
                        "id": "Extension.value[x]",
                        "path": "Extension.value[x]",
                        "min": 1,
                        "type": [{"code": "boolean"}],
                    },
                ]
            },
        }
    )
    v.add_definition(
        profile(
            "RefTarget",
            "Observation",
            [
                {
                    "id": "Observation.subject",
                    "path": "Observation.subject",
                    "type": [
                        {
                            "code": "Reference",
                            "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
                        }
                    ],
                }
            ],
        )
    )
    return v


def error_ids(v, resource, url=None):
    return [i.message_id for i in v.validate(resource, url) if i.is_error]


CONSENT = {
    "resourceType": "Consent",
    "status": "active",
    "scope": {"text": "x"},
    "patient": {"display": "x"},
    "policyRule": {"text": "x"},
}


def test_min_from_differential(validator):
    assert error_ids(validator, {"resourceType": "Patient"}, BASE + "MinName") == [
        "Validation_VAL_Profile_Minimum"
    ]
    assert (
        error_ids(validator, {"resourceType": "Patient", "name": [{"family": "X"}]}, BASE + "MinName") == []
    )


def test_meta_profile_is_applied(validator):
    resource = {"resourceType": "Patient", "meta": {"profile": [BASE + "MinName"]}}
    assert error_ids(validator, resource) == ["Validation_VAL_Profile_Minimum"]


def test_unknown_meta_profile_is_a_warning(validator):
    issues = validator.validate({"resourceType": "Patient", "meta": {"profile": [BASE + "Nope"]}})
    unknown = [i for i in issues if i.message_id == "VALIDATION_VAL_PROFILE_UNKNOWN_NOT_POLICY"]
    assert [i.severity.value for i in unknown] == ["warning"] and not [i for i in issues if i.is_error]


def test_fixed_value(validator):
    assert error_ids(validator, {"resourceType": "Patient", "gender": "male"}, BASE + "FixedGender") == [
        "Profile_VAL_Fixed"
    ]


def test_children_of_data_type_expanded_in_snapshot(validator):
    bad = {"resourceType": "Patient", "identifier": [{"system": "urn:other", "value": "1"}]}
    assert error_ids(validator, bad, BASE + "IdSystem") == ["Profile_VAL_Fixed"]


def test_required_slice(validator):
    consent = {**CONSENT, "category": [{"text": "other"}]}
    assert error_ids(validator, consent, BASE + "SlicedCategory") == ["Validation_VAL_Profile_Minimum_SLICE"]
    consent["category"].append(
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes", "code": "dnr"}]}
    )
    assert error_ids(validator, consent, BASE + "SlicedCategory") == []


def test_profile_invariant(validator):
    consent = {**CONSENT, "category": [{"text": "x"}], "provision": {"type": "permit"}}
    issues = [i for i in validator.validate(consent, BASE + "Invariant") if i.is_error]
    assert [i.message for i in issues] == ["Constraint failed: t-1: 'deny only'"]


def test_base_invariant_ppc1(validator):
    consent = {**CONSENT, "category": [{"text": "x"}]}
    del consent["policyRule"]
    assert "http://hl7.org/fhir/StructureDefinition/Consent#ppc-1" in error_ids(validator, consent)


def test_extension_resolved_and_value_type_checked(validator):
    good = {"resourceType": "Patient", "extension": [{"url": BASE + "ext-flag", "valueBoolean": True}]}
    assert error_ids(validator, good) == []
    bad = {"resourceType": "Patient", "extension": [{"url": BASE + "ext-flag", "valueString": "x"}]}
    assert error_ids(validator, bad)


def test_extension_context(validator):
    misplaced = {
        "resourceType": "Patient",
        "name": [{"family": "X", "extension": [{"url": BASE + "ext-flag", "valueBoolean": True}]}],
    }
    assert error_ids(validator, misplaced) == ["Extension_EXT_Context_Wrong"]


def test_unknown_extension(validator):
    resource = {
        "resourceType": "Patient",
        "extension": [{"url": "https://nowhere.test/ext", "valueBoolean": True}],
    }
    assert error_ids(validator, resource) == ["Extension_EXT_Unknown_NotHere"]


def test_contained_reference_must_resolve(validator):
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "#nope"},
    }
    assert "Reference_REF_CantResolve" in error_ids(validator, obs)


def test_reference_target_type_inside_bundle(validator):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "meta": {"profile": [BASE + "RefTarget"]},
                    "subject": {"reference": "urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3302"},
                },
            },
            {
                "fullUrl": "urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3302",
                "resource": {"resourceType": "Group", "type": "person", "actual": True},
            },
        ],
    }
    assert "Reference_REF_BadTargetType" in error_ids(validator, bundle)


def test_bundle_full_url_rules(validator):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "Patient/1", "resource": {"resourceType": "Patient", "id": "1"}},
            {"resource": {"resourceType": "Patient", "id": "2"}},
        ],
    }
    assert error_ids(validator, bundle) == [
        "BUNDLE_ENTRY_URL_ABSOLUTE",
        "BUNDLE_BUNDLE_ENTRY_FULLURL_REQUIRED",
    ]


def test_compiled_profiles_are_cached(validator):
    assert validator.structure(BASE + "MinName") is validator.structure(BASE + "MinName")
