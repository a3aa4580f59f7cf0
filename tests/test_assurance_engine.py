"""Per-record rules, cross-source conflicts, masking and the metrics, on small hand-made records."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance import AuditConfig, audit
from fhir_dnacpr.assurance.config import ConfigError
from fhir_dnacpr.assurance.privacy import Pseudonymiser
from fhir_dnacpr.model import (
    AdvanceCarePlan,
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

NHS = ("9990000018", "9990000026", "9990000034", "9990000042", "9990000050", "9990000069")
GP = Organisation("ZA1000", "Archer Road Surgery")
TRUST = Organisation("ZR10", "Harper Hospitals NHS Trust")
DR = Professional("Marsh", ("Brian",), "GP principal", RegistrationBody.GMC, "7100486")
FY2 = Professional("Kemp", ("Alan",), "Foundation doctor (FY2)", RegistrationBody.GMC, "7100999")
AS_OF = date(2021, 1, 1)
_ids = iter(range(1, 10_000))


def decision(**changes: object) -> CareRecord:
    """A well-made DNACPR decision (no findings) with the given changes."""
    base = CprDecision(
        source=SourceRef("urn:example:gp", f"R{next(_ids)}", file="export.csv", location="line 2"),
        patient=Person(NHS[0], "Archer", ("Ann",), postcode="ZY1 1AA"),
        decision=CprDecisionValue.NOT_FOR_CPR,
        decision_date=date(2020, 4, 1),
        review_date=date(2021, 4, 1),
        rationale="Metastatic carcinoma of the bronchus; CPR would not be successful.",
        capacity=Capacity.HAS_CAPACITY,
        discussed_with_patient=True,
        decision_maker=DR,
        decision_maker_is_senior=True,
        custodian=GP,
    )
    return CareRecord(decision=dataclasses.replace(base, **changes))  # type: ignore[arg-type]


def rule_ids(records: list[CareRecord], **config: object) -> list[str]:
    result = audit(records, AuditConfig(as_of=AS_OF, **config))  # type: ignore[arg-type]
    return sorted(f.rule_id for f in result.findings)


def test_a_well_made_decision_has_no_findings() -> None:
    assert rule_ids([decision()]) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"discussed_with_patient": False}, ["not-discussed-no-reason"]),
        ({"discussed_with_patient": None}, ["not-discussed-no-reason"]),
        ({"discussed_with_patient": False, "reason_not_discussed": "Declined to discuss"}, []),
        (
            {"capacity": Capacity.LACKS_CAPACITY, "discussed_with_patient": None},
            ["lacks-capacity-no-consultation"],
        ),
        (
            {
                "capacity": Capacity.LACKS_CAPACITY,
                "discussed_with_patient": None,
                "others_consulted": (RelatedParty("Joan Archer", PartyRole.LPA_HEALTH_WELFARE),),
            },
            [],
        ),
        ({"decision_maker": FY2, "decision_maker_is_senior": False}, ["no-senior-endorsement"]),
        (
            {
                "decision_maker": FY2,
                "decision_maker_is_senior": False,
                "senior_endorsement": Endorsement(DR, date(2020, 4, 2)),
            },
            [],
        ),
        ({"review_date": date(2020, 10, 1)}, ["review-overdue"]),
        ({"review_date": date(2020, 10, 1), "status": RecordStatus.CANCELLED}, []),
        ({"review_date": None}, ["no-review-date"]),
        ({"review_date": None, "review_indefinite": True}, []),
        ({"rationale": "Down's syndrome. Not for CPR."}, ["rationale-protected-characteristic"]),
        ({"rationale": "End-stage COPD. Not for ICU, no antibiotics."}, ["cpr-decision-conflated"]),
        ({"decision_maker": None}, ["incomplete-for-sharing"]),
        ({"custodian": None}, ["incomplete-for-sharing"]),
        ({"patient": Person("9990000019")}, ["incomplete-for-sharing"]),  # fails Modulus 11
        ({"status": RecordStatus.ENTERED_IN_ERROR, "decision_maker": None}, []),
        # a for-CPR decision needs no discussion reason or review date, but must still be shareable
        ({"decision": CprDecisionValue.FOR_CPR, "discussed_with_patient": None, "review_date": None}, []),
        ({"decision": CprDecisionValue.FOR_CPR, "custodian": None}, ["incomplete-for-sharing"]),
    ],
)
def test_record_rules(changes: dict[str, object], expected: list[str]) -> None:
    assert rule_ids([decision(**changes)]) == expected


def test_incomplete_plan_is_flagged() -> None:
    plan = AdvanceCarePlan(SourceRef("urn:example:acp", "P1"), Person(NHS[1]), created=date(2020, 1, 1))
    result = audit([CareRecord(plan=plan)], AuditConfig(as_of=AS_OF))
    [finding] = result.findings
    assert finding.rule_id == "incomplete-for-sharing"
    assert "author" in finding.detail and "organisation" in finding.detail


def test_disabled_rules_do_not_run() -> None:
    config = AuditConfig(as_of=AS_OF).with_rules({"rules": {"no-review-date": {"enabled": False}}})
    result = audit([decision(review_date=None)], config)
    assert result.findings == [] and "no-review-date" not in result.rule_counts


def test_rules_file_errors_name_the_problem() -> None:
    base = AuditConfig(as_of=AS_OF)
    with pytest.raises(ConfigError, match="unknown rule"):
        base.with_rules({"rules": {"no-such-rule": False}})
    with pytest.raises(ConfigError, match="min_cluster_size"):
        base.with_rules({"rules": {"blanket-cluster": {"min_cluster_size": 1}}})
    with pytest.raises(ConfigError, match="unknown settings"):
        base.with_rules({"rules": {"blanket-cluster": {"window": 2}}})
    with pytest.raises(ConfigError, match="no settings"):
        base.with_rules({"rules": {"review-overdue": {"days": 2}}})


def person(nhs: str) -> Person:
    return Person(nhs, "Baker", ("Brian",))


def test_conflicting_active_decisions_across_sources() -> None:
    gp = decision(patient=person(NHS[2]), decision_date=date(2020, 4, 10))
    hospital = decision(
        source=SourceRef("urn:example:hospital", "H1"),
        patient=person(NHS[2]),
        custodian=TRUST,
        decision=CprDecisionValue.FOR_CPR,
        decision_date=date(2020, 9, 1),
    )
    result = audit([gp, hospital], AuditConfig(as_of=AS_OF))
    [finding] = [f for f in result.findings if f.rule_id == "conflicting-active-decisions"]
    assert {e.ref for e in finding.evidence} == {
        "urn:example:gp|" + gp.decision.source.record_id,
        "urn:example:hospital|H1",
    }  # type: ignore[union-attr]
    assert "superseded-elsewhere-still-active" not in result.rule_counts


def test_stale_copies() -> None:
    day = date(2020, 6, 1)
    cancelled = decision(
        source=SourceRef("urn:example:hospital", "H2"),
        patient=person(NHS[3]),
        custodian=TRUST,
        decision_date=day,
        status=RecordStatus.CANCELLED,
    )
    gp_copy = decision(patient=person(NHS[3]), decision_date=day)
    older = decision(patient=person(NHS[4]), decision_date=date(2019, 1, 1))
    newer = decision(
        source=SourceRef("urn:example:hospital", "H3"),
        patient=person(NHS[4]),
        custodian=TRUST,
        decision_date=date(2020, 2, 1),
    )
    # one source's own history (superseded, then active) is not a finding
    history = [
        decision(patient=person(NHS[5]), decision_date=date(2019, 1, 1), status=RecordStatus.SUPERSEDED),
        decision(patient=person(NHS[5]), decision_date=date(2020, 1, 1)),
    ]
    result = audit([cancelled, gp_copy, older, newer, *history], AuditConfig(as_of=AS_OF))
    stale = [f for f in result.findings if f.rule_id == "superseded-elsewhere-still-active"]
    flagged = {f.evidence[0].ref for f in stale}
    assert flagged == {
        f"urn:example:gp|{gp_copy.decision.source.record_id}",  # type: ignore[union-attr]
        f"urn:example:gp|{older.decision.source.record_id}",  # type: ignore[union-attr]
    }
    assert "conflicting-active-decisions" not in result.rule_counts


def test_same_record_twice_is_not_a_conflict_with_itself() -> None:
    record = decision(patient=person(NHS[2]))
    assert "conflicting-active-decisions" not in audit([record, record], AuditConfig(as_of=AS_OF)).rule_counts


def test_identifiers_masked_by_default_and_shown_on_request() -> None:
    record = decision(
        rationale="Mrs Archer (NHS 999 000 0018) has Down's syndrome.", discussed_with_patient=None
    )
    masked = audit([record], AuditConfig(as_of=AS_OF))
    text = repr(masked.findings)
    assert (
        "9990000018" not in text
        and "999 000 0018" not in text
        and "Archer" not in text.replace("Archer Road", "")
    )
    label = Pseudonymiser(AuditConfig().pseudonym_key).label("9990000018")
    assert all(f.patient == label for f in masked.findings)
    shown = audit([record], AuditConfig(as_of=AS_OF, show_identifiers=True))
    assert all(f.patient == "999 000 0018 Ann Archer" for f in shown.findings)
    [flagged] = [f for f in shown.findings if f.rule_id == "rationale-protected-characteristic"]
    assert "Mrs Archer" in (flagged.evidence[0].excerpt or "")
    [masked_flag] = [f for f in masked.findings if f.rule_id == "rationale-protected-characteristic"]
    assert masked_flag.evidence[0].excerpt == "Mrs [name] (NHS [number]) has Down's syndrome."
    # findings about other things carry no clinical text at all
    assert all(f.evidence[0].excerpt is None for f in masked.findings if f is not masked_flag)


def test_pseudonyms_depend_on_the_key() -> None:
    a = Pseudonymiser(b"key-one").label("9990000018")
    assert a == Pseudonymiser(b"key-one").label("9990000018")
    assert a != Pseudonymiser(b"key-two").label("9990000018")


def test_record_ids_that_are_nhs_numbers_are_masked() -> None:
    record = decision(source=SourceRef("urn:example:gp", "9990000018"), review_date=None)
    [finding] = audit([record], AuditConfig(as_of=AS_OF)).findings
    assert finding.evidence[0].record_id == "[NHS-number-like id]"


def test_metrics_equal_hand_computed_values() -> None:
    q2, q3 = date(2020, 5, 1), date(2020, 8, 1)
    records = [
        # GP, 2020-Q2: 4 DNACPR decisions (+1 for-CPR, +1 entered in error, neither counted)
        decision(decision_date=q2, discussed_with_patient=True, capacity=Capacity.HAS_CAPACITY),
        decision(
            decision_date=q2,
            discussed_with_patient=False,
            capacity=Capacity.NOT_ASSESSED,
            review_date=date(2020, 11, 1),
        ),
        decision(
            decision_date=q2,
            discussed_with_patient=None,
            capacity=None,
            decision_maker=FY2,
            decision_maker_is_senior=False,
        ),
        decision(
            decision_date=q2,
            capacity=Capacity.LACKS_CAPACITY,
            decision_maker=FY2,
            decision_maker_is_senior=False,
            senior_endorsement=Endorsement(DR, q2),
            status=RecordStatus.CANCELLED,
            review_date=date(2020, 6, 1),
        ),
        decision(decision_date=q2, decision=CprDecisionValue.FOR_CPR),
        decision(decision_date=q2, status=RecordStatus.ENTERED_IN_ERROR),
        # Trust, 2020-Q3: 2 decisions
        decision(decision_date=q3, custodian=TRUST, review_date=date(2020, 12, 31)),
        decision(
            decision_date=q3, custodian=TRUST, discussed_with_patient=False, review_date=date(2021, 1, 1)
        ),
    ]
    result = audit(records, AuditConfig(as_of=AS_OF))
    gp = result.metrics.cells[("ZA1000", "2020-Q2")]
    assert (gp.decisions, gp.discussed, gp.capacity_recorded, gp.senior, gp.active, gp.overdue) == (
        4,
        2,
        2,
        3,
        3,
        1,
    )
    trust = result.metrics.cells[("ZR10", "2020-Q3")]
    assert (
        trust.decisions,
        trust.discussed,
        trust.capacity_recorded,
        trust.senior,
        trust.active,
        trust.overdue,
    ) == (
        2,
        1,
        2,
        2,
        2,
        1,
    )
    rows = {(r["organisation"], r["quarter"]): r for r in result.metrics.rows()}
    assert rows[("ZA1000", "2020-Q2")]["pct_discussed"] == 50.0
    assert rows[("ZA1000", "2020-Q2")]["pct_overdue"] == pytest.approx(33.3)
    assert rows[("ZR10", "2020-Q3")]["pct_endorsed"] == 100.0
    total = result.metrics.total()
    assert (total.decisions, total.discussed, total.overdue) == (6, 3, 2)
    assert result.excluded_entered_in_error == 1
    assert result.metrics.quarters() == ["2020-Q2", "2020-Q3"]


def test_findings_are_streamed_and_bounded() -> None:
    seen = []
    records = [decision(review_date=None) for _ in range(30)]
    result = audit(records, AuditConfig(as_of=AS_OF, max_findings_kept=5), on_finding=seen.append)
    assert len(seen) == 30 and result.rule_counts == {"no-review-date": 30}
    assert len(result.findings) == 5 and result.findings_truncated


def test_finding_ids_are_stable() -> None:
    record = decision(review_date=None)
    first = audit([record], AuditConfig(as_of=AS_OF)).findings[0].finding_id
    assert first == audit([record], AuditConfig(as_of=AS_OF)).findings[0].finding_id
    assert first.startswith("no-review-date-")


def test_a_record_that_breaks_a_rule_does_not_end_the_audit() -> None:
    odd = decision(decision_date="2020-04-01")  # a string where a date belongs
    result = audit([decision(review_date=None), odd, decision(review_date=None)], AuditConfig(as_of=AS_OF))
    assert result.records == 3 and result.rule_counts == {"no-review-date": 2}
    assert result.unreadable_count == 1
    assert result.unreadable == [(f"urn:example:gp|{odd.decision.source.record_id}", "AttributeError")]  # type: ignore[union-attr]


# -- the stream's fast paths against their plain forms ----------------------------------------------

_SYSTEMS = st.sampled_from(("urn:example:gp", "urn:example:epr", "urn:example:hospice"))
_ORGS = st.sampled_from((GP, TRUST, Organisation(None, "  Unnamed Home "), None))
_MAKERS = st.sampled_from(
    (DR, FY2, Professional("Rees", (), None, None, None), Professional("", (), None, None, None), None)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            _SYSTEMS,
            _ORGS,
            _MAKERS,
            st.dates(date(1990, 1, 1), date(2030, 12, 31)),
            st.sampled_from(tuple(CprDecisionValue)),
            st.sampled_from((RecordStatus.ACTIVE, RecordStatus.CANCELLED, RecordStatus.SUPERSEDED)),
            st.sampled_from(NHS),
            st.sampled_from(("ZY1 1AA", "zy11aa", None)),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_stored_evidence_reads_back_as_the_plain_texts(specs) -> None:
    """The spill stores a record's system, organisation, decision, status and decision maker as
    indexes and its day as a number; read back they are the texts the record had, and the quarter
    is the day's."""
    from fhir_dnacpr.assurance.engine import AuditRun, _maker_label

    run = AuditRun(AuditConfig(as_of=AS_OF))
    try:
        expected = {}
        for system, org, maker, day, value, status, nhs, postcode in specs:
            record = decision(
                source=SourceRef(system, f"R{next(_ids)}", file="export.csv", location="line 2"),
                patient=Person(nhs, "Archer", ("Ann",), postcode=postcode),
                custodian=org,
                decision_maker=maker,
                decision=value,
                decision_date=day,
                status=status,
            )
            run.add(record)
            org_key = (org.ods_code or (org.name or "").strip()) if org else "(no organisation)"
            candidate = (
                value is CprDecisionValue.NOT_FOR_CPR
                and maker is not None
                and (maker.registration_number or maker.display_name.strip())
            )
            label = (_maker_label(maker) if maker else None) if candidate else None
            expected[run._seq] = (
                system,
                org_key,
                value.value,
                day.isoformat(),
                status.value,
                f"{day.year}-Q{(day.month - 1) // 3 + 1}",
                label,
            )
        rows = run._stored_rows(list(expected))
        assert {
            seq: (r["system"], r["org"], r["decision"], r["day"], r["status"], r["quarter"], r["maker"])
            for seq, r in rows.items()
        } == expected
    finally:
        run.close()


@given(st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=9, max_size=9))
def test_findings_made_in_c_equal_the_named_tuples(values) -> None:
    """The engine makes evidence and findings with ``tuple.__new__`` and every field in order (no
    Python ``__new__`` frame): a field added to either class must be added there too."""
    from fhir_dnacpr.assurance.engine import _new_tuple
    from fhir_dnacpr.assurance.findings import EvidenceRef, Finding

    assert EvidenceRef._fields[-1] == "excerpt" and len(EvidenceRef._fields) == 9
    assert Finding._fields[-1] == "data" and len(Finding._fields) == 8
    evidence = _new_tuple(EvidenceRef, values)
    assert type(evidence) is EvidenceRef and evidence == EvidenceRef(*values)
    assert evidence._asdict() == EvidenceRef(*values)._asdict()
    fields = ("rule", "detail", (evidence,), "org", values[0], values[1], (), None)
    finding = _new_tuple(Finding, fields)
    assert type(finding) is Finding and finding == Finding(*fields) and finding.data is None
