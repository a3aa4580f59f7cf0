"""Assurance: find the DNACPR failure patterns England's regulator described, and report them.

``audit(records, config)`` streams canonical records through rules traced to public standards (CQC
2021 review, BMA/RC UK/RCN guidance, Mental Capacity Act 2005) and returns findings with their
evidence and oversight metrics per organisation and quarter. ``write_reports`` renders the HTML
report, findings.csv and a FHIR MeasureReport.
"""

from fhir_dnacpr.assurance.config import AuditConfig, ClusterSettings, ConfigError
from fhir_dnacpr.assurance.engine import AuditResult, AuditRun, Cluster, audit
from fhir_dnacpr.assurance.findings import EvidenceRef, Finding
from fhir_dnacpr.assurance.metrics import METRICS, MetricCounts, MetricTable
from fhir_dnacpr.assurance.rules import RULES, Rule, RuleSeverity

__all__ = [
    "METRICS",
    "RULES",
    "AuditConfig",
    "AuditResult",
    "AuditRun",
    "Cluster",
    "ClusterSettings",
    "ConfigError",
    "EvidenceRef",
    "Finding",
    "MetricCounts",
    "MetricTable",
    "Rule",
    "RuleSeverity",
    "audit",
]
