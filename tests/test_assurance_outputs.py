"""Outputs: findings.csv, the FHIR Measure and MeasureReport, and the self-contained HTML report."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from fhir_dnacpr.assurance import AuditConfig
from fhir_dnacpr.assurance.measure import _POPULATIONS, MEASURE_URL, measure_definition
from fhir_dnacpr.assurance.metrics import METRICS
from fhir_dnacpr.assurance.outputs import FINDINGS_COLUMNS, run_audit
from fhir_dnacpr.assurance.synthetic import scenario
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number

CONFIG = AuditConfig(
    as_of=date(2023, 1, 1), generated_at=datetime(2023, 1, 2, 9, 0, tzinfo=UTC), max_findings_kept=50
)
TEN_DIGITS = re.compile(r"(?<!\d)(\d{3}) ?(\d{3}) ?(\d{4})(?!\d)")


@pytest.fixture(scope="module")
def data():
    return scenario(seed=4, background=1500)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    result, paths = run_audit(data.records, CONFIG, out)
    return result, paths


def nhs_numbers_in(text: str) -> set[str]:
    return {
        "".join(m.groups()) for m in TEN_DIGITS.finditer(text) if is_valid_nhs_number("".join(m.groups()))
    }


def test_findings_csv_lists_every_finding(run) -> None:
    result, paths = run
    with paths["findings"].open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FINDINGS_COLUMNS
    assert len(rows) == result.total_findings > len(result.findings)  # the report is bounded, the CSV is not
    assert len({r["finding_id"] for r in rows}) == len(rows)
    by_rule: dict[str, int] = {}
    for row in rows:
        by_rule[row["rule_id"]] = by_rule.get(row["rule_id"], 0) + 1
        assert row["source"], row
    assert by_rule == result.rule_counts


def test_no_identifiers_in_outputs_by_default(run, data) -> None:
    _, paths = run
    everyone = {r.patient.nhs_number for r in data.records}
    for path in paths.values():
        text = path.read_text(encoding="utf-8")
        assert not nhs_numbers_in(text) & everyone, path.name


def test_identifiers_shown_on_request(data, tmp_path) -> None:
    config = dataclasses.replace(CONFIG, show_identifiers=True)
    _, paths = run_audit(data.records, config, tmp_path)
    text = paths["findings"].read_text(encoding="utf-8")
    assert "pt-" not in text
    report = paths["report"].read_text(encoding="utf-8")
    assert "IDENTIFIERS ARE SHOWN" in report
    assert nhs_numbers_in(report) & {r.patient.nhs_number for r in data.records}


def test_outputs_are_deterministic(data, run, tmp_path) -> None:
    _, first = run
    _, second = run_audit(data.records, CONFIG, tmp_path)
    for name in ("findings", "report", "measure_report", "metrics", "summary"):
        assert first[name].read_bytes() == second[name].read_bytes(), name


def test_measure_definition_matches_the_metrics() -> None:
    measure = measure_definition()
    assert measure["url"] == MEASURE_URL
    assert [g["id"] for g in measure["group"]] == [m.code for m in METRICS]
    for group, metric in zip(measure["group"], METRICS, strict=True):
        assert group["code"]["coding"][0]["code"] == metric.code
        assert [p["code"]["coding"][0]["code"] for p in group["population"]] == [
            code for code, _ in _POPULATIONS[metric.code]
        ]
        [stratifier] = group["stratifier"]
        assert [c["code"]["coding"][0]["code"] for c in stratifier["component"]] == [
            "organisation",
            "quarter",
        ]
    cited = {a.get("url") for a in measure["relatedArtifact"]}
    assert "https://www.legislation.gov.uk/ukpga/2005/9/section/4" in cited


def test_measure_report_numbers(run) -> None:
    result, paths = run
    report = json.loads(paths["measure_report"].read_text(encoding="utf-8"))
    assert report["resourceType"] == "MeasureReport" and report["type"] == "summary"
    assert report["measure"] == MEASURE_URL
    groups = {g["id"]: g for g in report["group"]}
    total = result.metrics.total()
    pops = {p["code"]["coding"][0]["code"]: p["count"] for p in groups["discussed"]["population"]}
    assert pops == {
        "initial-population": total.decisions,
        "denominator": total.decisions,
        "numerator": total.discussed,
    }
    assert groups["discussed"]["measureScore"]["value"] == round(total.discussed / total.decisions, 4)
    strata = groups["clusters"]["stratifier"][0]["stratum"]
    assert sum(s["population"][0]["count"] for s in strata) == len(result.clusters) == 1
    cell_count = len(result.metrics.cells)
    assert all(len(g["stratifier"][0]["stratum"]) == cell_count for g in report["group"])


def test_measure_and_report_are_valid_r4(run) -> None:
    validation = pytest.importorskip("fhir_dnacpr.validation")
    _, paths = run
    for resource in (measure_definition(), json.loads(paths["measure_report"].read_text(encoding="utf-8"))):
        errors = [i for i in validation.validate(resource) if i.is_error]
        assert errors == [], [(i.location, i.message) for i in errors]


def test_html_is_self_contained(run) -> None:
    _, paths = run
    html = paths["report"].read_text(encoding="utf-8")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+rel=\"stylesheet\"", html)
    assert not re.search(r"<img[^>]+src=\"(?!data:)", html)
    assert "@import" not in html and "url(http" not in html
    assert html.count("<svg") >= 2
    # every rule's method entry is there, with its sources
    assert html.count('<article id="rule-') == 11
    assert "Mental Capacity Act 2005" in html


def test_summary_json(run) -> None:
    result, paths = run
    summary = json.loads(paths["summary"].read_text(encoding="utf-8"))
    assert summary["records"] == result.records
    assert summary["findings_by_rule"] == dict(sorted(result.rule_counts.items()))
    assert summary["clusters"] == 1 and summary["identifiers_shown"] is False


def test_measure_file_is_in_profiles_folder() -> None:
    assert (Path(__file__).resolve().parents[1] / "profiles" / "Measure-dnacpr-assurance.json").is_file()
