"""The client's request loop on its own: retries, Retry-After, request ids, 401 refresh, origins.

A scripted transport adapter stands in for the network here (these are unit tests of the loop);
the same behaviour against the real HAPI server, through the fault proxy, is in
``test_server_push_integration.py``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import requests
from requests.adapters import BaseAdapter

from fhir_dnacpr.server.auth import Auth
from fhir_dnacpr.server.client import FhirClient, json_body
from fhir_dnacpr.server.errors import FhirResponseError, UnreachableError
from fhir_dnacpr.server.retry import RetryPolicy

Step = int | tuple[int, dict[str, str]] | type[Exception] | Exception


class ScriptedAdapter(BaseAdapter):
    """Answers each request with the next scripted status (or raises the scripted error)."""

    def __init__(self, script: list[Step], body: bytes = b'{"resourceType":"Bundle"}') -> None:
        super().__init__()
        self.script = list(script)
        self.body = body
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        step = self.script.pop(0)
        if isinstance(step, type) and issubclass(step, Exception):
            raise step("scripted")
        if isinstance(step, Exception):
            raise step
        status, headers = step if isinstance(step, tuple) else (step, {})
        response = requests.Response()
        response.status_code = status
        response.headers.update({"Content-Type": "application/fhir+json", **headers})
        response._content = self.body
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def make_client(script: list[Step], **kwargs: Any) -> tuple[FhirClient, ScriptedAdapter, list[float]]:
    slept: list[float] = []
    kwargs.setdefault("retry", RetryPolicy(total=3, rng=lambda: 0.5))
    client = FhirClient("http://fhir.test/fhir", sleep=slept.append, **kwargs)
    adapter = ScriptedAdapter(script)
    client.session.mount("http://", adapter)
    return client, adapter, slept


def test_transient_statuses_are_retried_with_one_request_id() -> None:
    client, adapter, slept = make_client([503, 502, 200])
    response = client.request("GET", "Patient/1")
    assert response.status_code == 200
    ids = {r.headers["X-Request-ID"] for r in adapter.sent}
    assert len(adapter.sent) == 3 and len(ids) == 1, "one logical request keeps its id on retries"
    assert slept == [0.25, 0.5]  # full jitter at rng=0.5: 0.5*0.5, 0.5*1.0
    assert client.stats.retries == 2


def test_retry_after_is_honoured_and_capped() -> None:
    client, _, slept = make_client(
        [(429, {"Retry-After": "2"}), (503, {"Retry-After": "100000"}), 200],
        retry=RetryPolicy(total=3, retry_after_cap=30, rng=lambda: 0.5),
    )
    client.request("GET", "metadata")
    assert slept == [2.0, 30.0]


def test_the_last_answer_is_returned_when_retries_run_out() -> None:
    client, adapter, _ = make_client([503, 503, 503, 503])
    assert client.request("GET", "metadata").status_code == 503
    assert len(adapter.sent) == 4  # 1 + total=3 retries


def test_client_errors_are_not_retried() -> None:
    client, adapter, _ = make_client([400, 200])
    assert client.request("GET", "x").status_code == 400
    assert len(adapter.sent) == 1


def test_connection_errors_are_retried_then_raise() -> None:
    client, adapter, _ = make_client(
        [requests.ConnectionError, requests.exceptions.ChunkedEncodingError, 200]
    )
    assert client.request("POST", "", json={}).status_code == 200
    assert len(adapter.sent) == 3
    client, _, _ = make_client([requests.ConnectionError] * 4)
    with pytest.raises(UnreachableError) as caught:
        client.request("GET", "metadata")
    assert caught.value.attempts == 4


def test_tls_failures_are_not_retried() -> None:
    client, adapter, _ = make_client([requests.exceptions.SSLError, 200])
    with pytest.raises(UnreachableError, match="TLS"):
        client.request("GET", "metadata")
    assert len(adapter.sent) == 1


def test_request_ids_differ_between_requests_correlation_id_does_not() -> None:
    client, adapter, _ = make_client([200, 200])
    client.request("GET", "a")
    client.request("GET", "b")
    first, second = adapter.sent
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert first.headers["X-Correlation-ID"] == second.headers["X-Correlation-ID"] == client.correlation_id


class CountingAuth(Auth):
    def __init__(self, refreshable: bool = True) -> None:
        self.generation = 0
        self.refreshable = refreshable

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer token-{self.generation}"
        return request

    def invalidate(self) -> bool:
        self.generation += 1
        return self.refreshable


def test_a_401_refreshes_credentials_once() -> None:
    auth = CountingAuth()
    client, adapter, _ = make_client([401, 200], auth=auth)
    assert client.request("GET", "Patient").status_code == 200
    assert [r.headers["Authorization"] for r in adapter.sent] == ["Bearer token-0", "Bearer token-1"]
    client, adapter, _ = make_client([401, 401, 200], auth=CountingAuth())
    assert client.request("GET", "Patient").status_code == 401, "only one refresh per request"
    client, adapter, _ = make_client([401, 200], auth=CountingAuth(refreshable=False))
    assert client.request("GET", "Patient").status_code == 401


def test_credentials_never_go_to_another_origin() -> None:
    client, adapter, _ = make_client([200, 200], auth=CountingAuth())
    client.request("GET", "http://fhir.test/fhir/Patient")
    client.request("GET", "http://files.elsewhere.test/export/1.ndjson")
    assert "Authorization" in adapter.sent[0].headers
    assert "Authorization" not in adapter.sent[1].headers


def test_rate_limit_applies_to_every_attempt() -> None:
    calls: list[int] = []

    class Limiter:
        def acquire(self) -> float:
            calls.append(1)
            return 0.0

    client, _, _ = make_client([503, 200])
    client.limiter = Limiter()  # type: ignore[assignment]
    client.request("GET", "metadata")
    assert len(calls) == 2


def test_get_json_raises_with_the_outcome() -> None:
    client, adapter, _ = make_client([404])
    adapter.body = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}'
    with pytest.raises(FhirResponseError) as caught:
        client.get_json("Patient/x")
    assert caught.value.status == 404 and caught.value.outcome["issue"][0]["code"] == "not-found"
    client, adapter, _ = make_client([200])
    adapter.body = b"<html>gateway</html>"
    with pytest.raises(FhirResponseError, match="non-JSON"):
        client.get_json("metadata")


def test_urls_resolve_against_the_base() -> None:
    client = FhirClient("http://fhir.test/fhir/")
    assert client.url("Patient/1") == "http://fhir.test/fhir/Patient/1"
    assert client.url("/metadata") == "http://fhir.test/fhir/metadata"
    assert client.url("https://other/x") == "https://other/x"


def test_pool_is_sized_to_the_concurrency() -> None:
    client = FhirClient("http://fhir.test/fhir", pool_size=8)
    adapter = client.session.get_adapter("http://fhir.test/")
    assert adapter._pool_maxsize == 8  # type: ignore[attr-defined]


def test_json_bodies_are_sent_as_utf8_fhir_json() -> None:
    client, adapter, _ = make_client([200])
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"name": "Zoë"}}]}
    client.request("POST", "", json=bundle)
    sent = adapter.sent[0]
    assert sent.headers["Content-Type"] == "application/fhir+json"
    assert isinstance(sent.body, bytes)
    assert "Zoë".encode() in sent.body
    assert orjson.loads(sent.body) == bundle


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"resourceType":"Bundle","entry":[]}', {"resourceType": "Bundle", "entry": []}),
        (b'\xef\xbb\xbf{"resourceType":"Bundle"}', {"resourceType": "Bundle"}),
        ('{"family":"Brontë"}'.encode(), {"family": "Brontë"}),
        (b"", None),
        (b"<html><body>Bad gateway</body></html>", None),
        (b'{"resourceType":"Bundle","entry":[{"respo', None),
        ('{"family":"Brontë"}'.encode("latin-1"), None),
    ],
    ids=["json", "bom", "utf8", "empty", "html", "truncated", "not-utf8"],
)
def test_json_body_reads_fhir_json_and_nothing_else(body: bytes, expected: Any) -> None:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    assert json_body(response) == expected
