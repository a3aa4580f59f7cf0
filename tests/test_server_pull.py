"""Pull pieces on their own: query parameters, watermarks, export polling waits, reverse-map formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from fhir_dnacpr.server.bulk import BulkExporter, BulkResult
from fhir_dnacpr.server.client import FhirClient
from fhir_dnacpr.server.pull import NdjsonOutput, PullQuery, WatermarkStore, _local_refs
from fhir_dnacpr.server.search import server_time

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def test_patient_query_uses_a_chained_search_and_default_categories() -> None:
    query = PullQuery(patient="9990000018", status="active", since="2026-01-01T00:00:00Z")
    params = query.params("Consent", ["Consent:patient"])
    assert ("patient.identifier", f"{NHS}|9990000018") in params
    assert ("category", "http://terminology.hl7.org/CodeSystem/consentcategorycodes|dnr") in params
    assert ("status", "active") in params and ("_lastUpdated", "ge2026-01-01T00:00:00Z") in params
    assert ("_include", "Consent:patient") in params
    assert ("category", "http://snomed.info/sct|736366004") in query.params("CarePlan")
    assert ("identifier", f"{NHS}|9990000018") in query.params("Patient")
    assert not [p for p in PullQuery(category="any").params("Consent") if p[0] == "category"]


def test_state_keys_never_hold_the_nhs_number() -> None:
    key = PullQuery(patient="9990000018").state_key(lambda n: "hashed")
    assert "9990000018" not in key and "hashed" in key
    assert "9990000018" not in PullQuery(patient="9990000018").state_key()
    assert PullQuery(status="active").state_key() != PullQuery().state_key()


def test_watermarks_are_kept_per_server_and_query(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path / "state" / "w.json")
    assert store.get("http://a/fhir", "q") is None
    store.set("http://a/fhir/", "q", "2026-05-01T10:00:00.000Z")
    store.set("http://b/fhir", "q", "2026-04-01T10:00:00.000Z")
    assert store.get("http://a/fhir", "q") == "2026-05-01T10:00:00.000Z"
    assert store.get("http://b/fhir", "other") is None
    (tmp_path / "state" / "w.json").write_text("{broken")
    assert store.get("http://a/fhir", "q") is None, "a damaged state file means a full pull, not a crash"


def test_server_time_prefers_bundle_meta_then_date_header() -> None:
    response = requests.Response()
    response.headers["Date"] = "Wed, 06 May 2026 10:00:00 GMT"
    meta = server_time({"meta": {"lastUpdated": "2026-05-06T09:59:58.120+00:00"}}, response)
    assert meta is not None and meta.isoformat() == "2026-05-06T09:59:58.120000+00:00"
    date = server_time({}, response)
    assert date is not None and date.isoformat() == "2026-05-06T10:00:00+00:00"


def test_output_keeps_each_resource_once(tmp_path: Path) -> None:
    (tmp_path / "Old.ndjson").write_text("{}\n")
    out = NdjsonOutput(tmp_path)
    assert out.write({"resourceType": "Patient", "id": "a"})
    assert not out.write({"resourceType": "Patient", "id": "a", "gender": "male"})
    assert not out.write({"resourceType": "../x", "id": "a"}), "odd types never become file names"
    out.close()
    assert (tmp_path / "Patient.ndjson").read_text().count("\n") == 1
    assert not (tmp_path / "Old.ndjson").exists(), "no mix with an earlier pull"


def test_only_literal_references_are_followed() -> None:
    resource = {
        "a": {"reference": "Patient/1"},
        "b": {"reference": "http://server/fhir/Practitioner/2/_history/3"},
        "c": {"reference": "#contained"},
        "d": {"reference": "urn:uuid:1"},
        "e": {"reference": "Patient?identifier=x|y"},
    }
    assert _local_refs(resource) == {"Patient/1", "Practitioner/2"}


class StatusScript(BaseAdapter):
    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        super().__init__()
        self.answers = answers

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        status, headers, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = json.dumps(body).encode() if body is not None else b""
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass


def exporter(answers: list, slept: list[float], **kwargs: Any) -> BulkExporter:
    client = FhirClient("http://fhir.test/fhir", sleep=slept.append)
    client.session.mount("http://", StatusScript(answers))
    return BulkExporter(client, **kwargs)


def test_polling_honours_retry_after_within_the_cap_and_backs_off_without_it() -> None:
    slept: list[float] = []
    answers = [
        (202, {"Retry-After": "120", "X-Progress": "Build in progress"}, None),
        (202, {"Retry-After": "3"}, None),
        (202, {}, None),
        (202, {}, None),
        (200, {}, {"transactionTime": "2026-05-01T00:00:00Z", "output": []}),
    ]
    result = BulkResult("", {})
    manifest = exporter(answers, slept, max_wait=10, min_wait=1).wait("http://fhir.test/status", result)
    assert manifest is not None and manifest["output"] == []
    assert slept == [10, 3, 1, 2], "capped at 10 s; 3 s as asked; then 1, 2 s backoff"
    assert result.polls == 5 and result.progress == "Build in progress"


def test_a_vanished_job_is_reported_as_gone() -> None:
    assert exporter([(404, {}, None)], []).wait("http://fhir.test/status", BulkResult("", {})) is None


def test_reverse_output_follows_the_spec_format(repo_root: Path) -> None:
    from fhir_dnacpr.mapping import load_spec
    from fhir_dnacpr.server.reverse import output_name

    csv_spec = load_spec(repo_root / "examples" / "epaccs" / "mapping.yaml")
    ndjson_spec = load_spec(repo_root / "examples" / "acp-app" / "mapping.yaml")
    assert output_name(csv_spec, "csv") == "records.csv"
    assert output_name(ndjson_spec, "json") == "records.ndjson"
    with pytest.raises(ValueError):
        output_name(ndjson_spec, "csv")
    with pytest.raises(ValueError):
        output_name(csv_spec, "json")
