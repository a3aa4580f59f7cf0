"""Rendering validation results: a human table, a JSON issue list, or OperationOutcome(s).

Messages never carry free text from the instance (the checks only quote codes and URLs), so the
output can go into tickets and CI logs. Locations are FHIRPath in the HL7 validator's style.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fhir_dnacpr.issues import Issue, operation_outcome
from fhir_dnacpr.validation.inputs import Result

FILE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/operationoutcome-file"
_NESTED = re.compile(r"/\*([A-Za-z]+)/([^*]*)\*/")
SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


def issue_resource(result: Result, issue: Issue) -> str:
    """The resource an issue is about: the innermost ``/*Type/id*/`` in its location, or the
    top-level resource (so Bundle entries show as ``Consent/abc``, not ``Bundle/x``)."""
    found = _NESTED.findall(issue.location or "")
    if found:
        rtype, rid = found[-1]
        return f"{rtype}/{rid}" if rid and rid != "null" else rtype
    return result.label


def rows(results: Iterable[Result], *, errors_only: bool = False) -> list[dict[str, Any]]:
    """One JSON-ready row per issue, with the file (and NDJSON line) it came from."""
    out = []
    for result in results:
        for issue in sort_issues(result.issues):
            if errors_only and not issue.is_error:
                continue
            row: dict[str, Any] = {"file": str(result.file)}
            if result.line is not None:
                row["line"] = result.line
            row |= {
                "resource": issue_resource(result, issue),
                "severity": issue.severity.value,
                "code": issue.code,
                "location": issue.location,
                "message": issue.message,
                "message_id": issue.message_id,
            }
            out.append(row)
    return out


def sort_issues(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (SEVERITY_ORDER.get(i.severity.value, 9), i.location or ""))


def table(results: list[Result], *, errors_only: bool = False, width: int = 120) -> str:
    """A plain-text table: file, resource, severity, location, message (message wraps last)."""
    data = rows(results, errors_only=errors_only)
    if not data:
        return ""
    headers = ("file", "resource", "severity", "location", "message")
    cells = [
        (
            f"{r['file']}:{r['line']}" if "line" in r else r["file"],
            r["resource"],
            r["severity"],
            _NESTED.sub("", r["location"] or ""),  # the resource column already names it
            r["message"],
        )
        for r in data
    ]
    widths = [min(max(len(h), *(len(c[i]) for c in cells)), 60) for i, h in enumerate(headers[:4])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:4], widths, strict=True)) + "  message"]
    lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    for cell in cells:
        head = "  ".join(_fit(c, w).ljust(w) for c, w in zip(cell[:4], widths, strict=True))
        lines.append(f"{head}  {cell[4]}")
    return "\n".join(lines)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def outcome(results: list[Result], *, errors_only: bool = False) -> dict[str, Any]:
    """One OperationOutcome for one resource; a collection Bundle of them for several (each
    outcome names its file, as the HL7 validator CLI does)."""
    outcomes = []
    for result in results:
        issues = [i for i in sort_issues(result.issues) if i.is_error or not errors_only]
        rendered = operation_outcome(issues)
        rendered["extension"] = [{"url": FILE_EXTENSION, "valueString": result.source}]
        outcomes.append(rendered)
    if len(outcomes) == 1:
        return outcomes[0]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in outcomes]}


def summary(results: list[Result], skipped: int = 0) -> str:
    issues = [i for r in results for i in r.issues]
    errors = sum(1 for i in issues if i.is_error)
    warnings = sum(1 for i in issues if i.severity.value == "warning")
    files = len({r.file for r in results})
    failing = sum(1 for r in results if r.has_errors)
    text = (
        f"{len(results)} resource(s) in {files} file(s): {failing} with errors; "
        f"{errors} error(s), {warnings} warning(s)"
    )
    return text + (f"; {skipped} file(s) skipped (not FHIR)" if skipped else "")
