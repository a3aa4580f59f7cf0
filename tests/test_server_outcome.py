"""Reading one entry's verdict: created / updated / unchanged / failed, as HAPI and others say it."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_dnacpr.server.outcome import HAPI_STORAGE_CODES, Result, classify, split_location, status_code


def hapi(status: str, code: str, location: str = "Consent/a/_history/1") -> dict:
    return {
        "status": status,
        "location": location,
        "outcome": {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "details": {"coding": [{"system": HAPI_STORAGE_CODES, "code": code}]},
                }
            ],
        },
    }


def test_hapi_storage_codes_decide() -> None:
    assert classify(hapi("201 Created", "SUCCESSFUL_UPDATE_AS_CREATE")).result is Result.CREATED
    assert classify(hapi("200 OK", "SUCCESSFUL_UPDATE_NO_CHANGE")).result is Result.UNCHANGED
    updated = classify(hapi("200 OK", "SUCCESSFUL_UPDATE", "Consent/a/_history/2"))
    assert updated.result is Result.UPDATED and updated.version == "2"
    assert classify(hapi("200 OK", "SUCCESSFUL_CREATE_WITH_CONDITIONAL_MATCH")).result is Result.UNCHANGED


def test_without_codes_timestamps_decide() -> None:
    sent = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    old = {"status": "200 OK", "lastModified": "2026-04-01T08:00:00Z"}
    new = {"status": "200 OK", "lastModified": "2026-05-01T12:00:00.300+00:00"}
    assert classify(old, sent).result is Result.UNCHANGED
    assert classify(new, sent).result is Result.UPDATED
    assert classify({"status": "201"}).result is Result.CREATED
    assert classify({"status": "200 OK"}).result is Result.UPDATED


def test_failures_keep_status_and_outcome() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": "HAPI-1094"}],
    }
    verdict = classify({"status": "400 Bad Request", "outcome": outcome})
    assert verdict.result is Result.FAILED and verdict.status == 400 and verdict.outcome == outcome
    bare = classify({"status": "422 Unprocessable Entity"})
    assert bare.outcome is not None and "422" in bare.outcome["issue"][0]["diagnostics"]
    assert classify(None).result is Result.FAILED
    assert classify({"status": "weird"}).result is Result.FAILED


def test_status_and_location_parsing() -> None:
    assert status_code("201 Created") == 201 and status_code("204") == 204 and status_code(None) is None
    assert split_location("http://x/fhir/Patient/p-1/_history/3") == ("Patient/p-1", "3")
    assert split_location("Patient/p-1") == ("Patient/p-1", None)
    assert split_location(None) == (None, None)
