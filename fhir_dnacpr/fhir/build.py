"""Canonical record → FHIR R4 resources (plain JSON dicts), as docs/fhir-mapping.md specifies.

This runs on the hot path (≥10,000 records/s on one core), so it is plain dict construction: no
models, no deep copies, no validation. Keys are inserted in the specification's element order so the
JSON reads like the spec's examples, and the output is a pure function of the record and the id key
(byte-identical on re-runs). Empty strings count as absent: FHIR forbids them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fhir_dnacpr import canonical as c
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.model import (
    AdvanceCarePlan,
    CareRecord,
    Coded,
    CprDecision,
    CprDecisionValue,
    FormType,
    Organisation,
    PartyRole,
    Person,
    Professional,
    RecordStatus,
    RelatedParty,
    SourceRef,
)
from fhir_dnacpr.terminology import codes

Resource = dict[str, Any]

PROFILE_UKCORE_CONDITION = f"{c.UKCORE}/UKCore-Condition"  # not (yet) in canonical.py
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL_ACTIVE = codes.Code(CONDITION_CLINICAL, "active", "Active")
PROBLEM_LIST_ITEM = codes.Code(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")

LOCAL_TIMEZONE = ZoneInfo("Europe/London")
"""How a naive (zone-less) source datetime is read: FHIR requires a zone once a time is given."""

CONSENT_STATUS = {
    RecordStatus.ACTIVE: "active",
    RecordStatus.CANCELLED: "inactive",
    RecordStatus.SUPERSEDED: "inactive",
    RecordStatus.ENTERED_IN_ERROR: "entered-in-error",
}
CAREPLAN_STATUS = {
    RecordStatus.ACTIVE: "active",
    RecordStatus.CANCELLED: "revoked",
    RecordStatus.SUPERSEDED: "revoked",
    RecordStatus.ENTERED_IN_ERROR: "entered-in-error",
}
MISSING: Any = object()
_URL = re.compile(r"(?:https?|ftp|file)://\S+\Z")


def fhir_datetime(value: date | datetime) -> str:
    """A model date or datetime as FHIR ``date``/``dateTime``/``instant`` text, precision kept."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=LOCAL_TIMEZONE)
        return value.isoformat()
    return value.isoformat()


def is_url(location: str) -> bool:
    """Whether a document location goes in ``attachment.url`` (else it is a title, e.g. a cabinet)."""
    return _URL.match(location) is not None


def codeable_concept(coded: Coded) -> dict | None:
    """A ``Coded`` as a CodeableConcept (one coding plus text); None when it holds nothing."""
    concept: dict[str, Any] = {}
    if coded.system or coded.code or coded.display:
        coding = {}
        if coded.system:
            coding["system"] = coded.system
        if coded.code:
            coding["code"] = coded.code
        if coded.display:
            coding["display"] = coded.display
        concept["coding"] = [coding]
    if coded.text:
        concept["text"] = coded.text
    return concept or None


def _human_name(family: str | None, given: tuple[str, ...]) -> list[dict] | None:
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    given_list = [g for g in given if g]
    if given_list:
        name["given"] = given_list
    return [name] if name else None


def _meta(profile: str, source: SourceRef | None = None, status: RecordStatus | None = None) -> dict:
    meta: dict[str, Any] = {}
    if source is not None and source.last_updated is not None:
        meta["lastUpdated"] = fhir_datetime(source.last_updated)
    meta["profile"] = [profile]
    if status is not None:
        meta["tag"] = [{"system": c.CS_RECORD_STATUS, "code": str(status)}]
    return meta


class SharedParties:
    """Built Organization and Practitioner resources of one run, by the canonical value they came from.

    The same clinician and GP practice recur on thousands of records; building them once per run
    (bounded: the table is cleared when full) saves the dict building and the keyed hash. The cached
    dicts are shared between records, so callers passing a cache must not mutate what they get back
    (the convert pipeline serialises them straight away). Tied to one ``IdFactory``.
    """

    __slots__ = ("ids", "resources")
    MAX_ENTRIES = 4096

    def __init__(self, ids: IdFactory) -> None:
        self.ids = ids
        self.resources: dict[Organisation | Professional, Resource | None] = {}

    def remember(self, party: Organisation | Professional, resource: Resource | None) -> None:
        if len(self.resources) >= self.MAX_ENTRIES:
            self.resources.clear()
        self.resources[party] = resource


class _Builder:
    """Collects one record's resources; a resource met twice (same Type/id, same content) is kept once.

    Conflicting versions of one Type/id (say the same GMC number with two spellings of a name) are
    both kept, in order, so the writers can report them and let the later one win.
    """

    __slots__ = ("ids", "out", "seen", "shared")

    def __init__(self, ids: IdFactory, shared: SharedParties | None = None) -> None:
        if shared is not None and shared.ids is not ids:
            raise ValueError("the SharedParties cache belongs to another IdFactory")
        self.ids = ids
        self.out: list[Resource] = []
        self.seen: dict[str, Resource] = {}
        self.shared = shared

    def add(self, resource: Resource) -> dict:
        ref = f"{resource['resourceType']}/{resource['id']}"
        known = self.seen.get(ref)
        if known is None:
            self.seen[ref] = resource
            self.out.append(resource)
        elif known != resource:
            self.out.append(resource)
        return {"reference": ref}

    # --- parties -------------------------------------------------------------------------------

    def patient(self, person: Person) -> dict:
        patient: Resource = {
            "resourceType": "Patient",
            "id": self.ids.id_for("Patient", person.nhs_number),
            "meta": {"profile": [c.PROFILE_UKCORE_PATIENT, c.PROFILE_DNACPR_PATIENT]},
            "identifier": [{"system": c.NHS_NUMBER, "value": person.nhs_number}],
        }
        name = _human_name(person.family_name, person.given_names)
        if name:
            patient["name"] = name
        if person.gender:
            patient["gender"] = str(person.gender)
        if person.birth_date:
            patient["birthDate"] = person.birth_date.isoformat()
        lines = [line for line in person.address_lines if line]
        if lines or person.postcode:
            address: dict[str, Any] = {}
            if lines:
                address["line"] = lines
            if person.postcode:
                address["postalCode"] = person.postcode
            patient["address"] = [address]
        if person.gp_practice:
            gp = self.organization(person.gp_practice)
            if gp:
                patient["generalPractitioner"] = [gp]
        return self.add(patient)

    def organization(self, org: Organisation) -> dict | None:
        shared = self.shared
        if shared is not None:
            resource = shared.resources.get(org, MISSING)
            if resource is MISSING:
                resource = self._organization(org)
                shared.remember(org, resource)
        else:
            resource = self._organization(org)
        return self.add(resource) if resource is not None else None

    def _organization(self, org: Organisation) -> Resource | None:
        if org.ods_code:
            org_id = self.ids.id_for("Organization", "ods", org.ods_code)
        elif org.name:
            org_id = self.ids.id_for("Organization", "name", org.name)
        else:
            return None
        resource: Resource = {
            "resourceType": "Organization",
            "id": org_id,
            "meta": {"profile": [c.PROFILE_UKCORE_ORGANIZATION, c.PROFILE_DNACPR_ORGANIZATION]},
        }
        if org.ods_code:
            resource["identifier"] = [{"system": c.ODS_ORGANIZATION, "value": org.ods_code}]
        if org.name:
            resource["name"] = org.name
        return resource

    def practitioner(self, pro: Professional) -> dict:
        shared = self.shared
        if shared is None:
            return self.add(self._practitioner(pro))
        resource = shared.resources.get(pro)
        if resource is None:
            resource = self._practitioner(pro)
            shared.remember(pro, resource)
        return self.add(resource)

    def _practitioner(self, pro: Professional) -> Resource:
        body = str(pro.registration_body) if pro.registration_body else None
        if pro.registration_number:
            pid = self.ids.id_for("Practitioner", "registration", body, pro.registration_number)
        else:
            org = pro.organisation
            org_key = (org.ods_code or org.name) if org else None
            pid = self.ids.id_for("Practitioner", "name", pro.display_name, org_key)
        resource: Resource = {
            "resourceType": "Practitioner",
            "id": pid,
            "meta": {"profile": [c.PROFILE_UKCORE_PRACTITIONER, c.PROFILE_DNACPR_PRACTITIONER]},
        }
        if pro.registration_number:
            identifier = {"value": pro.registration_number}
            system = c.REGISTRATION_SYSTEMS.get(body) if body else None
            if system:
                identifier = {"system": system, "value": pro.registration_number}
            resource["identifier"] = [identifier]
        name = _human_name(pro.family_name, pro.given_names)
        if name:
            resource["name"] = name
        if pro.role:
            resource["qualification"] = [{"code": {"text": pro.role}}]
        return resource

    def related_person(self, party: RelatedParty, person: Person, patient_ref: dict) -> dict:
        role = str(party.role) if party.role else str(PartyRole.OTHER)
        resource: Resource = {
            "resourceType": "RelatedPerson",
            "id": self.ids.id_for("RelatedPerson", person.nhs_number, role, party.name),
            "meta": {"profile": [c.PROFILE_UKCORE_RELATEDPERSON]},
            "extension": [
                {
                    "url": c.EXT_RELATED_PARTY_ROLE,
                    "valueCoding": {"system": c.CS_RELATED_PARTY_ROLE, "code": role},
                }
            ],
            "patient": patient_ref,
        }
        relationship: dict[str, Any] = {}
        if role == PartyRole.LPA_HEALTH_WELFARE:
            relationship["coding"] = [codes.HPOWATT.coding()]
        if party.relationship:
            relationship["text"] = party.relationship
        if relationship:
            resource["relationship"] = [relationship]
        if party.name:
            resource["name"] = [{"text": party.name}]
        telecom = []
        if party.phone:
            telecom.append({"system": "phone", "value": party.phone})
        if party.email:
            telecom.append({"system": "email", "value": party.email})
        if telecom:
            resource["telecom"] = telecom
        return self.add(resource)

    def document(self, source: SourceRef, location: str, patient_ref: dict) -> dict:
        attachment = {"url": location} if is_url(location) else {"title": location}
        return self.add(
            {
                "resourceType": "DocumentReference",
                "id": self.ids.id_for("DocumentReference", source.system, source.record_id, location),
                "meta": {"profile": [c.PROFILE_UKCORE_DOCUMENTREFERENCE]},
                "status": "current",
                "subject": patient_ref,
                "content": [{"attachment": attachment}],
            }
        )

    def condition(self, source: SourceRef, coded: Coded, patient_ref: dict) -> dict | None:
        concept = codeable_concept(coded)
        if concept is None:
            return None
        key_text = None if coded.code else (coded.text or coded.display)
        return self.add(
            {
                "resourceType": "Condition",
                "id": self.ids.id_for(
                    "Condition", source.system, source.record_id, coded.system, coded.code, key_text
                ),
                "meta": {"profile": [PROFILE_UKCORE_CONDITION]},
                "clinicalStatus": {"coding": [CLINICAL_ACTIVE.coding()]},
                "category": [{"coding": [PROBLEM_LIST_ITEM.coding()]}],
                "code": concept,
                "subject": patient_ref,
            }
        )

    # --- the decision and the plan ----------------------------------------------------------------

    def consent(self, d: CprDecision) -> None:
        source = d.source
        patient_ref = self.patient(d.patient)
        not_for_cpr = d.decision == CprDecisionValue.NOT_FOR_CPR
        finding = codes.NOT_FOR_CPR if not_for_cpr else codes.FOR_CPR
        extension: list[dict] = [
            {"url": c.EXT_CPR_DECISION_FINDING, "valueCodeableConcept": {"coding": [finding.coding()]}}
        ]
        if d.review_date or d.review_indefinite:
            review = []
            if d.review_date:
                review.append({"url": "date", "valueDate": d.review_date.isoformat()})
            if d.review_indefinite:
                review.append({"url": "indefinite", "valueBoolean": True})
            extension.append({"url": c.EXT_REVIEW_DATE, "extension": review})
        if d.rationale:
            extension.append({"url": c.EXT_CLINICAL_RATIONALE, "valueString": d.rationale})
        if d.capacity:
            extension.append(
                {
                    "url": c.EXT_MENTAL_CAPACITY,
                    "valueCodeableConcept": {
                        "coding": [{"system": c.CS_MENTAL_CAPACITY, "code": str(d.capacity)}]
                    },
                }
            )
        if d.reason_not_discussed:
            extension.append({"url": c.EXT_REASON_NOT_DISCUSSED, "valueString": d.reason_not_discussed})
        if d.senior_endorsement:
            endorsement = [{"url": "endorser", "valueReference": self.practitioner(d.senior_endorsement.by)}]
            if d.senior_endorsement.at:
                endorsement.append(
                    {"url": "dateTime", "valueDateTime": fhir_datetime(d.senior_endorsement.at)}
                )
            extension.append({"url": c.EXT_SENIOR_ENDORSEMENT, "extension": endorsement})
        if d.decision_maker_is_senior is not None:
            extension.append(
                {"url": c.EXT_DECISION_MAKER_IS_SENIOR, "valueBoolean": d.decision_maker_is_senior}
            )
        if d.form_type:
            extension.append(
                {"url": c.EXT_FORM_TYPE, "valueCoding": {"system": c.CS_FORM_TYPE, "code": str(d.form_type)}}
            )

        consent: Resource = {
            "resourceType": "Consent",
            "id": self.ids.id_for("Consent", source.system, source.record_id),
            "meta": _meta(c.PROFILE_DNACPR_CONSENT, source, d.status),
            "extension": extension,
            "identifier": [{"system": source.system, "value": source.record_id}],
            "status": CONSENT_STATUS[d.status],
            "scope": {"coding": [codes.SCOPE_ADR.coding()]},
        }
        category = [{"coding": [codes.CATEGORY_DNR.coding()]}]
        if d.form_type == FormType.RESPECT:
            category.append({"coding": [codes.CATEGORY_RESPECT_FORM.coding()]})
        consent["category"] = category
        consent["patient"] = patient_ref
        if d.recorded_date:
            consent["dateTime"] = fhir_datetime(d.recorded_date)
        if d.decision_maker:
            consent["performer"] = [self.practitioner(d.decision_maker)]
        if d.custodian:
            custodian = self.organization(d.custodian)
            if custodian:
                consent["organization"] = [custodian]
        if d.document_location:
            consent["sourceReference"] = self.document(source, d.document_location, patient_ref)
        consent["policy"] = [{"uri": c.POLICY_RCUK_DNACPR}]
        verification = []
        if d.discussed_with_patient is not None:
            entry: dict[str, Any] = {"verified": d.discussed_with_patient, "verifiedWith": patient_ref}
            if d.discussion_date:
                entry["verificationDate"] = d.discussion_date.isoformat()
            verification.append(entry)
        for party in d.others_consulted:
            entry = {"verified": True, "verifiedWith": self.related_person(party, d.patient, patient_ref)}
            if party.consulted_on:
                entry["verificationDate"] = party.consulted_on.isoformat()
            verification.append(entry)
        if verification:
            consent["verification"] = verification
        consent["provision"] = {
            "type": "deny" if not_for_cpr else "permit",
            "period": {"start": fhir_datetime(d.decision_date)},
            "code": [{"coding": [codes.CPR_PROCEDURE.coding()]}],
        }
        self.out.insert(0, consent)  # the decision leads its supporting resources

    def careplan(self, p: AdvanceCarePlan) -> None:
        source = p.source
        start = len(self.out)
        patient_ref = self.patient(p.patient)
        extension: list[dict] = []
        if p.care_priority_score is not None or p.care_priority_text:
            priority: list[dict] = []
            if p.care_priority_score is not None:
                priority.append({"url": "score", "valueInteger": p.care_priority_score})
            if p.care_priority_text:
                priority.append({"url": "text", "valueString": p.care_priority_text})
            extension.append({"url": c.EXT_RESPECT_CARE_PRIORITY, "extension": priority})
        for url, place in (
            (c.EXT_PREFERRED_PLACE_OF_DEATH, p.preferred_place_of_death),
            (c.EXT_PREFERRED_PLACE_OF_CARE, p.preferred_place_of_care),
        ):
            concept = codeable_concept(place) if place else None
            if concept:
                extension.append({"url": url, "valueCodeableConcept": concept})
        if p.has_adrt is not None or p.adrt_location:
            adrt: list[dict] = []
            if p.has_adrt is not None:
                adrt.append({"url": "present", "valueBoolean": p.has_adrt})
            if p.adrt_location:
                adrt.append({"url": "location", "valueString": p.adrt_location})
            extension.append({"url": c.EXT_ADRT, "extension": adrt})
        if p.form_type:
            extension.append(
                {"url": c.EXT_FORM_TYPE, "valueCoding": {"system": c.CS_FORM_TYPE, "code": str(p.form_type)}}
            )

        plan: Resource = {
            "resourceType": "CarePlan",
            "id": self.ids.id_for("CarePlan", source.system, source.record_id),
            "meta": _meta(c.PROFILE_ACP_CAREPLAN, source, p.status),
        }
        if extension:
            plan["extension"] = extension
        plan["identifier"] = [{"system": source.system, "value": source.record_id}]
        plan["status"] = CAREPLAN_STATUS[p.status]
        plan["intent"] = "plan"
        plan["category"] = [{"coding": [codes.ACP_CATEGORY.coding()]}]
        if p.wishes:
            plan["description"] = p.wishes
        plan["subject"] = patient_ref
        if p.created:
            plan["created"] = fhir_datetime(p.created)
        if p.author:
            plan["author"] = self.practitioner(p.author)
        if p.custodian:
            custodian = self.organization(p.custodian)
            if custodian:
                plan["contributor"] = [custodian]
        addresses = [ref for ref in (self.condition(source, x, patient_ref) for x in p.conditions) if ref]
        if addresses:
            plan["addresses"] = addresses
        supporting: list[dict] = []
        if p.cpr_decision_record_id:
            supporting.append(
                {
                    "reference": "Consent/"
                    + self.ids.id_for("Consent", source.system, p.cpr_decision_record_id),
                    "identifier": {"system": source.system, "value": p.cpr_decision_record_id},
                }
            )
        if p.document_location:
            supporting.append(self.document(source, p.document_location, patient_ref))
        for party in (*p.lpa, *p.people_to_involve):
            supporting.append(self.related_person(party, p.patient, patient_ref))
        if supporting:
            plan["supportingInfo"] = supporting
        activity = []
        for rec in p.treatment_recommendations:
            detail: dict[str, Any] = {}
            concept = codeable_concept(rec.treatment)
            if concept:
                detail["code"] = concept
            detail["status"] = "not-started"
            detail["doNotPerform"] = bool(rec.do_not_perform)
            if rec.note:
                detail["description"] = rec.note
            activity.append({"detail": detail})
        if activity:
            plan["activity"] = activity
        self.out.insert(start, plan)


def build_resources(
    record: CareRecord, ids: IdFactory, shared: SharedParties | None = None
) -> list[Resource]:
    """Every resource one canonical record yields: Consent and/or CarePlan first, then what they
    reference (Patient, Practitioner, Organization, RelatedPerson, DocumentReference, Condition).

    A resource shared by the decision and the plan (the Patient, a practitioner) appears once.
    ``shared`` reuses Organization/Practitioner resources across the records of a run (read-only).
    """
    builder = _Builder(ids, shared)
    if record.decision is not None:
        builder.consent(record.decision)
    if record.plan is not None:
        builder.careplan(record.plan)
    return builder.out
