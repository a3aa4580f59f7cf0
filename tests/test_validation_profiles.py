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


# -- behaviours matched to the HL7 validator's own test cases (bundle-conformsto,
#    parameters-profiled-resource-multiple, extension-slicing-instance) --------------------------


def _subject_must_be(name: str, target: str) -> dict:
    return profile(
        name,
        "Observation",
        [
            {
                "id": "Observation.subject",
                "path": "Observation.subject",
                "type": [{"code": "Reference", "targetProfile": [BASE + target]}],
            }
        ],
    )


def _bundle(patient: dict, obs_profile: str | None = None) -> dict:
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"},
    }
    if obs_profile:
        obs["meta"] = {"profile": [BASE + obs_profile]}
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "http://example.org/fhir/Observation/o1", "resource": obs},
            {"fullUrl": "http://example.org/fhir/Patient/p1", "resource": patient},
        ],
    }


NAMELESS = {"resourceType": "Patient", "id": "p1"}
NAMED = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Test"}]}


def test_bundled_reference_target_checked_against_target_profile_whatever_the_policy(validator):
    # a target found in the Bundle is validated (HL7: CHECK_VALID for internal references), even
    # under the default policy for external references
    validator.add_definition(_subject_must_be("ObsNamedSubject", "MinName"))
    assert "Reference_REF_CantMatchChoice" in error_ids(validator, _bundle(NAMELESS, "ObsNamedSubject"))
    assert error_ids(validator, _bundle(NAMED, "ObsNamedSubject")) == []


def test_slice_by_profile_follows_references_inside_the_bundle(validator):
    validator.add_definition(_subject_must_be("ObsNamedSubject", "MinName"))
    validator.add_definition(
        profile(
            "BundleWithObs",
            "Bundle",
            [
                {
                    "id": "Bundle.entry",
                    "path": "Bundle.entry",
                    "slicing": {"discriminator": [{"type": "profile", "path": "resource"}], "rules": "open"},
                },
                {"id": "Bundle.entry:obs", "path": "Bundle.entry", "sliceName": "obs", "min": 1, "max": "1"},
                {
                    "id": "Bundle.entry:obs.resource",
                    "path": "Bundle.entry.resource",
                    "min": 1,
                    "type": [{"code": "Observation", "profile": [BASE + "ObsNamedSubject"]}],
                },
            ],
        )
    )
    # the entry's subject resolves (relative to its fullUrl) to a Patient without a name: the
    # Observation does not conform, so the required slice is empty
    ids = error_ids(validator, _bundle(NAMELESS), BASE + "BundleWithObs")
    assert ids == ["Validation_VAL_Profile_Minimum_SLICE"]
    assert error_ids(validator, _bundle(NAMED), BASE + "BundleWithObs") == []


def test_differential_element_not_in_base_is_ignored_and_reported(validator):
    validator.add_definition(
        profile(
            "Misnamed", "Patient", [{"id": "Patient.dateOfBirth", "path": "Patient.dateOfBirth", "min": 1}]
        )
    )
    assert validator.structure(BASE + "Misnamed") is not None
    assert error_ids(validator, {"resourceType": "Patient"}, BASE + "Misnamed") == []
    assert any("Patient.dateOfBirth" in p.message for p in validator.load_problems)


def _parameters_allowing(*names: str) -> dict:
    return profile(
        "OneOfParams",
        "Parameters",
        [
            {
                "id": "Parameters.parameter.resource",
                "path": "Parameters.parameter.resource",
                "type": [{"code": "Resource", "profile": [BASE + n for n in names]}],
            }
        ],
    )


def test_nested_resource_needs_to_match_one_of_several_profiles(validator):
    validator.add_definition(_parameters_allowing("MinName", "FixedGender"))
    url = BASE + "OneOfParams"

    def params(patient: dict) -> dict:
        return {"resourceType": "Parameters", "parameter": [{"name": "p", "resource": patient}]}

    # no name (MinName fails) but gender 'other' (FixedGender holds): one match is enough
    assert error_ids(validator, params({"resourceType": "Patient", "gender": "other"}), url) == []
    # neither: one error naming the choice, not each profile's findings
    assert error_ids(validator, params({"resourceType": "Patient", "gender": "male"}), url) == [
        "BUNDLE_BUNDLE_ENTRY_MULTIPLE_PROFILES_NO_MATCH"
    ]


ACTION_TYPE = "http://example.org/fhir/StructureDefinition/action-type"


def _action_slice(name: str, code: str, extra: list[dict]) -> list[dict]:
    slice_id = f"PlanDefinition.action:{name}"
    ext_id = f"{slice_id}.extension:actionType/{code}"
    return [
        {"id": slice_id, "path": "PlanDefinition.action", "sliceName": name, "min": 1},
        {
            "id": ext_id,
            "path": "PlanDefinition.action.extension",
            "sliceName": f"actionType/{code}",
            "min": 1,
            "max": "1",
            "type": [{"code": "Extension", "profile": [ACTION_TYPE]}],
        },
        {
            "id": f"{ext_id}.value[x]",
            "path": "PlanDefinition.action.extension.value[x]",
            "type": [{"code": "code"}],
            "fixedCode": code,
        },
        *extra,
    ]


def test_extension_value_discriminator_uses_the_mandatory_reslice(validator):
    validator.add_definition(
        {
            "resourceType": "StructureDefinition",
            "url": ACTION_TYPE,
            "name": "ActionType",
            "status": "active",
            "kind": "complex-type",
            "abstract": False,
            "context": [{"type": "element", "expression": "PlanDefinition.action"}],
            "type": "Extension",
            "derivation": "constraint",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
            "differential": {
                "element": [
                    {"id": "Extension", "path": "Extension"},
                    {"id": "Extension.url", "path": "Extension.url", "fixedUri": ACTION_TYPE},
                    {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "code"}]},
                ]
            },
        }
    )
    title = {"id": "PlanDefinition.action:single.title", "path": "PlanDefinition.action.title", "min": 1}
    validator.add_definition(
        profile(
            "TypedActions",
            "PlanDefinition",
            [
                {
                    "id": "PlanDefinition.action",
                    "path": "PlanDefinition.action",
                    "slicing": {
                        "discriminator": [{"type": "value", "path": f"extension('{ACTION_TYPE}').value"}],
                        "rules": "open",
                    },
                },
                {
                    "id": "PlanDefinition.action.extension:actionType",
                    "path": "PlanDefinition.action.extension",
                    "sliceName": "actionType",
                    "type": [{"code": "Extension", "profile": [ACTION_TYPE]}],
                },
                *_action_slice("single", "Single", [title]),
                *_action_slice("alternate", "Alternate", []),
            ],
        )
    )

    def action(code: str, **extra) -> dict:
        return {"extension": [{"url": ACTION_TYPE, "valueCode": code}], **extra}

    plan = {
        "resourceType": "PlanDefinition",
        "status": "active",
        "action": [action("Single", title="x"), action("Alternate")],
    }
    assert error_ids(validator, plan, BASE + "TypedActions") == []
    plan["action"][0].pop("title")
    assert error_ids(validator, plan, BASE + "TypedActions") == ["Validation_VAL_Profile_Minimum"]
