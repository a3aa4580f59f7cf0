"""The FHIR REST client: one pooled ``requests.Session`` plus the policies that make calls robust.

``FhirClient`` owns the connection pool (sized to the concurrency, so worker threads reuse warm
connections instead of opening one per request), and for every logical request it:

- waits for the rate limiter (``TokenBucket``), retries included;
- sends ``X-Request-ID`` (new uuid4 per logical request, the same on each of its retries, so the
  server's logs tie the attempts together) and ``X-Correlation-ID`` (one per run);
- adds credentials from the auth policy, only for URLs on the server's own origin;
- retries connection errors and the policy's statuses (429, 502, 503, 504) with full-jitter backoff
  or the server's ``Retry-After``; after a 401 it asks the auth policy for fresh credentials once.

It returns the final ``requests.Response`` whatever its status: deciding what a 4xx means is the
caller's job (the pusher turns it into per-record rejects). Only "could not get any answer" raises.
Logs carry method, resource path (no query string: it may hold an NHS number), status and request id.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from fhir_dnacpr import __version__
from fhir_dnacpr.server.auth import Auth, NoAuth
from fhir_dnacpr.server.capabilities import Capabilities
from fhir_dnacpr.server.errors import FhirResponseError, UnreachableError
from fhir_dnacpr.server.ratelimit import TokenBucket
from fhir_dnacpr.server.retry import RetryPolicy

log = logging.getLogger("fhir_dnacpr.server")

FHIR_JSON = "application/fhir+json"
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass
class ClientStats:
    """Counters a run summary needs; updated from many threads."""

    requests: int = 0
    retries: int = 0
    auth_refreshes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, status: int | None = None, *, retry: bool = False, refresh: bool = False) -> None:
        with self._lock:
            self.requests += 1
            if status is not None:
                self.statuses[status] += 1
            if retry:
                self.retries += 1
            if refresh:
                self.auth_refreshes += 1


class FhirClient:
    """A FHIR server at ``base_url`` with auth, retries, rate limit and timeouts.

    ``timeout`` is ``(connect, read)`` seconds; ``verify`` is True (system CAs), a CA-bundle path, or
    False (tests only). ``rate`` limits requests per second across all threads.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | tuple[float, float] = (10.0, 120.0),
        rate: float | TokenBucket | None = None,
        pool_size: int = 4,
        verify: bool | str = True,
        correlation_id: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self.auth = auth or NoAuth()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.limiter = rate if isinstance(rate, TokenBucket) or rate is None else TokenBucket(rate)
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self.stats = ClientStats()
        self.sleep = sleep
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = verify
        self.session.headers["User-Agent"] = f"fhir-dnacpr/{__version__}"
        self.auth.bind(self.session, timeout)
        self._capabilities: Capabilities | None = None

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def url(self, path_or_url: str) -> str:
        """Absolute URL for a path relative to the base (``Patient/1``, ``metadata``) or a full URL."""
        if urlsplit(path_or_url).scheme:
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url.lstrip("/"))

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        accept: str = FHIR_JSON,
        stream: bool = False,
        retry: RetryPolicy | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> requests.Response:
        """Send one logical request (with its retries) and return the server's final answer."""
        policy = retry or self.retry
        url = self.url(path_or_url)
        same_origin = _origin(url) == self._origin
        request_headers = {
            "Accept": accept,
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": self.correlation_id,
        }
        if json is not None:
            # orjson, not requests' stdlib encoder: a 500-entry bundle encodes ~10x faster, and the
            # encoding runs on the cores the server under test (or the rest of the pipeline) needs.
            data = orjson.dumps(json)
        if data is not None:
            request_headers["Content-Type"] = FHIR_JSON
        if headers:
            request_headers.update(headers)
        retries = 0
        refreshed = False
        while True:
            if self.limiter is not None:
                self.limiter.acquire()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=request_headers,
                    auth=self.auth if same_origin else None,
                    timeout=timeout or self.timeout,
                    stream=stream,
                    allow_redirects=method in ("GET", "HEAD"),
                )
            except requests.exceptions.SSLError as exc:
                # A certificate problem does not heal by retrying; say so at once.
                raise UnreachableError(
                    f"TLS verification failed for {_loggable(url)} (see --ca-bundle)", attempts=retries + 1
                ) from exc
            except TRANSPORT_ERRORS as exc:
                can_retry = policy.retry_connection_errors and policy.can_retry(retries)
                self.stats.record(retry=can_retry)
                log.debug(
                    "%s %s: %s (request %s)",
                    method,
                    _loggable(url),
                    type(exc).__name__,
                    request_headers["X-Request-ID"],
                )
                if not can_retry:
                    raise UnreachableError(
                        f"{method} {_loggable(url)}: {type(exc).__name__} after {retries + 1} attempt(s)",
                        attempts=retries + 1,
                    ) from exc
                self.sleep(policy.backoff(retries))
                retries += 1
                continue
            status = response.status_code
            if status == 401 and same_origin and not refreshed and self.auth.invalidate():
                self.stats.record(status, refresh=True)
                refreshed = True
                response.close()
                continue
            if policy.is_retryable_status(status) and policy.can_retry(retries):
                self.stats.record(status, retry=True)
                delay = policy.delay(retries, response.headers)
                log.debug(
                    "%s %s -> %s, retry in %.2fs (request %s)",
                    method,
                    _loggable(url),
                    status,
                    delay,
                    request_headers["X-Request-ID"],
                )
                response.close()
                self.sleep(delay)
                retries += 1
                continue
            self.stats.record(status)
            log.debug(
                "%s %s -> %s (request %s)", method, _loggable(url), status, request_headers["X-Request-ID"]
            )
            return response

    def get_json(self, path_or_url: str, **kwargs: Any) -> dict[str, Any]:
        """GET a FHIR resource; anything but a 2xx JSON object raises ``FhirResponseError``."""
        response = self.request("GET", path_or_url, **kwargs)
        return expect_json(response)

    def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """The server's CapabilityStatement (``GET /metadata``), fetched once per client."""
        if self._capabilities is None or refresh:
            self._capabilities = Capabilities.from_json(self.get_json("metadata"))
        return self._capabilities


def expect_json(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or ``FhirResponseError`` carrying status and OperationOutcome."""
    body = json_body(response)
    if not 200 <= response.status_code < 300:
        outcome = body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None
        raise FhirResponseError(
            f"server answered {response.status_code} for {_loggable(response.url)}",
            status=response.status_code,
            outcome=outcome,
        )
    if not isinstance(body, dict):
        raise FhirResponseError(
            f"server answered {response.status_code} with a non-JSON body for {_loggable(response.url)}",
            status=response.status_code,
        )
    return body


def json_body(response: requests.Response) -> Any:
    """Parsed JSON body, or None for an empty, HTML, truncated or non-UTF-8 body.

    FHIR JSON is UTF-8 (a leading byte-order mark is tolerated); orjson parses the raw bytes without
    requests' decode-then-parse detour, which matters for transaction responses of hundreds of entries.
    """
    content = response.content
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _loggable(url: str | None) -> str:
    """The URL path only: query strings can carry identifiers (``patient.identifier=…|NHS no``)."""
    if not url:
        return "?"
    return urlsplit(url).path or "/"
