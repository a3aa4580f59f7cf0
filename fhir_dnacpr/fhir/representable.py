"""What a canonical record holds that FHIR (as docs/fhir-mapping.md maps it) cannot carry.

``build_resources`` never fails on a valid record, so it cannot say what it left out; this check does,
cheaply, so the pipeline can attach the losses to the record's outcome instead of losing data
silently. Each issue names the field and what happens to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.model import CareRecord, Coded, Organisation, PartyRole, Professional


def _issue(severity: Severity, field: str, message: str, message_id: str) -> Issue:
    return Issue(
        severity,
        "informational" if severity == Severity.INFORMATION else "value",
        message,
        field,
        f"FHIR_NOT_CARRIED_{message_id}",
    )


def _naive(value: object) -> bool:
    return isinstance(value, datetime) and value.tzinfo is None


def _professional(pro: Professional | None, field: str) -> Iterator[Issue]:
    if pro is None:
        return
    if pro.organisation is not None:
        yield _issue(
            Severity.INFORMATION,
            f"{field}.organisation",
            "a professional's organisation is not carried (no PractitionerRole in v0.1)",
            "PRO_ORG",
        )
    if pro.registration_body and not pro.registration_number:
        yield _issue(
            Severity.WARNING,
            f"{field}.registration_body",
            "a registration body without a number cannot be carried",
            "REG_BODY",
        )


def _organisation(org: Organisation | None, field: str) -> Iterator[Issue]:
    if org is not None and not org.ods_code and not org.name:
        yield _issue(
            Severity.WARNING, field, "an organisation with neither ODS code nor name is left out", "EMPTY_ORG"
        )


def _coded(coded: Coded | None, field: str) -> Iterator[Issue]:
    if coded is not None and not (coded.system or coded.code or coded.display or coded.text):
        yield _issue(Severity.WARNING, field, "an empty coded value is left out", "EMPTY_CODED")


def representation_issues(record: CareRecord) -> list[Issue]:
    """Issues for every value of ``record`` the FHIR resources will not carry (or carry changed)."""
    issues: list[Issue] = []
    d, p = record.decision, record.plan
    if d is not None:
        for name in ("decision_date", "recorded_date"):
            if _naive(getattr(d, name)):
                issues.append(
                    _issue(
                        Severity.INFORMATION,
                        f"decision.{name}",
                        "a time without a zone is written as Europe/London time",
                        "NAIVE_TIME",
                    )
                )
        if d.discussion_date is not None and d.discussed_with_patient is None:
            issues.append(
                _issue(
                    Severity.WARNING,
                    "decision.discussion_date",
                    "a discussion date without whether the patient was involved cannot be carried "
                    "(Consent.verification.verified is required)",
                    "DISCUSSION_DATE",
                )
            )
        issues.extend(_professional(d.decision_maker, "decision.decision_maker"))
        if d.senior_endorsement is not None:
            issues.extend(_professional(d.senior_endorsement.by, "decision.senior_endorsement.by"))
            if _naive(d.senior_endorsement.at):
                issues.append(
                    _issue(
                        Severity.INFORMATION,
                        "decision.senior_endorsement.at",
                        "a time without a zone is written as Europe/London time",
                        "NAIVE_TIME",
                    )
                )
        issues.extend(_organisation(d.custodian, "decision.custodian"))
        issues.extend(_organisation(d.patient.gp_practice, "decision.patient.gp_practice"))
    if p is not None:
        if _naive(p.created):
            issues.append(
                _issue(
                    Severity.INFORMATION,
                    "plan.created",
                    "a time without a zone is written as Europe/London time",
                    "NAIVE_TIME",
                )
            )
        issues.extend(_professional(p.author, "plan.author"))
        issues.extend(_organisation(p.custodian, "plan.custodian"))
        for i, party in enumerate(p.lpa):
            if party.role != PartyRole.LPA_HEALTH_WELFARE:
                issues.append(
                    _issue(
                        Severity.WARNING,
                        f"plan.lpa[{i}].role",
                        f"an LPA entry with role {party.role} reads back as a person to involve",
                        "LPA_ROLE",
                    )
                )
        for i, party in enumerate(p.people_to_involve):
            if party.role == PartyRole.LPA_HEALTH_WELFARE:
                issues.append(
                    _issue(
                        Severity.WARNING,
                        f"plan.people_to_involve[{i}].role",
                        "a person to involve with the LPA role reads back as an LPA",
                        "LPA_ROLE",
                    )
                )
        for i, party in enumerate((*p.lpa, *p.people_to_involve)):
            if party.consulted_on is not None:
                issues.append(
                    _issue(
                        Severity.WARNING,
                        f"plan.parties[{i}].consulted_on",
                        "consulted_on is carried only for people the decision consulted",
                        "CONSULTED_ON",
                    )
                )
        for i, condition in enumerate(p.conditions):
            issues.extend(_coded(condition, f"plan.conditions[{i}]"))
        issues.extend(_coded(p.preferred_place_of_care, "plan.preferred_place_of_care"))
        issues.extend(_coded(p.preferred_place_of_death, "plan.preferred_place_of_death"))
        if d is not None and (d.source.system, d.source.record_id) != (p.source.system, p.source.record_id):
            issues.append(
                _issue(
                    Severity.INFORMATION,
                    "plan.source",
                    "decision and plan have different source ids: they read back as two records",
                    "SPLIT_RECORD",
                )
            )
    for item, name in ((d, "decision"), (p, "plan")):
        if item is not None and _naive(item.source.last_updated):
            issues.append(
                _issue(
                    Severity.INFORMATION,
                    f"{name}.source.last_updated",
                    "a time without a zone is written as Europe/London time",
                    "NAIVE_TIME",
                )
            )
    if record.warnings:
        issues.append(
            _issue(Severity.INFORMATION, "warnings", "mapping warnings are not carried in FHIR", "WARNINGS")
        )
    return issues
