"""The finding collector against a plain model: every finding counted and passed on, in order, and
at most ``max_kept_per_rule`` kept per rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.assurance.findings import Finding, FindingCollector

_RULES = ("no-review-date", "review-overdue", "incomplete-for-sharing")


@given(
    st.lists(st.sampled_from(_RULES), max_size=30),
    st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
    st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_collector_counts_passes_on_and_bounds(
    rule_ids: list[str], limit: int | None, by_method: list[bool]
) -> None:
    """Calling the collector or its ``add`` method (the audit's per-record path) is the same."""
    seen: list[Finding] = []
    collector = FindingCollector(seen.append, limit)
    made = [Finding(rule_id, f"detail {i}", (), "ORG", "2020-Q1") for i, rule_id in enumerate(rule_ids)]
    for finding, method in zip(made, by_method, strict=False):
        if method:
            collector.add(finding)
        else:
            collector(finding)
    assert seen == made
    counts: dict[str, int] = {}
    kept: dict[str, list[Finding]] = {}
    for finding in made:
        counts[finding.rule_id] = counts.get(finding.rule_id, 0) + 1
        rule_kept = kept.setdefault(finding.rule_id, [])
        if limit is None or len(rule_kept) < limit:
            rule_kept.append(finding)
    assert collector.counts == counts and list(collector.counts) == list(counts)  # first-seen order
    assert collector.kept == kept
    assert collector.total == len(made)
    assert collector.truncated() == any(counts[r] > len(kept[r]) for r in counts)


def test_collector_without_a_callback_still_counts() -> None:
    collector = FindingCollector(None, 1)
    for _ in range(3):
        collector(Finding("no-review-date", "d", (), "ORG", None))
    assert collector.counts == {"no-review-date": 3} and collector.truncated()
