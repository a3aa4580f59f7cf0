"""FHIR R4 resources → canonical records: the reverse of ``build``, tolerant of other producers.

Input is a set of resources keyed by ``"Type/id"`` (what a server pull or a Bulk Data folder gives).
Each DNACPR Consent and advance-care-plan CarePlan becomes a canonical item; a Consent and a
CarePlan with the same source identifier (system + value) are one record, as ``build`` writes them.
Nothing raises for bad content: what cannot be understood becomes an ``Issue`` (with the resource's
``Type/id`` — opaque, so safe to log — in the message and a FHIRPath location), and a resource that
lacks what the model requires (a patient with an NHS number, a CPR decision and its date) is left out
with an error issue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir_dnacpr import canonical as c
from fhir_dnacpr.issues import Issue, Severity
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

Resource = dict[str, Any]

FHIR_RESOURCE_ID_SYSTEM = "urn:fhir-dnacpr:fhir-resource-id"
"""SourceRef.system for a resource that carries no identifier: its record id is then ``Type/id``."""

_CONSENT_STATUS = {
    "active": (RecordStatus.ACTIVE,),
    "inactive": (RecordStatus.CANCELLED, RecordStatus.SUPERSEDED),
    "entered-in-error": (RecordStatus.ENTERED_IN_ERROR,),
}
_CAREPLAN_STATUS = {
    "active": (RecordStatus.ACTIVE,),
    "revoked": (RecordStatus.CANCELLED, RecordStatus.SUPERSEDED),
    "entered-in-error": (RecordStatus.ENTERED_IN_ERROR,),
}
_CPR_FINDINGS = {
    codes.NOT_FOR_CPR.code: CprDecisionValue.NOT_FOR_CPR,
    codes.FOR_CPR.code: CprDecisionValue.FOR_CPR,
}
_PROVISION_TYPES = {"deny": CprDecisionValue.NOT_FOR_CPR, "permit": CprDecisionValue.FOR_CPR}
_BODY_BY_SYSTEM = {system: RegistrationBody(body) for body, system in c.REGISTRATION_SYSTEMS.items()}
_CPR_CODES = {codes.CPR_PROCEDURE.code, codes.NOT_FOR_CPR.code, codes.FOR_CPR.code}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_PARTIAL_DATE = re.compile(r"\d{4}(-\d{2})?\Z")


def _items(value: Any) -> list:
    """A JSON array's items; anything else (a damaged or foreign resource) reads as no items."""
    return value if isinstance(value, list) else []


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_CONSENT_EXTENSIONS = frozenset(
    {
        c.EXT_CPR_DECISION_FINDING,
        c.EXT_REVIEW_DATE,
        c.EXT_CLINICAL_RATIONALE,
        c.EXT_MENTAL_CAPACITY,
        c.EXT_REASON_NOT_DISCUSSED,
        c.EXT_SENIOR_ENDORSEMENT,
        c.EXT_DECISION_MAKER_IS_SENIOR,
        c.EXT_FORM_TYPE,
    }
)
_CAREPLAN_EXTENSIONS = frozenset(
    {
        c.EXT_RESPECT_CARE_PRIORITY,
        c.EXT_PREFERRED_PLACE_OF_DEATH,
        c.EXT_PREFERRED_PLACE_OF_CARE,
        c.EXT_ADRT,
        c.EXT_FORM_TYPE,
    }
)


@dataclass(slots=True)
class ParseResult:
    """The records read, the ``Type/id`` of the Consent/CarePlan behind each, and every issue met."""

    records: list[CareRecord] = field(default_factory=list)
    record_refs: list[tuple[str, ...]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def index_resources(resources: Iterable[Resource]) -> dict[str, Resource]:
    """Key resources by ``Type/id`` (later duplicates win), as ``parse_records`` expects them."""
    return {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources if isinstance(r, dict)}


def parse_records(resources: Mapping[str, Resource]) -> ParseResult:
    """Every DNACPR Consent and ACP CarePlan in ``resources`` as canonical records, in input order."""
    reader = _Reader(resources)
    groups: dict[tuple[str, str], list] = {}
    order: list[list] = []
    for ref, resource in resources.items():
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if rtype == "Consent":
            read, slot = reader.decision, 0
        elif rtype == "CarePlan":
            read, slot = reader.plan, 1
        else:
            continue
        try:
            item = read(ref, resource)
        except Exception as exc:  # a shape no rule foresaw: report it, never end the batch
            reader.error(ref, rtype, "unreadable", f"could not be read ({type(exc).__name__}); not read")
            continue
        if item is None:
            continue
        key = (item.source.system, item.source.record_id)
        group = groups.get(key)
        if group is None or group[slot] is not None:
            if group is not None:
                reader.warn(
                    ref,
                    rtype,
                    "duplicate-source",
                    f"another {rtype} has the same identifier; it is read as a separate record",
                )
            group = [None, None, []]
            groups[key] = group
            order.append(group)
        group[slot] = item
        group[2].append(ref)
    result = ParseResult(issues=reader.issues)
    for decision, plan, refs in order:
        result.records.append(CareRecord(decision=decision, plan=plan))
        result.record_refs.append(tuple(refs))
    return result


def parse_when(text: Any) -> date | datetime:
    """FHIR ``date``/``dateTime``/``instant`` text → ``date`` (day precision) or ``datetime``.

    Raises ``ValueError`` for text the model cannot hold, including partial dates (``2020-05``):
    the model has no year/month precision and inventing a day would change the record. Messages
    never repeat the value.
    """
    if not isinstance(text, str):
        raise ValueError("not a date")
    try:
        if "T" in text:
            return datetime.fromisoformat(text)
        if _DATE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass  # the message would echo the value (a birth date is personal data)
    if _PARTIAL_DATE.match(text):
        raise ValueError("a partial date (year or year-month): the model needs at least a day")
    raise ValueError("not a FHIR date or dateTime")


def _ref_key(reference: str) -> str:
    """``Patient/x``, ``https://server/fhir/Patient/x`` or ``…/Patient/x/_history/2`` → ``Patient/x``."""
    if "/_history/" in reference:
        reference = reference.split("/_history/", 1)[0]
    parts = reference.rstrip("/").rsplit("/", 2)
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _coded(concept: Any) -> tuple[Coded | None, int]:
    """A CodeableConcept as ``Coded`` (its first coding and text) and the number of codings dropped."""
    if not isinstance(concept, dict):
        return None, 0
    codings = [x for x in _items(concept.get("coding")) if isinstance(x, dict)]
    first = codings[0] if codings else {}
    coded = Coded(
        system=_str(first.get("system")),
        code=_str(first.get("code")),
        display=_str(first.get("display")),
        text=_str(concept.get("text")),
    )
    return coded, max(len(codings) - 1, 0)


def _codes_of(concepts: Any) -> set[tuple[str | None, str | None]]:
    found = set()
    items = concepts if isinstance(concepts, list) else [concepts]
    for concept in items:
        if isinstance(concept, dict):
            for coding in _items(concept.get("coding")):
                if isinstance(coding, dict):
                    found.add((_str(coding.get("system")), _str(coding.get("code"))))
    return found


def _sub(extension: dict, url: str) -> dict | None:
    for sub in _items(extension.get("extension")):
        if isinstance(sub, dict) and sub.get("url") == url:
            return sub
    return None


class _Reader:
    """Reads one resource set; caches parties so a shared Patient is read (and reported) once."""

    def __init__(self, resources: Mapping[str, Resource]) -> None:
        self.resources = resources
        self.issues: list[Issue] = []
        self._cache: dict[tuple[str, str], Any] = {}

    # --- issues ---------------------------------------------------------------------------------

    def _issue(self, severity: Severity, ref: str, path: str, message_id: str, message: str) -> None:
        self.issues.append(
            Issue(
                severity,
                _ISSUE_CODES.get(message_id, "processing"),
                f"{ref}: {message}",
                path,
                f"FHIR_PARSE_{message_id.upper().replace('-', '_')}",
            )
        )

    def error(self, ref: str, path: str, message_id: str, message: str) -> None:
        self._issue(Severity.ERROR, ref, path, message_id, message)

    def warn(self, ref: str, path: str, message_id: str, message: str) -> None:
        self._issue(Severity.WARNING, ref, path, message_id, message)

    def info(self, ref: str, path: str, message_id: str, message: str) -> None:
        self._issue(Severity.INFORMATION, ref, path, message_id, message)

    # --- shared pieces ----------------------------------------------------------------------------

    def when(self, value: Any, ref: str, path: str) -> date | datetime | None:
        if value is None:
            return None
        try:
            return parse_when(value)
        except ValueError as exc:
            self.warn(ref, path, "bad-date", f"{exc}; the value is left out")
            return None

    def day(self, value: Any, ref: str, path: str) -> date | None:
        found = self.when(value, ref, path)
        if isinstance(found, datetime):
            self.info(ref, path, "date-from-datetime", "a dateTime where a date is expected; the day is kept")
            return found.date()
        return found

    def instant(self, value: Any, ref: str, path: str) -> datetime | None:
        found = self.when(value, ref, path)
        if found is not None and not isinstance(found, datetime):
            self.warn(ref, path, "bad-date", "a date where an instant is expected; left out")
            return None
        return found

    def text(self, value: Any, ref: str, path: str) -> str | None:
        if value is None or isinstance(value, str):
            return value or None
        self.warn(ref, path, "bad-type", f"expected a string, found {type(value).__name__}; left out")
        return None

    def boolean(self, value: Any, ref: str, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        self.warn(ref, path, "bad-type", f"expected a boolean, found {type(value).__name__}; left out")
        return None

    def concept(self, value: Any, ref: str, path: str) -> Coded | None:
        coded, dropped = _coded(value)
        if dropped:
            self.info(
                ref, path, "codings-dropped", f"{dropped} further coding(s) not kept (the model holds one)"
            )
        return coded

    def enum_code(self, value: Any, enum: type, system: str, ref: str, path: str):
        """A Coding (or CodeableConcept) from one of our code systems as an enum member."""
        codings = value.get("coding") if isinstance(value, dict) and "coding" in value else [value]
        for coding in _items(codings):
            if isinstance(coding, dict) and coding.get("system") == system:
                try:
                    return enum(_str(coding.get("code")))
                except ValueError:
                    break
        self.warn(ref, path, "unknown-code", f"no code from {system} that fhir-dnacpr knows; left out")
        return None

    def resolve(
        self, reference: Any, types: tuple[str, ...], ref: str, path: str
    ) -> tuple[str, Resource] | None:
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            return None
        raw = reference["reference"]
        if raw.startswith("#"):
            self.warn(ref, path, "unresolved-reference", "contained resources are not read")
            return None
        key = _ref_key(raw)
        if key.split("/", 1)[0] not in types:
            self.warn(
                ref, path, "unexpected-reference", f"a reference to {key.split('/', 1)[0]} is not used here"
            )
            return None
        target = self.resources.get(key)
        if not isinstance(target, dict):
            self.warn(ref, path, "unresolved-reference", f"{key} is not among the resources read")
            return None
        return key, target

    def source(self, ref: str, resource: Resource, rtype: str) -> SourceRef:
        meta = _obj(resource.get("meta"))
        last_updated = self.instant(meta.get("lastUpdated"), ref, f"{rtype}.meta.lastUpdated")
        for identifier in _items(resource.get("identifier")):
            if (
                isinstance(identifier, dict)
                and _str(identifier.get("system"))
                and _str(identifier.get("value"))
            ):
                return SourceRef(identifier["system"], identifier["value"], last_updated)
        self.warn(
            ref,
            f"{rtype}.identifier",
            "no-identifier",
            "no identifier with system and value; the resource id stands in for the record id",
        )
        return SourceRef(FHIR_RESOURCE_ID_SYSTEM, ref, last_updated)

    def status(self, ref: str, resource: Resource, rtype: str, table: dict) -> RecordStatus | None:
        fhir_status = resource.get("status")
        candidates = table.get(fhir_status) if isinstance(fhir_status, str) else None
        if candidates is None:
            self.error(
                ref,
                f"{rtype}.status",
                "unsupported-status",
                f"status {fhir_status!r} has no canonical equivalent; the resource is not read",
            )
            return None
        if len(candidates) == 1:
            return candidates[0]
        tags = [
            t.get("code")
            for t in _items(_obj(resource.get("meta")).get("tag"))
            if isinstance(t, dict) and t.get("system") == c.CS_RECORD_STATUS
        ]
        consistent = [s for s in candidates if s in tags]
        if len(consistent) == 1:
            return consistent[0]
        if consistent:
            # Servers may keep tags across updates; the later lifecycle state is the likelier one.
            self.warn(
                ref,
                f"{rtype}.meta.tag",
                "ambiguous-status",
                f"status tags {', '.join(consistent)} both fit status {fhir_status!r}; read as superseded",
            )
            return RecordStatus.SUPERSEDED
        self.info(
            ref,
            f"{rtype}.meta.tag",
            "untagged-status",
            f"status {fhir_status!r} without a source-record-status tag; read as cancelled",
        )
        return RecordStatus.CANCELLED

    def unknown_extensions(self, ref: str, resource: Resource, rtype: str, known: frozenset[str]) -> bool:
        """Report extensions we do not read; False when an unknown modifier extension forbids reading."""
        for ext in _items(resource.get("extension")):
            url = _str(ext.get("url")) if isinstance(ext, dict) else None
            if url not in known:
                self.info(ref, f"{rtype}.extension", "unknown-extension", f"extension {url} is not read")
        modifiers = _items(resource.get("modifierExtension"))
        if modifiers:
            urls = ", ".join(str(m.get("url")) for m in modifiers if isinstance(m, dict))
            self.error(
                ref,
                f"{rtype}.modifierExtension",
                "modifier-extension",
                f"unknown modifier extension(s) {urls} change the meaning; the resource is not read",
            )
            return False
        return True

    # --- parties ----------------------------------------------------------------------------------

    def person(self, reference: Any, ref: str, path: str) -> Person | None:
        found = self.resolve(reference, ("Patient",), ref, path)
        if found is None:
            identifier = reference.get("identifier") if isinstance(reference, dict) else None
            if (
                isinstance(identifier, dict)
                and identifier.get("system") == c.NHS_NUMBER
                and _str(identifier.get("value"))
            ):
                return Person(nhs_number=identifier["value"])
            return None
        key, patient = found
        cached = self._cache.get(("person", key))
        if cached is not None or ("person", key) in self._cache:
            return cached
        person = self._read_person(key, patient)
        self._cache[("person", key)] = person
        return person

    def _read_person(self, key: str, patient: Resource) -> Person | None:
        nhs = next(
            (
                i["value"]
                for i in _items(patient.get("identifier"))
                if isinstance(i, dict) and i.get("system") == c.NHS_NUMBER and _str(i.get("value"))
            ),
            None,
        )
        if nhs is None:
            self.error(key, "Patient.identifier", "no-nhs-number", "the patient has no NHS number")
            return None
        family, given = self.name(patient.get("name"), key, "Patient.name")
        gender = None
        if patient.get("gender") is not None:
            try:
                gender = Gender(_str(patient["gender"]))
            except ValueError:
                self.warn(
                    key, "Patient.gender", "unknown-code", "not an administrative gender code; not read"
                )
        lines: tuple[str, ...] = ()
        postcode = None
        addresses = [a for a in _items(patient.get("address")) if isinstance(a, dict)]
        if addresses:
            lines = tuple(x for x in _items(addresses[0].get("line")) if isinstance(x, str) and x)
            postcode = self.text(addresses[0].get("postalCode"), key, "Patient.address.postalCode")
            if len(addresses) > 1:
                self.info(key, "Patient.address", "extra-values", "only the first address is kept")
        gp = None
        for i, practice in enumerate(_items(patient.get("generalPractitioner"))):
            if isinstance(practice, dict) and _ref_key(str(practice.get("reference", ""))).startswith(
                "Organization/"
            ):
                gp = self.organisation(practice, key, f"Patient.generalPractitioner[{i}]")
                break
        return Person(
            nhs_number=nhs,
            family_name=family,
            given_names=given,
            birth_date=self.day(patient.get("birthDate"), key, "Patient.birthDate"),
            gender=gender,
            address_lines=lines,
            postcode=postcode,
            gp_practice=gp,
        )

    def name(self, names: Any, ref: str, path: str) -> tuple[str | None, tuple[str, ...]]:
        names = [n for n in _items(names) if isinstance(n, dict)]
        if not names:
            return None, ()
        chosen = next((n for n in names if n.get("use") in ("official", "usual")), names[0])
        if len(names) > 1:
            self.info(ref, path, "extra-values", "only one name is kept")
        given = tuple(g for g in _items(chosen.get("given")) if isinstance(g, str) and g)
        family = self.text(chosen.get("family"), ref, f"{path}.family")
        if family is None and not given:
            family = _str(chosen.get("text"))  # a name given only as text
        return family, given

    def organisation(self, reference: Any, ref: str, path: str) -> Organisation | None:
        found = self.resolve(reference, ("Organization",), ref, path)
        if found is None:
            return None
        key, org = found
        if ("org", key) in self._cache:
            return self._cache[("org", key)]
        ods = next(
            (
                i["value"]
                for i in _items(org.get("identifier"))
                if isinstance(i, dict) and i.get("system") == c.ODS_ORGANIZATION and _str(i.get("value"))
            ),
            None,
        )
        name = self.text(org.get("name"), key, "Organization.name")
        result = Organisation(ods_code=ods, name=name) if ods or name else None
        self._cache[("org", key)] = result
        return result

    def professional(self, reference: Any, ref: str, path: str) -> Professional | None:
        found = self.resolve(reference, ("Practitioner", "PractitionerRole"), ref, path)
        if found is None:
            return None
        key, resource = found
        if ("pro", key) in self._cache:
            return self._cache[("pro", key)]
        organisation = None
        if resource["resourceType"] == "PractitionerRole":
            organisation = self.organisation(
                resource.get("organization"), key, "PractitionerRole.organization"
            )
            role_codes = [self.concept(x, key, "PractitionerRole.code") for x in _items(resource.get("code"))]
            role_text = next((r.text or r.display for r in role_codes if r and (r.text or r.display)), None)
            inner = self.resolve(
                resource.get("practitioner"), ("Practitioner",), key, "PractitionerRole.practitioner"
            )
            pro = self._read_practitioner(*inner) if inner else Professional()
            result = Professional(
                family_name=pro.family_name,
                given_names=pro.given_names,
                role=pro.role or role_text,
                registration_body=pro.registration_body,
                registration_number=pro.registration_number,
                organisation=organisation,
            )
        else:
            result = self._read_practitioner(key, resource)
        self._cache[("pro", key)] = result
        return result

    def _read_practitioner(self, key: str, practitioner: Resource) -> Professional:
        body = number = None
        identifiers = [
            i for i in _items(practitioner.get("identifier")) if isinstance(i, dict) and _str(i.get("value"))
        ]
        registered = [i for i in identifiers if _str(i.get("system")) in _BODY_BY_SYSTEM]
        chosen = (
            registered[0]
            if registered
            else (identifiers[0] if identifiers and not identifiers[0].get("system") else None)
        )
        if chosen is not None:
            number = chosen["value"]
            body = _BODY_BY_SYSTEM.get(_str(chosen.get("system")))
        elif identifiers:
            self.info(
                key,
                "Practitioner.identifier",
                "unknown-identifier",
                "no GMC/NMC/HCPC identifier; other identifiers are not kept",
            )
        family, given = self.name(practitioner.get("name"), key, "Practitioner.name")
        role = None
        for qualification in _items(practitioner.get("qualification")):
            coded, _ = _coded(qualification.get("code") if isinstance(qualification, dict) else None)
            if coded and (coded.text or coded.display):
                role = coded.text or coded.display
                break
        return Professional(
            family_name=family,
            given_names=given,
            role=role,
            registration_body=body,
            registration_number=number,
        )

    def party(self, reference: Any, ref: str, path: str) -> RelatedParty | None:
        found = self.resolve(reference, ("RelatedPerson",), ref, path)
        if found is None:
            return None
        key, person = found
        if ("party", key) in self._cache:
            return self._cache[("party", key)]
        role = None
        for ext in _items(person.get("extension")):
            if isinstance(ext, dict) and ext.get("url") == c.EXT_RELATED_PARTY_ROLE:
                role = self.enum_code(
                    ext.get("valueCoding"), PartyRole, c.CS_RELATED_PARTY_ROLE, key, "RelatedPerson.extension"
                )
        relationship = None
        for concept in _items(person.get("relationship")):
            if not isinstance(concept, dict):
                continue
            for coding in _items(concept.get("coding")):
                if isinstance(coding, dict) and (coding.get("system"), coding.get("code")) == (
                    codes.HPOWATT.system,
                    codes.HPOWATT.code,
                ):
                    role = role or PartyRole.LPA_HEALTH_WELFARE
            if _str(concept.get("text")):
                relationship = concept["text"]
            elif _items(concept.get("coding")) and not relationship:
                first = concept["coding"][0]
                if isinstance(first, dict) and first.get("code") != codes.HPOWATT.code:
                    relationship = _str(first.get("display")) or _str(first.get("code"))
            if relationship:
                break
        name_text = None
        for name in _items(person.get("name")):
            if isinstance(name, dict):
                name_text = _str(name.get("text")) or " ".join(
                    x for x in (*_items(name.get("given")), name.get("family")) if isinstance(x, str) and x
                )
                if name_text:
                    break
        if not name_text:
            self.error(key, "RelatedPerson.name", "no-name", "a related person without a name is not read")
            self._cache[("party", key)] = None
            return None
        phone = email = None
        for telecom in _items(person.get("telecom")):
            if not isinstance(telecom, dict):
                continue
            if telecom.get("system") == "phone" and phone is None:
                phone = _str(telecom.get("value"))
            elif telecom.get("system") == "email" and email is None:
                email = _str(telecom.get("value"))
        result = RelatedParty(
            name=name_text, role=role or PartyRole.OTHER, relationship=relationship, phone=phone, email=email
        )
        self._cache[("party", key)] = result
        return result

    def document(self, reference: Any, ref: str, path: str) -> str | None:
        found = self.resolve(reference, ("DocumentReference",), ref, path)
        if found is None:
            return None
        key, doc = found
        for content in _items(doc.get("content")):
            attachment = content.get("attachment") if isinstance(content, dict) else None
            if isinstance(attachment, dict):
                location = _str(attachment.get("url")) or _str(attachment.get("title"))
                if location:
                    return location
        self.warn(
            key, "DocumentReference.content", "no-location", "no attachment url or title: location lost"
        )
        return None

    # --- the decision -----------------------------------------------------------------------------

    def decision(self, ref: str, consent: Resource) -> CprDecision | None:
        extensions: dict[str, dict] = {}
        for ext in _items(consent.get("extension")):
            if isinstance(ext, dict) and _str(ext.get("url")) in _CONSENT_EXTENSIONS:
                extensions.setdefault(ext["url"], ext)
        provision = consent.get("provision") if isinstance(consent.get("provision"), dict) else {}
        provision_codes = {code for _, code in _codes_of(provision.get("code"))}
        is_dnr = (codes.CONSENT_CATEGORY, codes.CATEGORY_DNR.code) in _codes_of(consent.get("category"))
        profiled = c.PROFILE_DNACPR_CONSENT in (_items(_obj(consent.get("meta")).get("profile")))
        if not (
            is_dnr or profiled or provision_codes & _CPR_CODES or c.EXT_CPR_DECISION_FINDING in extensions
        ):
            self.info(ref, "Consent.category", "not-a-cpr-decision", "not a CPR decision; skipped")
            return None
        if not self.unknown_extensions(ref, consent, "Consent", _CONSENT_EXTENSIONS):
            return None
        status = self.status(ref, consent, "Consent", _CONSENT_STATUS)
        if status is None:
            return None
        patient = self.person(consent.get("patient"), ref, "Consent.patient")
        if patient is None:
            self.error(
                ref,
                "Consent.patient",
                "no-patient",
                "no readable patient with an NHS number; the decision is not read",
            )
            return None
        decision = self._cpr_decision(ref, provision, provision_codes, extensions)
        if decision is None:
            return None
        period = provision.get("period") if isinstance(provision.get("period"), dict) else {}
        decision_date = self.when(period.get("start"), ref, "Consent.provision.period.start")
        if decision_date is None:
            decision_date = self.when(consent.get("dateTime"), ref, "Consent.dateTime")
            if decision_date is None:
                self.error(
                    ref,
                    "Consent.provision.period.start",
                    "no-decision-date",
                    "no decision date (provision.period.start or dateTime); the decision is not read",
                )
                return None
            self.warn(
                ref,
                "Consent.provision.period.start",
                "decision-date-from-datetime",
                "no provision.period.start: the decision date is taken from Consent.dateTime",
            )
        if period.get("end"):
            self.info(
                ref,
                "Consent.provision.period.end",
                "expiry-not-kept",
                "provision.period.end (an expiry) has no canonical field; review dates are an extension",
            )

        review_date, review_indefinite = None, False
        if review := extensions.get(c.EXT_REVIEW_DATE):
            sub_date, sub_indefinite = _sub(review, "date"), _sub(review, "indefinite")
            if sub_date:
                review_date = self.day(sub_date.get("valueDate"), ref, "Consent.extension('review-date')")
            if sub_indefinite:
                review_indefinite = bool(
                    self.boolean(sub_indefinite.get("valueBoolean"), ref, "Consent.extension('review-date')")
                )
        capacity = None
        if ext := extensions.get(c.EXT_MENTAL_CAPACITY):
            capacity = self.enum_code(
                ext.get("valueCodeableConcept"),
                Capacity,
                c.CS_MENTAL_CAPACITY,
                ref,
                "Consent.extension('mental-capacity')",
            )
        endorsement = None
        if ext := extensions.get(c.EXT_SENIOR_ENDORSEMENT):
            endorser = _sub(ext, "endorser")
            by = self.professional(
                endorser.get("valueReference") if endorser else None,
                ref,
                "Consent.extension('senior-endorsement')",
            )
            at_ext = _sub(ext, "dateTime")
            at = (
                self.when(at_ext.get("valueDateTime"), ref, "Consent.extension('senior-endorsement')")
                if at_ext
                else None
            )
            if by is not None:
                endorsement = Endorsement(by=by, at=at)
            else:
                self.warn(
                    ref,
                    "Consent.extension('senior-endorsement')",
                    "no-endorser",
                    "a senior endorsement without a readable endorser is not kept",
                )
        form_type = self._form_type(extensions, ref, "Consent")
        if form_type is None and (codes.SNOMED, codes.CATEGORY_RESPECT_FORM.code) in _codes_of(
            consent.get("category")
        ):
            form_type = FormType.RESPECT

        discussed = discussion_date = None
        others: list[RelatedParty] = []
        for i, verification in enumerate(_items(consent.get("verification"))):
            if not isinstance(verification, dict):
                continue
            path = f"Consent.verification[{i}]"
            with_ref = verification.get("verifiedWith")
            with_key = _ref_key(str(with_ref.get("reference", ""))) if isinstance(with_ref, dict) else ""
            when = self.day(verification.get("verificationDate"), ref, f"{path}.verificationDate")
            if with_key.startswith("RelatedPerson/"):
                party = self.party(with_ref, ref, f"{path}.verifiedWith")
                if party is not None:
                    others.append(
                        RelatedParty(
                            party.name, party.role, party.relationship, party.phone, party.email, when
                        )
                    )
            elif with_key.startswith("Patient/") or not with_key:
                if discussed is not None:
                    self.info(ref, path, "extra-values", "only the first discussion with the patient is kept")
                    continue
                discussed = self.boolean(verification.get("verified"), ref, f"{path}.verified")
                discussion_date = when if discussed is not None else None
            else:
                self.warn(ref, f"{path}.verifiedWith", "unexpected-reference", f"{with_key} is not read")

        performers = [p for p in _items(consent.get("performer")) if isinstance(p, dict)]
        maker = None
        for i, performer in enumerate(performers):
            target = _ref_key(str(performer.get("reference", ""))).split("/", 1)[0]
            if target in ("Practitioner", "PractitionerRole"):
                maker = self.professional(performer, ref, f"Consent.performer[{i}]")
                if len(performers) > 1:
                    self.info(ref, "Consent.performer", "extra-values", "only the first practitioner is kept")
                break
        custodian = None
        for i, org in enumerate(_items(consent.get("organization"))):
            custodian = self.organisation(org, ref, f"Consent.organization[{i}]")
            break
        document_location = None
        if consent.get("sourceReference") is not None:
            document_location = self.document(consent["sourceReference"], ref, "Consent.sourceReference")
        elif isinstance(consent.get("sourceAttachment"), dict):
            attachment = consent["sourceAttachment"]
            document_location = _str(attachment.get("url")) or _str(attachment.get("title"))

        return CprDecision(
            source=self.source(ref, consent, "Consent"),
            patient=patient,
            decision=decision,
            decision_date=decision_date,
            status=status,
            recorded_date=self.when(consent.get("dateTime"), ref, "Consent.dateTime"),
            review_date=review_date,
            review_indefinite=review_indefinite,
            rationale=self._ext_text(extensions.get(c.EXT_CLINICAL_RATIONALE), ref, "clinical-rationale"),
            capacity=capacity,
            discussed_with_patient=discussed,
            discussion_date=discussion_date,
            reason_not_discussed=self._ext_text(
                extensions.get(c.EXT_REASON_NOT_DISCUSSED), ref, "reason-not-discussed"
            ),
            others_consulted=tuple(others),
            decision_maker=maker,
            decision_maker_is_senior=self.boolean(
                (extensions.get(c.EXT_DECISION_MAKER_IS_SENIOR) or {}).get("valueBoolean"),
                ref,
                "Consent.extension('decision-maker-is-senior')",
            ),
            senior_endorsement=endorsement,
            custodian=custodian,
            form_type=form_type,
            document_location=document_location,
        )

    def _cpr_decision(
        self, ref: str, provision: dict, provision_codes: set, extensions: dict
    ) -> CprDecisionValue | None:
        by_type = _PROVISION_TYPES.get(_str(provision.get("type")))
        by_finding = None
        if finding := extensions.get(c.EXT_CPR_DECISION_FINDING):
            for _, code in _codes_of(finding.get("valueCodeableConcept")):
                by_finding = _CPR_FINDINGS.get(code, by_finding)
        by_code = next((_CPR_FINDINGS[x] for x in provision_codes if x in _CPR_FINDINGS), None)
        found = {x for x in (by_type, by_finding, by_code) if x is not None}
        if len(found) > 1:
            self.error(
                ref,
                "Consent.provision.type",
                "conflicting-decision",
                "provision.type and the CPR finding disagree; the decision is not read",
            )
            return None
        if not found:
            self.error(
                ref,
                "Consent.provision.type",
                "no-decision",
                "neither provision.type nor a CPR finding says for or not for CPR; not read",
            )
            return None
        if by_type is not None and by_code is None and codes.CPR_PROCEDURE.code not in provision_codes:
            self.info(
                ref,
                "Consent.provision.code",
                "no-cpr-code",
                f"provision.type without provision.code {codes.CPR_PROCEDURE.code} (CPR): read as CPR anyway",
            )
        return found.pop()

    def _form_type(self, extensions: dict, ref: str, rtype: str) -> FormType | None:
        if ext := extensions.get(c.EXT_FORM_TYPE):
            return self.enum_code(
                ext.get("valueCoding"), FormType, c.CS_FORM_TYPE, ref, f"{rtype}.extension('form-type')"
            )
        return None

    def _ext_text(self, ext: dict | None, ref: str, name: str) -> str | None:
        if ext is None:
            return None
        return self.text(ext.get("valueString"), ref, f"Consent.extension('{name}')")

    # --- the plan -----------------------------------------------------------------------------------

    def plan(self, ref: str, careplan: Resource) -> AdvanceCarePlan | None:
        is_acp = (codes.SNOMED, codes.ACP_CATEGORY.code) in _codes_of(careplan.get("category"))
        profiled = c.PROFILE_ACP_CAREPLAN in (_items(_obj(careplan.get("meta")).get("profile")))
        if not (is_acp or profiled):
            self.info(ref, "CarePlan.category", "not-an-acp", "not an advance care plan; skipped")
            return None
        if not self.unknown_extensions(ref, careplan, "CarePlan", _CAREPLAN_EXTENSIONS):
            return None
        status = self.status(ref, careplan, "CarePlan", _CAREPLAN_STATUS)
        if status is None:
            return None
        patient = self.person(careplan.get("subject"), ref, "CarePlan.subject")
        if patient is None:
            self.error(
                ref,
                "CarePlan.subject",
                "no-patient",
                "no readable patient with an NHS number; the plan is not read",
            )
            return None
        extensions: dict[str, dict] = {}
        for ext in _items(careplan.get("extension")):
            if isinstance(ext, dict) and _str(ext.get("url")) in _CAREPLAN_EXTENSIONS:
                extensions.setdefault(ext["url"], ext)

        score = priority_text = None
        if priority := extensions.get(c.EXT_RESPECT_CARE_PRIORITY):
            if sub := _sub(priority, "score"):
                score = sub.get("valueInteger")
                if not isinstance(score, int) or isinstance(score, bool):
                    self.warn(
                        ref, "CarePlan.extension('care-priority')", "bad-type", "score is not an integer"
                    )
                    score = None
            if sub := _sub(priority, "text"):
                priority_text = self.text(sub.get("valueString"), ref, "CarePlan.extension('care-priority')")
        places = {}
        for url in (c.EXT_PREFERRED_PLACE_OF_DEATH, c.EXT_PREFERRED_PLACE_OF_CARE):
            if ext := extensions.get(url):
                places[url] = self._place(ext.get("valueCodeableConcept"), ref)
        has_adrt = adrt_location = None
        if adrt := extensions.get(c.EXT_ADRT):
            if sub := _sub(adrt, "present"):
                has_adrt = self.boolean(sub.get("valueBoolean"), ref, "CarePlan.extension('adrt')")
            if sub := _sub(adrt, "location"):
                adrt_location = self.text(sub.get("valueString"), ref, "CarePlan.extension('adrt')")

        conditions = []
        for i, address in enumerate(_items(careplan.get("addresses"))):
            found = self.resolve(address, ("Condition",), ref, f"CarePlan.addresses[{i}]")
            if found is not None:
                coded = self.concept(found[1].get("code"), found[0], "Condition.code")
                if coded is not None:
                    conditions.append(coded)
        cpr_record_id = document_location = None
        lpa: list[RelatedParty] = []
        involve: list[RelatedParty] = []
        for i, info in enumerate(_items(careplan.get("supportingInfo"))):
            if not isinstance(info, dict):
                continue
            path = f"CarePlan.supportingInfo[{i}]"
            target = _ref_key(str(info.get("reference", ""))).split("/", 1)[0]
            if target == "Consent" and cpr_record_id is None:
                cpr_record_id = self._consent_record_id(info, ref, path)
            elif target == "DocumentReference" and document_location is None:
                document_location = self.document(info, ref, path)
            elif target == "RelatedPerson":
                party = self.party(info, ref, path)
                if party is not None:
                    (lpa if party.role == PartyRole.LPA_HEALTH_WELFARE else involve).append(party)
            else:
                self.info(
                    ref, path, "extra-values", f"supporting information {target or '(no reference)'} not kept"
                )
        recommendations = []
        for i, activity in enumerate(_items(careplan.get("activity"))):
            detail = activity.get("detail") if isinstance(activity, dict) else None
            if not isinstance(detail, dict):
                self.info(
                    ref, f"CarePlan.activity[{i}]", "extra-values", "an activity without detail is not read"
                )
                continue
            treatment = (
                self.concept(detail.get("code"), ref, f"CarePlan.activity[{i}].detail.code") or Coded()
            )
            recommendations.append(
                TreatmentRecommendation(
                    treatment=treatment,
                    do_not_perform=bool(
                        self.boolean(
                            detail.get("doNotPerform"), ref, f"CarePlan.activity[{i}].detail.doNotPerform"
                        )
                    ),
                    note=self.text(
                        detail.get("description"), ref, f"CarePlan.activity[{i}].detail.description"
                    ),
                )
            )
        author = None
        if careplan.get("author") is not None:
            author = self.professional(careplan["author"], ref, "CarePlan.author")
        custodian = None
        for i, contributor in enumerate(_items(careplan.get("contributor"))):
            if isinstance(contributor, dict) and _ref_key(str(contributor.get("reference", ""))).startswith(
                "Organization/"
            ):
                custodian = self.organisation(contributor, ref, f"CarePlan.contributor[{i}]")
                break
        return AdvanceCarePlan(
            source=self.source(ref, careplan, "CarePlan"),
            patient=patient,
            status=status,
            created=self.when(careplan.get("created"), ref, "CarePlan.created"),
            author=author,
            custodian=custodian,
            care_priority_score=score,
            care_priority_text=priority_text,
            treatment_recommendations=tuple(recommendations),
            preferred_place_of_care=places.get(c.EXT_PREFERRED_PLACE_OF_CARE),
            preferred_place_of_death=places.get(c.EXT_PREFERRED_PLACE_OF_DEATH),
            wishes=self.text(careplan.get("description"), ref, "CarePlan.description"),
            has_adrt=has_adrt,
            adrt_location=adrt_location,
            lpa=tuple(lpa),
            people_to_involve=tuple(involve),
            conditions=tuple(conditions),
            form_type=self._form_type(extensions, ref, "CarePlan"),
            document_location=document_location,
            cpr_decision_record_id=cpr_record_id,
        )

    def _place(self, concept: Any, ref: str) -> Coded | None:
        """A preferred place: the SNOMED coding when several are given (EoL value sets are SNOMED)."""
        if not isinstance(concept, dict):
            return None
        codings = [x for x in _items(concept.get("coding")) if isinstance(x, dict)]
        snomed = [x for x in codings if x.get("system") == codes.SNOMED]
        if snomed and codings[0] is not snomed[0]:
            concept = {**concept, "coding": snomed + [x for x in codings if x is not snomed[0]]}
        return self.concept(concept, ref, "CarePlan.extension('preferred-place')")

    def _consent_record_id(self, info: dict, ref: str, path: str) -> str | None:
        identifier = info.get("identifier")
        if isinstance(identifier, dict) and _str(identifier.get("value")):
            return identifier["value"]
        found = self.resolve(info, ("Consent",), ref, path)
        if found is None:
            self.warn(ref, path, "no-cpr-record-id", "the CPR decision's record id cannot be recovered")
            return None
        for identifier in _items(found[1].get("identifier")):
            if isinstance(identifier, dict) and _str(identifier.get("value")):
                return identifier["value"]
        return found[0]


_ISSUE_CODES = {
    "bad-date": "value",
    "bad-type": "structure",
    "unknown-code": "code-invalid",
    "unsupported-status": "not-supported",
    "unresolved-reference": "not-found",
    "unexpected-reference": "structure",
    "no-nhs-number": "required",
    "no-patient": "required",
    "no-decision": "required",
    "no-decision-date": "required",
    "no-name": "required",
    "conflicting-decision": "invariant",
    "modifier-extension": "extension",
    "unknown-extension": "extension",
    "no-identifier": "required",
    "duplicate-source": "duplicate",
    "unreadable": "structure",
    "codings-dropped": "informational",
    "extra-values": "informational",
    "not-a-cpr-decision": "informational",
    "not-an-acp": "informational",
}
