"""Conflict and stale-copy findings, made straight from the stored tuples, against the plain form:
the records read back as texts by name (``_stored_rows``) and ``_stored_evidence``."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance import AuditConfig
from fhir_dnacpr.assurance.conflicts import person_issues
from fhir_dnacpr.assurance.engine import NO_ORGANISATION, AuditRun
from fhir_dnacpr.assurance.findings import Finding
from fhir_dnacpr.assurance.rules import RULES
from fhir_dnacpr.model import (
    CareRecord,
    CprDecision,
    CprDecisionValue,
    Organisation,
    Person,
    Professional,
    RecordStatus,
    RegistrationBody,
    SourceRef,
)

NHS = ("9990000018", "9990000026", "9990000034")
PERSON_RULES = {"conflict": "conflicting-active-decisions", "stale": "superseded-elsewhere-still-active"}
DR = Professional("Marsh", ("Brian",), "GP principal", RegistrationBody.GMC, "7100486")

_RECORD = st.tuples(
    st.sampled_from(("urn:example:gp", "urn:example:hospital")),
    st.sampled_from(("R1", "R2", "9990000042", "H 7")),  # an id like an NHS number is masked
    st.sampled_from((None, "export.csv")),
    st.sampled_from((None, "line 3")),
    st.sampled_from((Organisation("ZA1000", "Archer Road Surgery"), Organisation("ZR10", None), None)),
    st.sampled_from(tuple(CprDecisionValue)),
    st.sampled_from((RecordStatus.ACTIVE, RecordStatus.CANCELLED, RecordStatus.SUPERSEDED)),
    st.dates(date(2019, 1, 1), date(2019, 1, 3)),
    st.sampled_from(NHS),
)


def _record(spec: tuple) -> CareRecord:
    system, record_id, file, location, org, value, status, day, nhs = spec
    return CareRecord(
        decision=CprDecision(
            source=SourceRef(system, record_id, file=file, location=location),
            patient=Person(nhs, "Archer", ("Ann",)),
            decision=value,
            decision_date=day,
            status=status,
            rationale="Frail; CPR would not succeed.",
            decision_maker=DR,
            custodian=org,
        )
    )


def _plain_finding(run: AuditRun, rule_id: str, seqs: list[int], reason: str) -> Finding:
    """The finding as the stored rows by name give it: the plain form of ``_report_person_issue``."""
    rows = run._stored_rows(seqs)
    evidence = tuple(run._stored_evidence(rows[s], with_text=False) for s in seqs if s in rows)
    systems = {e.system for e in evidence}
    orgs = {e.organisation or NO_ORGANISATION for e in evidence}
    where = f"across {len(systems)} source system(s) and {len(orgs)} organisation(s)"
    flagged = rows[seqs[0]]
    return Finding(
        rule_id,
        f"{reason[:1].upper()}{reason[1:]} ({where}).",
        evidence,
        flagged["org"] or NO_ORGANISATION,
        flagged["quarter"],
        patient=evidence[0].patient if evidence else None,
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_RECORD, min_size=2, max_size=10),
    st.booleans(),
    st.sampled_from((frozenset(), frozenset({"conflicting-active-decisions"}))),
)
def test_person_findings_match_the_plain_form(specs, show, disabled) -> None:
    seen: list[Finding] = []
    config = AuditConfig(date(2021, 1, 1), enabled=frozenset(RULES) - disabled, show_identifiers=show)
    run = AuditRun(config, on_finding=seen.append)
    try:
        for spec in specs:
            run.add(_record(spec))
        run.finish()
        made = [f for f in seen if f.rule_id in PERSON_RULES.values()]
        expected = [
            _plain_finding(run, PERSON_RULES[issue.kind], list(issue.seqs), issue.reason)
            for issue in person_issues(run.store.people_sorted())
            if PERSON_RULES[issue.kind] not in disabled
        ]
        assert made == expected
        assert [type(e) for f in made for e in f.evidence] == [type(e) for f in expected for e in f.evidence]
    finally:
        run.close()


def test_the_flagged_record_comes_first() -> None:
    """A stale copy names the active record first, then the newer one held elsewhere."""
    older = ("urn:example:gp", "R1", "export.csv", "line 3", None, CprDecisionValue.NOT_FOR_CPR)
    newer = (
        "urn:example:hospital",
        "H 7",
        None,
        None,
        Organisation("ZR10", None),
        CprDecisionValue.NOT_FOR_CPR,
    )
    seen: list[Finding] = []
    run = AuditRun(AuditConfig(date(2021, 1, 1)), on_finding=seen.append)
    try:
        run.add(_record((*older, RecordStatus.ACTIVE, date(2019, 1, 1), NHS[0])))
        run.add(_record((*newer, RecordStatus.ACTIVE, date(2019, 1, 2), NHS[0])))
        run.finish()
    finally:
        run.close()
    [stale] = [f for f in seen if f.rule_id == "superseded-elsewhere-still-active"]
    assert [e.ref for e in stale.evidence] == ["urn:example:gp|R1", "urn:example:hospital|H 7"]
    assert stale.evidence[0].origin == "export.csv, line 3" and stale.evidence[1].origin is None
    assert stale.organisation == NO_ORGANISATION and stale.quarter == "2019-Q1"
    assert (
        stale.detail.startswith("A newer decision")
        and "(across 2 source system(s) and 2 organisation(s))" in stale.detail
    )
