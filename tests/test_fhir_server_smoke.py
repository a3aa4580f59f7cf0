"""Smoke checks of the real HAPI FHIR JPA test server (scripts/fhir-server, tests/fhir-server/).

They pin down the server behaviour the push/pull code relies on: client-assigned ids, no-op
update detection, transactions and batches, conditional create/update, optimistic locking,
paging, ``_lastUpdated``, ``$validate`` with our profiles loaded, and Bulk Data ``$export``.
Every resource carries a run-unique identifier system, so a reused server does not interfere.
The ``fhir_base_url`` fixture comes from ``tests/server_fixture.py`` (imported by conftest).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.server

FHIR_JSON = "application/fhir+json"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
REPO_ROOT = Path(__file__).resolve().parent.parent
DNACPR_PROFILE = "https://fhir-dnacpr.github.io/fhir/StructureDefinition/DnacprDecision"
SNOMED = "http://snomed.info/sct"


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(HEADERS)
        yield session


@pytest.fixture
def id_system() -> str:
    """An identifier system unique to one test, so searches only see that test's resources."""
    return f"urn:uuid:{uuid.uuid4()}"


def new_id() -> str:
    return f"smoke-{uuid.uuid4().hex[:20]}"


def consent(resource_id: str | None = None, identifier: tuple[str, str] | None = None, **extra: Any) -> dict:
    """A base-R4-valid DNACPR-style Consent (no patient reference: nothing else must exist)."""
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]
        },
        "category": [{"coding": [{"system": SNOMED, "code": "304253006"}]}],
        "policyRule": {"text": "Synthetic smoke-test decision"},
    }
    if resource_id:
        body["id"] = resource_id
    if identifier:
        body["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
    body.update(extra)
    return body


def error_issues(outcome: dict) -> list[dict]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [i for i in outcome.get("issue", []) if i["severity"] in ("error", "fatal")]


def search(http: requests.Session, url: str, **params: str) -> dict:
    response = http.get(url, params=params)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def test_metadata_is_r4(http: requests.Session, fhir_base_url: str) -> None:
    response = http.get(f"{fhir_base_url}/metadata")
    assert response.status_code == 200
    capability = response.json()
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    types = {r["type"]: r for r in capability["rest"][0]["resource"]}
    interactions = {i["code"] for i in types["Consent"]["interaction"]}
    assert {"read", "update", "create", "search-type", "history-instance"} <= interactions


def test_put_with_client_id_creates_and_identical_put_is_a_no_op(
    http: requests.Session, fhir_base_url: str
) -> None:
    resource_id = new_id()
    url = f"{fhir_base_url}/Consent/{resource_id}"
    body = consent(resource_id)

    created = http.put(url, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["meta"]["versionId"] == "1"

    again = http.put(url, json=body)
    assert again.status_code == 200, again.text
    assert again.json()["meta"]["versionId"] == "1"
    history = http.get(f"{url}/_history").json()
    assert history["total"] == 1
    assert len(history["entry"]) == 1

    changed = http.put(url, json={**body, "status": "inactive"})
    assert changed.status_code == 200
    assert changed.json()["meta"]["versionId"] == "2"
    assert http.get(f"{url}/_history").json()["total"] == 2
    assert http.get(f"{url}/_history/1").json()["status"] == "active"


def test_transaction_of_puts_is_atomic_and_resolves_references(
    http: requests.Session, fhir_base_url: str
) -> None:
    patient_id, consent_id = new_id(), new_id()
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000026"}],
    }
    decision = consent(consent_id, patient={"reference": f"Patient/{patient_id}"})
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient, "request": {"method": "PUT", "url": f"Patient/{patient_id}"}},
            {"resource": decision, "request": {"method": "PUT", "url": f"Consent/{consent_id}"}},
        ],
    }
    response = http.post(fhir_base_url, json=bundle)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    assert [e["response"]["status"][:3] for e in result["entry"]] == ["201", "201"]
    stored = http.get(f"{fhir_base_url}/Consent/{consent_id}").json()
    assert stored["patient"]["reference"] == f"Patient/{patient_id}"

    # A transaction with one bad entry changes nothing (atomic).
    broken_id = new_id()
    broken = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": consent(broken_id), "request": {"method": "PUT", "url": f"Consent/{broken_id}"}},
            {
                "resource": consent(new_id(), patient={"reference": f"Patient/{new_id()}"}),
                "request": {"method": "POST", "url": "Consent"},
            },
        ],
    }
    failed = http.post(fhir_base_url, json=broken)
    assert failed.status_code >= 400
    assert http.get(f"{fhir_base_url}/Consent/{broken_id}").status_code in (404, 410)


def test_transaction_id_lookup_pairs_type_with_id(http: requests.Session, fhir_base_url: str) -> None:
    """The server resolves a transaction's (type, id) pairs as pairs, not as two independent lists.

    The test server rewrites HAPI's OR-of-pairs look-up into an indexable row-value IN for H2
    (tests/fhir-server IdLookupQueryRewriter); an id that exists under one type only, or a type
    whose other ids exist, must still be a create, and every existing pair an update.
    """
    shared_id, consent_only, basic_only = new_id(), new_id(), new_id()
    existing = [("Consent", shared_id), ("Consent", consent_only), ("Basic", basic_only)]

    def body(resource_type: str, resource_id: str) -> dict:
        if resource_type == "Consent":
            return consent(resource_id)
        return {"resourceType": "Basic", "id": resource_id, "code": {"text": "id look-up smoke test"}}

    def transaction(pairs: list[tuple[str, str]]) -> list[str]:
        entries = [
            {"resource": body(t, i), "request": {"method": "PUT", "url": f"{t}/{i}"}} for t, i in pairs
        ]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = http.post(fhir_base_url, data=json.dumps(bundle), timeout=60)
        assert response.status_code == 200, response.text
        return [e["response"]["status"].split()[0] for e in response.json()["entry"]]

    assert transaction(existing) == ["201", "201", "201"]
    # Same ids under the other type are new; the original pairs are unchanged no-op updates.
    crossed = [("Basic", shared_id), ("Basic", consent_only), ("Consent", basic_only)]
    assert transaction(existing + crossed) == ["200", "200", "200", "201", "201", "201"]
    for resource_type, resource_id in existing + crossed:
        history = http.get(f"{fhir_base_url}/{resource_type}/{resource_id}/_history", timeout=30).json()
        assert history["total"] == 1, (resource_type, resource_id)


def test_conditional_create_with_if_none_exist(
    http: requests.Session, fhir_base_url: str, id_system: str
) -> None:
    body = consent(identifier=(id_system, "decision-1"))
    condition = {"If-None-Exist": f"identifier={id_system}|decision-1"}

    first = http.post(f"{fhir_base_url}/Consent", json=body, headers=condition)
    assert first.status_code == 201, first.text
    second = http.post(f"{fhir_base_url}/Consent", json=body, headers=condition)
    assert second.status_code == 200, second.text
    assert second.headers["Location"].split("/_history")[0] == first.headers["Location"].split("/_history")[0]
    found = search(http, f"{fhir_base_url}/Consent", identifier=f"{id_system}|decision-1")
    assert found["total"] == 1


def test_conditional_update_by_identifier(http: requests.Session, fhir_base_url: str, id_system: str) -> None:
    url = f"{fhir_base_url}/Consent?identifier={id_system}|decision-2"
    created = http.put(url, json=consent(identifier=(id_system, "decision-2")))
    assert created.status_code == 201, created.text
    updated = http.put(url, json=consent(identifier=(id_system, "decision-2"), status="inactive"))
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"


def test_if_match_with_a_stale_version_is_rejected(http: requests.Session, fhir_base_url: str) -> None:
    resource_id = new_id()
    url = f"{fhir_base_url}/Consent/{resource_id}"
    assert http.put(url, json=consent(resource_id)).status_code == 201
    current = http.put(url, json=consent(resource_id, status="inactive"), headers={"If-Match": 'W/"1"'})
    assert current.status_code == 200, current.text
    assert current.headers["ETag"] == 'W/"2"'

    stale = http.put(url, json=consent(resource_id, status="active"), headers={"If-Match": 'W/"1"'})
    # FHIR says 412; HAPI 8.8.0 answers 409 (HAPI-0989 "... is not the current version").
    assert stale.status_code in (409, 412), stale.text
    assert error_issues(stale.json())
    assert http.get(url).json()["meta"]["versionId"] == "2"


def test_batch_then_paged_search_and_last_updated(
    http: requests.Session, fhir_base_url: str, id_system: str
) -> None:
    before = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": consent(identifier=(id_system, f"paged-{n}")),
                "request": {"method": "POST", "url": "Consent"},
            }
            for n in range(25)
        ],
    }
    response = http.post(fhir_base_url, json=batch)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "batch-response"
    assert all(e["response"]["status"].startswith("201") for e in response.json()["entry"])

    page = search(http, f"{fhir_base_url}/Consent", identifier=f"{id_system}|", _count="10")
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen.extend(e["resource"]["id"] for e in page.get("entry", []))
        next_links = [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
        if not next_links:
            break
        assert next_links[0].startswith(fhir_base_url)
        page = search(http, next_links[0])
    assert pages == 3
    assert len(seen) == len(set(seen)) == 25

    recent = search(
        http,
        f"{fhir_base_url}/Consent",
        identifier=f"{id_system}|",
        _lastUpdated=f"ge{before}",
        _summary="count",
    )
    assert recent["total"] == 25
    older = search(
        http,
        f"{fhir_base_url}/Consent",
        identifier=f"{id_system}|",
        _lastUpdated=f"lt{before}",
        _summary="count",
    )
    assert older["total"] == 0


def test_validate_reports_a_bad_code_and_passes_a_good_resource(
    http: requests.Session, fhir_base_url: str
) -> None:
    base_profile = "http://hl7.org/fhir/StructureDefinition/Consent"
    bad = http.post(
        f"{fhir_base_url}/Consent/$validate", params={"profile": base_profile}, json=consent(status="bogus")
    )
    assert bad.status_code in (200, 412), bad.text
    errors = error_issues(bad.json())
    assert any("Consent.status" in " ".join(i.get("expression", [])) for i in errors), errors

    good = http.post(f"{fhir_base_url}/Consent/$validate", params={"profile": base_profile}, json=consent())
    assert good.status_code == 200, good.text
    assert error_issues(good.json()) == []

    # Writes keep HAPI's strictness: the same bad code is refused at the door.
    assert http.post(f"{fhir_base_url}/Consent", json=consent(status="bogus")).status_code == 400


def test_validate_uses_our_profiles(http: requests.Session, fhir_base_url: str) -> None:
    manifest_path = REPO_ROOT / "profiles" / "examples" / "manifest.json"
    if not (REPO_ROOT / "profiles").is_dir():
        pytest.skip("profiles/ not written yet")
    # A Consent missing what DnacprDecision requires: the errors must come from our profile,
    # which proves it (and the UK Core profile it derives from) is loaded and snapshotted.
    response = http.post(
        f"{fhir_base_url}/Consent/$validate",
        params={"profile": DNACPR_PROFILE},
        json={"resourceType": "Consent"},
    )
    errors = error_issues(response.json())
    messages = " ".join(i.get("diagnostics", "") for i in errors)
    assert "Unknown" not in messages and "not been checked" not in messages, messages
    assert "DnacprDecision" in messages, messages

    if manifest_path.is_file():
        valid = [e for e in json.loads(manifest_path.read_text())["examples"] if e["valid"]]
        for example in valid:
            body = (manifest_path.parent / example["file"]).read_text()
            checked = http.post(
                f"{fhir_base_url}/{json.loads(body)['resourceType']}/$validate",
                params={"profile": example["profile"]},
                data=body.encode(),
            )
            assert error_issues(checked.json()) == [], (example["file"], error_issues(checked.json()))


def run_export(http: requests.Session, kick_off_url: str, timeout: float = 180.0) -> dict:
    """Bulk Data kick-off + polling; returns the completion manifest."""
    kick_off = http.get(kick_off_url, headers={"Prefer": "respond-async"})
    assert kick_off.status_code == 202, kick_off.text
    status_url = kick_off.headers["Content-Location"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(status_url)
        if status.status_code == 200:
            return status.json()
        assert status.status_code == 202, status.text
        time.sleep(1)
    pytest.fail(f"export not complete after {timeout}s: {status_url}")


def read_ndjson(http: requests.Session, manifest: dict, resource_type: str) -> list[dict]:
    lines: list[dict] = []
    for output in manifest["output"]:
        if output["type"] == resource_type:
            response = http.get(output["url"], headers={"Accept": "application/fhir+ndjson"})
            assert response.status_code == 200
            lines.extend(json.loads(line) for line in response.text.splitlines() if line.strip())
    return lines


def test_bulk_export_system_and_patient_level(http: requests.Session, fhir_base_url: str) -> None:
    patient_id, consent_id = new_id(), new_id()
    patient = {"resourceType": "Patient", "id": patient_id}
    assert http.put(f"{fhir_base_url}/Patient/{patient_id}", json=patient).status_code == 201
    decision = consent(consent_id, patient={"reference": f"Patient/{patient_id}"})
    assert http.put(f"{fhir_base_url}/Consent/{consent_id}", json=decision).status_code == 201

    system = run_export(
        http, f"{fhir_base_url}/$export?_type=Consent&_outputFormat=application/fhir%2Bndjson"
    )
    exported = read_ndjson(http, system, "Consent")
    assert consent_id in {r["id"] for r in exported}
    assert {r["resourceType"] for r in exported} == {"Consent"}

    patient_level = run_export(http, f"{fhir_base_url}/Patient/$export?_type=Patient,Consent")
    assert consent_id in {r["id"] for r in read_ndjson(http, patient_level, "Consent")}
    assert patient_id in {r["id"] for r in read_ndjson(http, patient_level, "Patient")}
