"""The builder: each row of docs/fhir-mapping.md, determinism, element order and R4 validity."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import care_records

from fhir_dnacpr import canonical as c
from fhir_dnacpr.definitions.elements import type_index
from fhir_dnacpr.fhir.build import SharedParties, build_resources, fhir_datetime
from fhir_dnacpr.fhir.ids import DEFAULT_EXAMPLE_KEY, IdFactory
from fhir_dnacpr.fhirxml import parse_xml, to_xml
from fhir_dnacpr.model import (
    AdvanceCarePlan,
    Capacity,
    CareRecord,
    Coded,
    CprDecision,
    CprDecisionValue,
    Endorsement,
    FormType,
    Gender,
    Organisation,
    PartyRole,
    Person,
    Professional,
    RecordStatus,
    RegistrationBody,
    RelatedParty,
    SourceRef,
    TreatmentRecommendation,
)
from fhir_dnacpr.terminology import codes

IDS = IdFactory(DEFAULT_EXAMPLE_KEY)
SYSTEM = "https://fhir.leedsth.nhs.uk/Id/respect-form"
R4_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
BST = timezone(timedelta(hours=1))

NHS = "9990001219"
PATIENT = Person(
    nhs_number=NHS,
    family_name="Ó Súilleabháin",
    given_names=("Siân", "Mary"),
    birth_date=date(1938, 4, 2),
    gender=Gender.FEMALE,
    address_lines=("Rose Cottage", "27 Chapel Lane"),
    postcode="LS7 4QT",
    gp_practice=Organisation("B86042", "Chapel Allerton Surgery"),
)
CONSULTANT = Professional("Patel", ("Priya",), "Consultant geriatrician", RegistrationBody.GMC, "7654321")
REGISTRAR = Professional("Evans", ("Ffion",), "Specialty registrar", RegistrationBody.GMC, "1234567")
TRUST = Organisation("RR8", "Leeds Teaching Hospitals NHS Trust")
DAUGHTER = RelatedParty(
    "Aisling Smith", PartyRole.LPA_HEALTH_WELFARE, "Daughter", "07700 900123", "aisling@example.org"
)
FRIEND = RelatedParty("Olu Jones", PartyRole.FRIEND, "Neighbour")
SOURCE = SourceRef(SYSTEM, "RS-000123", datetime(2025, 3, 4, 9, 30, tzinfo=UTC))

DECISION = CprDecision(
    source=SOURCE,
    patient=PATIENT,
    decision=CprDecisionValue.NOT_FOR_CPR,
    decision_date=datetime(2025, 3, 3, 14, 5, tzinfo=BST),
    recorded_date=datetime(2025, 3, 3, 15, 0, tzinfo=BST),
    review_date=date(2025, 9, 3),
    rationale="Severe frailty; CPR would not be successful.",
    capacity=Capacity.LACKS_CAPACITY,
    discussed_with_patient=False,
    discussion_date=date(2025, 3, 3),
    reason_not_discussed="Lacks capacity; discussed with LPA.",
    others_consulted=(replace(DAUGHTER, consulted_on=date(2025, 3, 3)),),
    decision_maker=REGISTRAR,
    decision_maker_is_senior=False,
    senior_endorsement=Endorsement(CONSULTANT, datetime(2025, 3, 4, 9, 0, tzinfo=UTC)),
    custodian=TRUST,
    form_type=FormType.RESPECT,
    document_location="https://docs.leedsth.nhs.uk/respect/RS-000123.pdf",
)
PLAN = AdvanceCarePlan(
    source=SOURCE,
    patient=PATIENT,
    created=date(2025, 3, 3),
    author=CONSULTANT,
    custodian=TRUST,
    care_priority_score=80,
    care_priority_text="Comfort matters most to me.",
    treatment_recommendations=(
        TreatmentRecommendation(
            Coded(codes.SNOMED, "305351004", "Admission to intensive care unit (procedure)"), True
        ),
        TreatmentRecommendation(Coded(text="Antibiotics for chest infection"), False, "Oral only"),
    ),
    preferred_place_of_care=Coded(text="Home"),
    preferred_place_of_death=Coded(
        codes.SNOMED, "110481000000108", "Preferred place of death: home (finding)"
    ),
    wishes="To stay at home with my cat.",
    has_adrt=True,
    adrt_location="Copy at home in kitchen drawer",
    lpa=(DAUGHTER,),
    people_to_involve=(FRIEND,),
    conditions=(Coded(codes.SNOMED, "84114007", "Heart failure (disorder)"), Coded(text="Frailty")),
    form_type=FormType.RESPECT,
    document_location="https://docs.leedsth.nhs.uk/respect/RS-000123.pdf",
    cpr_decision_record_id="RS-000123",
)
RESPECT = CareRecord(decision=DECISION, plan=PLAN)


def by_type(resources: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for resource in resources:
        out.setdefault(resource["resourceType"], []).append(resource)
    return out


def ref(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def ext(resource: dict, url: str) -> dict:
    found = [e for e in resource.get("extension", ()) if e["url"] == url]
    assert len(found) == 1, url
    return found[0]


def sub(extension: dict, url: str) -> Any:
    (found,) = [e for e in extension["extension"] if e["url"] == url]
    return found


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict]]:
    return by_type(build_resources(RESPECT, IDS))


def test_a_respect_record_gives_each_resource_once(built: dict[str, list[dict]]) -> None:
    assert {k: len(v) for k, v in built.items()} == {
        "Consent": 1,
        "CarePlan": 1,
        "Patient": 1,  # shared by decision and plan
        "Practitioner": 2,  # registrar (maker) and consultant (endorser, author)
        "Organization": 2,  # GP practice, trust
        "RelatedPerson": 2,  # daughter (consulted, LPA), friend
        "DocumentReference": 1,  # same form for both
        "Condition": 2,
    }


def test_consent_rows(built: dict[str, list[dict]]) -> None:
    (consent,) = built["Consent"]
    patient_ref = {"reference": ref(built["Patient"][0])}
    assert consent["id"] == IDS.id_for("Consent", SYSTEM, "RS-000123")
    assert consent["meta"] == {
        "lastUpdated": "2025-03-04T09:30:00+00:00",
        "profile": [c.PROFILE_DNACPR_CONSENT],
        "tag": [{"system": c.CS_RECORD_STATUS, "code": "active"}],
    }
    assert consent["identifier"] == [{"system": SYSTEM, "value": "RS-000123"}]
    assert consent["status"] == "active"
    assert consent["scope"] == {"coding": [codes.SCOPE_ADR.coding()]}
    assert consent["category"] == [
        {"coding": [codes.CATEGORY_DNR.coding()]},
        {"coding": [codes.CATEGORY_RESPECT_FORM.coding()]},
    ]
    assert consent["patient"] == patient_ref
    assert consent["dateTime"] == "2025-03-03T15:00:00+01:00"
    registrar = IDS.id_for("Practitioner", "registration", "gmc", "1234567")
    assert consent["performer"] == [{"reference": f"Practitioner/{registrar}"}]
    assert consent["organization"] == [
        {"reference": f"Organization/{IDS.id_for('Organization', 'ods', 'RR8')}"}
    ]
    assert consent["sourceReference"] == {"reference": ref(built["DocumentReference"][0])}
    assert consent["policy"] == [{"uri": c.POLICY_RCUK_DNACPR}]
    daughter = IDS.id_for("RelatedPerson", PATIENT.nhs_number, "lpa-health-welfare", "Aisling Smith")
    assert consent["verification"] == [
        {"verified": False, "verifiedWith": patient_ref, "verificationDate": "2025-03-03"},
        {
            "verified": True,
            "verifiedWith": {"reference": f"RelatedPerson/{daughter}"},
            "verificationDate": "2025-03-03",
        },
    ]
    assert consent["provision"] == {
        "type": "deny",
        "period": {"start": "2025-03-03T14:05:00+01:00"},  # no end: review is not expiry
        "code": [{"coding": [codes.CPR_PROCEDURE.coding()]}],
    }
    finding = ext(consent, c.EXT_CPR_DECISION_FINDING)
    assert finding["valueCodeableConcept"] == {"coding": [codes.NOT_FOR_CPR.coding()]}
    assert ext(consent, c.EXT_REVIEW_DATE)["extension"] == [{"url": "date", "valueDate": "2025-09-03"}]
    assert ext(consent, c.EXT_CLINICAL_RATIONALE)["valueString"] == DECISION.rationale
    assert ext(consent, c.EXT_MENTAL_CAPACITY)["valueCodeableConcept"] == {
        "coding": [{"system": c.CS_MENTAL_CAPACITY, "code": "lacks-capacity"}]
    }
    assert ext(consent, c.EXT_REASON_NOT_DISCUSSED)["valueString"] == DECISION.reason_not_discussed
    endorsement = ext(consent, c.EXT_SENIOR_ENDORSEMENT)
    consultant = IDS.id_for("Practitioner", "registration", "gmc", "7654321")
    assert sub(endorsement, "endorser")["valueReference"] == {"reference": f"Practitioner/{consultant}"}
    assert sub(endorsement, "dateTime")["valueDateTime"] == "2025-03-04T09:00:00+00:00"
    assert ext(consent, c.EXT_DECISION_MAKER_IS_SENIOR)["valueBoolean"] is False
    assert ext(consent, c.EXT_FORM_TYPE)["valueCoding"] == {"system": c.CS_FORM_TYPE, "code": "respect"}


@pytest.mark.parametrize(
    ("status", "consent_status", "careplan_status"),
    [
        (RecordStatus.ACTIVE, "active", "active"),
        (RecordStatus.CANCELLED, "inactive", "revoked"),
        (RecordStatus.SUPERSEDED, "inactive", "revoked"),
        (RecordStatus.ENTERED_IN_ERROR, "entered-in-error", "entered-in-error"),
    ],
)
def test_status_and_the_tag_that_keeps_cancelled_apart_from_superseded(
    status: RecordStatus, consent_status: str, careplan_status: str
) -> None:
    record = CareRecord(replace(DECISION, status=status), replace(PLAN, status=status))
    found = by_type(build_resources(record, IDS))
    for resource, expected in (
        (found["Consent"][0], consent_status),
        (found["CarePlan"][0], careplan_status),
    ):
        assert resource["status"] == expected
        assert resource["meta"]["tag"] == [{"system": c.CS_RECORD_STATUS, "code": str(status)}]


def test_for_cpr_is_a_permit_with_the_for_cpr_finding() -> None:
    consent = build_resources(CareRecord(replace(DECISION, decision=CprDecisionValue.FOR_CPR)), IDS)[0]
    assert consent["provision"]["type"] == "permit"
    assert (
        ext(consent, c.EXT_CPR_DECISION_FINDING)["valueCodeableConcept"]["coding"][0]["code"] == "450475007"
    )


def test_minimal_decision_has_what_the_profile_requires_and_nothing_empty() -> None:
    minimal = CprDecision(
        SourceRef(SYSTEM, "1"), Person("9990001219"), CprDecisionValue.NOT_FOR_CPR, date(2025, 1, 2)
    )
    resources = build_resources(CareRecord(minimal), IDS)
    assert [r["resourceType"] for r in resources] == ["Consent", "Patient"]
    consent = resources[0]
    assert [e["url"] for e in consent["extension"]] == [c.EXT_CPR_DECISION_FINDING]
    assert "verification" not in consent  # discussed unknown: no entry for the patient
    assert set(consent) == {
        "resourceType", "id", "meta", "extension", "identifier", "status", "scope", "category", "patient",
        "policy", "provision",
    }  # fmt: skip
    assert consent["meta"] == {
        "profile": [c.PROFILE_DNACPR_CONSENT],
        "tag": [{"system": c.CS_RECORD_STATUS, "code": "active"}],
    }


def test_review_indefinite_and_document_title() -> None:
    decision = replace(
        DECISION, review_date=None, review_indefinite=True, document_location="Green folder, ward 4"
    )
    found = by_type(build_resources(CareRecord(decision), IDS))
    consent = found["Consent"][0]
    assert ext(consent, c.EXT_REVIEW_DATE)["extension"] == [{"url": "indefinite", "valueBoolean": True}]
    (document,) = found["DocumentReference"]
    assert document["content"] == [{"attachment": {"title": "Green folder, ward 4"}}]


def test_careplan_rows(built: dict[str, list[dict]]) -> None:
    (plan,) = built["CarePlan"]
    patient_ref = {"reference": ref(built["Patient"][0])}
    assert plan["id"] == IDS.id_for("CarePlan", SYSTEM, "RS-000123")
    assert plan["meta"]["profile"] == [c.PROFILE_ACP_CAREPLAN]
    assert plan["identifier"] == [{"system": SYSTEM, "value": "RS-000123"}]
    assert (plan["status"], plan["intent"]) == ("active", "plan")
    assert plan["category"] == [{"coding": [codes.ACP_CATEGORY.coding()]}]
    assert plan["description"] == PLAN.wishes
    assert plan["subject"] == patient_ref
    assert plan["created"] == "2025-03-03"
    consultant = IDS.id_for("Practitioner", "registration", "gmc", "7654321")
    assert plan["author"] == {"reference": f"Practitioner/{consultant}"}
    assert plan["contributor"] == [{"reference": f"Organization/{IDS.id_for('Organization', 'ods', 'RR8')}"}]
    priority = ext(plan, c.EXT_RESPECT_CARE_PRIORITY)
    assert priority["extension"] == [
        {"url": "score", "valueInteger": 80},
        {"url": "text", "valueString": PLAN.care_priority_text},
    ]
    assert ext(plan, c.EXT_PREFERRED_PLACE_OF_CARE)["valueCodeableConcept"] == {"text": "Home"}
    assert ext(plan, c.EXT_PREFERRED_PLACE_OF_DEATH)["valueCodeableConcept"] == {
        "coding": [
            {
                "system": codes.SNOMED,
                "code": "110481000000108",
                "display": "Preferred place of death: home (finding)",
            }
        ]
    }
    assert ext(plan, c.EXT_ADRT)["extension"] == [
        {"url": "present", "valueBoolean": True},
        {"url": "location", "valueString": "Copy at home in kitchen drawer"},
    ]
    assert ext(plan, c.EXT_FORM_TYPE)["valueCoding"] == {"system": c.CS_FORM_TYPE, "code": "respect"}
    assert plan["activity"] == [
        {
            "detail": {
                "code": {
                    "coding": [
                        {
                            "system": codes.SNOMED,
                            "code": "305351004",
                            "display": "Admission to intensive care unit (procedure)",
                        }
                    ]
                },
                "status": "not-started",
                "doNotPerform": True,
            }
        },
        {
            "detail": {
                "code": {"text": "Antibiotics for chest infection"},
                "status": "not-started",
                "doNotPerform": False,
                "description": "Oral only",
            }
        },
    ]
    assert plan["addresses"] == [{"reference": ref(x)} for x in built["Condition"]]
    consent_id = IDS.id_for("Consent", SYSTEM, "RS-000123")
    assert plan["supportingInfo"] == [
        {"reference": f"Consent/{consent_id}", "identifier": {"system": SYSTEM, "value": "RS-000123"}},
        {"reference": ref(built["DocumentReference"][0])},
        {
            "reference": "RelatedPerson/"
            + IDS.id_for("RelatedPerson", NHS, "lpa-health-welfare", "Aisling Smith")
        },
        {"reference": "RelatedPerson/" + IDS.id_for("RelatedPerson", NHS, "friend", "Olu Jones")},
    ]


def test_patient_practitioner_organization(built: dict[str, list[dict]]) -> None:
    (patient,) = built["Patient"]
    gp = IDS.id_for("Organization", "ods", "B86042")
    assert patient == {
        "resourceType": "Patient",
        "id": IDS.id_for("Patient", "9990001219"),
        "meta": {"profile": [c.PROFILE_UKCORE_PATIENT, c.PROFILE_DNACPR_PATIENT]},
        "identifier": [{"system": c.NHS_NUMBER, "value": "9990001219"}],
        "name": [{"family": "Ó Súilleabháin", "given": ["Siân", "Mary"]}],
        "gender": "female",
        "birthDate": "1938-04-02",
        "address": [{"line": ["Rose Cottage", "27 Chapel Lane"], "postalCode": "LS7 4QT"}],
        "generalPractitioner": [{"reference": f"Organization/{gp}"}],
    }
    registrar = next(p for p in built["Practitioner"] if p["identifier"][0]["value"] == "1234567")
    assert registrar == {
        "resourceType": "Practitioner",
        "id": IDS.id_for("Practitioner", "registration", "gmc", "1234567"),
        "meta": {"profile": [c.PROFILE_UKCORE_PRACTITIONER, c.PROFILE_DNACPR_PRACTITIONER]},
        "identifier": [{"system": c.GMC_NUMBER, "value": "1234567"}],
        "name": [{"family": "Evans", "given": ["Ffion"]}],
        "qualification": [{"code": {"text": "Specialty registrar"}}],
    }
    trust = next(o for o in built["Organization"] if o["identifier"][0]["value"] == "RR8")
    assert trust == {
        "resourceType": "Organization",
        "id": IDS.id_for("Organization", "ods", "RR8"),
        "meta": {"profile": [c.PROFILE_UKCORE_ORGANIZATION, c.PROFILE_DNACPR_ORGANIZATION]},
        "identifier": [{"system": c.ODS_ORGANIZATION, "value": "RR8"}],
        "name": "Leeds Teaching Hospitals NHS Trust",
    }


def test_practitioner_and_organisation_without_identifiers_are_keyed_by_name() -> None:
    nurse = Professional(
        "Jones", ("Olu",), "Ward sister", organisation=Organisation(name="St Gemma's Hospice")
    )
    decision = replace(
        DECISION,
        decision_maker=nurse,
        custodian=Organisation(name="St Gemma's Hospice"),
        senior_endorsement=None,
    )
    found = by_type(build_resources(CareRecord(decision), IDS))
    (practitioner,) = found["Practitioner"]
    assert practitioner["id"] == IDS.id_for("Practitioner", "name", "Olu Jones", "St Gemma's Hospice")
    assert "identifier" not in practitioner
    hospice = next(o for o in found["Organization"] if "identifier" not in o)
    assert hospice["id"] == IDS.id_for("Organization", "name", "St Gemma's Hospice")
    assert hospice["name"] == "St Gemma's Hospice"


def test_related_person_document_condition(built: dict[str, list[dict]]) -> None:
    patient_ref = {"reference": ref(built["Patient"][0])}
    daughter = next(r for r in built["RelatedPerson"] if r["name"] == [{"text": "Aisling Smith"}])
    assert daughter == {
        "resourceType": "RelatedPerson",
        "id": IDS.id_for("RelatedPerson", PATIENT.nhs_number, "lpa-health-welfare", "Aisling Smith"),
        "meta": {"profile": [c.PROFILE_UKCORE_RELATEDPERSON]},
        "extension": [
            {
                "url": c.EXT_RELATED_PARTY_ROLE,
                "valueCoding": {"system": c.CS_RELATED_PARTY_ROLE, "code": "lpa-health-welfare"},
            }
        ],
        "patient": patient_ref,
        "relationship": [{"coding": [codes.HPOWATT.coding()], "text": "Daughter"}],
        "name": [{"text": "Aisling Smith"}],
        "telecom": [
            {"system": "phone", "value": "07700 900123"},
            {"system": "email", "value": "aisling@example.org"},
        ],
    }
    friend = next(r for r in built["RelatedPerson"] if r["name"] == [{"text": "Olu Jones"}])
    assert friend["relationship"] == [{"text": "Neighbour"}]  # no HPOWATT: not an LPA
    (document,) = built["DocumentReference"]
    assert document["id"] == IDS.id_for("DocumentReference", SYSTEM, "RS-000123", DECISION.document_location)
    assert (document["status"], document["subject"]) == ("current", patient_ref)
    assert document["content"] == [{"attachment": {"url": DECISION.document_location}}]
    heart = built["Condition"][0]
    assert heart["id"] == IDS.id_for("Condition", SYSTEM, "RS-000123", codes.SNOMED, "84114007", None)
    assert heart["clinicalStatus"]["coding"][0]["code"] == "active"
    assert heart["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert heart["code"] == {
        "coding": [{"system": codes.SNOMED, "code": "84114007", "display": "Heart failure (disorder)"}]
    }
    assert heart["subject"] == patient_ref
    assert built["Condition"][1]["id"] == IDS.id_for("Condition", SYSTEM, "RS-000123", None, None, "Frailty")


def test_naive_times_are_read_as_uk_local_time() -> None:
    assert fhir_datetime(datetime(2025, 7, 1, 12, 0)) == "2025-07-01T12:00:00+01:00"
    assert fhir_datetime(datetime(2025, 1, 1, 12, 0)) == "2025-01-01T12:00:00+00:00"
    assert fhir_datetime(date(2025, 1, 1)) == "2025-01-01"
    assert (
        fhir_datetime(datetime(2025, 1, 1, 12, 0, 0, 1500, tzinfo=UTC)) == "2025-01-01T12:00:00.001500+00:00"
    )


def test_empty_strings_are_absent() -> None:
    decision = replace(
        DECISION,
        rationale="",
        reason_not_discussed="",
        document_location="",
        patient=replace(PATIENT, family_name="", given_names=("",), postcode="", address_lines=("",)),
    )
    found = by_type(build_resources(CareRecord(decision), IDS))
    consent, patient = found["Consent"][0], found["Patient"][0]
    assert c.EXT_CLINICAL_RATIONALE not in {e["url"] for e in consent["extension"]}
    assert "sourceReference" not in consent
    assert not {"name", "address"} & set(patient)


def test_conflicting_versions_of_one_party_in_a_record_are_both_returned() -> None:
    other_daughter = replace(DAUGHTER, phone="07700 900999")
    record = CareRecord(replace(DECISION, others_consulted=(DAUGHTER,)), replace(PLAN, lpa=(other_daughter,)))
    people = by_type(build_resources(record, IDS))["RelatedPerson"]
    assert [p["id"] for p in people].count(people[0]["id"]) == 2  # the writers report and resolve it


# --- properties over generated records -------------------------------------------------------------


def _walk(value: Any, path: str = ""):
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def _check_order(obj: dict, path: str, where: str) -> None:
    """Keys follow the definition's element order (Extension.url first, as FHIR JSON writes it)."""
    index = type_index()
    positions = {name: i for i, name in enumerate(index.children(path))}
    last = -2
    for key in obj:
        if key == "resourceType" or (path == "Extension" and key == "url"):
            position = -1
        else:
            found = index.resolve(path, key)
            assert found is not None, f"{where}.{key} is not an element of {path}"
            info, type_code = found
            position = positions[info.name]
            values = obj[key] if isinstance(obj[key], list) else [obj[key]]
            for item in values:
                if isinstance(item, dict):
                    _check_order(item, index.children_path(info, type_code), f"{where}.{key}")
        assert position >= last, f"{where}: {key} is out of the specification's element order"
        last = position


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(care_records())
def test_generated_records_give_well_formed_resources(record: CareRecord) -> None:
    resources = build_resources(record, IDS)
    assert resources
    refs = {ref(r) for r in resources}
    first = resources[0]["resourceType"]
    assert first == ("Consent" if record.decision else "CarePlan")
    for resource in resources:
        assert R4_ID.match(resource["id"])
        _check_order(resource, resource["resourceType"], resource["resourceType"])
        for path, value in _walk(resource):
            assert value not in ("", [], {}, None), f"{resource['resourceType']}{path} is empty"
            if path.endswith(".reference"):
                target_type = value.split("/", 1)[0]
                if value not in refs:  # only the plan's link to a CPR decision may point outside
                    assert target_type == "Consent" and record.plan and record.plan.cpr_decision_record_id
    # Determinism: a second build is byte-identical.
    again = build_resources(record, IdFactory(DEFAULT_EXAMPLE_KEY))
    assert orjson.dumps(again) == orjson.dumps(resources)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(care_records())
def test_every_property_is_an_r4_element(record: CareRecord) -> None:
    """FHIR XML needs a definition for every property: strict serialisation refuses unknown ones,
    and reading the XML back gives the same JSON (types, arrays and order all as R4 defines them)."""
    for resource in build_resources(record, IDS):
        back, issues = parse_xml(to_xml(resource, strict=True))
        assert issues == []
        assert back == resource


# --- validity against base R4, our profiles and UK Core ---------------------------------------------


@pytest.fixture(scope="module")
def validator(shared):
    from fhir_dnacpr.resources import profiles_dir
    from fhir_dnacpr.validation import Validator

    v = Validator()
    v.load_ig(shared / "fhir-packages" / "uk-core")
    v.load_ig(profiles_dir())
    return v


EXPECTED_WARNINGS = (
    "dom-6",  # no narrative: we do not generate text (it would copy clinical detail into HTML)
    "None of the codings provided are in the value set 'ConsentCategoryCodes'",  # ReSPECT category
    "None of the codings provided are in the value set 'UKCorePersonRelationshipType'",  # HPOWATT
)


def test_the_full_example_is_valid(validator) -> None:
    for resource in build_resources(RESPECT, IDS):
        issues = [
            i for i in validator.validate(resource) if not any(w in i.message for w in EXPECTED_WARNINGS)
        ]
        assert issues == [], (resource["resourceType"], issues)


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    deadline=None,
)
@given(care_records())
def test_generated_records_are_valid_r4_our_profiles_and_uk_core(validator, record: CareRecord) -> None:
    for resource in build_resources(record, IDS):
        issues = validator.validate(resource)
        assert [i for i in issues if i.is_error] == [], resource["resourceType"]
        unexpected = [i for i in issues if not any(w in i.message for w in EXPECTED_WARNINGS)]
        assert unexpected == [], (resource["resourceType"], unexpected)


@given(st.lists(care_records(), min_size=1, max_size=6))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_shared_parties_cache_changes_nothing_in_the_output(records: list[CareRecord]) -> None:
    """The run-wide Organization/Practitioner cache is an optimisation only: same resources, byte for byte."""
    shared = SharedParties(IDS)
    for record in records * 2:  # the second round is served from the cache
        cached = build_resources(record, IDS, shared)
        assert orjson.dumps(cached) == orjson.dumps(build_resources(record, IDS))


def test_shared_parties_cache_refuses_another_key() -> None:
    with pytest.raises(ValueError, match="another IdFactory"):
        build_resources(CareRecord(DECISION), IDS, SharedParties(IdFactory(b"other")))
