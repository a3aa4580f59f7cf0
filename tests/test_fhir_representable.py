"""representation_issues: says which values FHIR will not carry, and only those."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from hypothesis import HealthCheck, given, settings
from strategies import care_records
from test_fhir_build import CONSULTANT, DAUGHTER, DECISION, FRIEND, PLAN, RESPECT

from fhir_dnacpr.fhir.representable import representation_issues
from fhir_dnacpr.model import CareRecord, Coded, Organisation, PartyRole, RegistrationBody


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(care_records())
def test_representable_records_raise_nothing(record: CareRecord) -> None:
    assert representation_issues(record) == []


def test_the_full_example_is_representable() -> None:
    assert representation_issues(RESPECT) == []


def ids(record: CareRecord) -> set[str]:
    return {i.message_id for i in representation_issues(record)}


def test_each_loss_is_named() -> None:
    with_org = replace(CONSULTANT, organisation=Organisation("RR8"))
    assert ids(CareRecord(replace(DECISION, decision_maker=with_org))) == {"FHIR_NOT_CARRIED_PRO_ORG"}
    assert ids(CareRecord(replace(DECISION, discussed_with_patient=None))) == {
        "FHIR_NOT_CARRIED_DISCUSSION_DATE"
    }
    assert ids(CareRecord(replace(DECISION, decision_date=datetime(2025, 1, 1, 9, 0)))) == {
        "FHIR_NOT_CARRIED_NAIVE_TIME"
    }
    body_only = replace(CONSULTANT, registration_number=None, registration_body=RegistrationBody.NMC)
    assert ids(CareRecord(plan=replace(PLAN, author=body_only))) == {"FHIR_NOT_CARRIED_REG_BODY"}
    assert ids(CareRecord(plan=replace(PLAN, custodian=Organisation()))) == {"FHIR_NOT_CARRIED_EMPTY_ORG"}
    assert ids(CareRecord(plan=replace(PLAN, lpa=(FRIEND,), people_to_involve=()))) == {
        "FHIR_NOT_CARRIED_LPA_ROLE"
    }
    lpa_to_involve = replace(
        PLAN, lpa=(), people_to_involve=(replace(DAUGHTER, role=PartyRole.LPA_HEALTH_WELFARE),)
    )
    assert ids(CareRecord(plan=lpa_to_involve)) == {"FHIR_NOT_CARRIED_LPA_ROLE"}
    consulted = replace(PLAN, people_to_involve=(replace(FRIEND, consulted_on=date(2025, 1, 1)),))
    assert ids(CareRecord(plan=consulted)) == {"FHIR_NOT_CARRIED_CONSULTED_ON"}
    assert ids(CareRecord(plan=replace(PLAN, conditions=(Coded(),)))) == {"FHIR_NOT_CARRIED_EMPTY_CODED"}
    split = CareRecord(DECISION, replace(PLAN, source=replace(PLAN.source, record_id="OTHER")))
    assert ids(split) == {"FHIR_NOT_CARRIED_SPLIT_RECORD"}
    assert ids(replace(RESPECT, warnings=("date guessed",))) == {"FHIR_NOT_CARRIED_WARNINGS"}
