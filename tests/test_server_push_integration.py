"""Push against the real HAPI FHIR JPA server, directly and through the fault-injecting proxy.

What must hold: a push writes exactly the expected resources; re-running it makes no new versions;
one changed resource makes exactly one; dropped connections, 503/429 with Retry-After, a line cut
after the server committed, truncated and garbled answers all end with every resource there once;
an interrupted push resumes without re-sending acknowledged bundles; bad records are reported one by
one with their origin while the rest is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from faultproxy import FaultProxy
from server_testdata import Synthetic

from fhir_dnacpr.server.client import FhirClient
from fhir_dnacpr.server.push import REJECTS_FILE, SUMMARY_FILE, Pusher
from fhir_dnacpr.server.retry import RetryPolicy

pytestmark = pytest.mark.server

FAST_RETRY = RetryPolicy(total=6, backoff_base=0.05, backoff_max=0.5, retry_after_cap=2)


@pytest.fixture()
def proxy(fhir_base_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(fhir_base_url) as running:
        yield running


def push(base: str, directory: Path, **options) -> dict:
    mode = options.pop("mode", "transaction")
    concurrency = options.pop("concurrency", 2)
    retry = options.pop("retry", FAST_RETRY)
    with FhirClient(base, retry=retry, pool_size=concurrency) as client:
        pusher = Pusher(client, mode=mode, concurrency=concurrency)
        pusher.push_directory(directory, **options)
    return json.loads((directory / SUMMARY_FILE).read_text())


def rejects(directory: Path) -> list[dict]:
    path = directory / REJECTS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_push_writes_everything_once_and_a_rerun_changes_nothing(fhir_base_url: str, tmp_path: Path) -> None:
    data = Synthetic(records=30)
    out = data.write_bundles(tmp_path / "convert", per_bundle=7)
    first = push(fhir_base_url, out)
    assert first["complete"] and first["failed"] == 0
    assert first["created"] == len(data.all_refs()) and first["sent"] == 30 * 2 + 5  # org once per bundle
    assert first["unchanged"] == 4, "the shared Organization is a no-op in every bundle after the first"
    assert data.count(fhir_base_url) == 30

    resumed = push(fhir_base_url, out)
    assert resumed["bundles_skipped"] == 5 and resumed["sent"] == 0, "acknowledged bundles are not re-sent"

    again = push(fhir_base_url, out, resume=False)
    assert again["sent"] == first["sent"] and again["unchanged"] == again["sent"]
    assert again["created"] == again["updated"] == again["failed"] == 0
    for ref in data.all_refs():
        assert data.versions(fhir_base_url, ref) == 1, f"{ref} got a new version from an identical push"


def test_changing_one_resource_makes_exactly_one_new_version(fhir_base_url: str, tmp_path: Path) -> None:
    data = Synthetic(records=12)
    out = data.write_bundles(tmp_path / "v1", per_bundle=5)
    push(fhir_base_url, out)
    changed = data.consent(7, status="inactive")
    out2 = data.write_bundles(tmp_path / "v2", per_bundle=5, overrides={7: changed})
    summary = push(fhir_base_url, out2)
    assert summary["updated"] == 1 and summary["created"] == 0 and summary["failed"] == 0
    for ref in data.all_refs():
        expected = 2 if ref == f"Consent/con-{data.tag}-7" else 1
        assert data.versions(fhir_base_url, ref) == expected, ref


@pytest.mark.parametrize("mode", ["transaction", "batch"])
def test_faults_end_with_every_resource_there_exactly_once(
    proxy: FaultProxy, tmp_path: Path, mode: str
) -> None:
    data = Synthetic(records=40)
    out = data.write_bundles(tmp_path / "convert", per_bundle=4)  # 10 bundles
    post = lambda method, path: method == "POST"  # noqa: E731
    proxy.add("drop", match=post)  # connection closed before HAPI sees it
    proxy.add("status", status=503, retry_after="1", match=post)
    proxy.add("status", times=3, status=429, retry_after="0", match=post)  # a burst of 429s
    proxy.add("drop_after", times=2, match=post)  # HAPI commits, the answer never arrives
    proxy.add("truncate", match=post)  # half an answer
    proxy.add("html", status=200, match=post)  # a gateway's page where a Bundle should be
    proxy.add("html", status=502, match=post)
    # ten faults in a row may hit one request: the budget must cover them all
    retry = RetryPolicy(total=12, backoff_base=0.05, backoff_max=0.5, retry_after_cap=2)
    summary = push(proxy.base_url, out, mode=mode, bundle_size=10, retry=retry)
    assert proxy.pending_faults() == 0, "every fault was hit"
    assert summary["complete"] and summary["failed"] == 0 and not rejects(out)
    assert summary["retries"] >= 10
    upstream = proxy.upstream_base
    assert data.count(upstream) == 40, "none lost, none duplicated"
    for ref in data.all_refs():
        assert data.versions(upstream, ref) == 1, f"{ref}: a retried write made a new version"
    # every retry of a logical request carried that request's X-Request-ID; one correlation id per run
    posts = proxy.requests("POST")
    assert len({s.correlation_id for s in posts}) == 1
    dropped = [s for s in posts if s.action == "drop"]
    retried = [s for s in posts if s.request_id == dropped[0].request_id]
    assert len(retried) >= 2 and retried[-1].action == "pass"


def test_interrupted_push_resumes_without_resending_acknowledged_bundles(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    data = Synthetic(records=30)
    out = data.write_bundles(tmp_path / "convert", per_bundle=3)  # 10 bundles
    post = lambda method, path: method == "POST"  # noqa: E731
    proxy.add("pass", times=4, match=post)
    proxy.add("offline", match=post)  # the server goes away after four bundles
    first = push(proxy.base_url, out, concurrency=1, retry=RetryPolicy(total=2, backoff_base=0.01))
    assert not first["complete"] and "after 3 attempt" in first["stopped_because"]
    assert first["bundles"] == 4 and first["bundles_unacknowledged"] == 6
    assert first["not_sent"] == 6 * 7  # 3 records x 2 + the Organization, per bundle
    assert data.count(proxy.upstream_base) == 12

    proxy.clear()
    sent_before = len(proxy.requests("POST"))
    second = push(proxy.base_url, out, concurrency=2)
    assert second["complete"] and second["bundles_skipped"] == 4 and second["bundles"] == 6
    assert len(proxy.requests("POST")) - sent_before == 6, "only the unacknowledged bundles went out"
    assert second["previous_runs"]["created"] == first["created"]
    assert data.count(proxy.upstream_base) == 30
    for ref in data.all_refs():
        assert data.versions(proxy.upstream_base, ref) == 1


def test_bad_records_are_reported_one_by_one_and_the_rest_is_written(
    fhir_base_url: str, tmp_path: Path
) -> None:
    data = Synthetic(records=10)
    broken = {
        3: data.consent(3, status="not-a-status"),  # invalid code: HAPI refuses to parse the entry
        6: data.consent(6, patient={"reference": f"Patient/nobody-{data.tag}"}),  # dangling reference
    }
    out = data.write_bundles(tmp_path / "convert", per_bundle=5, overrides=broken)
    summary = push(fhir_base_url, out)
    assert summary["complete"]
    assert summary["bundles_fell_back_to_batch"] == 2, "each refused transaction was located by batch"
    assert summary["failed"] == 2
    found = {r["resource"]: r for r in rejects(out)}
    assert set(found) == {f"Consent/con-{data.tag}-3", f"Consent/con-{data.tag}-6"}
    bad_code = found[f"Consent/con-{data.tag}-3"]
    assert bad_code["status"] == 400 and bad_code["origin"] == "export.csv, line 5"
    assert bad_code["outcome"]["resourceType"] == "OperationOutcome"
    dangling = found[f"Consent/con-{data.tag}-6"]
    assert dangling["origin"] == "export.csv, line 8"
    assert "HAPI-1094" in json.dumps(dangling["outcome"])
    assert data.count(fhir_base_url) == 8, "the other eight decisions were written"


def test_garbled_server_answers_are_reported_per_record(proxy: FaultProxy, tmp_path: Path) -> None:
    data = Synthetic(records=4)
    out = data.write_bundles(tmp_path / "convert", per_bundle=4)
    post = lambda method, path: method == "POST"  # noqa: E731

    def drop_an_entry(bundle: dict) -> dict:
        bundle["entry"] = bundle["entry"][:-1]
        return bundle

    proxy.add("replace", times=500, transform=drop_an_entry, match=post)  # every answer, to the end
    summary = push(proxy.base_url, out, retry=RetryPolicy(total=1, backoff_base=0.01))
    assert summary["complete"] and summary["failed"] == summary["sent"] == 9
    assert {r["resource"] for r in rejects(out)} == set(data.all_refs())
    assert all("not a FHIR response" in json.dumps(r["outcome"]) for r in rejects(out))


def test_references_to_a_bundle_still_in_flight_are_retried_at_the_end(
    fhir_base_url: str, tmp_path: Path
) -> None:
    data = Synthetic(records=2)
    directory = tmp_path / "convert"
    directory.mkdir()
    # Patients and Consents in separate NDJSON files would be ordered; here one bundle holds a Consent
    # whose Patient only comes in a later bundle, as a careless producer might write them.
    late = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    for number, resources in enumerate([[data.organization(), data.consent(0)], [data.patient(0)]], start=1):
        late["entry"] = [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ]
        (directory / f"bundle-{number:05d}.json").write_bytes(orjson.dumps(late))
    summary = push(fhir_base_url, directory, concurrency=1)
    assert summary["complete"] and summary["failed"] == 0 and summary["created"] == 3


def test_conditional_writes_where_client_ids_are_refused(fhir_base_url: str, tmp_path: Path) -> None:
    """Forced conditional mode (as a server with updateCreate=false gets): matched by identifier."""
    data = Synthetic(records=6)
    out = data.write_bundles(tmp_path / "convert", per_bundle=3)
    for _ in range(2):
        with FhirClient(fhir_base_url, retry=FAST_RETRY) as client:
            pusher = Pusher(client, concurrency=1)
            pusher.check_server()
            for rtype in ("Patient", "Consent"):
                pusher.conditional.enable(rtype)
            pusher.push_directory(out, resume=False)
        summary = json.loads((out / SUMMARY_FILE).read_text())
        assert summary["complete"] and summary["failed"] == 0, rejects(out)
        assert summary["conditional_types"] == ["Consent", "Patient"]
    assert data.count(fhir_base_url) == 6, "the second run matched, it did not duplicate"
    bundle = FhirClient(fhir_base_url).get_json("Consent", params={"identifier": f"{data.system}|R00001"})
    consent = bundle["entry"][0]["resource"]
    assert consent["id"] != f"con-{data.tag}-1", "the server chose the id"
    patient_ref = consent["patient"]["reference"]
    assert not patient_ref.endswith(f"pat-{data.tag}-1"), "the reference follows the server's Patient id"


def test_concurrent_bundles_sharing_resources(fhir_base_url: str, tmp_path: Path) -> None:
    data = Synthetic(records=48)
    out = data.write_bundles(tmp_path / "convert", per_bundle=2)  # 24 bundles, each with the new shared org
    summary = push(fhir_base_url, out, concurrency=4)
    assert summary["complete"] and summary["failed"] == 0, rejects(out)
    assert summary["created"] == 97 and data.count(fhir_base_url) == 48
    assert data.versions(fhir_base_url, f"Organization/{data.org_id()}") == 1
