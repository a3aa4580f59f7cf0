"""Oversight metrics per organisation and calendar quarter.

Population: DNACPR (not-for-CPR) decisions not entered in error, by the custodian organisation and the
quarter of the decision date. The counters are a few integers per (organisation, quarter), so memory
depends on how many organisations and quarters there are, not on how many records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date


@dataclass(slots=True)
class MetricCounts:
    decisions: int = 0
    discussed: int = 0
    capacity_recorded: int = 0
    senior: int = 0
    active: int = 0
    overdue: int = 0
    clusters: int = 0

    def add(self, other: MetricCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric's code, title, and how it is computed: counts, or numerator over denominator."""

    code: str
    title: str
    definition: str
    numerator: str | None = None
    denominator: str | None = None
    better: str | None = None  # "higher" or "lower" when a direction is meaningful

    def value(self, counts: MetricCounts) -> float | int | None:
        if self.numerator is None:
            return getattr(counts, self.code)
        den = getattr(counts, self.denominator or "decisions")
        return None if den == 0 else getattr(counts, self.numerator) / den

    @property
    def is_proportion(self) -> bool:
        return self.numerator is not None


METRICS: tuple[Metric, ...] = (
    Metric(
        "decisions",
        "DNACPR decisions",
        "Not-for-CPR decisions made in the period (by decision date), excluding records entered in error.",
    ),
    Metric(
        "discussed",
        "% discussed with the person",
        "Decisions recorded as discussed with the person, of all decisions.",
        "discussed",
        "decisions",
        "higher",
    ),
    Metric(
        "capacity-recorded",
        "% capacity recorded",
        "Decisions recording whether the person has or lacks capacity (not 'not assessed' or blank), of "
        "all decisions.",
        "capacity_recorded",
        "decisions",
        "higher",
    ),
    Metric(
        "endorsed",
        "% senior responsibility",
        "Decisions made by the senior responsible clinician or endorsed by one, of all decisions.",
        "senior",
        "decisions",
        "higher",
    ),
    Metric(
        "overdue",
        "% overdue for review",
        "Active decisions whose review date is before the as-of date, of active decisions.",
        "overdue",
        "active",
        "lower",
    ),
    Metric(
        "clusters",
        "Blanket clusters found",
        "Possible blanket-decision clusters, counted at the organisation most of their decisions belong "
        "to and the quarter of their first decision.",
    ),
)
METRICS_BY_CODE = {m.code: m for m in METRICS}


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_start(quarter: str) -> date:
    year, q = quarter.split("-Q")
    return date(int(year), (int(q) - 1) * 3 + 1, 1)


def quarter_end(quarter: str) -> date:
    start = quarter_start(quarter)
    if start.month == 10:
        return date(start.year, 12, 31)
    return date.fromordinal(date(start.year, start.month + 3, 1).toordinal() - 1)


def all_quarters(first: str, last: str) -> list[str]:
    """Every quarter from ``first`` to ``last`` inclusive, so gaps show as zero in a time series."""
    out = []
    year, q = (int(x) for x in first.split("-Q"))
    end_year, end_q = (int(x) for x in last.split("-Q"))
    while (year, q) <= (end_year, end_q):
        out.append(f"{year}-Q{q}")
        q += 1
        if q == 5:
            year, q = year + 1, 1
    return out


class MetricTable:
    """Counters keyed by (organisation, quarter) with roll-ups by organisation and by quarter."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], MetricCounts] = {}
        self.org_names: dict[str, str] = {}

    def cell(self, org: str, quarter: str) -> MetricCounts:
        counts = self.cells.get((org, quarter))
        if counts is None:
            counts = self.cells[(org, quarter)] = MetricCounts()
        return counts

    def by_org(self) -> dict[str, MetricCounts]:
        return _roll_up(((org, c) for (org, _), c in self.cells.items()))

    def by_quarter(self) -> dict[str, MetricCounts]:
        return _roll_up(((q, c) for (_, q), c in self.cells.items()))

    def total(self) -> MetricCounts:
        total = MetricCounts()
        for counts in self.cells.values():
            total.add(counts)
        return total

    def quarters(self) -> list[str]:
        seen = sorted({q for _, q in self.cells})
        return all_quarters(seen[0], seen[-1]) if seen else []

    def organisations(self) -> list[str]:
        return sorted({o for o, _ in self.cells})

    def rows(self) -> list[dict[str, object]]:
        """One dict per (organisation, quarter): counts and computed values, for CSV or JSON."""
        out = []
        for (org, quarter), counts in sorted(self.cells.items()):
            row: dict[str, object] = {"organisation": org, "quarter": quarter}
            row.update({f.name: getattr(counts, f.name) for f in fields(counts)})
            for metric in METRICS:
                if metric.is_proportion:
                    value = metric.value(counts)
                    row[f"pct_{metric.code}"] = None if value is None else round(100 * value, 1)
            out.append(row)
        return out


def _roll_up(items: Iterable[tuple[str, MetricCounts]]) -> dict[str, MetricCounts]:
    out: dict[str, MetricCounts] = {}
    for key, counts in items:
        out.setdefault(key, MetricCounts()).add(counts)
    return dict(sorted(out.items()))


def as_percent(value: float | int | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def metric_values(counts: MetricCounts) -> Mapping[str, float | int | None]:
    return {m.code: m.value(counts) for m in METRICS}
