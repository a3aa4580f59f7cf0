"""Findings: what a rule saw, with the records that show it.

A finding never carries an NHS number or name unless the run asked to show identifiers: evidence
names the record by source system, record id and origin, and the person by a pseudonym.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from fhir_dnacpr.assurance.rules import RULES, Rule, RuleSeverity


class EvidenceRef(NamedTuple):
    """One record behind a finding: enough to find it again in its source and to judge it.

    A named tuple rather than a dataclass: one is made for most records, and tuples build fastest.
    """

    system: str
    record_id: str
    patient: str
    origin: str | None = None
    organisation: str | None = None
    decision: str | None = None
    decision_date: str | None = None
    status: str | None = None
    excerpt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if v is not None}

    @property
    def ref(self) -> str:
        return f"{self.system}|{self.record_id}"


class Finding(NamedTuple):
    """A rule's flag on one record (or a group of records, for cross-record rules)."""

    rule_id: str
    detail: str
    evidence: tuple[EvidenceRef, ...]
    organisation: str
    quarter: str | None
    patient: str | None = None
    terms: tuple[str, ...] = ()
    data: dict[str, Any] | None = None

    @property
    def rule(self) -> Rule:
        return RULES[self.rule_id]

    @property
    def severity(self) -> RuleSeverity:
        return RULES[self.rule_id].severity

    @property
    def finding_id(self) -> str:
        """Stable across runs: the rule and the records it points at."""
        refs = "\n".join(sorted(e.ref for e in self.evidence))
        digest = hashlib.blake2b(f"{self.rule_id}\n{refs}".encode(), digest_size=6).hexdigest()
        return f"{self.rule_id}-{digest}"

    def sort_key(self) -> tuple[Any, ...]:
        return (self.severity.rank, self.rule_id, self.organisation, self.quarter or "", self.finding_id)


FindingCallback = Callable[[Finding], None]


class FindingCollector:
    """Counts every finding, passes each on to a callback, and keeps a bounded number per rule."""

    def __init__(
        self, on_finding: FindingCallback | None = None, max_kept_per_rule: int | None = None
    ) -> None:
        self._on_finding = on_finding
        self._room = sys.maxsize if max_kept_per_rule is None else max_kept_per_rule  # kept per rule
        self.counts: dict[str, int] = {}
        self.kept: dict[str, list[Finding]] = {}

    def add(self, finding: Finding) -> None:
        """Count, keep and pass on one finding. The audit calls this bound method per finding, not
        the instance: calling an instance goes through ``__call__``'s slot, a slower C-level call."""
        rule_id = finding[0]  # its rule_id: one is passed on for most records
        kept = self.kept.get(rule_id)
        if kept is None:
            kept = self.kept[rule_id] = []
            self.counts[rule_id] = 0
        self.counts[rule_id] += 1
        if len(kept) < self._room:
            kept.append(finding)
        if self._on_finding is not None:
            self._on_finding(finding)

    __call__ = add

    def findings(self) -> list[Finding]:
        return sorted((f for kept in self.kept.values() for f in kept), key=Finding.sort_key)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def truncated(self) -> bool:
        return any(self.counts[r] > len(self.kept.get(r, ())) for r in self.counts)


def evidence_refs(findings: Iterable[Finding]) -> set[str]:
    return {e.ref for f in findings for e in f.evidence}
