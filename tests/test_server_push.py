"""The pusher's decisions on their own: fallback to batch, halving, id-strategy switch, late references.

A scripted transport answers each request from a small function (these are unit tests of the
pusher's logic); the same paths against the real HAPI server are in test_server_push_integration.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from fhir_dnacpr.server.bundles import PushBundle, PushEntry
from fhir_dnacpr.server.client import FhirClient
from fhir_dnacpr.server.errors import UnsupportedError
from fhir_dnacpr.server.push import REJECTS_FILE, Pusher
from fhir_dnacpr.server.retry import RetryPolicy

Answer = tuple[int, Any]


def capability(
    version: str = "4.0.1", system: tuple[str, ...] = ("transaction", "batch"), **patient: Any
) -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": version,
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": c} for c in system],
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "update"}],
                        "conditionalUpdate": True,
                        **patient,
                    },
                    {"type": "Consent", "interaction": [{"code": "update"}], "conditionalUpdate": True},
                ],
            }
        ],
    }


class FakeTransport(BaseAdapter):
    """Answers GET metadata with ``caps`` and POSTed bundles with ``on_bundle(bundle)``."""

    def __init__(self, on_bundle: Callable[[dict], Answer], caps: dict | None = None) -> None:
        super().__init__()
        self.on_bundle = on_bundle
        self.caps = caps or capability()
        self.bundles: list[dict] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.method == "GET":
            status, body = 200, self.caps
        else:
            bundle = json.loads(request.body)
            self.bundles.append(bundle)
            status, body = self.on_bundle(bundle)
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/fhir+json"
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def ok(entry: dict) -> dict:
    return {"response": {"status": "201 Created", "location": f"{entry['request']['url']}/_history/1"}}


def refused(message: str, status: int = 400) -> dict:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": message}],
    }
    return {"response": {"status": f"{status} Bad Request", "outcome": outcome}}


def whole(message: str, status: int = 400) -> Answer:
    return status, refused(message, status)["response"]["outcome"]


def response_bundle(entries: list[dict]) -> Answer:
    return 200, {"resourceType": "Bundle", "type": "batch-response", "entry": entries}


def pusher_for(transport: FakeTransport, **kwargs: Any) -> Pusher:
    client = FhirClient(
        "http://fhir.test/fhir", retry=RetryPolicy(total=2, backoff_base=0), sleep=lambda s: None
    )
    client.session.mount("http://", transport)
    return Pusher(client, concurrency=kwargs.pop("concurrency", 1), **kwargs)


def patients(n: int, **extra: Any) -> list[PushEntry]:
    return [
        PushEntry.of(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "identifier": [{"system": "urn:s", "value": str(i)}],
                **extra,
            },
            origin=f"export.csv, line {i + 2}",
        )
        for i in range(n)
    ]


def run(pusher: Pusher, bundles: list[PushBundle], tmp_path: Path) -> dict:
    pusher.push_plan([(1, b) for b in bundles], tmp_path)
    return json.loads((tmp_path / "push-summary.json").read_text())


def rejects(tmp_path: Path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / REJECTS_FILE).read_text().splitlines()]


def test_a_refused_transaction_is_located_by_batch(tmp_path: Path) -> None:
    def server(bundle: dict) -> Answer:
        bad = [e for e in bundle["entry"] if e["resource"].get("gender") == "bogus"]
        if bundle["type"] == "transaction":
            return whole("one entry is bad") if bad else response_bundle([ok(e) for e in bundle["entry"]])
        return response_bundle([refused("bogus gender") if e in bad else ok(e) for e in bundle["entry"]])

    entries = patients(4)
    entries[2] = PushEntry.of(
        {"resourceType": "Patient", "id": "p2", "gender": "bogus"}, origin="export.csv, line 4"
    )
    transport = FakeTransport(server)
    summary = run(pusher_for(transport), [PushBundle(1, tuple(entries))], tmp_path)
    assert [b["type"] for b in transport.bundles] == ["transaction", "batch"]
    assert summary["created"] == 3 and summary["failed"] == 1 and summary["bundles_fell_back_to_batch"] == 1
    (reject,) = rejects(tmp_path)
    assert (
        reject["resource"] == "Patient/p2"
        and reject["origin"] == "export.csv, line 4"
        and reject["status"] == 400
    )


def test_a_batch_refused_as_a_whole_is_halved_until_the_bad_entry_stands_alone(tmp_path: Path) -> None:
    def server(bundle: dict) -> Answer:
        entries = bundle["entry"]
        if any(e["resource"].get("gender") == "bogus" for e in entries):
            return whole("HAPI-0450: Failed to parse request body")
        return response_bundle([ok(e) for e in entries])

    entries = patients(8)
    entries[5] = PushEntry.of({"resourceType": "Patient", "id": "p5", "gender": "bogus"})
    transport = FakeTransport(server)
    summary = run(pusher_for(transport, mode="batch"), [PushBundle(1, tuple(entries))], tmp_path)
    assert summary["created"] == 7 and summary["failed"] == 1
    sizes = [len(b["entry"]) for b in transport.bundles]
    assert sizes == [8, 4, 4, 2, 1, 1, 2], "8 → 4 (ok) + 4 → 2 → 1 (ok) + 1 (bad); 2 (ok)"
    assert [r["resource"] for r in rejects(tmp_path)] == ["Patient/p5"]


def test_refused_client_ids_switch_the_type_to_conditional_update(tmp_path: Path) -> None:
    def server(bundle: dict) -> Answer:
        answers = []
        for e in bundle["entry"]:
            if e["request"]["url"].startswith("Patient/"):
                answers.append(
                    refused(
                        "HAPI-0959: No resource exists on this server resource with ID[p0], "
                        "and client-assigned IDs are not enabled."
                    )
                )
            else:
                answers.append(ok(e))
        return response_bundle(answers)

    transport = FakeTransport(server)
    pusher = pusher_for(transport, mode="batch")
    summary = run(
        pusher, [PushBundle(1, tuple(patients(2))), PushBundle(2, tuple(patients(3)[2:]))], tmp_path
    )
    assert summary["failed"] == 0 and summary["created"] == 3 and summary["conditional_types"] == ["Patient"]
    resent = transport.bundles[1]["entry"][0]
    assert resent["request"] == {"method": "PUT", "url": "Patient?identifier=urn%3As%7C0"}
    assert "id" not in resent["resource"] and resent["fullUrl"].startswith("urn:uuid:")
    assert transport.bundles[2]["entry"][0]["request"]["url"].startswith("Patient?identifier="), (
        "later bundles too"
    )


def test_capability_statement_decides_before_the_first_write(tmp_path: Path) -> None:
    transport = FakeTransport(
        lambda b: response_bundle([ok(e) for e in b["entry"]]), capability(updateCreate=False)
    )
    pusher = pusher_for(transport)
    run(pusher, [PushBundle(1, tuple(patients(1)))], tmp_path)
    assert transport.bundles[0]["entry"][0]["request"]["url"].startswith("Patient?identifier=")


def test_a_reference_to_a_later_bundle_is_retried_at_the_end(tmp_path: Path) -> None:
    written: set[str] = set()

    def server(bundle: dict) -> Answer:
        answers = []
        for e in bundle["entry"]:
            target = e["resource"].get("patient", {}).get("reference")
            if target and target not in written:
                answers.append(
                    refused(f"HAPI-1094: Resource {target} not found, specified in path: Consent.patient")
                )
            else:
                written.add(e["request"]["url"])
                answers.append(ok(e))
        if bundle["type"] == "transaction" and any("outcome" in a["response"] for a in answers):
            return whole(answers[0]["response"]["outcome"]["issue"][0]["diagnostics"])
        return response_bundle(answers)

    consent = PushEntry.of({"resourceType": "Consent", "id": "c", "patient": {"reference": "Patient/p0"}})
    bundles = [PushBundle(1, (consent,)), PushBundle(2, tuple(patients(1)))]
    summary = run(pusher_for(FakeTransport(server)), bundles, tmp_path)
    assert summary["failed"] == 0 and summary["created"] == 2


def test_a_server_that_stays_unavailable_stops_the_run_without_losing_track(tmp_path: Path) -> None:
    transport = FakeTransport(lambda b: whole("down for maintenance", 503))
    summary = run(pusher_for(transport), [PushBundle(n, tuple(patients(2))) for n in (1, 2, 3)], tmp_path)
    assert not summary["complete"] and "503" in summary["stopped_because"]
    assert summary["not_sent"] == 6 and summary["bundles_unacknowledged"] == 3 and summary["failed"] == 0
    assert len(transport.bundles) == 3, "1 attempt + 2 retries, then no further bundles"
    assert (tmp_path / "push-checkpoint.ndjson").read_text().count("\n") == 1, "nothing acknowledged"


def test_only_r4_servers(tmp_path: Path) -> None:
    transport = FakeTransport(lambda b: (200, {}), capability(version="5.0.0"))
    with pytest.raises(UnsupportedError, match="R4"):
        run(pusher_for(transport), [], tmp_path)


def test_no_declared_transaction_means_batch(tmp_path: Path) -> None:
    transport = FakeTransport(
        lambda b: response_bundle([ok(e) for e in b["entry"]]), capability(system=("batch",))
    )
    pusher = pusher_for(transport)
    run(pusher, [PushBundle(1, tuple(patients(1)))], tmp_path)
    assert pusher.mode == "batch" and transport.bundles[0]["type"] == "batch"


def test_superseded_versions_and_input_problems_are_reported(tmp_path: Path) -> None:
    old = PushEntry.of({"resourceType": "Patient", "id": "p", "gender": "male"}, origin="a, line 2")
    transport = FakeTransport(lambda b: response_bundle([ok(e) for e in b["entry"]]))
    bundle = PushBundle(1, tuple(patients(1)), duplicates=2, superseded=(old,))
    summary = run(pusher_for(transport), [bundle], tmp_path)
    assert summary["superseded"] == 1 and summary["deduplicated"] == 2
    (reject,) = rejects(tmp_path)
    assert reject["origin"] == "a, line 2" and reject["status"] is None
    assert reject["outcome"]["issue"][0]["severity"] == "warning"
