"""The per-record rules of the streaming audit against a plain restatement of them.

``AuditRun._add_decision`` is written for speed (rules test the record before their switch, fixed
texts made once, one evidence record per decision, day facts and the first/last day cached). Here
each rule is written out plainly, on varied hand-made decisions, and the findings passed on (in
order, every field), the metrics and the first and last decision days must be the same.
"""

from __future__ import annotations

from datetime import date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance import AuditConfig, audit
from fhir_dnacpr.assurance.findings import EvidenceRef, Finding
from fhir_dnacpr.assurance.metrics import quarter_of
from fhir_dnacpr.assurance.privacy import Pseudonymiser, mask_record_id, mask_text, patient_display
from fhir_dnacpr.assurance.terms import default_matcher
from fhir_dnacpr.model import (
    Capacity,
    CareRecord,
    CprDecision,
    CprDecisionValue,
    Endorsement,
    Organisation,
    PartyRole,
    Person,
    Professional,
    RecordStatus,
    RegistrationBody,
    RelatedParty,
    SourceRef,
)
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number, normalise_nhs_number

AS_OF = date(2021, 1, 1)
CROSS_RECORD = ("blanket-cluster", "conflicting-active-decisions", "superseded-elsewhere-still-active")
PER_RECORD = (
    "rationale-protected-characteristic",
    "cpr-decision-conflated",
    "not-discussed-no-reason",
    "lacks-capacity-no-consultation",
    "no-senior-endorsement",
    "review-overdue",
    "no-review-date",
    "incomplete-for-sharing",
)
DR = Professional("Marsh", ("Brian",), "GP principal", RegistrationBody.GMC, "7100486")
FY2 = Professional("Kemp", ("Alan",), "Foundation doctor (FY2)", RegistrationBody.GMC, "7100999")
NOBODY = Professional("", (), None, None, None)

_decisions = st.builds(
    CprDecision,
    source=st.builds(
        SourceRef,
        st.sampled_from(("urn:example:gp", "urn:example:epr")),
        st.sampled_from(("R1", "R2", "9990000018", "DN-0000000001")),
        file=st.sampled_from(("export.csv", None)),
        location=st.sampled_from(("line 2", None)),
    ),
    patient=st.builds(
        Person,
        st.sampled_from(("9990000018", "999 000 0026", "999-000-0034", "9990000019", "", "99900000181")),
        st.sampled_from(("Archer", None)),
        st.sampled_from(((), ("Ann",), ("Ann", "Marie"))),
    ),
    decision=st.sampled_from(tuple(CprDecisionValue)),
    decision_date=st.one_of(
        st.none(),
        st.dates(date(2019, 1, 1), date(2021, 12, 31)),
        st.datetimes(datetime(2019, 1, 1), datetime(2021, 12, 31)),
    ),
    status=st.sampled_from(tuple(RecordStatus)),
    review_date=st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2021, 12, 31))),
    review_indefinite=st.booleans(),
    rationale=st.sampled_from(
        (
            None,
            "",
            "Metastatic carcinoma; CPR would not be successful.",
            "Ann Archer has Down's syndrome and is frail. Not for ICU.",
            "Aged 94, not for antibiotics or admission.",
        )
    ),
    capacity=st.sampled_from((None, *Capacity)),
    discussed_with_patient=st.sampled_from((None, True, False)),
    reason_not_discussed=st.sampled_from((None, "", "  ", "Declined")),
    others_consulted=st.sampled_from(((), (RelatedParty("Joan", PartyRole.IMCA),))),
    decision_maker=st.sampled_from((None, DR, FY2, NOBODY, Professional("Rees"))),
    decision_maker_is_senior=st.sampled_from((None, True, False)),
    senior_endorsement=st.sampled_from((None, Endorsement(DR))),
    custodian=st.sampled_from(
        (None, Organisation("ZA1000", "Archer Road"), Organisation(None, " Home "), Organisation("ZR10"))
    ),
)


def _plain_findings(d: CprDecision, show: bool, pseudo: Pseudonymiser) -> list[Finding]:
    """The per-record rules as docs/assurance.md states them, one after another."""
    if d.status is RecordStatus.ENTERED_IN_ERROR:
        return []
    when = d.decision_date
    day = (when.date() if isinstance(when, datetime) else when) if when else None
    org = NO_ORG
    if d.custodian is not None:
        org = d.custodian.ods_code or (d.custodian.name or "").strip() or NO_ORG
    number = d.patient.nhs_number
    number = number if len(number) == 10 else normalise_nhs_number(number)
    valid = is_valid_nhs_number(number)
    label = pseudo.label(number) if valid else "(no valid NHS number)"
    person = patient_display(d.patient, label, True) if show else label
    found: list[tuple[str, str, tuple[str, ...], bool]] = []
    if d.decision is CprDecisionValue.NOT_FOR_CPR:
        hits = default_matcher().find(d.rationale) if d.rationale else []
        protected = [h for h in hits if h.rule == "rationale-protected-characteristic"]
        ceilings = [h for h in hits if h.rule == "cpr-decision-conflated"]
        if protected:
            cats = tuple(dict.fromkeys(h.category for h in protected))
            words = ", ".join(dict.fromkeys(f"'{h.matched}'" for h in protected))
            detail = (
                f"Rationale mentions {', '.join(cats)} ({words}): check the decision was made on the "
                "person's individual clinical circumstances."
            )
            found.append(("rationale-protected-characteristic", detail, cats, True))
        if ceilings:
            words = ", ".join(dict.fromkeys(f"'{h.matched}'" for h in ceilings))
            detail = (
                f"CPR rationale also limits other treatment ({words}); a DNACPR decision applies only to CPR."
            )
            found.append(("cpr-decision-conflated", detail, ("treatment-ceiling",), True))
        lacks = d.capacity is Capacity.LACKS_CAPACITY
        reason = (d.reason_not_discussed or "").strip()
        if d.discussed_with_patient is not True and not lacks and not reason:
            how = "recorded as not discussed" if d.discussed_with_patient is False else "not recorded"
            detail = f"Discussion with the person {how}, and no reason for not discussing it is given."
            found.append(("not-discussed-no-reason", detail, (), False))
        if lacks and not d.others_consulted:
            detail = (
                "Person recorded as lacking capacity; no LPA, IMCA, relative or carer is recorded as "
                "consulted."
            )
            found.append(("lacks-capacity-no-consultation", detail, (), False))
        if d.decision_maker_is_senior is False and d.senior_endorsement is None:
            role = f" ({d.decision_maker.role})" if d.decision_maker and d.decision_maker.role else ""
            detail = (
                f"Decision maker{role} is recorded as not the senior responsible clinician, and no senior "
                "endorsement is recorded."
            )
            found.append(("no-senior-endorsement", detail, (), False))
        active = d.status is RecordStatus.ACTIVE
        if active and d.review_date is not None and d.review_date < AS_OF:
            late = (AS_OF - d.review_date).days
            detail = f"Review date {d.review_date.isoformat()} passed {late} days before {AS_OF.isoformat()}."
            found.append(("review-overdue", detail, (), False))
        if active and d.review_date is None and not d.review_indefinite:
            found.append(("no-review-date", "No review date, and not marked indefinite.", (), False))
    maker = d.decision_maker
    missing = [
        what
        for what, gone in (
            (
                "decision maker",
                maker is None or not (maker.family_name or maker.given_names or maker.registration_number),
            ),
            ("decision date", day is None),
            ("organisation", org == NO_ORG),
            ("valid NHS number", not valid),
        )
        if gone
    ]
    if missing:
        found.append(("incomplete-for-sharing", f"Missing: {', '.join(missing)}.", (), False))
    origin = ", ".join(x for x in (d.source.file, d.source.location) if x) or None
    out = []
    for rule_id, detail, terms, with_text in found:
        evidence = EvidenceRef(
            d.source.system,
            mask_record_id(d.source.record_id, show),
            person,
            origin,
            org,
            d.decision.value,
            day.isoformat() if day else None,
            d.status.value,
            mask_text(d.rationale, d.patient, show) if with_text and d.rationale else None,
        )
        quarter = quarter_of(day) if day else "(no date)"
        out.append(Finding(rule_id, detail, (evidence,), org, quarter, person, terms))
    return out


NO_ORG = "(no organisation)"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_decisions, min_size=1, max_size=8), st.booleans())
def test_per_record_findings_equal_the_plain_rules(decisions: list[CprDecision], show: bool) -> None:
    config = AuditConfig(as_of=AS_OF, show_identifiers=show)
    seen: list[Finding] = []
    result = audit((CareRecord(decision=d) for d in decisions), config, on_finding=seen.append)
    pseudo = Pseudonymiser(config.pseudonym_key)
    expected = [f for d in decisions for f in _plain_findings(d, show, pseudo)]
    assert [f for f in seen if f.rule_id not in CROSS_RECORD] == expected
    assert result.unreadable_count == 0

    dated = [
        (d.decision_date.date() if isinstance(d.decision_date, datetime) else d.decision_date)
        for d in decisions
        if d.status is not RecordStatus.ENTERED_IN_ERROR and d.decision_date
    ]
    assert (result.first_decision, result.last_decision) == (
        (min(dated), max(dated)) if dated else (None, None)
    )
    counted = [
        d
        for d in decisions
        if d.decision is CprDecisionValue.NOT_FOR_CPR and d.status is not RecordStatus.ENTERED_IN_ERROR
    ]
    total = result.metrics.total()
    assert total.decisions == len(counted)
    assert total.discussed == sum(d.discussed_with_patient is True for d in counted)
    assert total.capacity_recorded == sum(
        d.capacity in (Capacity.HAS_CAPACITY, Capacity.LACKS_CAPACITY) for d in counted
    )
    assert total.senior == sum(
        d.decision_maker_is_senior is True or d.senior_endorsement is not None for d in counted
    )
    active = [d for d in counted if d.status is RecordStatus.ACTIVE]
    assert total.active == len(active)
    assert total.overdue == sum(d.review_date is not None and d.review_date < AS_OF for d in active)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_decisions, min_size=1, max_size=6), st.sets(st.sampled_from(PER_RECORD)))
def test_disabled_rules_pass_on_nothing_and_leave_the_rest(
    decisions: list[CprDecision], off: set[str]
) -> None:
    config = AuditConfig(as_of=AS_OF).with_rules({"rules": {r: {"enabled": False} for r in off}})
    seen: list[Finding] = []
    audit((CareRecord(decision=d) for d in decisions), config, on_finding=seen.append)
    pseudo = Pseudonymiser(config.pseudonym_key)
    expected = [f for d in decisions for f in _plain_findings(d, False, pseudo) if f.rule_id not in off]
    assert [f for f in seen if f.rule_id not in CROSS_RECORD] == expected
