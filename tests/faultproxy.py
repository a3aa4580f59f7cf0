"""A fault-injecting HTTP proxy for tests: sits on 127.0.0.1 in front of the real HAPI server.

Requests pass through to HAPI unchanged unless a fault is queued for them. Faults:

- ``drop``        close the connection without forwarding (the server never sees the request);
- ``drop_after``  forward, let HAPI commit, then close without answering — the line cut mid-push;
- ``truncate``    forward, then send the headers and half the body before closing;
- ``status``      answer a status (503 with Retry-After, 429 …) without forwarding;
- ``html``        answer 200/502 with an HTML page, as a misconfigured gateway would;
- ``replace``     forward, then replace the JSON body by a function of it (bad server answers);
- ``pass``        forward untouched (queue some to let the first requests through);
- ``offline``     drop this request and switch the proxy offline: every later request is dropped
                  until ``clear()`` — the server "goes away" mid-run.

Absolute URLs in responses (``next`` links, Bulk Data status URLs) are rewritten to point at the
proxy so paging and polling go through it too. With ``require_token`` set, the proxy plays an
OAuth2 resource server: requests whose bearer token the check refuses get 401.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


@dataclass
class Fault:
    kind: str
    status: int = 503
    retry_after: str | None = None
    match: Callable[[str, str], bool] | None = None  # (method, path) -> applies?
    transform: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str
    request_id: str | None
    correlation_id: str | None
    authorization: str | None
    action: str
    status: int | None


class FaultProxy:
    def __init__(self, upstream_base: str) -> None:
        parts = urlsplit(upstream_base.rstrip("/"))
        self.upstream_base = upstream_base.rstrip("/")
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.prefix = parts.path
        self.require_token: Callable[[str | None], bool] | None = None
        self.offline = False
        self.seen: list[Seen] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- control ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def add(self, kind: str, times: int = 1, **options: Any) -> None:
        """Queue ``times`` faults of one kind; each hits the next request it matches."""
        with self._lock:
            self._faults.extend(Fault(kind, **options) for _ in range(times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.offline = False

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def requests(self, method: str | None = None, path_contains: str = "") -> list[Seen]:
        with self._lock:
            return [
                s for s in self.seen if (method is None or s.method == method) and path_contains in s.path
            ]

    def __enter__(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the proxy --------------------------------------------------------------------------------

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.match is None or fault.match(method, path):
                    return self._faults.pop(i)
        return None

    def _note(self, handler: BaseHTTPRequestHandler, action: str, status: int | None) -> None:
        with self._lock:
            self.seen.append(
                Seen(
                    handler.command,
                    handler.path,
                    handler.headers.get("X-Request-ID"),
                    handler.headers.get("X-Correlation-ID"),
                    handler.headers.get("Authorization"),
                    action,
                    status,
                )
            )

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if self.offline:
            self._note(h, "offline", None)
            h.close_connection = True
            return
        if self.require_token is not None:
            auth = h.headers.get("Authorization") or ""
            token = auth[7:] if auth.startswith("Bearer ") else None
            if not self.require_token(token):
                self._note(h, "unauthorised", 401)
                self._send(
                    h, 401, {"Content-Type": "application/fhir+json"}, _outcome("invalid or expired token")
                )
                return
        fault = self._next_fault(h.command, h.path)
        if fault is not None and fault.kind == "offline":
            self.offline = True
            self._note(h, "offline", None)
            h.close_connection = True
            return
        if fault is not None and fault.kind == "drop":
            self._note(h, "drop", None)
            h.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            headers = {"Content-Type": "application/fhir+json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            self._note(h, f"status {fault.status}", fault.status)
            self._send(h, fault.status, headers, _outcome(f"injected {fault.status}"))
            return
        if fault is not None and fault.kind == "html":
            self._note(h, "html", fault.status)
            page = b"<html><body><h1>Gateway says hello</h1></body></html>"
            self._send(h, fault.status, {"Content-Type": "text/html"}, page)
            return
        status, headers, payload = self._forward(h, body)
        if fault is not None and fault.kind == "drop_after":
            self._note(h, "drop_after", status)
            h.close_connection = True
            return
        if fault is not None and fault.kind == "truncate":
            self._note(h, "truncate", status)
            h.send_response(status)
            for name, value in headers:
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload[: len(payload) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        if fault is not None and fault.kind == "replace" and fault.transform is not None:
            payload = json.dumps(fault.transform(json.loads(payload))).encode()
            self._note(h, "replace", status)
        else:
            self._note(h, "pass", status)
        self._send(h, status, dict(headers), payload)

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=300)
        try:
            headers = {
                k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"
            }
            headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            headers.pop("Accept-Encoding", None)  # plain bodies, so links can be rewritten
            headers.pop("accept-encoding", None)
            if body:
                headers["Content-Length"] = str(len(body))
            connection.request(h.command, h.path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        finally:
            connection.close()
        upstream, mine = self.upstream_base.encode(), self.base_url.encode()
        payload = payload.replace(upstream, mine)
        out_headers = [(k, v.replace(self.upstream_base, self.base_url)) for k, v in out_headers]
        return response.status, out_headers, payload

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(payload)


def _outcome(message: str) -> bytes:
    return json.dumps(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "transient", "diagnostics": message}],
        }
    ).encode()
