"""Canonical record → FHIR R4 resources (plain JSON dicts), as docs/fhir-mapping.md specifies.

This runs on the hot path (≥10,000 records/s on one core), so it is plain dict construction: no
models, no deep copies, no validation. Keys are inserted in the specification's element order so the
JSON reads like the spec's examples, and the output is a pure function of the record and the id key
(byte-identical on re-runs). Empty strings count as absent: FHIR forbids them.

Fragments that never vary (fixed codings, ``meta`` blocks, coded extensions) are built once
at import and shared by every resource, so built resources are read-only: code that changes one in
place (supersession marking changes ``status`` and ``meta.tag``) only touches parts made per record.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from fhir_dnacpr import canonical as c
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.model import (
    AdvanceCarePlan,
    Capacity,
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

# --- shared read-only fragments (see the module docstring) ----------------------------------------
_CONCEPT_SCOPE_ADR = {"coding": [codes.SCOPE_ADR.coding()]}
_CATEGORY_DNR = [{"coding": [codes.CATEGORY_DNR.coding()]}]
_CATEGORY_DNR_RESPECT = [
    {"coding": [codes.CATEGORY_DNR.coding()]},
    {"coding": [codes.CATEGORY_RESPECT_FORM.coding()]},
]
_POLICY = [{"uri": c.POLICY_RCUK_DNACPR}]
_CPR_PROCEDURE = [{"coding": [codes.CPR_PROCEDURE.coding()]}]
_FINDING = {
    True: {
        "url": c.EXT_CPR_DECISION_FINDING,
        "valueCodeableConcept": {"coding": [codes.NOT_FOR_CPR.coding()]},
    },
    False: {"url": c.EXT_CPR_DECISION_FINDING, "valueCodeableConcept": {"coding": [codes.FOR_CPR.coding()]}},
}
_REVIEW_INDEFINITE = {"url": "indefinite", "valueBoolean": True}
_ACP_CATEGORY = [{"coding": [codes.ACP_CATEGORY.coding()]}]
_CONDITION_CLINICAL = {"coding": [CLINICAL_ACTIVE.coding()]}
_CONDITION_CATEGORY = [{"coding": [PROBLEM_LIST_ITEM.coding()]}]
_HPOWATT_CODING = [codes.HPOWATT.coding()]
_PROFILES_PATIENT = [c.PROFILE_UKCORE_PATIENT, c.PROFILE_DNACPR_PATIENT]
_PROFILES_ORGANIZATION = [c.PROFILE_UKCORE_ORGANIZATION, c.PROFILE_DNACPR_ORGANIZATION]
_PROFILES_PRACTITIONER = [c.PROFILE_UKCORE_PRACTITIONER, c.PROFILE_DNACPR_PRACTITIONER]
_PROFILES_RELATEDPERSON = [c.PROFILE_UKCORE_RELATEDPERSON]
_PROFILES_DOCUMENTREFERENCE = [c.PROFILE_UKCORE_DOCUMENTREFERENCE]
_PROFILES_CONDITION = [PROFILE_UKCORE_CONDITION]
_PROFILES_CONSENT = [c.PROFILE_DNACPR_CONSENT]
_PROFILES_CAREPLAN = [c.PROFILE_ACP_CAREPLAN]
# Whole ``meta`` blocks of the resources supersession never touches (all but Consent and CarePlan).
_META_PATIENT = {"profile": _PROFILES_PATIENT}
_META_ORGANIZATION = {"profile": _PROFILES_ORGANIZATION}
_META_PRACTITIONER = {"profile": _PROFILES_PRACTITIONER}
_META_RELATEDPERSON = {"profile": _PROFILES_RELATEDPERSON}
_META_DOCUMENTREFERENCE = {"profile": _PROFILES_DOCUMENTREFERENCE}
_META_CONDITION = {"profile": _PROFILES_CONDITION}
_CODED_EXTENSIONS: dict[tuple[str, str, str], dict] = {}

# Enum members read once: a class attribute lookup on an enum costs more than the comparison itself.
_NOT_FOR_CPR = CprDecisionValue.NOT_FOR_CPR
_RESPECT = FormType.RESPECT
_LPA_HEALTH_WELFARE = PartyRole.LPA_HEALTH_WELFARE
_OTHER_ROLE = str(PartyRole.OTHER)
_NHS_NUMBER_SYSTEM = c.NHS_NUMBER
_RECORD_STATUS_SYSTEM = c.CS_RECORD_STATUS


def _coded_extension(url: str, system: str, code: str, as_concept: bool) -> dict:
    """``{url, valueCoding|valueCodeableConcept}`` for a code from a small fixed set, built once."""
    key = (url, system, code)
    found = _CODED_EXTENSIONS.get(key)
    if found is None:
        coding = {"system": system, "code": code}
        value = {"valueCodeableConcept": {"coding": [coding]}} if as_concept else {"valueCoding": coding}
        found = {"url": url, **value}
        if len(_CODED_EXTENSIONS) < 256:  # the code sets are small; anything else is not kept
            _CODED_EXTENSIONS[key] = found
    return found


def _enum_extensions(url: str, system: str, members: type[StrEnum], as_concept: bool) -> dict[Any, dict]:
    """The coded extension of each member of a small enum, by member (a plain equal text finds it too)."""
    return {member: _coded_extension(url, system, str(member), as_concept) for member in members}


_CAPACITY_EXTENSIONS = _enum_extensions(c.EXT_MENTAL_CAPACITY, c.CS_MENTAL_CAPACITY, Capacity, True)
_FORM_TYPE_EXTENSIONS = _enum_extensions(c.EXT_FORM_TYPE, c.CS_FORM_TYPE, FormType, False)
_ROLE_EXTENSIONS = _enum_extensions(c.EXT_RELATED_PARTY_ROLE, c.CS_RELATED_PARTY_ROLE, PartyRole, False)


_TEXT_CACHE_SIZE = 8192
_date_texts: dict[Any, str] = {}
"""Text by ``date`` value, and by ``(datetime, tzinfo, fold)`` for an aware datetime."""
_local_texts: dict[datetime, str] = {}
"""Text by datetime of fold 0 that is naive or in ``LOCAL_TIMEZONE`` (the usual source times), keyed by
the bare value: two such values are equal only when both are naive or both local, with the same fields
(only ``fold`` could differ, and only fold-0 values look up here), so they have one text. Saves building
and hashing a key tuple for the commonest cases."""


def fhir_datetime(value: date | datetime) -> str:
    """A model date or datetime as FHIR ``date``/``dateTime``/``instant`` text, precision kept.

    Cached (bounded): the same decision dates and update times recur across records, and an aware
    ``isoformat`` costs microseconds. Aware datetimes compare equal across zones and folds, so they
    are keyed with their zone and fold.
    """
    kind = value.__class__
    if kind is date:
        key: Any = value
    elif kind is datetime:
        zone = value.tzinfo
        if (zone is LOCAL_TIMEZONE or zone is None) and not value.fold:
            found = _local_texts.get(value)
            if found is not None:
                return found
            text = (value if zone else value.replace(tzinfo=LOCAL_TIMEZONE)).isoformat()
            if len(_local_texts) >= _TEXT_CACHE_SIZE:
                _local_texts.clear()
            _local_texts[value] = text
            return text
        key = (value, zone, value.fold)
    else:  # a subclass: its own equality and text, so not cached
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=LOCAL_TIMEZONE)
        return value.isoformat()
    found = _date_texts.get(key)
    if found is not None:
        return found
    if kind is datetime and value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TIMEZONE)
    text = value.isoformat()
    if len(_date_texts) >= _TEXT_CACHE_SIZE:
        _date_texts.clear()
    _date_texts[key] = text
    return text


def _date_text(value: date) -> str:
    """A model ``date`` as FHIR ``date`` text (``isoformat``, cached like ``fhir_datetime``)."""
    if value.__class__ is date:
        found = _date_texts.get(value)
        if found is not None:
            return found
        return fhir_datetime(value)
    return value.isoformat()


def is_url(location: str) -> bool:
    """Whether a document location goes in ``attachment.url`` (else it is a title, e.g. a cabinet)."""
    return "://" in location and _URL.match(location) is not None  # no "://", no match: skip the regex


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
    given_list = list(filter(None, given))
    if given_list:
        name["given"] = given_list
    return [name] if name else None


class SharedParties:
    """Built Organization and Practitioner resources of one run, by the canonical value they came from.

    The same clinician and GP practice recur on thousands of records; building them once per run
    (bounded: the table is cleared when full) saves the dict building and the keyed hash. The cached
    dicts are shared between records, so callers passing a cache must not mutate what they get back
    (the convert pipeline serialises them straight away). Tied to one ``IdFactory``.

    The mapper hands out one object for repeated cells, so a lookup by identity comes first: it
    skips hashing the (nested) dataclass. The identity table holds the object itself, so an id is
    never reused while its entry lives. Each entry also keeps the ``{"reference": ...}`` dict that
    points at the resource, shared read-only like the resource itself.
    """

    __slots__ = ("by_identity", "ids", "resources")
    MAX_ENTRIES = 4096

    def __init__(self, ids: IdFactory) -> None:
        self.ids = ids
        self.resources: dict[Organisation | Professional, Resource | None] = {}
        self.by_identity: dict[int, _SharedEntry] = {}

    def remember(self, party: Organisation | Professional, resource: Resource | None) -> _SharedEntry:
        if len(self.resources) >= self.MAX_ENTRIES or len(self.by_identity) >= self.MAX_ENTRIES:
            self.resources.clear()
            self.by_identity.clear()
        self.resources[party] = resource
        ref = f"{resource['resourceType']}/{resource['id']}" if resource is not None else ""
        entry = (party, resource, {"reference": ref})
        self.by_identity[id(party)] = entry
        return entry


_SharedEntry = tuple[Any, Resource | None, dict[str, str]]
"""(party, its resource or None, the reference dict pointing at it)."""


class _Builder:
    """Collects one record's resources; a resource met twice (same Type/id, same content) is kept once.

    Conflicting versions of one Type/id (say the same GMC number with two spellings of a name) are
    both kept, in order, so the writers can report them and let the later one win.

    "Met before" is ``resource in out``: a record yields a handful of resources, and comparing with
    each is cheaper than keeping a table by ``Type/id`` (two resources of other types or ids differ at
    their first or second key; a shared party is found by identity at once).
    """

    __slots__ = ("consent_key", "ids", "last_patient", "out", "shared")

    def __init__(self, ids: IdFactory, shared: SharedParties | None = None) -> None:
        if shared is not None and shared.ids is not ids:
            raise ValueError("the SharedParties cache belongs to another IdFactory")
        self.ids = ids
        self.out: list[Resource] = []
        self.shared = shared
        self.last_patient: tuple[Person, dict] | None = None
        self.consent_key: tuple[str, str, str] | None = None
        """(system, record id, Consent id) of this record's decision: its plan points at it by that id."""

    def add(self, resource: Resource, ref: str | None = None) -> dict:
        """Output the resource unless this record already has it; the reference pointing at it."""
        if ref is None:
            ref = f"{resource['resourceType']}/{resource['id']}"
        self._keep(resource)
        return {"reference": ref}

    def _keep(self, resource: Resource) -> None:
        """Output the resource unless this record already has it (an equal copy counts as had)."""
        out = self.out
        if resource not in out:
            out.append(resource)

    # --- parties -------------------------------------------------------------------------------

    def patient(self, person: Person) -> dict:
        last = self.last_patient
        if last is not None and last[0] is person:
            return last[1]  # the decision's and the plan's person: built (and added) once
        nhs_number = person.nhs_number
        patient_id = self.ids.id_for("Patient", nhs_number)
        patient: Resource = {
            "resourceType": "Patient",
            "id": patient_id,
            "meta": _META_PATIENT,
            "identifier": [{"system": _NHS_NUMBER_SYSTEM, "value": nhs_number}],
        }
        family = person.family_name
        given = person.given_names
        if given:
            given = list(filter(None, given))
        if family:
            patient["name"] = [{"family": family, "given": given}] if given else [{"family": family}]
        elif given:
            patient["name"] = [{"given": given}]
        if person.gender:
            patient["gender"] = str(person.gender)
        if person.birth_date:
            patient["birthDate"] = _date_text(person.birth_date)
        lines = person.address_lines
        if lines:
            lines = list(filter(None, lines))
        postcode = person.postcode
        if lines:
            patient["address"] = [{"line": lines, "postalCode": postcode} if postcode else {"line": lines}]
        elif postcode:
            patient["address"] = [{"postalCode": postcode}]
        if person.gp_practice:
            gp = self.organization(person.gp_practice)
            if gp:
                patient["generalPractitioner"] = [gp]
        ref = self.add(patient, "Patient/" + patient_id)
        self.last_patient = (person, ref)
        return ref

    def organization(self, org: Organisation) -> dict | None:
        shared = self.shared
        if shared is None:
            resource = self._organization(org)
            return self.add(resource) if resource is not None else None
        entry = shared.by_identity.get(id(org))
        if entry is None or entry[0] is not org:
            resource = shared.resources.get(org, MISSING)
            if resource is MISSING:
                resource = self._organization(org)
            entry = shared.remember(org, resource)
        resource = entry[1]
        if resource is None:
            return None
        self._keep(resource)
        return entry[2]

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
            "meta": _META_ORGANIZATION,
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
        entry = shared.by_identity.get(id(pro))
        if entry is None or entry[0] is not pro:
            resource = shared.resources.get(pro)
            if resource is None:
                resource = self._practitioner(pro)
            entry = shared.remember(pro, resource)
        self._keep(entry[1])
        return entry[2]

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
            "meta": _META_PRACTITIONER,
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
        role = party.role
        role = str(role) if role else _OTHER_ROLE
        role_extension = _ROLE_EXTENSIONS.get(role) or _coded_extension(
            c.EXT_RELATED_PARTY_ROLE, c.CS_RELATED_PARTY_ROLE, role, False
        )
        name = party.name
        person_id = self.ids.id_for("RelatedPerson", person.nhs_number, role, name)
        resource: Resource = {
            "resourceType": "RelatedPerson",
            "id": person_id,
            "meta": _META_RELATEDPERSON,
            "extension": [role_extension],
            "patient": patient_ref,
        }
        text = party.relationship
        if role == _LPA_HEALTH_WELFARE:
            resource["relationship"] = [
                {"coding": _HPOWATT_CODING, "text": text} if text else {"coding": _HPOWATT_CODING}
            ]
        elif text:
            resource["relationship"] = [{"text": text}]
        if name:
            resource["name"] = [{"text": name}]
        phone = party.phone
        email = party.email
        if phone:
            telecom = [{"system": "phone", "value": phone}]
            if email:
                telecom.append({"system": "email", "value": email})
            resource["telecom"] = telecom
        elif email:
            resource["telecom"] = [{"system": "email", "value": email}]
        return self.add(resource, "RelatedPerson/" + person_id)

    def document(self, source: SourceRef, location: str, patient_ref: dict) -> dict:
        attachment = {"url": location} if is_url(location) else {"title": location}
        document_id = self.ids.id_for("DocumentReference", source.system, source.record_id, location)
        return self.add(
            {
                "resourceType": "DocumentReference",
                "id": document_id,
                "meta": _META_DOCUMENTREFERENCE,
                "status": "current",
                "subject": patient_ref,
                "content": [{"attachment": attachment}],
            },
            "DocumentReference/" + document_id,
        )

    def condition(self, source: SourceRef, coded: Coded, patient_ref: dict) -> dict | None:
        concept = codeable_concept(coded)
        if concept is None:
            return None
        key_text = None if coded.code else (coded.text or coded.display)
        condition_id = self.ids.id_for(
            "Condition", source.system, source.record_id, coded.system, coded.code, key_text
        )
        return self.add(
            {
                "resourceType": "Condition",
                "id": condition_id,
                "meta": _META_CONDITION,
                "clinicalStatus": _CONDITION_CLINICAL,
                "category": _CONDITION_CATEGORY,
                "code": concept,
                "subject": patient_ref,
            },
            "Condition/" + condition_id,
        )

    # --- the decision and the plan ----------------------------------------------------------------

    def consent(self, d: CprDecision) -> None:
        source = d.source
        person = d.patient
        patient_ref = self.patient(person)
        decision = d.decision
        not_for_cpr = decision is _NOT_FOR_CPR or decision == _NOT_FOR_CPR
        extension: list[dict] = [_FINDING[not_for_cpr]]
        review_date = d.review_date
        if review_date or d.review_indefinite:
            review = []
            if review_date:
                review.append({"url": "date", "valueDate": _date_text(review_date)})
            if d.review_indefinite:
                review.append(_REVIEW_INDEFINITE)
            extension.append({"url": c.EXT_REVIEW_DATE, "extension": review})
        if d.rationale:
            extension.append({"url": c.EXT_CLINICAL_RATIONALE, "valueString": d.rationale})
        capacity = d.capacity
        if capacity:
            extension.append(
                _CAPACITY_EXTENSIONS.get(capacity)
                or _coded_extension(c.EXT_MENTAL_CAPACITY, c.CS_MENTAL_CAPACITY, str(capacity), True)
            )
        if d.reason_not_discussed:
            extension.append({"url": c.EXT_REASON_NOT_DISCUSSED, "valueString": d.reason_not_discussed})
        endorsement = d.senior_endorsement
        if endorsement:
            parts = [{"url": "endorser", "valueReference": self.practitioner(endorsement.by)}]
            if endorsement.at:
                parts.append({"url": "dateTime", "valueDateTime": fhir_datetime(endorsement.at)})
            extension.append({"url": c.EXT_SENIOR_ENDORSEMENT, "extension": parts})
        if d.decision_maker_is_senior is not None:
            extension.append(
                {"url": c.EXT_DECISION_MAKER_IS_SENIOR, "valueBoolean": d.decision_maker_is_senior}
            )
        form_type = d.form_type
        if form_type:
            extension.append(
                _FORM_TYPE_EXTENSIONS.get(form_type)
                or _coded_extension(c.EXT_FORM_TYPE, c.CS_FORM_TYPE, str(form_type), False)
            )

        system = source.system
        record_id = source.record_id
        consent_id = self.ids.id_for("Consent", system, record_id)
        self.consent_key = (system, record_id, consent_id)
        status = d.status
        last_updated = source.last_updated
        # Made per record (unlike the other resources' meta), as supersession marking changes the tag.
        tag = [{"system": _RECORD_STATUS_SYSTEM, "code": str(status)}]
        consent: Resource = {
            "resourceType": "Consent",
            "id": consent_id,
            "meta": {"lastUpdated": fhir_datetime(last_updated), "profile": _PROFILES_CONSENT, "tag": tag}
            if last_updated is not None
            else {"profile": _PROFILES_CONSENT, "tag": tag},
            "extension": extension,
            "identifier": [{"system": system, "value": record_id}],
            "status": CONSENT_STATUS[status],
            "scope": _CONCEPT_SCOPE_ADR,
            "category": _CATEGORY_DNR_RESPECT
            if form_type is _RESPECT or form_type == _RESPECT
            else _CATEGORY_DNR,
            "patient": patient_ref,
        }
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
        consent["policy"] = _POLICY
        discussed = d.discussed_with_patient
        others = d.others_consulted
        if discussed is not None or others:
            verification = []
            if discussed is not None:
                entry: dict[str, Any] = {"verified": discussed, "verifiedWith": patient_ref}
                if d.discussion_date:
                    entry["verificationDate"] = _date_text(d.discussion_date)
                verification.append(entry)
            for party in others:
                entry = {"verified": True, "verifiedWith": self.related_person(party, person, patient_ref)}
                if party.consulted_on:
                    entry["verificationDate"] = _date_text(party.consulted_on)
                verification.append(entry)
            consent["verification"] = verification
        consent["provision"] = {
            "type": "deny" if not_for_cpr else "permit",
            "period": {"start": fhir_datetime(d.decision_date)},
            "code": _CPR_PROCEDURE,
        }
        self.out.insert(0, consent)  # the decision leads its supporting resources

    def _consent_id(self, system: str, record_id: str) -> str:
        """The id of the Consent for (system, record id): the one just built when it is that one."""
        known = self.consent_key
        if known is not None and known[0] == system and known[1] == record_id:
            return known[2]
        return self.ids.id_for("Consent", system, record_id)

    def careplan(self, p: AdvanceCarePlan) -> None:
        source = p.source
        start = len(self.out)
        person = p.patient
        patient_ref = self.patient(person)
        extension: list[dict] = []
        score = p.care_priority_score
        if score is not None or p.care_priority_text:
            priority: list[dict] = []
            if score is not None:
                priority.append({"url": "score", "valueInteger": score})
            if p.care_priority_text:
                priority.append({"url": "text", "valueString": p.care_priority_text})
            extension.append({"url": c.EXT_RESPECT_CARE_PRIORITY, "extension": priority})
        place = p.preferred_place_of_death
        if place:
            concept = codeable_concept(place)
            if concept:
                extension.append({"url": c.EXT_PREFERRED_PLACE_OF_DEATH, "valueCodeableConcept": concept})
        place = p.preferred_place_of_care
        if place:
            concept = codeable_concept(place)
            if concept:
                extension.append({"url": c.EXT_PREFERRED_PLACE_OF_CARE, "valueCodeableConcept": concept})
        has_adrt = p.has_adrt
        if has_adrt is not None or p.adrt_location:
            adrt: list[dict] = []
            if has_adrt is not None:
                adrt.append({"url": "present", "valueBoolean": has_adrt})
            if p.adrt_location:
                adrt.append({"url": "location", "valueString": p.adrt_location})
            extension.append({"url": c.EXT_ADRT, "extension": adrt})
        form_type = p.form_type
        if form_type:
            extension.append(
                _FORM_TYPE_EXTENSIONS.get(form_type)
                or _coded_extension(c.EXT_FORM_TYPE, c.CS_FORM_TYPE, str(form_type), False)
            )

        system = source.system
        record_id = source.record_id
        status = p.status
        last_updated = source.last_updated
        tag = [{"system": _RECORD_STATUS_SYSTEM, "code": str(status)}]  # per record, as in ``consent``
        plan: Resource = {
            "resourceType": "CarePlan",
            "id": self.ids.id_for("CarePlan", system, record_id),
            "meta": {"lastUpdated": fhir_datetime(last_updated), "profile": _PROFILES_CAREPLAN, "tag": tag}
            if last_updated is not None
            else {"profile": _PROFILES_CAREPLAN, "tag": tag},
        }
        if extension:
            plan["extension"] = extension
        plan["identifier"] = [{"system": system, "value": record_id}]
        plan["status"] = CAREPLAN_STATUS[status]
        plan["intent"] = "plan"
        plan["category"] = _ACP_CATEGORY
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
        if p.conditions:
            addresses = []
            for coded in p.conditions:
                ref = self.condition(source, coded, patient_ref)
                if ref:
                    addresses.append(ref)
            if addresses:
                plan["addresses"] = addresses
        supporting: list[dict] = []
        decision_id = p.cpr_decision_record_id
        if decision_id:
            supporting.append(
                {
                    "reference": "Consent/" + self._consent_id(system, decision_id),
                    "identifier": {"system": system, "value": decision_id},
                }
            )
        if p.document_location:
            supporting.append(self.document(source, p.document_location, patient_ref))
        for party in p.lpa:
            supporting.append(self.related_person(party, person, patient_ref))
        for party in p.people_to_involve:
            supporting.append(self.related_person(party, person, patient_ref))
        if supporting:
            plan["supportingInfo"] = supporting
        if p.treatment_recommendations:
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
            plan["activity"] = activity
        self.out.insert(start, plan)


def build_resources(
    record: CareRecord, ids: IdFactory, shared: SharedParties | None = None
) -> list[Resource]:
    """Every resource one canonical record yields: Consent and/or CarePlan first, then what they
    reference (Patient, Practitioner, Organization, RelatedPerson, DocumentReference, Condition).

    A resource shared by the decision and the plan (the Patient, a practitioner) appears once.
    ``shared`` reuses Organization/Practitioner resources across the records of a run (read-only).
    The result is read-only too: it shares fixed fragments with every other result.
    """
    builder = _Builder(ids, shared)
    if record.decision is not None:
        builder.consent(record.decision)
    if record.plan is not None:
        builder.careplan(record.plan)
    return builder.out
