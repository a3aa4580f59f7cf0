"""Synthetic DNACPR records with planted failure patterns, for tests and benchmarks.

Everything is invented: NHS numbers come from the 999 range (valid Modulus 11, never issued), ODS
codes start with Z, postcodes use the unused ZY area, names are common words. Background records
look like ordinary practice — individual rationales, mostly discussed, some quality gaps — and carry
none of the flagged terms, so a test can tell planted patterns from background exactly. A spring 2020
surge makes the pandemic spike visible in the time series.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from fhir_dnacpr.model import (
    Capacity,
    CareRecord,
    CprDecision,
    CprDecisionValue,
    Endorsement,
    FormType,
    Organisation,
    PartyRole,
    Person,
    Professional,
    RecordStatus,
    RegistrationBody,
    RelatedParty,
    SourceRef,
)
from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit

GP_SYSTEM = "urn:example:gp-system"
HOSPITAL_SYSTEM = "urn:example:hospital-epr"
HOSPICE_SYSTEM = "urn:example:hospice-system"

GIVEN = [
    "Alan",
    "Ann",
    "Barbara",
    "Brian",
    "Carol",
    "Colin",
    "David",
    "Doris",
    "Edward",
    "Eileen",
    "Frank",
    "Gladys",
    "George",
    "Hazel",
    "Harold",
    "Irene",
    "Jack",
    "Joan",
    "Keith",
    "Kathleen",
    "Leonard",
    "Margaret",
    "Norman",
    "Olive",
    "Peter",
    "Pauline",
    "Ronald",
    "Rita",
    "Stanley",
    "Sheila",
    "Thomas",
    "Vera",
    "Walter",
    "Winifred",
]
FAMILY = [
    "Archer",
    "Baker",
    "Carter",
    "Dawson",
    "Ellis",
    "Fisher",
    "Gardner",
    "Harper",
    "Ingram",
    "Jarvis",
    "Kemp",
    "Lawson",
    "Marsh",
    "Newman",
    "Osborne",
    "Parker",
    "Quinn",
    "Rowe",
    "Sutton",
    "Turner",
    "Underwood",
    "Vaughan",
    "Walsh",
    "Yates",
]

CONDITIONS = (
    "metastatic carcinoma of the bronchus",
    "metastatic prostate cancer with bone involvement",
    "pancreatic cancer with liver metastases",
    "end-stage heart failure (NYHA IV)",
    "severe COPD with type 2 respiratory failure on home oxygen",
    "end-stage renal failure, has chosen conservative management",
    "advanced Parkinson's disease with recurrent aspiration",
    "motor neurone disease with respiratory muscle weakness",
    "advanced Alzheimer's disease, no longer mobile, eating minimal amounts",
    "decompensated alcoholic liver cirrhosis",
    "recurrent ischaemic stroke with dense hemiplegia",
    "idiopathic pulmonary fibrosis, breathless at rest",
    "glioblastoma progressing despite treatment",
    "severe aortic stenosis, not a candidate for valve intervention",
    "multiple myeloma refractory to treatment",
    "ovarian cancer with malignant bowel obstruction",
)
COURSE = (
    "Repeated admissions over the past {m} months",
    "Weight loss of {k} kg over {m} months",
    "Now spends most of the day in bed",
    "Oncology advise no further disease-modifying treatment",
    "Deteriorating despite optimal medical therapy",
    "Prognosis estimated at weeks to months",
    "Two episodes of sepsis in the last {m} months",
    "Ejection fraction {k}% on recent echo",
    "eGFR {k} and declining",
)
REASONS = (
    "CPR would not be successful in restarting the heart given the underlying illness.",
    "CPR is very unlikely to be successful and would cause harm without benefit.",
    "In the event of cardiac arrest, CPR would not restart the heart for a sustained period.",
    "The burdens of CPR would outweigh any benefit; death would be expected from the underlying disease.",
    "Cardiac arrest would be the terminal event of progressive disease; CPR would not work.",
)
SOCIAL = (
    "Lives alone with carers {k} times a day.",
    "Lives with {rel}.",
    "Widowed; {rel} visits daily.",
    "Retired {job}.",
    "",
)
RELATIVES = ("wife", "husband", "daughter", "son", "partner", "sister", "niece")
JOBS = ("teacher", "miner", "nurse", "engineer", "shopkeeper", "bus driver", "farmer", "postman", "secretary")
WISHES = (
    "Has said they would not want CPR.",
    "Wishes to die at home with family.",
    "Clear that comfort and dignity matter most to them.",
    "Family understand and agree.",
    "",
    "",
)
NOT_DISCUSSED_REASONS = (
    "Patient too unwell to take part in a discussion at present; family informed.",
    "Patient has previously said they do not want to discuss resuscitation.",
    "Discussion would cause physical or psychological harm at this time; to revisit.",
)
ROLES_SENIOR = (
    "GP principal",
    "Consultant physician",
    "Consultant in palliative medicine",
    "Consultant geriatrician",
)
ROLES_JUNIOR = ("Specialty registrar", "Foundation doctor (FY2)", "Advanced nurse practitioner")

#: Templated rationale of the kind the regulator found applied to groups (used only by planted clusters).
BLANKET_TEMPLATE = (
    "Frail elderly care home resident. In view of the COVID-19 pandemic CPR would not be successful.",
    "frail elderly care home resident - in view of the covid-19 pandemic, CPR would not be successful",
    "Frail, elderly care home resident; in view of COVID-19 pandemic CPR would not be successful.",
    "Frail elderly care home resident. In view of the COVID 19 pandemic CPR would be unsuccessful.",
)
PROTECTED_RATIONALES = (
    ("learning-disability", "Has a learning disability and lives in supported accommodation; not for CPR."),
    ("learning-disability", "LD. Epilepsy. Not for resuscitation."),
    ("downs-syndrome", "Downs syndrome. CPR would not be appropriate."),
    ("downs-syndrome", "Patient has Down's syndrome and dementia. DNACPR."),
    ("autism", "Autistic, non-verbal, would not tolerate ICU. DNACPR."),
    ("age", "Aged 94. CPR not appropriate due to age."),
    ("age", "Elderly lady, would not survive CPR."),
    ("disability", "Wheelchair user with cerebral palsy. Not for CPR."),
    ("frailty", "Clinical Frailty Scale 7. CPR unlikely to succeed."),
)
#: Texts with words that look flagged but are not a reason: must NOT be flagged.
DECOY_RATIONALES = (
    "Metastatic lung cancer, bed-level care; wife uses disabled parking at the hospice. CPR would not work.",
    "Decision not based on age or disability: end-stage heart failure with cardiogenic shock.",
    "Life has had its ups and downs; now end-stage COPD on home oxygen, CPR would not be successful.",
    "Pancreatic cancer with liver metastases. Enrolled in a double-blind trial last year. CPR futile.",
    "Severe aortic stenosis; ICD disabled at patient's request. CPR would not succeed.",
)
CEILING_RATIONALES = (
    "End-stage COPD. Not for CPR. Not for ICU or intubation. Not for IV antibiotics.",
    "Metastatic breast cancer; DNACPR; do not admit to hospital; ceiling of care is ward-based care only.",
    "Advanced dementia. Not for CPR, not for hospital admission, no antibiotics.",
)


def nhs_numbers(start: int = 0) -> Iterator[str]:
    """Valid (Modulus 11) NHS numbers from the 999 test range, in order, starting after ``start``.

    The range holds about 909,000 valid numbers; past the end the sequence starts again, so a very
    long stream (the 10^6-record benchmark) also has people with several decisions over the years.
    """
    n = start % 1_000_000
    while True:
        first_nine = f"999{n:06d}"
        n = (n + 1) % 1_000_000
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            yield f"{first_nine}{check}"


@dataclass(frozen=True)
class CareHome:
    name: str
    postcode: str
    gp_practice: Organisation


@dataclass
class World:
    """The fixed cast: organisations, clinicians, care homes."""

    practices: list[Organisation]
    trusts: list[Organisation]
    hospices: list[Organisation]
    care_homes: list[CareHome]
    clinicians: dict[str, list[tuple[Professional, bool]]]  # ODS code -> (professional, is senior)

    @classmethod
    def build(
        cls, seed: int = 1, practices: int = 12, trusts: int = 3, hospices: int = 2, homes: int = 20
    ) -> World:
        rng = random.Random(seed)
        gps = [
            Organisation(f"ZA{1000 + i}", f"{FAMILY[i % len(FAMILY)]} Road Surgery") for i in range(practices)
        ]
        trs = [
            Organisation(f"ZR{10 + i}", f"{FAMILY[(i + 7) % len(FAMILY)]} Hospitals NHS Trust")
            for i in range(trusts)
        ]
        hos = [
            Organisation(f"ZH{10 + i}", f"St {GIVEN[(i + 3) % len(GIVEN)]}'s Hospice")
            for i in range(hospices)
        ]
        care_homes = [
            CareHome(
                f"{FAMILY[(i + 3) % len(FAMILY)]} House Care Home",
                f"ZY{1 + i % 9} {1 + i // 9}{'ABDEFGHJLN'[i % 10]}{'PQRSTUWXYZ'[i * 7 % 10]}",
                gps[i % len(gps)],
            )
            for i in range(homes)
        ]
        clinicians: dict[str, list[tuple[Professional, bool]]] = {}
        gmc = 7_100_000
        for org in (*gps, *trs, *hos):
            staff = []
            for j in range(rng.randint(15, 40) if org in trs else rng.randint(3, 6)):
                senior = j < 2 or rng.random() < 0.4
                gmc += rng.randint(1, 500)
                role = rng.choice(ROLES_SENIOR if senior else ROLES_JUNIOR)
                nurse = role == "Advanced nurse practitioner"
                prof = Professional(
                    family_name=rng.choice(FAMILY),
                    given_names=(rng.choice(GIVEN),),
                    role=role,
                    registration_body=RegistrationBody.NMC if nurse else RegistrationBody.GMC,
                    registration_number=f"{rng.randint(10, 99)}A{rng.randint(1000, 9999)}E"
                    if nurse
                    else str(gmc),
                    organisation=org,
                )
                staff.append((prof, senior))
            clinicians[org.ods_code or ""] = staff
        return cls(gps, trs, hos, care_homes, clinicians)

    def seniors(self, org: Organisation) -> list[Professional]:
        return [p for p, s in self.clinicians[org.ods_code or ""] if s]


@dataclass
class Truth:
    """What was planted, by record id (``system|record_id``) or NHS number."""

    clusters: list[set[str]] = field(default_factory=list)
    protected: dict[str, str] = field(default_factory=dict)  # ref -> category
    decoys: set[str] = field(default_factory=set)
    ceilings: set[str] = field(default_factory=set)
    conflicts: set[str] = field(default_factory=set)  # NHS numbers
    stale: set[str] = field(default_factory=set)  # refs of records that should be flagged stale
    cluster_noise: set[str] = field(default_factory=set)  # refs of look-alike noise near the cluster


def ref(record: CareRecord) -> str:
    d = record.decision
    assert d is not None
    return f"{d.source.system}|{d.source.record_id}"


class Generator:
    """Background records, day by day across the period, with a surge in spring 2020."""

    def __init__(
        self,
        seed: int = 42,
        start: date = date(2019, 1, 1),
        end: date = date(2022, 12, 31),
        world: World | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.world = world or World.build(seed)
        self.start, self.end = start, end
        self._nhs = nhs_numbers(seed * 1000 % 5_000_000)
        self._ids = 0
        self._span = (end - start).days + 1

    # -- building blocks --------------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids:08d}"

    def person(
        self, postcode: str | None = None, age: tuple[int, int] = (62, 99), on: date | None = None
    ) -> Person:
        rng = self.rng
        on = on or self.end
        years = rng.randint(*age)
        return Person(
            nhs_number=next(self._nhs),
            family_name=rng.choice(FAMILY),
            given_names=(rng.choice(GIVEN),),
            birth_date=date(on.year - years, rng.randint(1, 12), rng.randint(1, 28)),
            postcode=postcode or self.postcode(),
        )

    def postcode(self) -> str:
        """A postcode in the unused ZY area."""
        rng = self.rng
        return (
            f"ZY{rng.randint(10, 99)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLN')}{rng.choice('PQRSTUWXYZ')}"
        )

    def rationale(self) -> str:
        rng = self.rng
        parts = [rng.choice(CONDITIONS).capitalize() + "."]
        if rng.random() < 0.5:
            second = rng.choice(CONDITIONS)
            parts[0] = parts[0][:-1] + f"; also {second}."
        course = rng.choice(COURSE).format(m=rng.randint(2, 12), k=rng.randint(4, 25))
        parts.append(course + ".")
        social = rng.choice(SOCIAL).format(
            k=rng.randint(2, 4), rel=rng.choice(RELATIVES), job=rng.choice(JOBS)
        )
        if social:
            parts.append(social)
        parts.append(rng.choice(REASONS))
        wish = rng.choice(WISHES)
        if wish:
            parts.append(wish)
        return " ".join(parts)

    def day(self) -> date:
        """A decision date; spring 2020 (March-May) is three times as busy as other weeks."""
        rng = self.rng
        while True:
            day = self.start + timedelta(days=rng.randrange(self._span))
            if date(2020, 3, 1) <= day <= date(2020, 5, 31) or rng.random() < 1 / 3:
                return day

    def decision(
        self,
        *,
        person: Person | None = None,
        org: Organisation | None = None,
        system: str | None = None,
        maker: tuple[Professional, bool] | None = None,
        day: date | None = None,
        rationale: str | None = None,
        value: CprDecisionValue | None = None,
        status: RecordStatus | None = None,
        good_practice: bool = False,
        complete: bool = False,
    ) -> CareRecord:
        rng, world = self.rng, self.world
        if org is None:
            pick = rng.random()
            org = rng.choice(
                world.practices if pick < 0.45 else world.trusts if pick < 0.9 else world.hospices
            )
        if system is None:
            code = org.ods_code or ""
            system = (
                GP_SYSTEM
                if code.startswith("ZA")
                else HOSPITAL_SYSTEM
                if code.startswith("ZR")
                else HOSPICE_SYSTEM
            )
        day = day or self.day()
        person = person or self.person(on=day)
        prof, senior = maker or rng.choice(world.clinicians[org.ods_code or ""])
        value = value or (CprDecisionValue.NOT_FOR_CPR if rng.random() < 0.93 else CprDecisionValue.FOR_CPR)
        if status is None:
            r = rng.random()
            status = (
                RecordStatus.ACTIVE
                if r < 0.86
                else RecordStatus.CANCELLED
                if r < 0.93
                else RecordStatus.SUPERSEDED
            )
        r = rng.random()
        capacity = (
            Capacity.HAS_CAPACITY
            if r < 0.55
            else Capacity.LACKS_CAPACITY
            if r < 0.85
            else Capacity.NOT_ASSESSED
            if r < 0.95
            else None
        )
        if good_practice and capacity not in (Capacity.HAS_CAPACITY, Capacity.LACKS_CAPACITY):
            capacity = Capacity.HAS_CAPACITY
        discussed: bool | None
        reason = None
        consulted: tuple[RelatedParty, ...] = ()
        if capacity is Capacity.LACKS_CAPACITY:
            discussed = False if rng.random() < 0.7 else None
            if good_practice or rng.random() < 0.85:
                role = rng.choice(
                    (PartyRole.RELATIVE, PartyRole.RELATIVE, PartyRole.LPA_HEALTH_WELFARE, PartyRole.IMCA)
                )
                consulted = (
                    RelatedParty(
                        name=f"{rng.choice(GIVEN)} {person.family_name}", role=role, consulted_on=day
                    ),
                )
        else:
            r = rng.random()
            surge = date(2020, 3, 15) <= day <= date(2020, 5, 31)  # fewer conversations in the first wave
            discussed = (
                True if (good_practice or r < (0.6 if surge else 0.84)) else False if r < 0.94 else None
            )
            if discussed is not True and rng.random() < 0.6:
                reason = rng.choice(NOT_DISCUSSED_REASONS)
        endorsement = None
        if not senior and (good_practice or rng.random() < 0.8):
            seniors = world.seniors(org)
            endorsement = Endorsement(by=rng.choice(seniors), at=day + timedelta(days=rng.randint(0, 3)))
        r = rng.random()
        review = None
        indefinite = False
        if r < 0.5 or good_practice:
            review = day + timedelta(days=rng.choice((90, 180, 365, 730)))
        elif r < 0.8:
            indefinite = True
        if (
            not (good_practice or complete) and rng.random() < 0.01
        ):  # a few records arrive without their decision maker
            prof = None  # type: ignore[assignment]
        if not (good_practice or complete) and rng.random() < 0.005:  # or with a mistyped NHS number
            person = replace(
                person, nhs_number=person.nhs_number[:9] + str((int(person.nhs_number[9]) + 1) % 10)
            )
        decision = CprDecision(
            source=SourceRef(system, self.next_id("D"), file="synthetic", location=f"record {self._ids}"),
            patient=person,
            decision=value,
            decision_date=day,
            status=status,
            recorded_date=day,
            review_date=review,
            review_indefinite=indefinite,
            rationale=rationale if rationale is not None else self.rationale(),
            capacity=capacity,
            discussed_with_patient=discussed,
            discussion_date=day if discussed else None,
            reason_not_discussed=reason,
            others_consulted=consulted,
            decision_maker=prof,
            decision_maker_is_senior=senior,
            senior_endorsement=endorsement,
            custodian=org,
            form_type=FormType.RESPECT if rng.random() < 0.4 else FormType.RCUK_DNACPR,
        )
        return CareRecord(decision=decision)

    def background(self, n: int) -> Iterator[CareRecord]:
        """``n`` ordinary records; some people have an older superseded decision or a shared copy."""
        rng = self.rng
        made = 0
        while made < n:
            record = self.decision()
            yield record
            made += 1
            d = record.decision
            assert d is not None
            r = rng.random()
            if made < n and r < 0.04 and d.status is RecordStatus.ACTIVE:
                # the GP holds a copy of a hospital decision: same date and value, consistent
                gp = d.patient.gp_practice or rng.choice(self.world.practices)
                yield self.decision(
                    person=d.patient,
                    org=gp,
                    system=GP_SYSTEM,
                    day=d.decision_date,
                    rationale=d.rationale,  # type: ignore[arg-type]
                    value=d.decision,
                    status=RecordStatus.ACTIVE,
                    maker=rng.choice(self.world.clinicians[gp.ods_code or ""]),
                )
                made += 1


def plant_blanket_cluster(gen: Generator, truth: Truth, day: date, size: int = 6) -> list[CareRecord]:
    """One GP, one care home, one or two days, a templated rationale for every resident; plus noise.

    The noise is what makes "nothing else" meaningful: the same home on other days (other clinicians,
    individual rationales, and the same GP with the template twice, weeks apart), the same GP on the
    same day elsewhere with individual rationales, and other clinicians at the home that day.
    """
    rng = gen.rng
    home = gen.world.care_homes[0]
    practice = home.gp_practice
    gp = gen.world.clinicians[practice.ods_code or ""][0]
    records: list[CareRecord] = []
    members: set[str] = set()
    for i in range(size):
        resident = gen.person(postcode=home.postcode, age=(78, 99), on=day)
        rec = gen.decision(
            complete=True,
            person=resident,
            org=practice,
            maker=gp,
            day=day + timedelta(days=1 if i == size - 1 else 0),
            rationale=BLANKET_TEMPLATE[i % len(BLANKET_TEMPLATE)],
            value=CprDecisionValue.NOT_FOR_CPR,
            status=RecordStatus.ACTIVE,
        )
        records.append(rec)
        members.add(ref(rec))
    truth.clusters.append(members)
    for offset in (-40, -21, 17, 45):  # same home, same GP, individual rationales, other days
        rec = gen.decision(
            complete=True,
            person=gen.person(postcode=home.postcode),
            org=practice,
            maker=gp,
            day=day + timedelta(days=offset),
            value=CprDecisionValue.NOT_FOR_CPR,
        )
        records.append(rec)
        truth.cluster_noise.add(ref(rec))
    for offset in (-30, 30):  # the template again at the same home by the same GP, but weeks apart
        rec = gen.decision(
            complete=True,
            person=gen.person(postcode=home.postcode),
            org=practice,
            maker=gp,
            day=day + timedelta(days=offset),
            rationale=BLANKET_TEMPLATE[0],
            value=CprDecisionValue.NOT_FOR_CPR,
        )
        records.append(rec)
        truth.cluster_noise.add(ref(rec))
        truth.protected[ref(rec)] = "age"
    for other_home in gen.world.care_homes[1:5]:  # same GP, same day, other homes, individual rationales
        rec = gen.decision(
            complete=True,
            person=gen.person(postcode=other_home.postcode),
            org=practice,
            maker=gp,
            day=day,
            value=CprDecisionValue.NOT_FOR_CPR,
        )
        records.append(rec)
        truth.cluster_noise.add(ref(rec))
    for maker in gen.world.clinicians[practice.ods_code or ""][1:3]:  # other clinicians at the home that day
        rec = gen.decision(
            complete=True,
            person=gen.person(postcode=home.postcode),
            org=practice,
            maker=maker,
            day=day,
            value=CprDecisionValue.NOT_FOR_CPR,
        )
        records.append(rec)
        truth.cluster_noise.add(ref(rec))
    for member in list(members):
        truth.protected[member] = "age"
    del rng
    return records


def plant_rationales(gen: Generator, truth: Truth) -> list[CareRecord]:
    records = []
    for category, text in PROTECTED_RATIONALES:
        young = category in ("learning-disability", "downs-syndrome", "autism", "disability")
        rec = gen.decision(
            complete=True,
            person=gen.person(age=(28, 60) if young else (80, 99)),
            rationale=text,
            value=CprDecisionValue.NOT_FOR_CPR,
        )
        truth.protected[ref(rec)] = category
        records.append(rec)
    for text in DECOY_RATIONALES:
        rec = gen.decision(complete=True, rationale=text, value=CprDecisionValue.NOT_FOR_CPR)
        truth.decoys.add(ref(rec))
        records.append(rec)
    for text in CEILING_RATIONALES:
        rec = gen.decision(complete=True, rationale=text, value=CprDecisionValue.NOT_FOR_CPR)
        truth.ceilings.add(ref(rec))
        records.append(rec)
    return records


def plant_cross_source(gen: Generator, truth: Truth) -> list[CareRecord]:
    """A conflict (GP not for CPR, hospital later for CPR, both active) and two stale copies."""
    rng, world = gen.rng, gen.world
    records = []
    # conflict
    person = gen.person()
    gp, trust = world.practices[1], world.trusts[0]
    old = gen.decision(
        complete=True,
        person=person,
        org=gp,
        day=date(2020, 4, 10),
        value=CprDecisionValue.NOT_FOR_CPR,
        status=RecordStatus.ACTIVE,
    )
    new = gen.decision(
        complete=True,
        person=person,
        org=trust,
        day=date(2021, 2, 3),
        value=CprDecisionValue.FOR_CPR,
        status=RecordStatus.ACTIVE,
        rationale="Recovered well; wishes CPR to be attempted.",
    )
    truth.conflicts.add(person.nhs_number)
    records += [old, new]
    # stale 1: hospital cancelled the decision, the GP copy (same date, same value) still active
    person = gen.person()
    day = date(2021, 6, 14)
    hosp = gen.decision(
        complete=True,
        person=person,
        org=trust,
        day=day,
        value=CprDecisionValue.NOT_FOR_CPR,
        status=RecordStatus.CANCELLED,
    )
    copy = gen.decision(
        complete=True,
        person=person,
        org=gp,
        system=GP_SYSTEM,
        day=day,
        value=CprDecisionValue.NOT_FOR_CPR,
        status=RecordStatus.ACTIVE,
        rationale=hosp.decision.rationale,
    )  # type: ignore[union-attr]
    truth.stale.add(ref(copy))
    records += [hosp, copy]
    # stale 2: a newer decision at the hospice; the hospital's older one still active
    person = gen.person()
    older = gen.decision(
        complete=True,
        person=person,
        org=world.trusts[1],
        day=date(2022, 1, 5),
        value=CprDecisionValue.NOT_FOR_CPR,
        status=RecordStatus.ACTIVE,
    )
    newer = gen.decision(
        complete=True,
        person=person,
        org=world.hospices[0],
        day=date(2022, 3, 9),
        value=CprDecisionValue.NOT_FOR_CPR,
        status=RecordStatus.ACTIVE,
    )
    truth.stale.add(ref(older))
    records += [older, newer]
    # consistent history in one source: superseded then active, not a finding
    person = gen.person()
    records.append(
        gen.decision(
            complete=True,
            person=person,
            org=trust,
            day=date(2019, 5, 1),
            value=CprDecisionValue.NOT_FOR_CPR,
            status=RecordStatus.SUPERSEDED,
        )
    )
    records.append(
        gen.decision(
            complete=True,
            person=person,
            org=trust,
            day=date(2020, 5, 1),
            value=CprDecisionValue.NOT_FOR_CPR,
            status=RecordStatus.ACTIVE,
        )
    )
    del rng
    return records


@dataclass
class Scenario:
    records: list[CareRecord]
    truth: Truth
    world: World


def scenario(seed: int = 7, background: int = 3000) -> Scenario:
    """A realistic small dataset: background practice plus every planted pattern, shuffled."""
    gen = Generator(seed)
    truth = Truth()
    records = list(gen.background(background))
    records += plant_blanket_cluster(gen, truth, date(2020, 4, 8))
    records += plant_rationales(gen, truth)
    records += plant_cross_source(gen, truth)
    gen.rng.shuffle(records)
    return Scenario(records, truth, gen.world)


def stream(n: int, seed: int = 42, cluster_every: int = 25_000) -> Iterator[CareRecord]:
    """``n`` records for benchmarks: background with a planted cluster and rationales every so often.

    The cast grows with ``n`` (about one GP practice per 4,000 records, one trust per 40,000, one care
    home per 1,000), so the number of decisions per clinician per week stays realistic at any size.
    Nothing is remembered between chunks, so generating 10^6 records takes no more memory than 10^3.
    """
    world = World.build(
        seed,
        practices=max(12, n // 4000),
        trusts=max(3, n // 40_000),
        hospices=max(2, n // 200_000),
        homes=max(20, n // 1000),
    )
    gen = Generator(seed, world=world)
    made = 0
    chunk = 0
    while made < n:
        planted: list[CareRecord] = []
        if chunk % 2 == 0:
            truth = Truth()  # discarded: the bench only needs the workload
            planted += plant_blanket_cluster(gen, truth, gen.day())
            planted += plant_rationales(gen, truth)
            planted += plant_cross_source(gen, truth)
        for record in planted:
            if made >= n:
                return
            yield record
            made += 1
        for record in gen.background(min(cluster_every, n - made)):
            yield record
            made += 1
        chunk += 1
