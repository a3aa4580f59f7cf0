"""``audit --server``: records pulled from the real HAPI FHIR test server (tests marked ``server``)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

import pytest
import requests
from server_fixture import fhir_base_url  # noqa: F401  (the real server, started once per session)

from fhir_dnacpr.assurance import AuditConfig, audit
from fhir_dnacpr.assurance.adapters import RejectSink, records_from_server
from fhir_dnacpr.model import (
    CareRecord,
    CprDecision,
    CprDecisionValue,
    Organisation,
    Person,
    Professional,
    RegistrationBody,
    SourceRef,
)

pytestmark = pytest.mark.server

GP = Organisation("ZA1000", "Archer Road Surgery")
TRUST = Organisation("ZR10", "Harper Hospitals NHS Trust")
DR = Professional("Marsh", ("Brian",), "GP principal", RegistrationBody.GMC, "7100486")
TEMPLATE = "Frail elderly care home resident. In view of the COVID-19 pandemic CPR would not be successful."


def decision(system: str, record_id: str, nhs: str, **changes: object) -> CareRecord:
    base = CprDecision(
        source=SourceRef(system, record_id),
        patient=Person(nhs, "Archer", ("Ann",), postcode="ZY1 1AA"),
        decision=CprDecisionValue.NOT_FOR_CPR,
        decision_date=date(2020, 4, 8),
        review_date=date(2030, 4, 1),
        rationale=TEMPLATE,
        discussed_with_patient=True,
        decision_maker=DR,
        decision_maker_is_senior=True,
        custodian=GP,
    )
    return CareRecord(decision=dataclasses.replace(base, **changes))  # type: ignore[arg-type]


def test_audit_records_pulled_from_the_server(fhir_base_url: str) -> None:  # noqa: F811
    from fhir_dnacpr.fhir.build import build_resources
    from fhir_dnacpr.fhir.ids import IdFactory

    run = uuid.uuid4().hex[:12]
    gp_system, hospital_system = f"urn:example:gp-{run}", f"urn:example:hospital-{run}"
    records = [
        decision(gp_system, "C1", "9990000018"),
        decision(gp_system, "C2", "9990000026"),
        decision(gp_system, "C3", "9990000034"),
        decision(gp_system, "X1", "9990000042", rationale="Metastatic lung cancer; CPR would not succeed."),
        decision(
            hospital_system,
            "X2",
            "9990000042",
            custodian=TRUST,
            decision=CprDecisionValue.FOR_CPR,
            decision_date=date(2021, 2, 3),
            rationale="Recovered well; wishes CPR to be attempted.",
        ),
    ]
    ids = IdFactory(f"assurance-test-{run}".encode())  # run-unique ids: a reused server cannot interfere
    entries, seen = [], set()
    for record in records:
        for resource in build_resources(record, ids):
            ref = f"{resource['resourceType']}/{resource['id']}"
            if ref not in seen:
                seen.add(ref)
                entries.append({"resource": resource, "request": {"method": "PUT", "url": ref}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = requests.post(
        fhir_base_url, json=bundle, headers={"Content-Type": "application/fhir+json"}, timeout=120
    )
    assert response.status_code == 200, response.text[:2000]

    rejects = RejectSink()
    pulled = list(
        records_from_server(
            fhir_base_url,
            rejects,
            page_size=2,  # forces paging through several pages
            extra_params=[("identifier", f"{gp_system}|,{hospital_system}|")],
        )
    )
    assert rejects.count == 0
    assert sorted(r.decision.source.record_id for r in pulled) == ["C1", "C2", "C3", "X1", "X2"]  # type: ignore[union-attr]
    assert all("page" in (r.decision.source.file or "") for r in pulled)  # type: ignore[union-attr]

    result = audit(pulled, AuditConfig(as_of=date(2023, 1, 1)))
    [cluster] = result.clusters
    assert {e.record_id for e in cluster.finding.evidence} == {"C1", "C2", "C3"}
    [conflict] = [f for f in result.findings if f.rule_id == "conflicting-active-decisions"]
    assert {e.record_id for e in conflict.evidence} == {"X1", "X2"}
