"""Hypothesis strategies for valid, realistic canonical records (shared by every test that needs one).

All data is synthetic: NHS numbers come from the never-issued 999 range and pass Modulus 11, phone
numbers from Ofcom's drama range, e-mail addresses from example.org. Codes are real SNOMED CT codes.

``care_records()`` (the default, ``representable=True``) keeps to what FHIR R4 as we map it can carry
(docs/fhir-mapping.md, "What does not round-trip"): aware datetimes, no organisation on a
professional, LPAs with the LPA role and only they, no ``consulted_on`` on plan parties, one version
of each shared party per record, decision and plan of a record with one source id. With
``representable=False`` those restrictions are lifted (any model-valid value), for tests of stages
that never see FHIR. Either way the records keep the profiles' rules (docs/profiles.md): a review
date never before the decision, every treatment coded or named, an ADRT location only with an ADRT,
care priority 0–100, valid ODS/GMC/NMC/HCPC formats.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache

from hypothesis import strategies as st

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
from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit

SNOMED = codes.SNOMED

GIVEN_NAMES = ("Oliver", "Amelia", "Siân", "Zoë", "Mohammed", "Aisling", "Ffion", "Jean-Luc", "Priya", "Olu")
FAMILY_NAMES = (
    "Smith",
    "O'Brien",
    "Nguyễn",
    "Jones",
    "Ó Súilleabháin",
    "Patel",
    "Evans",
    "MacDonald",
    "Kowalska",
)
ORG_NAMES = (
    "Leeds Teaching Hospitals NHS Trust",
    "St Gemma's Hospice",
    "Chapel Allerton Surgery",
    "Marie Curie",
)
ROLES = (
    "Consultant physician",
    "GP",
    "Specialty registrar",
    "Advanced nurse practitioner",
    "Consultant geriatrician",
)
RELATIONSHIPS = ("Daughter", "Son", "Wife", "Husband", "Partner", "Friend", "Niece", "Neighbour")
STREETS = ("1 High Street", "Flat 2", "27 Chapel Lane", "Rose Cottage", "14 Station Road", "Meanwood")
SOURCE_SYSTEMS = (
    "https://fhir.leedsth.nhs.uk/Id/dnacpr-form",
    "https://emis.example.org/Id/respect",
    "urn:oid:2.16.840.1.113883.2.1.3.2.4.18.48",
)
TREATMENTS = (
    Coded(SNOMED, "305351004", "Admission to intensive care unit (procedure)"),
    Coded(SNOMED, "52765003", "Intubation (procedure)"),
    Coded(SNOMED, "265764009", "Renal dialysis (procedure)"),
    Coded(SNOMED, "281789004", "Antibiotic therapy (procedure)"),
    Coded(SNOMED, "89666000", "Cardiopulmonary resuscitation", "CPR"),
    Coded(text="Non-invasive ventilation"),
    Coded(text="Intravenous fluids"),
)
CONDITIONS = (
    Coded(SNOMED, "84114007", "Heart failure (disorder)"),
    Coded(SNOMED, "13645005", "Chronic obstructive lung disease (disorder)"),
    Coded(SNOMED, "26929004", "Alzheimer's disease (disorder)"),
    Coded(SNOMED, "709044004", "Chronic kidney disease (disorder)"),
    Coded(SNOMED, "254637007", "Non-small cell lung cancer (disorder)", "Lung cancer"),
    Coded(text="Frailty"),
)
PLACES_OF_DEATH = tuple(Coded(x.system, x.code, x.display) for x in codes.PREFERRED_PLACE_OF_DEATH.values())
PLACES_OF_CARE = (Coded(text="Home"), Coded(text="Hospice"), Coded(text="Care home"), Coded(text="Hospital"))

ZONES = (UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30)))

# Free text: no control characters and no unicode spaces other than " " and newline (the FHIR string
# pattern is [ \r\n\t\S]+), no leading or trailing whitespace (FHIR JSON forbids it in effect).
_TEXT_CHARS = st.characters(
    exclude_categories=("Cc", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"), include_characters=" \n"
)


@cache
def free_text(max_size: int = 60) -> st.SearchStrategy[str]:
    return st.text(_TEXT_CHARS, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


# Strategies are immutable: building them once (module constants, cached factories) keeps
# generation cheap, since hypothesis validates every new strategy object it meets.
_BOOL_OR_NONE = st.none() | st.booleans()
_ROLE_OR_NONE = maybe(st.sampled_from(ROLES))
_FAMILY = st.sampled_from(FAMILY_NAMES)
_FAMILY_OR_NONE = maybe(_FAMILY)
_GIVEN_UP_TO_2 = st.lists(st.sampled_from(GIVEN_NAMES), max_size=2).map(tuple)
_REGISTRATION_NUMBERS = {
    RegistrationBody.GMC: st.from_regex(r"[0-9]{7}", fullmatch=True),
    RegistrationBody.NMC: st.from_regex(r"[0-9]{2}[A-Z][0-9]{4}[A-Z]", fullmatch=True),
    RegistrationBody.HCPC: st.from_regex(r"(PA|PH|OT)[0-9]{5,6}", fullmatch=True),
}
_PHONE_OR_NONE = maybe(st.integers(0, 999).map(lambda n: f"07700 900{n:03d}"))
_RELATIONSHIP_OR_NONE = maybe(st.sampled_from(RELATIONSHIPS))
_RECORD_IDS = st.from_regex(r"[A-Z]{2,4}-?[0-9]{1,8}", fullmatch=True)
_OTHER_RECORD_IDS = st.from_regex(r"[A-Z]{2}[0-9]{3}", fullmatch=True)
_POSTCODE_OR_NONE = maybe(st.from_regex(r"[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}", fullmatch=True))
_DECISION_DOCUMENTS = maybe(
    st.sampled_from(("https://docs.example.org/respect/123.pdf", "Front of paper notes", "Green folder"))
)
_PLAN_DOCUMENTS = maybe(st.sampled_from(("https://docs.example.org/acp/9.pdf", "Patient-held copy")))
_ADRT_LOCATIONS = maybe(st.sampled_from(("With GP", "Copy at home in kitchen drawer")))


def _with_check_digit(first_nine: str) -> str | None:
    check = nhs_number_check_digit(first_nine)
    return None if check is None else first_nine + str(check)


@cache
def nhs_numbers() -> st.SearchStrategy[str]:
    """Valid NHS numbers from the 999 test range (never issued to a person)."""
    return st.integers(0, 999_999).map(lambda n: _with_check_digit(f"999{n:06d}")).filter(bool)


@cache
def dates(min_year: int = 1990, max_year: int = 2035) -> st.SearchStrategy[date]:
    return st.dates(date(min_year, 1, 1), date(max_year, 12, 31))


@cache
def aware_datetimes(min_year: int = 1990, max_year: int = 2035) -> st.SearchStrategy[datetime]:
    return st.datetimes(
        datetime(min_year, 1, 1), datetime(max_year, 12, 31), timezones=st.sampled_from(ZONES)
    )


@cache
def dates_or_datetimes(representable: bool = True) -> st.SearchStrategy[date | datetime]:
    moments = (
        aware_datetimes() if representable else st.datetimes(datetime(1990, 1, 1), datetime(2035, 12, 31))
    )
    return dates() | moments


@cache
def ods_codes() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Z][A-Z0-9]{2,5}", fullmatch=True)


@cache
def organisations() -> st.SearchStrategy[Organisation]:
    return st.one_of(
        st.builds(Organisation, ods_code=ods_codes(), name=maybe(st.sampled_from(ORG_NAMES))),
        st.builds(Organisation, ods_code=st.none(), name=st.sampled_from(ORG_NAMES)),
    )


@st.composite
def registrations(draw: st.DrawFn) -> tuple[RegistrationBody, str]:
    body = draw(st.sampled_from(RegistrationBody))
    return body, draw(_REGISTRATION_NUMBERS[body])


@st.composite
def _professionals(draw: st.DrawFn, representable: bool) -> Professional:
    registered = draw(st.booleans())
    body, number = draw(registrations()) if registered else (None, None)
    return Professional(
        family_name=draw(_FAMILY_OR_NONE if registered else _FAMILY),  # without a number, a name identifies
        given_names=draw(_GIVEN_UP_TO_2),
        role=draw(_ROLE_OR_NONE),
        registration_body=body,
        registration_number=number,
        organisation=None if representable else draw(maybe(organisations())),
    )


@cache
def professionals(representable: bool = True) -> st.SearchStrategy[Professional]:
    return _professionals(representable)


_GIVEN_UP_TO_3 = st.lists(st.sampled_from(GIVEN_NAMES), max_size=3).map(tuple)
_BIRTH_DATE_OR_NONE = maybe(dates(1910, 2020))
_GENDER_OR_NONE = maybe(st.sampled_from(Gender))
_ADDRESS_LINES = st.lists(st.sampled_from(STREETS), max_size=3).map(tuple)


@st.composite
def _persons(draw: st.DrawFn, gp_practices: st.SearchStrategy) -> Person:
    return Person(
        nhs_number=draw(nhs_numbers()),
        family_name=draw(_FAMILY_OR_NONE),
        given_names=draw(_GIVEN_UP_TO_3),
        birth_date=draw(_BIRTH_DATE_OR_NONE),
        gender=draw(_GENDER_OR_NONE),
        address_lines=draw(_ADDRESS_LINES),
        postcode=draw(_POSTCODE_OR_NONE),
        gp_practice=draw(gp_practices),
    )


def persons(gp_practices: st.SearchStrategy | None = None) -> st.SearchStrategy[Person]:
    """People in the 999 NHS number range; ``gp_practices`` picks their GP (default: any or none)."""
    return _persons(gp_practices if gp_practices is not None else maybe(organisations()))


@st.composite
def related_parties(draw: st.DrawFn, name: str | None = None) -> RelatedParty:
    """A relative, LPA, IMCA … (``consulted_on`` unset: the decision that consulted them sets it)."""
    name = name or draw(party_names())
    return RelatedParty(
        name=name,
        role=draw(st.sampled_from(PartyRole)),
        relationship=draw(_RELATIONSHIP_OR_NONE),
        phone=draw(_PHONE_OR_NONE),
        email=(name.split()[0].lower().replace("'", "") + "@example.org") if draw(st.booleans()) else None,
    )


@cache
def party_names() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(GIVEN_NAMES), st.sampled_from(FAMILY_NAMES)).map(" ".join)


_PARTY_NAME_LISTS = st.lists(party_names(), max_size=4, unique=True)
_RECOMMENDATION_LISTS = st.lists(
    st.builds(
        TreatmentRecommendation,
        treatment=st.sampled_from(TREATMENTS),
        do_not_perform=st.booleans(),
        note=maybe(free_text()),
    ),
    max_size=4,
).map(tuple)
_FORM_TYPE_OR_NONE = maybe(st.sampled_from(FormType))
_CAPACITY_OR_NONE = maybe(st.sampled_from(Capacity))
_PLACE_OF_CARE_OR_NONE = maybe(st.sampled_from(PLACES_OF_CARE))
_PLACE_OF_DEATH_OR_NONE = maybe(st.sampled_from(PLACES_OF_DEATH))
_STATUSES = st.sampled_from(RecordStatus)
_CPR_VALUES = st.sampled_from(CprDecisionValue)
_CONDITION_LISTS = st.lists(st.sampled_from(CONDITIONS), max_size=3, unique=True).map(tuple)


def _organisation_key(org: Organisation) -> str | None:
    return org.ods_code or org.name


def _professional_key(pro: Professional) -> tuple:
    if pro.registration_number:
        return ("reg", pro.registration_body, pro.registration_number)
    return ("name", pro.display_name)


@st.composite
def care_records(
    draw: st.DrawFn,
    representable: bool = True,
    kinds: tuple[str, ...] = ("decision", "plan", "both"),
) -> CareRecord:
    """A CareRecord with a decision, a plan, or both (ReSPECT), parties drawn from shared pools."""
    kind = draw(st.sampled_from(kinds))
    orgs = draw(st.lists(organisations(), min_size=1, max_size=3, unique_by=_organisation_key))
    pros = draw(st.lists(professionals(representable), min_size=1, max_size=3, unique_by=_professional_key))
    patient = draw(_persons(maybe(st.sampled_from(orgs))))
    names = draw(_PARTY_NAME_LISTS)
    parties = [draw(related_parties(name)) for name in names]
    source = SourceRef(
        system=draw(st.sampled_from(SOURCE_SYSTEMS)),
        record_id=draw(_RECORD_IDS),
        last_updated=draw(maybe(aware_datetimes(2015, 2030))),
        file=None if representable else draw(maybe(st.just("export.csv"))),
        location=None if representable else draw(maybe(st.just("line 12"))),
    )
    decision = plan = None
    if kind in ("decision", "both"):
        decision = draw(decisions(source, patient, orgs, pros, parties, representable))
    if kind in ("plan", "both"):
        plan_source = source
        if kind == "both":
            plan_source = SourceRef(source.system, source.record_id, draw(maybe(aware_datetimes(2015, 2030))))
        cpr_id = draw(maybe(st.just(source.record_id) if kind == "both" else _OTHER_RECORD_IDS))
        plan = draw(plans(plan_source, patient, orgs, pros, parties, representable, cpr_id))
    return CareRecord(decision=decision, plan=plan)


@st.composite
def decisions(
    draw: st.DrawFn,
    source: SourceRef,
    patient: Person,
    orgs: list[Organisation],
    pros: list[Professional],
    parties: list[RelatedParty],
    representable: bool = True,
) -> CprDecision:
    discussed = draw(_BOOL_OR_NONE)
    consulted = draw(st.lists(st.sampled_from(parties), unique=True)) if parties else []
    others = tuple(replace(party, consulted_on=draw(maybe(dates(2015, 2030)))) for party in consulted)
    decision_date = draw(dates_or_datetimes(representable))
    decision_day = decision_date.date() if isinstance(decision_date, datetime) else decision_date
    # A review is never before the decision (profile invariant dnacpr-2).
    review_date = draw(maybe(st.dates(decision_day, date(2040, 12, 31))))
    endorsement = draw(
        maybe(st.builds(Endorsement, by=st.sampled_from(pros), at=maybe(dates_or_datetimes(representable))))
    )
    form_type = draw(_FORM_TYPE_OR_NONE)
    return CprDecision(
        source=source,
        patient=patient,
        decision=draw(_CPR_VALUES),
        decision_date=decision_date,
        status=draw(_STATUSES),
        recorded_date=draw(maybe(dates_or_datetimes(representable))),
        review_date=review_date,
        review_indefinite=review_date is None and draw(st.booleans()),
        rationale=draw(maybe(free_text(200))),
        capacity=draw(_CAPACITY_OR_NONE),
        discussed_with_patient=discussed,
        discussion_date=draw(maybe(dates(2015, 2030)))
        if discussed is not None or not representable
        else None,
        reason_not_discussed=draw(maybe(free_text())) if discussed is not True else None,
        others_consulted=others,
        decision_maker=draw(maybe(st.sampled_from(pros))),
        decision_maker_is_senior=draw(_BOOL_OR_NONE),
        senior_endorsement=endorsement,
        custodian=draw(maybe(st.sampled_from(orgs))),
        form_type=form_type,
        document_location=draw(_DECISION_DOCUMENTS),
    )


@st.composite
def plans(
    draw: st.DrawFn,
    source: SourceRef,
    patient: Person,
    orgs: list[Organisation],
    pros: list[Professional],
    parties: list[RelatedParty],
    representable: bool = True,
    cpr_decision_record_id: str | None = None,
) -> AdvanceCarePlan:
    chosen = draw(st.lists(st.sampled_from(parties), unique=True)) if parties else []
    lpa: list[RelatedParty] = []
    involve: list[RelatedParty] = []
    for party in chosen:
        if not representable:
            party = replace(party, consulted_on=draw(maybe(dates(2015, 2030))))
        (lpa if party.role == PartyRole.LPA_HEALTH_WELFARE else involve).append(party)
    has_adrt = draw(_BOOL_OR_NONE)
    return AdvanceCarePlan(
        source=source,
        patient=patient,
        status=draw(_STATUSES),
        created=draw(maybe(dates_or_datetimes(representable))),
        author=draw(maybe(st.sampled_from(pros))),
        custodian=draw(maybe(st.sampled_from(orgs))),
        care_priority_score=draw(maybe(st.integers(0, 100))),
        care_priority_text=draw(maybe(free_text())),
        treatment_recommendations=draw(_RECOMMENDATION_LISTS),
        preferred_place_of_care=draw(_PLACE_OF_CARE_OR_NONE),
        preferred_place_of_death=draw(_PLACE_OF_DEATH_OR_NONE),
        wishes=draw(maybe(free_text(200))),
        has_adrt=has_adrt,
        adrt_location=draw(_ADRT_LOCATIONS) if has_adrt else None,
        lpa=tuple(lpa),
        people_to_involve=tuple(involve),
        conditions=draw(_CONDITION_LISTS),
        form_type=draw(_FORM_TYPE_OR_NONE),
        document_location=draw(_PLAN_DOCUMENTS),
        cpr_decision_record_id=cpr_decision_record_id,
    )
