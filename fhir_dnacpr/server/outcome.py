"""Reading a server's verdict on one bundle entry: created, updated, unchanged or failed.

HAPI answers a no-op update with ``200`` and the old version; it says so in the entry's
OperationOutcome with a storage response code (``SUCCESSFUL_UPDATE_NO_CHANGE``). Servers that do
not send such codes are read from the timestamps: a ``200`` whose ``lastModified`` predates the
request was not written by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fhir_dnacpr.issues import error as error_issue
from fhir_dnacpr.issues import operation_outcome

HAPI_STORAGE_CODES = "https://hapifhir.io/fhir/CodeSystem/hapi-fhir-storage-response-code"
_UNCHANGED_CODES = {"SUCCESSFUL_UPDATE_NO_CHANGE", "SUCCESSFUL_CREATE_WITH_CONDITIONAL_MATCH"}
_CREATED_CODES = {
    "SUCCESSFUL_CREATE",
    "SUCCESSFUL_CREATE_NO_CONDITIONAL_MATCH",
    "SUCCESSFUL_UPDATE_AS_CREATE",
}
_UPDATED_CODES = {"SUCCESSFUL_UPDATE", "SUCCESSFUL_UPDATE_WITH_CONDITIONAL_MATCH"}
_STATUS = re.compile(r"^\s*(\d{3})")
_HISTORY = re.compile(r"^(?:.*/)?([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([^/]+))?$")
SKEW = timedelta(seconds=2)


class Result(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class EntryVerdict:
    """What happened to one entry: the result, the HTTP status, where it lives now, and why if failed."""

    result: Result
    status: int | None
    location: str | None = None
    version: str | None = None
    outcome: dict[str, Any] | None = None


def status_code(status_line: str | None) -> int | None:
    """``"201 Created"`` → 201; None when the line holds no status code."""
    if not status_line:
        return None
    match = _STATUS.match(str(status_line))
    return int(match.group(1)) if match else None


def storage_codes(outcome: dict[str, Any] | None) -> set[str]:
    if not isinstance(outcome, dict):
        return set()
    return {
        coding.get("code", "")
        for issue in outcome.get("issue", ())
        for coding in (issue.get("details") or {}).get("coding", ())
        if coding.get("system") == HAPI_STORAGE_CODES
    }


def split_location(location: str | None) -> tuple[str | None, str | None]:
    """``Patient/abc/_history/3`` (relative or absolute) → (``Patient/abc``, ``3``)."""
    if not location:
        return None, None
    match = _HISTORY.match(location.split("?", 1)[0])
    if not match:
        return None, None
    return f"{match.group(1)}/{match.group(2)}", match.group(3)


def classify(response: dict[str, Any] | None, sent_at: datetime | None = None) -> EntryVerdict:
    """Turn one ``Bundle.entry.response`` into an ``EntryVerdict``."""
    if not isinstance(response, dict):
        return failure(None, "the server's response has no entry for this resource")
    status = status_code(response.get("status"))
    outcome = response.get("outcome") if isinstance(response.get("outcome"), dict) else None
    location = response.get("location")
    _, version = split_location(location)
    if status is None:
        return failure(None, f"unreadable entry status {response.get('status')!r}", outcome)
    if status >= 300:
        return EntryVerdict(Result.FAILED, status, location, version, outcome or _outcome_for(status))
    codes = storage_codes(outcome)
    if codes & _UNCHANGED_CODES:
        result = Result.UNCHANGED
    elif codes & _CREATED_CODES or status == 201:
        result = Result.CREATED
    elif codes & _UPDATED_CODES:
        result = Result.UPDATED
    else:
        result = _by_timestamp(response.get("lastModified"), sent_at)
    return EntryVerdict(result, status, location, version, None)


def failure(status: int | None, message: str, outcome: dict[str, Any] | None = None) -> EntryVerdict:
    """A failed entry with an OperationOutcome saying why (the server's own if it sent one)."""
    return EntryVerdict(
        Result.FAILED,
        status,
        outcome=outcome or operation_outcome([error_issue("processing", message, message_id="push-failed")]),
    )


def _outcome_for(status: int) -> dict[str, Any]:
    return operation_outcome([error_issue("processing", f"the server refused the entry with HTTP {status}")])


def _by_timestamp(last_modified: str | None, sent_at: datetime | None) -> Result:
    if not last_modified or sent_at is None:
        return Result.UPDATED
    try:
        modified = datetime.fromisoformat(last_modified.replace("Z", "+00:00"))
    except ValueError:
        return Result.UPDATED
    if modified.tzinfo is None or sent_at.tzinfo is None:
        return Result.UPDATED
    return Result.UNCHANGED if modified < sent_at - SKEW else Result.UPDATED
