"""An OAuth2 token endpoint for tests: http.server on 127.0.0.1 in a thread.

It does what a real authorisation server does with our requests, strictly: verifies a
``private_key_jwt`` client assertion's signature with the registered public key (algorithm and
``kid`` must match), checks iss = sub = client id, aud = this endpoint's URL, a fresh ``jti``, and
exp no more than 5 minutes ahead; or checks a client secret sent by HTTP Basic or in the form. It
issues short-lived random tokens and can tell a resource server (the fault proxy) whether a token is
valid, so tests see expiry, refresh and revocation for real.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class _Client:
    client_id: str
    public_key: Any = None
    algorithm: str | None = None
    kid: str | None = None
    secret: str | None = None


@dataclass
class TokenServer:
    """Start with ``with TokenServer() as ts:``; ``ts.url`` is the token endpoint."""

    token_lifetime: float = 60.0
    expires_in_as_string: bool = False  # NHS England sends "599"
    clients: dict[str, _Client] = field(default_factory=dict)
    issued: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch seconds)
    refusals: list[str] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified claims + header
    _jtis: set[str] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    issue_count: int = 0
    _server: ThreadingHTTPServer | None = None

    # --- registration ----------------------------------------------------------------------------

    def register_jwt_client(self, client_id: str, public_key: Any, *, algorithm: str, kid: str) -> None:
        self.clients[client_id] = _Client(client_id, public_key=public_key, algorithm=algorithm, kid=kid)

    def register_secret_client(self, client_id: str, secret: str) -> None:
        self.clients[client_id] = _Client(client_id, secret=secret)

    # --- resource-server side ----------------------------------------------------------------------

    def is_valid(self, token: str | None) -> bool:
        with self._lock:
            expiry = self.issued.get(token or "")
        return expiry is not None and time.time() < expiry

    def revoke_all(self) -> None:
        with self._lock:
            self.issued.clear()

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def __enter__(self) -> TokenServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = owner._token_request(self.path, form, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the token endpoint ------------------------------------------------------------------------

    def _refuse(
        self, reason: str, status: int = 400, error: str = "invalid_client"
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.refusals.append(reason)
        return status, {"error": error, "error_description": reason}

    def _token_request(
        self, path: str, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        if path != "/token":
            return 404, {"error": "not_found"}
        if form.get("grant_type") != "client_credentials":
            return self._refuse("grant_type must be client_credentials", error="unsupported_grant_type")
        if "client_assertion" in form:
            outcome = self._check_assertion(form)
        else:
            outcome = self._check_secret(form, authorization)
        if isinstance(outcome, tuple):
            return outcome
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.issued[token] = time.time() + self.token_lifetime
            self.issue_count += 1
        expires: Any = int(self.token_lifetime)
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": str(expires) if self.expires_in_as_string else expires,
        }
        if form.get("scope"):
            body["scope"] = form["scope"]
        return 200, body

    def _check_secret(
        self, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any]] | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        client = self.clients.get(client_id or "")
        if client is None or client.secret is None or not secrets.compare_digest(client.secret, secret or ""):
            return self._refuse("unknown client or wrong secret", status=401)
        return None

    def _check_assertion(self, form: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        if form.get("client_assertion_type") != JWT_BEARER:
            return self._refuse("client_assertion_type must be jwt-bearer")
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            return self._refuse(f"unreadable assertion: {exc}")
        client = self.clients.get(str(unverified.get("iss")))
        if client is None or client.public_key is None:
            return self._refuse("unknown client")
        if header.get("alg") != client.algorithm:
            return self._refuse(f"alg {header.get('alg')} is not the registered {client.algorithm}")
        if header.get("kid") != client.kid:
            return self._refuse("kid does not match the registered key")
        try:
            claims = jwt.decode(
                assertion,
                client.public_key,
                algorithms=[client.algorithm],
                audience=self.url,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return self._refuse(f"assertion rejected: {type(exc).__name__}: {exc}")
        if claims["iss"] != client.client_id or claims["sub"] != client.client_id:
            return self._refuse("iss and sub must both be the client id")
        if claims["exp"] - time.time() > 300 + 5:
            return self._refuse("exp is more than 5 minutes ahead")
        with self._lock:
            if claims["jti"] in self._jtis:
                return self._refuse("jti replayed")
            self._jtis.add(claims["jti"])
            self.assertions.append({"header": header, "claims": claims, "scope": form.get("scope")})
        return None
