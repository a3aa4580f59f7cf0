"""The canonical domain model: the hub every layout maps into and FHIR is built from.

No FHIR and no I/O here. Legacy exports map *into* these records, FHIR is built *from* them and parsed
back *into* them, so forward and reverse directions meet in one place and round trips are testable.
All classes are frozen (hashable, safe to share between workers); collections are tuples.

Dates: a clinical date may be known to the day only (``date``) or to the second (``datetime``); both are
allowed where a source may carry either, and the precision is kept on the round trip.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any

DateOrDateTime = date | datetime


def _fast_init(cls: type) -> type:
    """Give a frozen slots dataclass an ``__init__`` that sets each slot through its descriptor.

    The generated frozen ``__init__`` calls ``object.__setattr__`` per field, a generic attribute
    lookup each time; calling the slot's own setter does the same store in half the time, and
    millions of records are built per run. Same parameters, defaults and result; the class stays
    frozen (``__setattr__`` still raises), hashable and comparable as before.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ would be skipped by the fast __init__")
    env: dict[str, Any] = {}
    params = []
    body = []
    for f in fields(cls):
        if f.default_factory is not MISSING:  # type: ignore[misc]
            raise TypeError(f"{cls.__name__}.{f.name}: default factories are not supported here")
        if f.default is MISSING:
            params.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        env[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = "\n".join(
        [f"def __init__(self, {', '.join(params)}):", *body] if body else ["def __init__(self):", "    pass"]
    )
    exec(compile(source, f"<{cls.__name__}.__init__>", "exec"), env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init  # type: ignore[misc]
    return cls


class CprDecisionValue(StrEnum):
    """Whether CPR should be attempted (SNOMED 450475007 / 450476008)."""

    FOR_CPR = "for-cpr"
    NOT_FOR_CPR = "not-for-cpr"


class RecordStatus(StrEnum):
    """Lifecycle of a decision or plan as the source records it."""

    ACTIVE = "active"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    ENTERED_IN_ERROR = "entered-in-error"


class Capacity(StrEnum):
    """The person's capacity to make and communicate decisions about CPR (MCA 2005)."""

    HAS_CAPACITY = "has-capacity"
    LACKS_CAPACITY = "lacks-capacity"
    NOT_ASSESSED = "not-assessed"


class FormType(StrEnum):
    """Which form the decision was recorded on."""

    RCUK_DNACPR = "rcuk-dnacpr"
    RESPECT = "respect"
    LOCAL = "local"


class PartyRole(StrEnum):
    """How a related person stands to the decision (who was consulted / to involve)."""

    RELATIVE = "relative"
    LPA_HEALTH_WELFARE = "lpa-health-welfare"
    IMCA = "imca"
    CARER = "carer"
    FRIEND = "friend"
    OTHER = "other"


class RegistrationBody(StrEnum):
    """UK professional registers whose numbers identify a decision maker."""

    GMC = "gmc"
    NMC = "nmc"
    HCPC = "hcpc"


class Gender(StrEnum):
    """FHIR administrative gender (what UK Core Patient carries)."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


@_fast_init
@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a canonical record came from: enough to find the source row again and to supersede.

    ``system`` is the source-system URI from the mapping spec; ``record_id`` the record's key there.
    ``file`` and ``location`` (e.g. ``line 12``, ``element 3``) locate it in this export only and are
    not part of the record's identity.
    """

    system: str
    record_id: str
    last_updated: datetime | None = None
    file: str | None = None
    location: str | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class Coded:
    """A coded value with optional display text, or text alone when a source has no code."""

    system: str | None = None
    code: str | None = None
    display: str | None = None
    text: str | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class Organisation:
    """An organisation identified by its ODS code (custodian, care setting)."""

    ods_code: str | None = None
    name: str | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class Person:
    """The person a decision or plan is about."""

    nhs_number: str
    family_name: str | None = None
    given_names: tuple[str, ...] = ()
    birth_date: date | None = None
    gender: Gender | None = None
    address_lines: tuple[str, ...] = ()
    postcode: str | None = None
    gp_practice: Organisation | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class Professional:
    """A health or care professional: decision maker, endorser, author."""

    family_name: str | None = None
    given_names: tuple[str, ...] = ()
    role: str | None = None
    registration_body: RegistrationBody | None = None
    registration_number: str | None = None
    organisation: Organisation | None = None

    @property
    def display_name(self) -> str:
        return " ".join((*self.given_names, self.family_name or "")).strip()


@_fast_init
@dataclass(frozen=True, slots=True)
class RelatedParty:
    """Someone other than the person: consulted about the decision, or to involve in care."""

    name: str
    role: PartyRole = PartyRole.OTHER
    relationship: str | None = None
    phone: str | None = None
    email: str | None = None
    consulted_on: date | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class Endorsement:
    """Senior responsible clinician's endorsement of a decision made by someone else."""

    by: Professional
    at: DateOrDateTime | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class CprDecision:
    """A CPR decision (for or not for attempted CPR) as recorded on a DNACPR or ReSPECT form.

    ``review_date`` is when the decision should be reviewed; it is *not* an expiry.
    ``review_indefinite`` records an explicit "indefinite"; neither set means the source gave nothing.
    """

    source: SourceRef
    patient: Person
    decision: CprDecisionValue
    decision_date: DateOrDateTime
    status: RecordStatus = RecordStatus.ACTIVE
    recorded_date: DateOrDateTime | None = None
    review_date: date | None = None
    review_indefinite: bool = False
    rationale: str | None = None
    capacity: Capacity | None = None
    discussed_with_patient: bool | None = None
    discussion_date: date | None = None
    reason_not_discussed: str | None = None
    others_consulted: tuple[RelatedParty, ...] = ()
    decision_maker: Professional | None = None
    decision_maker_is_senior: bool | None = None
    senior_endorsement: Endorsement | None = None
    custodian: Organisation | None = None
    form_type: FormType | None = None
    document_location: str | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class TreatmentRecommendation:
    """One clinical recommendation on an advance care plan.

    ``do_not_perform`` marks a ceiling of treatment (e.g. not for ICU admission).
    """

    treatment: Coded
    do_not_perform: bool = False
    note: str | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class AdvanceCarePlan:
    """An advance care plan (ReSPECT sections 2-9, EPaCCS preferences)."""

    source: SourceRef
    patient: Person
    status: RecordStatus = RecordStatus.ACTIVE
    created: DateOrDateTime | None = None
    author: Professional | None = None
    custodian: Organisation | None = None
    care_priority_score: int | None = None
    care_priority_text: str | None = None
    treatment_recommendations: tuple[TreatmentRecommendation, ...] = ()
    preferred_place_of_care: Coded | None = None
    preferred_place_of_death: Coded | None = None
    wishes: str | None = None
    has_adrt: bool | None = None
    adrt_location: str | None = None
    lpa: tuple[RelatedParty, ...] = ()
    people_to_involve: tuple[RelatedParty, ...] = ()
    conditions: tuple[Coded, ...] = ()
    form_type: FormType | None = None
    document_location: str | None = None
    cpr_decision_record_id: str | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class CareRecord:
    """What one source record yields: a CPR decision, an advance care plan, or both (ReSPECT)."""

    decision: CprDecision | None = None
    plan: AdvanceCarePlan | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def patient(self) -> Person:
        item = self.decision or self.plan
        if item is None:
            raise ValueError("a CareRecord holds a decision, a plan, or both")
        return item.patient
