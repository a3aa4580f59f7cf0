"""The audit run: stream canonical records once, apply the rules, keep only bounded state.

Per-record rules run as each record arrives and their findings go straight to the caller's callback.
Cross-record rules (blanket clusters, conflicts) write compact rows to an on-disk spill store and run
over its sorted scans at the end. Metrics are counters per (organisation, quarter).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir_dnacpr.assurance.clusters import (
    SETTING_POSTCODE,
    RawCluster,
    SweepStats,
    distinct_clusters,
    find_clusters,
)
from fhir_dnacpr.assurance.config import AuditConfig
from fhir_dnacpr.assurance.conflicts import (
    STATUS_ACTIVE,
    STATUS_CANCELLED,
    STATUS_SUPERSEDED,
    VALUE_FOR_CPR,
    VALUE_NOT_FOR_CPR,
    person_issues,
)
from fhir_dnacpr.assurance.findings import EvidenceRef, Finding, FindingCallback, FindingCollector
from fhir_dnacpr.assurance.metrics import MetricTable, quarter_of
from fhir_dnacpr.assurance.privacy import (
    Pseudonymiser,
    mask_record_id,
    mask_text,
    patient_display,
)
from fhir_dnacpr.assurance.similarity import folded, normalise
from fhir_dnacpr.assurance.spill import SpillStore
from fhir_dnacpr.assurance.terms import TermMatcher
from fhir_dnacpr.model import (
    AdvanceCarePlan,
    Capacity,
    CareRecord,
    CprDecision,
    CprDecisionValue,
    Organisation,
    Person,
    Professional,
    RecordStatus,
    RegistrationBody,
)

NO_ORGANISATION = "(no organisation)"
_STATUS_CODE = {
    RecordStatus.ACTIVE: STATUS_ACTIVE,
    RecordStatus.CANCELLED: STATUS_CANCELLED,
    RecordStatus.SUPERSEDED: STATUS_SUPERSEDED,
}
_CAPACITY_RECORDED = (Capacity.HAS_CAPACITY, Capacity.LACKS_CAPACITY)
# Enum members and their values as plain module constants: ``member.value`` is a Python-level
# descriptor call, and these are read several times for every record.
_ACTIVE = RecordStatus.ACTIVE
_ENTERED_IN_ERROR = RecordStatus.ENTERED_IN_ERROR
_NOT_FOR_CPR = CprDecisionValue.NOT_FOR_CPR
_HAS_CAPACITY = Capacity.HAS_CAPACITY
_LACKS_CAPACITY = Capacity.LACKS_CAPACITY
_STATUS_TEXT = {s: s.value for s in RecordStatus}
_DAYS_KEPT = 1 << 16  # distinct decision days remembered (see ``AuditRun._day_facts``): 180 years
_NO_FIRST_DAY = date.max.toordinal() + 1  # before any decision, as day numbers
_NO_LAST_DAY = 0
_UNDATED = ("(no date)", None, None)  # a decision without a date: its quarter, day number, ISO text
_DECISION_TEXT = {v: v.value for v in CprDecisionValue}
# A stored record's evidence holds small integers where it can (marshal packs an int faster than a
# str): the status and decision as indexes into these tuples of their texts.
_STATUS_TEXTS = tuple(s.value for s in RecordStatus)
_STATUS_INDEX = {s: i for i, s in enumerate(RecordStatus)}
_DECISION_TEXTS = tuple(v.value for v in CprDecisionValue)
_DECISION_INDEX = {v: i for i, v in enumerate(CprDecisionValue)}
# Named tuples made from a tuple of all their fields, in C: the classes' own ``__new__`` is a Python
# function (a frame per call), and a finding and its evidence are made for most records.
_new_tuple = tuple.__new__
_BODY_KEY = {b: b.value + ":" for b in RegistrationBody}  # a decision maker's key starts so


@dataclass(frozen=True, slots=True)
class Cluster:
    """A blanket-decision cluster as reported."""

    finding: Finding
    setting: str
    decision_maker: str
    first_day: date
    last_day: date
    people: int
    min_similarity: float


@dataclass
class AuditResult:
    """What an audit found: counts per rule, the findings kept, clusters and metrics."""

    config: AuditConfig
    records: int = 0
    decisions: int = 0
    plans: int = 0
    excluded_entered_in_error: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    findings_truncated: bool = False
    clusters: list[Cluster] = field(default_factory=list)
    metrics: MetricTable = field(default_factory=MetricTable)
    first_decision: date | None = None
    last_decision: date | None = None
    sweep: SweepStats = field(default_factory=SweepStats)
    unreadable_count: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (record ref, error type), first 100

    @property
    def total_findings(self) -> int:
        return sum(self.rule_counts.values())


def audit(
    records: Iterable[CareRecord],
    config: AuditConfig | None = None,
    on_finding: FindingCallback | None = None,
) -> AuditResult:
    """Audit ``records`` (any iterable, consumed once) and return the result.

    Every finding is passed to ``on_finding`` as it is made (per-record findings during the stream,
    cross-record ones at the end); ``AuditResult.findings`` keeps up to ``config.max_findings_kept``
    per rule.
    """
    run = AuditRun(config or AuditConfig(), on_finding)
    try:
        for record in records:
            run.add(record)
        return run.finish()
    finally:
        run.close()


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _org_key(org: Organisation | None) -> str:
    if org is None:
        return NO_ORGANISATION
    return org.ods_code or (org.name or "").strip() or NO_ORGANISATION


def _maker_key(maker: Professional | None) -> str | None:
    """Who made the decision, as a stable key: registration number, else name (+ organisation)."""
    if maker is None:
        return None
    number = maker.registration_number
    if number:
        body = maker.registration_body
        return (_BODY_KEY[body] if body else ":") + number.strip().upper()
    name = normalise(maker.display_name)
    return f"name:{name}" if name else None


def _maker_label(maker: Professional) -> str:
    parts = [maker.display_name or "(unnamed)"]
    if maker.role:
        parts.append(maker.role)
    if maker.registration_number:
        body = maker.registration_body.value.upper() if maker.registration_body else "reg"
        parts.append(f"{body} {maker.registration_number}")
    return ", ".join(parts)


def _postcode_key(postcode: str | None) -> str | None:
    if not postcode:
        return None
    value = postcode.replace(" ", "").upper()
    return value if len(value) >= 5 else None


def _postcode_label(key: str, show: bool) -> str:
    outward, inward = key[:-3], key[-3:]
    return f"postcode {outward} {inward}" if show else f"postcode sector {outward} {inward[0]}**"


# The per-record rules' findings as ``found`` entries (rule, detail, terms, show the rationale):
# those whose detail is always the same are made once here.
_NO_CONSULTATION = (
    "lacks-capacity-no-consultation",
    "Person recorded as lacking capacity; no LPA, IMCA, relative or carer is recorded as consulted.",
    (),
    False,
)
_NOT_DISCUSSED = {  # by whether the record says the discussion was not held (else it says nothing)
    True: (
        "not-discussed-no-reason",
        "Discussion with the person recorded as not discussed, and no reason for not discussing it is given.",
        (),
        False,
    ),
    False: (
        "not-discussed-no-reason",
        "Discussion with the person not recorded, and no reason for not discussing it is given.",
        (),
        False,
    ),
}
_NO_REVIEW_DATE = ("no-review-date", "No review date, and not marked indefinite.", (), False)
_OVERDUE_KEPT = 4096  # review dates whose overdue finding is remembered (see ``_overdue``)


def _incomplete(
    no_maker: bool, no_date: bool, no_org: bool, no_number: bool
) -> tuple[str, str, tuple[str, ...], bool]:
    """The incomplete-for-sharing finding of a decision missing any of these (rare: tested first)."""
    missing = (
        ("decision maker", no_maker),
        ("decision date", no_date),
        ("organisation", no_org),
        ("valid NHS number", no_number),
    )
    return ("incomplete-for-sharing", f"Missing: {', '.join(w for w, gone in missing if gone)}.", (), False)


def _origin(file: str | None, location: str | None) -> str | None:
    if file and location:
        return f"{file}, {location}"
    return file or location or None


def _names(person: Person) -> str:
    """Family name then given names, for masking them out of an excerpt later."""
    return "\x1f".join((person.family_name or "", *person.given_names))


class AuditRun:
    """One audit in progress. ``add`` each record, then ``finish`` once; ``close`` frees the spill."""

    def __init__(self, config: AuditConfig, on_finding: FindingCallback | None = None) -> None:
        self.config = config
        self.result = AuditResult(config)
        self.collector = FindingCollector(on_finding, config.max_findings_kept)
        self._collect = self.collector.add  # a bound method: see ``FindingCollector.add``
        self.pseudo = Pseudonymiser(config.pseudonym_key)
        self.terms = TermMatcher.from_file(config.terms_file)
        self.store = SpillStore(config.spill_dir)
        self._seq = 0
        self._systems: dict[str, int] = {}
        self._orgs: dict[str, int] = {}
        self._as_of = config.as_of
        self._as_of_text = str(config.as_of)  # as the overdue finding's f-string formats it
        self._show = config.show_identifiers
        enabled = config.is_enabled
        self._on_terms = enabled("rationale-protected-characteristic")
        self._on_conflated = enabled("cpr-decision-conflated")
        self._on_not_discussed = enabled("not-discussed-no-reason")
        self._on_capacity = enabled("lacks-capacity-no-consultation")
        self._on_senior = enabled("no-senior-endorsement")
        self._on_overdue = enabled("review-overdue")
        self._on_no_review = enabled("no-review-date")
        self._on_incomplete = enabled("incomplete-for-sharing")
        self._on_clusters = enabled("blanket-cluster")
        self._on_conflicts = enabled("conflicting-active-decisions") or enabled(
            "superseded-elsewhere-still-active"
        )
        self._cluster_settings = config.cluster
        self._include_no_rationale = config.cluster.include_missing_rationale
        self._scan_terms = self._on_terms or self._on_conflated
        self._cells: dict[tuple[str, str], Any] = {}
        self._makers: dict[str, int] = {}  # one entry per decision maker (its label's index): small
        self._maker_labels: list[str] = []
        # find() remembers sentences, and the hits of texts it had to scan (templated rationales)
        self._find_terms = self.terms.find
        self._person_key = self.pseudo.person_key
        self._org_names = self.result.metrics.org_names
        self._days: dict[date, tuple[str, int, str]] = {}  # see ``_day_facts``
        self._first = _NO_FIRST_DAY  # the first and last decision days' numbers
        self._last = _NO_LAST_DAY
        self._overdue_found: dict[date, tuple[str, str, tuple[str, ...], bool]] = {}  # see ``_overdue``

    # -- per record -------------------------------------------------------------------------------

    def add(self, record: CareRecord) -> None:
        """Audit one record. A record that breaks a rule's assumptions is counted and named in
        ``result.unreadable`` (by source ref and error type, never its content); the run goes on."""
        self.result.records += 1
        try:
            decision = record.decision
            if decision is not None:
                self._add_decision(decision)
            plan = record.plan
            if plan is not None:
                self._add_plan(plan)
        except Exception as exc:  # one bad record must not end the audit
            item = record.decision or record.plan
            ref = f"{item.source.system}|{item.source.record_id}" if item is not None else "(empty record)"
            self.result.unreadable_count += 1
            if len(self.result.unreadable) < 100:
                self.result.unreadable.append((ref, type(exc).__name__))

    def _add_decision(self, d: CprDecision) -> None:
        """Count the decision, check the per-record rules, pass on their findings, and store the
        decision for the cross-record rules.

        Written for the common record (a not-for-CPR decision with nothing to report): each rule tests
        the record's own facts before the run's switch for it, and findings with a fixed text are
        made once per run (module constants, ``_overdue``).
        """
        result = self.result
        result.decisions += 1
        status = d.status
        if status is _ENTERED_IN_ERROR:
            result.excluded_entered_in_error += 1
            return
        self._seq = seq = self._seq + 1
        when = d.decision_date
        quarter, dayn, day_iso = (self._days.get(when) or self._day_facts(when)) if when else _UNDATED
        custodian = d.custodian
        if custodian is None:
            org = NO_ORGANISATION
        else:
            name = custodian.name
            org = custodian.ods_code or (name or "").strip() or NO_ORGANISATION
            if name and org not in self._org_names:
                self._org_names[org] = name
        patient = d.patient
        pkey = self._person_key(patient.nhs_number)
        not_for_cpr = d.decision is _NOT_FOR_CPR
        rationale = d.rationale
        found: list[tuple[str, str, tuple[str, ...], bool]] = []  # rule, detail, terms, show rationale

        if not_for_cpr:
            counts = self._cells.get((org, quarter))
            if counts is None:
                counts = self._cells[(org, quarter)] = result.metrics.cell(org, quarter)
            counts.decisions += 1
            discussed = d.discussed_with_patient
            if discussed is True:
                counts.discussed += 1
            capacity = d.capacity
            if capacity is _HAS_CAPACITY or capacity is _LACKS_CAPACITY:
                counts.capacity_recorded += 1
            senior = d.decision_maker_is_senior
            endorsement = d.senior_endorsement
            if senior is True or endorsement is not None:
                counts.senior += 1
            review = d.review_date
            overdue = False
            active = status is _ACTIVE
            if active:
                counts.active += 1
                if review is not None and review < self._as_of:
                    overdue = True
                    counts.overdue += 1

            if rationale and self._scan_terms:
                hits = self._find_terms(rationale)
                if hits:
                    self._term_findings(hits, found)
            lacks = capacity is _LACKS_CAPACITY
            if discussed is not True and not lacks and self._on_not_discussed:
                reason = d.reason_not_discussed
                if not (reason and reason.strip()):
                    found.append(_NOT_DISCUSSED[discussed is False])
            if lacks and self._on_capacity and not d.others_consulted:
                found.append(_NO_CONSULTATION)
            if senior is False and endorsement is None and self._on_senior:
                role = f" ({d.decision_maker.role})" if d.decision_maker and d.decision_maker.role else ""
                found.append(
                    (
                        "no-senior-endorsement",
                        f"Decision maker{role} is recorded as not the senior responsible clinician, and no "
                        "senior endorsement is recorded.",
                        (),
                        False,
                    )
                )
            if overdue and self._on_overdue:
                found.append(self._overdue_found.get(review) or self._overdue(review))  # type: ignore[arg-type]
            if active and review is None and self._on_no_review and not d.review_indefinite:
                found.append(_NO_REVIEW_DATE)

        maker = d.decision_maker
        unnamed = maker is None or not (maker.family_name or maker.given_names or maker.registration_number)
        if (unnamed or dayn is None or org == NO_ORGANISATION or pkey is None) and self._on_incomplete:
            found.append(_incomplete(unnamed, dayn is None, org == NO_ORGANISATION, pkey is None))
        placed = pkey is not None and dayn is not None  # whom and when: what cross-record rules need
        maker_key = None
        if placed and not_for_cpr and self._on_clusters and (rationale or self._include_no_rationale):
            maker_key = _maker_key(maker)
        if found:
            self._pass_on(found, d, org, quarter, day_iso, pkey)
        want_person = self._on_conflicts
        if not placed or not (maker_key or want_person):
            return
        postcode = _postcode_key(patient.postcode) if maker_key else None
        source = d.source
        system = source.system
        record_id = source.record_id
        sys_id = self._systems.get(system)
        if sys_id is None:
            sys_id = self._systems[system] = len(self._systems)
        org_id = self._orgs.get(org)
        if org_id is None:
            org_id = self._orgs[org] = len(self._orgs)
        # the pseudonym is not stored: it is a function of pkey, made again if the record is shown;
        # nor are the day's text and quarter, functions of its number (see ``_stored_rows``)
        keys = (
            pkey,
            dayn,
            seq,
            VALUE_NOT_FOR_CPR if not_for_cpr else VALUE_FOR_CPR,
            _STATUS_CODE[status] if want_person else None,
            sys_id,
            org_id,
            hash((system, record_id)),
        )
        candidate = bool(maker_key)  # a cluster candidate; otherwise a row for the conflict rules only
        self.store.add_record(
            keys,
            (
                record_id,
                source.file,
                source.location,
                patient_display(patient, "", True) if self._show else None,
                _DECISION_INDEX[d.decision],
                _STATUS_INDEX[status],
                rationale if candidate else None,
                _names(patient) if candidate else None,
                postcode,
                # (index 0 is falsy and goes the slow way: the same index, as ``_maker_id`` keeps it)
                (self._makers.get(maker_key) or self._maker_id(maker_key, maker)) if candidate else None,
            ),
            # texts are compared (and hashed for exact duplicates) in the sweep, after sorting
            hash((org, maker_key)) if candidate and org != NO_ORGANISATION else None,
            hash((postcode, maker_key)) if postcode is not None else None,
            folded(rationale) if candidate else None,
        )

    def _pass_on(
        self,
        found: list[tuple[str, str, tuple[str, ...], bool]],
        d: CprDecision,
        org: str,
        quarter: str,
        day_iso: str | None,
        pkey: int | None,
    ) -> None:
        """Make a decision's findings and pass them on; they share one evidence record (and one
        with the rationale's excerpt, for the rules that show it)."""
        label = self.pseudo.label_of_key(pkey) if pkey is not None else "(no valid NHS number)"
        show = self._show
        person = patient_display(d.patient, label, True) if show else label
        source = d.source
        plain = _new_tuple(
            EvidenceRef,
            (
                source.system,
                mask_record_id(source.record_id, show),
                person,
                _origin(source.file, source.location),
                org,
                _DECISION_TEXT[d.decision],
                day_iso,
                _STATUS_TEXT[d.status],
                None,  # excerpt
            ),
        )
        evidence = (plain,)
        with_text = None
        rationale = d.rationale
        collect = self._collect
        for rule_id, detail, terms, show_text in found:
            if show_text and rationale:
                if with_text is None:
                    with_text = (plain._replace(excerpt=mask_text(rationale, d.patient, show)),)
                finding = (rule_id, detail, with_text, org, quarter, person, terms, None)  # data: None
            else:
                finding = (rule_id, detail, evidence, org, quarter, person, terms, None)
            collect(_new_tuple(Finding, finding))

    def _overdue(self, review: date) -> tuple[str, str, tuple[str, ...], bool]:
        """The overdue finding for a review date (remembered: review dates repeat across records)."""
        if len(self._overdue_found) >= _OVERDUE_KEPT:
            self._overdue_found.clear()
        late = (self._as_of - review).days
        found = self._overdue_found[review] = (
            "review-overdue",
            f"Review date {review} passed {late} days before {self._as_of_text}.",
            (),
            False,
        )
        return found

    def _maker_id(self, key: str, maker: Professional | None) -> int:
        """The index of the decision maker's label in ``_maker_labels`` (labelled once per key)."""
        index = self._makers.get(key)
        if index is None:
            index = self._makers[key] = len(self._maker_labels)
            self._maker_labels.append(_maker_label(maker) if maker else "(unknown decision maker)")
        return index

    def _stored_rows(self, seqs: list[int]) -> dict[int, dict[str, Any]]:
        """The stored records ``seqs``, by seq, with their evidence as texts again: system, record_id,
        file, location, patient, org, decision, day, status, quarter, rationale, names, setting, maker
        and pkey (see ``spill.KEY_COLUMNS`` and ``EVIDENCE_FIELDS`` for what is stored as a number)."""
        systems, orgs = self._id_texts()
        out = {}
        for seq, (keys, values) in self.store.evidence(seqs).items():
            pkey, dayn, _, _, _, system, org, _ = keys
            record_id, file, location, patient, decision, status, rationale, names, setting, maker = values
            day = date.fromordinal(dayn)
            out[seq] = {
                "system": systems[system],
                "record_id": record_id,
                "file": file,
                "location": location,
                "patient": patient,
                "org": orgs[org],
                "decision": _DECISION_TEXTS[decision],
                "day": day.isoformat(),
                "status": _STATUS_TEXTS[status],
                "quarter": self._quarter(day),
                "rationale": rationale,
                "names": names,
                "setting": setting,
                "maker": None if maker is None else self._maker_labels[maker],
                "pkey": pkey,
            }
        return out

    def _id_texts(self) -> tuple[list[str], list[str]]:
        """The source systems and organisations, each at the index the stored records use for it."""
        return list(self._systems), list(self._orgs)  # in id order: ids are insertion counts

    def _quarter(self, day: date) -> str:
        return (self._days.get(day) or self._day_facts(day))[0]

    def _day_facts(self, when: date | datetime) -> tuple[str, int, str]:
        """A day's quarter, number and ISO text, worked out once a day: records come in their
        thousands a day, and each needs all three. ``when`` may be a datetime (its day's facts).

        Every distinct decision day passes through here when first seen, so the first and last
        decision days are kept here too, not tested on every record.
        """
        day = when.date() if isinstance(when, datetime) else when
        facts = self._days.get(day)
        if facts is None:
            if len(self._days) >= _DAYS_KEPT:
                self._days.clear()
            dayn = day.toordinal()
            facts = self._days[day] = (quarter_of(day), dayn, day.isoformat())
            if dayn < self._first:
                self._first = dayn
            if dayn > self._last:
                self._last = dayn
        return facts

    def _term_findings(self, hits: list, found: list[tuple[str, str, tuple[str, ...], bool]]) -> None:
        protected = [h for h in hits if h.rule == "rationale-protected-characteristic"]
        ceilings = [h for h in hits if h.rule == "cpr-decision-conflated"]
        if protected and self._on_terms:
            cats = tuple(dict.fromkeys(h.category for h in protected))
            words = ", ".join(dict.fromkeys(f"'{h.matched}'" for h in protected))
            found.append(
                (
                    "rationale-protected-characteristic",
                    f"Rationale mentions {', '.join(cats)} ({words}): check the decision was made on the "
                    "person's individual clinical circumstances.",
                    cats,
                    True,
                )
            )
        if ceilings and self._on_conflated:
            words = ", ".join(dict.fromkeys(f"'{h.matched}'" for h in ceilings))
            found.append(
                (
                    "cpr-decision-conflated",
                    f"CPR rationale also limits other treatment ({words}); a DNACPR decision applies "
                    "only to CPR.",
                    ("treatment-ceiling",),
                    True,
                )
            )

    def _stored_evidence(self, row: dict[str, Any], with_text: bool) -> EvidenceRef:
        """Evidence for a record read back from the spill store, masked as the run asks."""
        show = self._show
        excerpt = None
        if with_text and row["rationale"]:
            names = (row["names"] or "").split("\x1f")
            excerpt = mask_text(
                row["rationale"], Person("", names[0] or None, tuple(n for n in names[1:] if n)), show
            )
        return _new_tuple(
            EvidenceRef,
            (
                row["system"],
                mask_record_id(row["record_id"], show),
                row["patient"] or self.pseudo.label_of_key(row["pkey"]),
                _origin(row["file"], row["location"]),
                row["org"],
                row["decision"],
                row["day"],
                row["status"],
                excerpt,
            ),
        )

    def _add_plan(self, p: AdvanceCarePlan) -> None:
        result = self.result
        result.plans += 1
        if p.status is RecordStatus.ENTERED_IN_ERROR or not self._on_incomplete:
            return
        day = _day(p.created) if p.created else None
        org = _org_key(p.custodian)
        pkey = self._person_key(p.patient.nhs_number)
        missing = []
        if p.author is None or not (p.author.display_name or p.author.registration_number):
            missing.append("author")
        if day is None:
            missing.append("date created")
        if org == NO_ORGANISATION:
            missing.append("organisation")
        if pkey is None:
            missing.append("valid NHS number")
        if not missing:
            return
        label = self.pseudo.label_of_key(pkey) if pkey is not None else "(no valid NHS number)"
        show = self._show
        src = p.source
        evidence = EvidenceRef(
            system=src.system,
            record_id=mask_record_id(src.record_id, show),
            patient=patient_display(p.patient, label, show) if show else label,
            origin=", ".join(x for x in (src.file, src.location) if x) or None,
            organisation=org,
            decision="advance-care-plan",
            decision_date=day.isoformat() if day else None,
            status=p.status.value,
        )
        self.collector(
            Finding(
                "incomplete-for-sharing",
                f"Advance care plan missing: {', '.join(missing)}.",
                (evidence,),
                org,
                quarter_of(day) if day else "(no date)",
                patient=evidence.patient,
            )
        )

    # -- end of stream ----------------------------------------------------------------------------

    def finish(self) -> AuditResult:
        result = self.result
        if self._last != _NO_LAST_DAY:
            result.first_decision = date.fromordinal(self._first)
            result.last_decision = date.fromordinal(self._last)
        if self._on_clusters:
            raw = distinct_clusters(
                find_clusters(
                    self.store.candidates_sorted(self._cluster_settings.min_cluster_size),
                    self._cluster_settings,
                    result.sweep,
                )
            )
            for cluster in sorted(raw, key=lambda c: (c.members[0][2], c.members[0][0])):
                reported = self._report_cluster(cluster)
                result.clusters.append(reported)
                result.metrics.cell(
                    reported.finding.organisation, reported.finding.quarter or ""
                ).clusters += 1
        if self._on_conflicts:
            self._report_person_issues()
        result.rule_counts = dict(self.collector.counts)
        result.findings = self.collector.findings()
        result.findings_truncated = self.collector.truncated()
        return result

    def _report_cluster(self, cluster: RawCluster) -> Cluster:
        seqs = [m[0] for m in cluster.members]
        rows = self._stored_rows(seqs)
        evidence = tuple(self._stored_evidence(rows[s], with_text=True) for s in seqs)
        orgs = Counter(rows[s]["org"] for s in seqs)
        org = sorted(orgs.items(), key=lambda kv: (-kv[1], kv[0] or ""))[0][0] or NO_ORGANISATION
        first, last = date.fromordinal(cluster.members[0][2]), date.fromordinal(cluster.members[-1][2])
        maker = rows[seqs[0]]["maker"] or "(unknown decision maker)"
        if cluster.stype == SETTING_POSTCODE:
            setting = _postcode_label(rows[seqs[0]]["setting"] or "", self._show)
        else:
            name = self.result.metrics.org_names.get(org)
            setting = f"organisation {org}" + (f" ({name})" if name else "")
        people = cluster.patients
        texts = (
            "identical"
            if cluster.min_similarity >= 1.0
            else f"near-identical (similarity ≥ {cluster.min_similarity:.2f})"
        )
        span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
        detail = (
            f"{len(seqs)} not-for-CPR decisions for {people} different people at {setting} by {maker}, "
            f'{span}, with {texts} rationale: "{evidence[0].excerpt or ""}"'
        )
        finding = Finding(
            "blanket-cluster",
            detail,
            evidence,
            org,
            quarter_of(first),
            data={
                "setting": setting,
                "decision_maker": maker,
                "first": first.isoformat(),
                "last": last.isoformat(),
                "people": people,
                "min_similarity": round(cluster.min_similarity, 3),
            },
        )
        self.collector(finding)
        return Cluster(finding, setting, maker, first, last, people, cluster.min_similarity)

    def _report_person_issues(self) -> None:
        """Conflicts and stale copies, person by person, for the rules switched on."""
        person_rules = (
            ("conflict", "conflicting-active-decisions"),
            ("stale", "superseded-elsewhere-still-active"),
        )
        rules = {kind: rule for kind, rule in person_rules if self.config.is_enabled(rule)}
        systems, orgs = self._id_texts()
        for issue in person_issues(self.store.people_sorted()):
            rule_id = rules.get(issue.kind)
            if rule_id is not None:
                self._report_person_issue(rule_id, issue.seqs, issue.reason, systems, orgs)

    def _report_person_issue(
        self, rule_id: str, seqs: tuple[int, ...], reason: str, systems: list[str], orgs: list[str]
    ) -> None:
        """Report a conflict or stale copy (the flagged record first). With 10^6 records there are
        ~43,000, so each is made straight from the stored tuples: ``_person_evidence``, not the texts
        by name of ``_stored_rows``."""
        stored = self.store.evidence(seqs)
        evidence = tuple([self._person_evidence(*stored[s], systems, orgs) for s in seqs if s in stored])
        flagged_keys = stored[seqs[0]][0]
        where = (
            f"across {len({e.system for e in evidence})} source system(s) and "
            f"{len({e.organisation or NO_ORGANISATION for e in evidence})} organisation(s)"
        )
        finding = (
            rule_id,
            f"{reason[:1].upper()}{reason[1:]} ({where}).",
            evidence,
            orgs[flagged_keys[6]] or NO_ORGANISATION,
            self._quarter(date.fromordinal(flagged_keys[1])),
            evidence[0].patient if evidence else None,
            (),  # terms
            None,  # data
        )
        self.collector(_new_tuple(Finding, finding))

    def _person_evidence(
        self, keys: tuple[Any, ...], values: tuple[Any, ...], systems: list[str], orgs: list[str]
    ) -> EvidenceRef:
        """``_stored_evidence`` without the rationale, from a record's stored keys and evidence."""
        pkey, dayn, _, _, _, system, org, _ = keys
        record_id, file, location, patient, decision, status, _, _, _, _ = values
        day = date.fromordinal(dayn)
        return _new_tuple(
            EvidenceRef,
            (
                systems[system],
                mask_record_id(record_id, self._show),
                patient or self.pseudo.label_of_key(pkey),
                _origin(file, location),
                orgs[org],
                _DECISION_TEXTS[decision],
                (self._days.get(day) or self._day_facts(day))[2],
                _STATUS_TEXTS[status],
                None,  # excerpt
            ),
        )

    def close(self) -> None:
        self.store.close()
