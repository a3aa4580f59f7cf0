"""Issues: the one shape every stage uses to say what is wrong, where, and how badly.

The same object serves the validator (FHIRPath location in a resource), the converter (a field of a
source record) and the client (an entry the server refused), and renders as a FHIR OperationOutcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MESSAGE_ID_EXTENSION = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"


class Severity(StrEnum):
    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"

    @property
    def is_error(self) -> bool:
        return self in (Severity.FATAL, Severity.ERROR)


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found.

    ``code`` is an OperationOutcome issue-type code (``required``, ``value``, ``invariant``,
    ``structure``, ``code-invalid``, ``not-found``, ``processing``, ``invalid`` …);
    ``location`` is a FHIRPath expression for resources or ``field`` name for source records;
    ``message_id`` is stable across releases so tools can match on it.
    """

    severity: Severity
    code: str
    message: str
    location: str | None = None
    message_id: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity.is_error

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity.value, "code": self.code}
        if self.message_id:
            issue["extension"] = [{"url": MESSAGE_ID_EXTENSION, "valueString": self.message_id}]
        issue["diagnostics"] = self.message
        if self.location:
            issue["expression"] = [self.location]
        return issue

    @classmethod
    def from_fhir(cls, issue: dict[str, Any]) -> Issue:
        message_id = next(
            (
                e.get("valueString")
                for e in issue.get("extension", ())
                if e.get("url") == MESSAGE_ID_EXTENSION
            ),
            None,
        )
        locations = issue.get("expression") or issue.get("location") or [None]
        return cls(
            severity=Severity(issue.get("severity", "error")),
            code=issue.get("code", "processing"),
            message=issue.get("diagnostics") or issue.get("details", {}).get("text", ""),
            location=locations[0],
            message_id=message_id,
        )


def error(code: str, message: str, location: str | None = None, message_id: str | None = None) -> Issue:
    return Issue(Severity.ERROR, code, message, location, message_id)


def warning(code: str, message: str, location: str | None = None, message_id: str | None = None) -> Issue:
    return Issue(Severity.WARNING, code, message, location, message_id)


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(i.is_error for i in issues)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """Render issues as an OperationOutcome; an empty list becomes the conventional 'All OK'."""
    rendered = [i.to_fhir() for i in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return {"resourceType": "OperationOutcome", "issue": rendered}
