"""Write an audit's outputs to a folder: report.html, findings.csv, metrics.csv, measure-report.json,
summary.json (and rejects.csv when an adapter rejected input).

findings.csv is written while the audit streams (every finding, however many); the HTML report shows
a bounded number per rule so it stays usable in a browser.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from fhir_dnacpr.assurance.config import AuditConfig
from fhir_dnacpr.assurance.engine import AuditResult, audit
from fhir_dnacpr.assurance.findings import Finding
from fhir_dnacpr.assurance.measure import measure_report
from fhir_dnacpr.assurance.report_html import render_html
from fhir_dnacpr.model import CareRecord

FINDINGS_COLUMNS = (
    "finding_id",
    "severity",
    "rule_id",
    "rule_title",
    "organisation",
    "quarter",
    "person",
    "records",
    "origins",
    "detail",
    "terms",
    "source",
)


class FindingsCsv:
    """Streams findings to CSV as they are made (the ``on_finding`` callback of ``audit``)."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream, lineterminator="\n")
        self._writer.writerow(FINDINGS_COLUMNS)
        self.rows = 0

    def __call__(self, finding: Finding) -> None:
        rule = finding.rule
        self._writer.writerow(
            (
                finding.finding_id,
                rule.severity.value,
                rule.id,
                rule.title,
                finding.organisation,
                finding.quarter or "",
                finding.patient or "",
                "; ".join(e.ref for e in finding.evidence),
                "; ".join(e.origin or "" for e in finding.evidence),
                finding.detail,
                "; ".join(finding.terms),
                str(rule.sources[0]) if rule.sources else "",
            )
        )
        self.rows += 1


def write_metrics_csv(result: AuditResult, path: Path) -> None:
    rows = result.metrics.rows()
    with path.open("w", newline="", encoding="utf-8") as f:
        if not rows:
            f.write("organisation,quarter\n")
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def summary(result: AuditResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = result.config
    data: dict[str, Any] = {
        "as_of": cfg.as_of.isoformat(),
        "generated_at": cfg.generated_at.isoformat(),
        "records": result.records,
        "decisions": result.decisions,
        "plans": result.plans,
        "excluded_entered_in_error": result.excluded_entered_in_error,
        "findings": result.total_findings,
        "findings_by_rule": dict(sorted(result.rule_counts.items())),
        "clusters": len(result.clusters),
        "unreadable_records": result.unreadable_count,
        "unreadable_examples": [{"record": ref, "error": kind} for ref, kind in result.unreadable],
        "rules_enabled": sorted(cfg.enabled),
        "cluster_settings": {
            "window_days": cfg.cluster.window_days,
            "min_cluster_size": cfg.cluster.min_cluster_size,
            "similarity_threshold": cfg.cluster.similarity_threshold,
            "shingle_size": cfg.cluster.shingle_size,
            "include_missing_rationale": cfg.cluster.include_missing_rationale,
        },
        "identifiers_shown": cfg.show_identifiers,
        "insecure_pseudonym_key": cfg.uses_insecure_key,
    }
    if extra:
        data.update(extra)
    return data


def write_reports(
    result: AuditResult, out_dir: Path, extra_summary: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Everything except findings.csv (which ``run_audit`` streams): HTML, metrics, FHIR, summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out_dir / "report.html",
        "metrics": out_dir / "metrics.csv",
        "measure_report": out_dir / "measure-report.json",
        "summary": out_dir / "summary.json",
    }
    paths["report"].write_text(render_html(result), encoding="utf-8")
    write_metrics_csv(result, paths["metrics"])
    report = measure_report(result.metrics, result.config.as_of, result.config.generated_at.isoformat())
    paths["measure_report"].write_text(json.dumps(report, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["summary"].write_text(
        json.dumps(summary(result, extra_summary), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return paths


def run_audit(
    records: Iterable[CareRecord],
    config: AuditConfig,
    out_dir: Path,
    extra_summary: Callable[[], dict[str, Any]] | None = None,
) -> tuple[AuditResult, dict[str, Path]]:
    """Audit ``records`` and write every output to ``out_dir``.

    ``extra_summary`` is called after the records are consumed (e.g. an adapter's reject counts).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    findings_path = out_dir / "findings.csv"
    with findings_path.open("w", newline="", encoding="utf-8") as f:
        writer = FindingsCsv(f)
        result = audit(records, config, on_finding=writer)
    paths = write_reports(result, out_dir, extra_summary() if extra_summary else None)
    paths["findings"] = findings_path
    return result, paths
