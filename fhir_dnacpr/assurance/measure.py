"""The metrics as FHIR: our ``Measure`` definition and a summary ``MeasureReport`` of one audit.

One group per metric, each stratified by organisation and quarter (one stratifier with two
components), so an integrated care system can load the numbers into its own FHIR tooling.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from fhir_dnacpr import canonical
from fhir_dnacpr.assurance.metrics import (
    METRICS,
    Metric,
    MetricCounts,
    MetricTable,
    quarter_end,
    quarter_start,
)

MEASURE_URL = f"{canonical.BASE}/Measure/dnacpr-assurance"
METRIC_SYSTEM = f"{canonical.BASE}/CodeSystem/dnacpr-assurance-metric"
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_FILE = Path(__file__).resolve().parents[2] / "profiles" / "Measure-dnacpr-assurance.json"

#: Which counters fill which population of each metric's group.
_POPULATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "decisions": (("initial-population", "decisions"),),
    "discussed": (
        ("initial-population", "decisions"),
        ("denominator", "decisions"),
        ("numerator", "discussed"),
    ),
    "capacity-recorded": (
        ("initial-population", "decisions"),
        ("denominator", "decisions"),
        ("numerator", "capacity_recorded"),
    ),
    "endorsed": (("initial-population", "decisions"), ("denominator", "decisions"), ("numerator", "senior")),
    "overdue": (("initial-population", "decisions"), ("denominator", "active"), ("numerator", "overdue")),
    "clusters": (("initial-population", "clusters"),),
}


@cache
def measure_definition() -> dict[str, Any]:
    """The shipped Measure resource (profiles/Measure-dnacpr-assurance.json)."""
    return json.loads(MEASURE_FILE.read_text(encoding="utf-8"))


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code}]}
    if display:
        concept["coding"][0]["display"] = display
        concept["text"] = display
    return concept


def _populations(metric: Metric, counts: MetricCounts) -> list[dict[str, Any]]:
    return [
        {"code": _coding(POPULATION_SYSTEM, code), "count": getattr(counts, field)}
        for code, field in _POPULATIONS[metric.code]
    ]


def _score(metric: Metric, counts: MetricCounts) -> dict[str, Any] | None:
    if not metric.is_proportion:
        return None
    value = metric.value(counts)
    return None if value is None else {"value": round(float(value), 4)}


def measure_report(
    metrics: MetricTable,
    as_of: date,
    generated: str,
    period: tuple[date, date] | None = None,
) -> dict[str, Any]:
    """A summary MeasureReport of ``metrics`` against our Measure."""
    quarters = metrics.quarters()
    if period is None:
        period = (quarter_start(quarters[0]), quarter_end(quarters[-1])) if quarters else (as_of, as_of)
    total = metrics.total()
    cells = sorted(metrics.cells.items())
    groups = []
    for metric in METRICS:
        group: dict[str, Any] = {
            "id": metric.code,
            "code": _coding(METRIC_SYSTEM, metric.code, metric.title),
            "population": _populations(metric, total),
        }
        score = _score(metric, total)
        if score is not None:
            group["measureScore"] = score
        strata = []
        for (org, quarter), counts in cells:
            stratum: dict[str, Any] = {
                "component": [
                    {"code": _coding(METRIC_SYSTEM, "organisation"), "value": {"text": org}},
                    {"code": _coding(METRIC_SYSTEM, "quarter"), "value": {"text": quarter}},
                ],
                "population": _populations(metric, counts),
            }
            score = _score(metric, counts)
            if score is not None:
                stratum["measureScore"] = score
            strata.append(stratum)
        group["stratifier"] = [
            {
                "code": [_coding(METRIC_SYSTEM, "organisation"), _coding(METRIC_SYSTEM, "quarter")],
                "stratum": strata,
            }
        ]
        groups.append(group)
    narrative = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>DNACPR assurance metrics, '
        f"{period[0].isoformat()} to {period[1].isoformat()}: {total.decisions} DNACPR decisions, "
        f"{len(metrics.organisations())} organisations, {total.clusters} possible blanket clusters.</p></div>"
    )
    return tidy(
        {
            "resourceType": "MeasureReport",
            "text": {"status": "generated", "div": narrative},
            "status": "complete",
            "type": "summary",
            "measure": MEASURE_URL,
            "date": generated,
            "period": {"start": period[0].isoformat(), "end": period[1].isoformat()},
            "group": groups,
        }
    )


def tidy(resource: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values (FHIR forbids empty arrays, objects and nulls)."""
    if isinstance(resource, dict):
        out = {}
        for key, value in resource.items():
            value = tidy(value)
            if value in (None, [], {}, ""):
                continue
            out[key] = value
        return out
    if isinstance(resource, list):
        return [v for v in (tidy(x) for x in resource) if v not in (None, [], {}, "")]
    return resource
