"""The catalogue of assurance rules: what each checks, why (its source), and how much it matters.

Each rule traces to a public standard or finding. Sources were confirmed from public copies (see
docs/assurance.md for what was read); a section is named only where its heading was seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RuleSeverity(StrEnum):
    """How urgently a finding needs a human look (it is a flag for review, never a verdict)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return {"high": 0, "medium": 1, "low": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Source:
    """A citation: the document, the part of it relied on, and where to read it."""

    title: str
    part: str | None = None
    url: str | None = None

    def __str__(self) -> str:
        return f"{self.title}, {self.part}" if self.part else self.title


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: RuleSeverity
    description: str
    sources: tuple[Source, ...]
    false_positives: str
    cross_record: bool = False


CQC_2021 = Source(
    "CQC, Protect, respect, connect – decisions about living and dying well during COVID-19 (18 March 2021)",
    None,
    "https://www.cqc.org.uk/publications/themed-work/protect-respect-connect-decisions-about-living-dying-well-during-covid-19",
)
CQC_2021_RECORDS = Source(
    CQC_2021.title,
    "findings: poor involvement of people, poor record keeping, lack of oversight and scrutiny",
    CQC_2021.url,
)
CQC_2021_CONCLUSIONS = Source(
    CQC_2021.title,
    "Conclusion and recommendations (decisions applied to groups; need for better oversight)",
    "https://www.cqc.org.uk/node/3771",
)
DRCPR = (
    "BMA, Resuscitation Council UK and RCN, Decisions relating to cardiopulmonary resuscitation, 3rd edition"
)


def drcpr(part: str) -> Source:
    """A part of the joint guidance, named by its section heading (headings confirmed, see docs)."""
    return Source(DRCPR, part, None)


MCA_S4 = Source(
    "Mental Capacity Act 2005",
    "s.4 Best interests: (1) not merely on the basis of age, appearance or a condition; (7) consult carers, "
    "donees of an LPA and deputies",
    "https://www.legislation.gov.uk/ukpga/2005/9/section/4",
)
MCA_S37 = Source(
    "Mental Capacity Act 2005",
    "s.35-37 Independent mental capacity advocates; s.37 serious medical treatment where no one is "
    "appropriate to consult",
    "https://www.legislation.gov.uk/ukpga/2005/9/section/37",
)
TRACEY = Source(
    "R (Tracey) v Cambridge University Hospitals NHS Foundation Trust [2014] EWCA Civ 822",
    "presumption in favour of involving the patient in a DNACPR decision",
    "http://www.bailii.org/ew/cases/EWCA/Civ/2014/822.html",
)
WINSPEAR = Source(
    "Winspear v City Hospitals Sunderland NHS Foundation Trust [2015] EWHC 3250 (QB)",
    "consultation with those close to a person who lacks capacity",
    "http://www.bailii.org/ew/cases/EWHC/QB/2015/3250.html",
)
NHSE_LD_2021 = Source(
    "NHS England letter to CCGs and GP practices on DNACPR and people with a learning disability and/or "
    "autism (4 March 2021), as reported",
    "blanket policies inappropriate; learning disability and Down's syndrome never a reason for DNACPR",
    "https://www.mddus.com/resources/resource-library/news-digest/2021/march/"
    "blanket-dnacprs-inappropriate-for-people-with-learning-disability",
)
RCUK_FORM = Source(
    "Resuscitation Council UK model adult DNACPR form (2015)",
    "sections 3 (communication with the patient, or why not), 6 (recorder), 7 (senior endorsement, "
    "review date)",
    "http://www.resus.org.uk/pages/DNARrstd.htm",
)
SCCI1580 = Source(
    "SCCI1580 Palliative care co-ordination: core content",
    "items 44-46: CPR decision, date of decision, date for review",
)
RESPECT_SCOPE = Source(
    "CQC interim report on DNACPR decisions (December 2020), as quoted by Resuscitation Council UK",
    "ReSPECT: clinical recommendations far broader than CPR, made within a shared understanding",
    "https://resus.org.uk/about-us/news-and-events/rcuk-welcomes-cqcs-interim-report-review-dnacpr-use-during-pandemic",
)

RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "blanket-cluster",
            "Possible blanket decisions: near-identical DNACPR decisions for several people at one "
            "setting by "
            "one decision maker within a few days",
            RuleSeverity.HIGH,
            "Not-for-CPR decisions for at least `min_cluster_size` different people, at the same care "
            "setting "
            "(custodian organisation or the person's postcode, e.g. a care home), by the same decision "
            "maker, "
            "each within `window_days` of the previous one, whose rationales are identical or nearly so "
            "(Jaccard similarity of the normalised texts' word sets >= `similarity_threshold`).",
            (CQC_2021_CONCLUSIONS, drcpr("Main messages; Non-discrimination"), NHSE_LD_2021),
            "A clinician reviewing several residents on one visit may legitimately reach the same decision "
            'for similar clinical reasons; terse templated rationales ("CPR would not be successful") look '
            "alike. The finding asks a reviewer to check that each decision was individual.",
            cross_record=True,
        ),
        Rule(
            "rationale-protected-characteristic",
            "Rationale cites age, disability, learning disability, Down's syndrome, autism, frailty or "
            "a group",
            RuleSeverity.HIGH,
            "The rationale of a not-for-CPR decision contains a term from the categories in "
            "assurance/data/rationale_terms.yaml (age, learning disability, Down's syndrome, autism, "
            "disability, frailty, care setting/group). Matched on word boundaries; exclusions and negation "
            'cues ("not based on age") suppress a hit.',
            (MCA_S4, drcpr("Non-discrimination"), NHSE_LD_2021),
            'A term may be clinically relevant context rather than the reason ("frail, end-stage COPD"); '
            'abbreviations are ambiguous ("LD", "ASC"). Flagged for human review, not judged.',
        ),
        Rule(
            "not-discussed-no-reason",
            "No discussion with the person recorded, and no reason given",
            RuleSeverity.HIGH,
            "A not-for-CPR decision where discussion with the person is not recorded as having happened and "
            "no reason for not discussing it is recorded. Decisions for a person recorded as lacking "
            "capacity "
            "are left to the next rule.",
            (TRACEY, RCUK_FORM, drcpr("Recording decisions")),
            "The discussion may be recorded elsewhere (clinical notes) and not exported; the finding then "
            "points at a record that does not travel with the decision.",
        ),
        Rule(
            "lacks-capacity-no-consultation",
            "Person lacks capacity and no LPA, IMCA, relative or carer consultation is recorded",
            RuleSeverity.HIGH,
            "A not-for-CPR decision for a person recorded as lacking capacity, with nobody recorded as "
            "consulted (lasting power of attorney, IMCA, relative, carer, friend or other).",
            (MCA_S4, MCA_S37, WINSPEAR, drcpr("Adults who lack capacity")),
            "Consultation may be recorded in notes outside the export.",
        ),
        Rule(
            "no-senior-endorsement",
            "Decision maker is not the senior responsible clinician and there is no senior endorsement",
            RuleSeverity.MEDIUM,
            "The record says the decision maker is not the senior responsible clinician and carries no "
            "endorsement by a senior clinician.",
            (drcpr("Responsibility for decision-making"), RCUK_FORM),
            "Endorsement may be pending (recently made decisions) - check the decision date.",
        ),
        Rule(
            "review-overdue",
            "Review date has passed without a review",
            RuleSeverity.MEDIUM,
            "An active decision whose review date is before the as-of date. A review updates the record "
            "(a new review date or a new decision), so an active record with a past review date has not been "
            "reviewed.",
            (drcpr("Reviewing decisions"), SCCI1580),
            "A source that records reviews elsewhere without updating the review date; a review date is not "
            "an expiry, so the decision still stands.",
        ),
        Rule(
            "no-review-date",
            "Neither a review date nor 'indefinite' is recorded",
            RuleSeverity.LOW,
            "An active decision with no review date and no explicit 'indefinite'.",
            (RCUK_FORM, drcpr("Reviewing decisions")),
            "Sources whose form has no indefinite option; the mapping may not carry the review field.",
        ),
        Rule(
            "conflicting-active-decisions",
            "Conflicting active decisions for the same person (for CPR in one record, not for CPR in "
            "another)",
            RuleSeverity.HIGH,
            "Two or more active records for the same person (matched on NHS number) disagree on whether CPR "
            "should be attempted, within or across sources and organisations.",
            (CQC_2021_RECORDS, drcpr("Communicating decisions to other healthcare providers")),
            "Two different people sharing a mistyped NHS number; a later decision not yet propagated.",
            cross_record=True,
        ),
        Rule(
            "superseded-elsewhere-still-active",
            "Decision replaced or cancelled elsewhere but still active here",
            RuleSeverity.MEDIUM,
            "An active record for which another source or organisation holds a newer active decision for the "
            "same person with the same value, or holds the same decision (same date and value) as cancelled "
            "or superseded.",
            (CQC_2021_RECORDS, drcpr("Communicating decisions to other healthcare providers")),
            "Clocks and dates differ between systems; a same-day decision in two systems is not matched as "
            "newer.",
            cross_record=True,
        ),
        Rule(
            "cpr-decision-conflated",
            "CPR decision conflated with other treatment decisions",
            RuleSeverity.MEDIUM,
            "The CPR rationale carries ceilings of other treatment (not for ICU, admission, antibiotics, "
            "ventilation, dialysis …). A DNACPR decision applies only to CPR; other recommendations belong "
            "in a treatment plan (e.g. ReSPECT section 4) made on their own merits.",
            (drcpr("5.1 DNACPR applies only to CPR"), RESPECT_SCOPE),
            "A rationale may explain that CPR would lead to treatment already judged inappropriate; "
            "'comfort care only' may be a genuine, separately agreed plan.",
        ),
        Rule(
            "incomplete-for-sharing",
            "Record incomplete for safe sharing (no decision maker, date, organisation or valid patient "
            "identifier)",
            RuleSeverity.MEDIUM,
            "A decision or plan missing its decision maker (author), date, custodian organisation, or "
            "a valid "
            "NHS number (Modulus 11), so another service cannot rely on or match it.",
            (CQC_2021_RECORDS, RCUK_FORM, SCCI1580),
            "Fields held by the source but not mapped in the export; check the mapping spec first.",
        ),
    )
}


def rule(rule_id: str) -> Rule:
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r}; known: {', '.join(RULES)}") from None
