"""The written transaction Bundles against the real HAPI FHIR server: accepted as they are (PUT,
placeholder fullUrl), idempotent on re-send, stored unchanged, and read back as the same records."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import requests
from test_fhir_writers import other_patient_records

from fhir_dnacpr.fhir.build import build_resources
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.parse import index_resources, parse_records
from fhir_dnacpr.fhir.writers import open_writer
from fhir_dnacpr.model import CareRecord

pytestmark = pytest.mark.server

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
SERVER_META = {"versionId", "lastUpdated", "source"}


def comparable_meta(meta: dict) -> dict:
    """meta without what the server sets; profiles and tags are sets to a server (HAPI sorts them)."""
    out = {k: v for k, v in meta.items() if k not in SERVER_META}
    for key in ("profile", "tag"):
        if key in out:
            out[key] = sorted(out[key], key=orjson.dumps)
    return out


def without_last_updated(record: CareRecord) -> CareRecord:
    """The server sets meta.lastUpdated itself, so SourceRef.last_updated comes back as its time."""
    decision, plan = record.decision, record.plan
    if decision is not None:
        decision = replace(decision, source=replace(decision.source, last_updated=None))
    if plan is not None:
        plan = replace(plan, source=replace(plan.source, last_updated=None))
    return CareRecord(decision, plan)


def post(base: str, body: bytes) -> dict:
    response = requests.post(base, data=body, headers=FHIR_JSON, timeout=120)
    assert response.status_code == 200, response.text[:2000]
    return response.json()


def test_bundles_are_accepted_idempotent_and_read_back(fhir_base_url: str, tmp_path: Path) -> None:
    ids = IdFactory(os.urandom(16))  # fresh ids: nothing from earlier runs on the shared server
    records = other_patient_records(5)
    with open_writer("bundle", tmp_path, ids=ids, source_file="register.csv", source_sha256="cd" * 32,
                     run_time=datetime.now(UTC), chunk_size=30) as writer:  # fmt: skip
        for i, record in enumerate(records):
            assert writer.write(f"register.csv, line {i + 2}", build_resources(record, ids)) == []
    sent: dict[str, dict] = {}
    for path in sorted(tmp_path.glob("bundle-*.json")):
        body = path.read_bytes()
        first = post(fhir_base_url, body)
        assert {e["response"]["status"][:3] for e in first["entry"]} <= {"200", "201"}
        again = post(fhir_base_url, body)  # a re-run of the same export
        assert {e["response"]["status"][:3] for e in again["entry"]} == {"200"}
        for entry in orjson.loads(body)["entry"]:
            sent[entry["request"]["url"]] = entry["resource"]

    pulled: dict[str, dict] = {}
    try:
        for key, resource in sent.items():
            response = requests.get(f"{fhir_base_url}/{key}", headers=FHIR_JSON, timeout=60)
            assert response.status_code == 200, key
            stored = response.json()
            assert stored["meta"]["versionId"] == "1", key  # the identical re-send made no new version
            # Stored as sent: only the server's own meta elements differ.
            assert comparable_meta(stored["meta"]) == comparable_meta(resource["meta"]), key
            assert {k: v for k, v in stored.items() if k != "meta"} == {
                k: v for k, v in resource.items() if k != "meta"
            }, key
            pulled[key] = stored
        result = parse_records(index_resources(pulled.values()))
        assert result.issues == []
        assert all(r.decision.source.last_updated.tzinfo is not None for r in result.records)  # the server's
        remaining = [without_last_updated(r) for r in result.records]
        for record in records:
            remaining.remove(without_last_updated(record))
        assert remaining == []
    finally:
        deletes = [{"request": {"method": "DELETE", "url": key}} for key in sent]
        requests.post(
            fhir_base_url,
            data=orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": deletes}),
            headers=FHIR_JSON,
            timeout=120,
        )
