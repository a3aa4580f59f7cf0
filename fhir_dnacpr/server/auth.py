"""Auth policies: objects that put credentials on a request, passed to the client like requests' ``auth``.

Each is a ``requests.auth.AuthBase`` so it also works with a plain ``requests`` call. Token-based
policies cache the access token and fetch a new one shortly before it expires (``refresh_margin``);
the client calls ``invalidate()`` once after a 401 so a token revoked early is replaced too.

- ``NoAuth`` — nothing.
- ``BearerToken`` — a static token from an environment variable or a file (never a command-line
  argument, which would leak into shell history and ``ps``); a file is re-read after a 401 so a
  rotating sidecar can refresh it.
- ``ClientSecretAuth`` — OAuth2 client credentials with a client secret.
- ``SmartBackendAuth`` — SMART Backend Services: ``private_key_jwt`` (RS384 or ES384, ``kid``,
  optional ``jku``), claims iss = sub = client id, aud = token URL, jti, exp ≤ 5 minutes.
- ``NhsSignedJwtAuth`` — NHS England signed-JWT client credentials: RS512, iss = sub = API key,
  aud = token URL, ``kid`` header.

Secrets and tokens never appear in ``repr`` or in error messages.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_dnacpr.server.errors import AuthError

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300  # seconds: SMART Backend Services and NHS England both cap exp at 5 minutes
DEFAULT_TOKEN_LIFETIME = 300  # assumed when a token response carries no expires_in


class Auth(requests.auth.AuthBase):
    """Base policy: adds nothing. Subclasses override ``__call__`` and, if they can, ``invalidate``."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request

    def bind(self, session: requests.Session, timeout: float | tuple[float, float] | None = None) -> None:
        """Give the policy the client's session (TLS settings, pool) for its own token requests."""

    def invalidate(self) -> bool:
        """Forget cached credentials after a 401; True when trying again could succeed."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoAuth(Auth):
    """No credentials (a local test server, or auth done by a network layer)."""


class BearerToken(Auth):
    """A static bearer token, read from an environment variable or a file."""

    def __init__(self, token: str, *, source_file: Path | None = None) -> None:
        token = token.strip()
        if not token:
            raise AuthError("the bearer token is empty")
        self._token = token
        self._file = source_file
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, variable: str) -> BearerToken:
        value = os.environ.get(variable)
        if not value:
            raise AuthError(f"environment variable {variable} is not set or empty")
        return cls(value)

    @classmethod
    def from_file(cls, path: str | Path) -> BearerToken:
        path = Path(path)
        try:
            return cls(path.read_text(encoding="utf-8"), source_file=path)
        except OSError as exc:
            raise AuthError(f"cannot read token file {path}: {exc.strerror}") from exc

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def invalidate(self) -> bool:
        if self._file is None:
            return False
        try:
            fresh = self._file.read_text(encoding="utf-8").strip()
        except OSError:
            return False
        with self._lock:
            changed = bool(fresh) and fresh != self._token
            if changed:
                self._token = fresh
        return changed


class TokenEndpointAuth(Auth):
    """Shared machinery for OAuth2 token endpoints: cache, refresh before expiry, thread safety.

    ``refresh_margin`` seconds before ``expires_in`` runs out the token is replaced, so a request is
    never sent with a token about to die in flight; for very short-lived tokens the margin shrinks
    to a fifth of the lifetime.
    """

    def __init__(
        self,
        token_url: str,
        *,
        scope: str | None = None,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self.scope = scope
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._session: requests.Session | None = None
        self._timeout: float | tuple[float, float] | None = (10.0, 30.0)
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def bind(self, session: requests.Session, timeout: float | tuple[float, float] | None = None) -> None:
        self._session = session
        if timeout is not None:
            self._timeout = timeout

    def token_form(self) -> dict[str, str]:
        """The form fields to post to the token endpoint (subclasses add their credentials)."""
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        return form

    def token_request_auth(self) -> tuple[str, str] | None:
        """HTTP Basic credentials for the token request, if the method uses them."""
        return None

    def access_token(self) -> str:
        """A valid access token, fetched or refreshed when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        session = self._session or requests.Session()
        try:
            response = session.post(
                self.token_url,
                data=self.token_form(),
                auth=self.token_request_auth(),
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise AuthError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        body = _json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            reason = ""
            if isinstance(body, dict) and body.get("error"):
                reason = f": {body.get('error')}"
                if body.get("error_description"):
                    reason += f" ({body['error_description']})"
            raise AuthError(
                f"token endpoint answered {response.status_code}{reason}", status=response.status_code
            )
        lifetime = _as_seconds(body.get("expires_in"), DEFAULT_TOKEN_LIFETIME)
        margin = min(self.refresh_margin, lifetime / 5)
        self._token = str(body["access_token"])
        self._refresh_at = self._clock() + lifetime - margin
        self.tokens_fetched += 1

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def invalidate(self) -> bool:
        with self._lock:
            self._token = None
            self._refresh_at = 0.0
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token_url={self.token_url!r})"


class ClientSecretAuth(TokenEndpointAuth):
    """OAuth2 client credentials with a shared secret (HTTP Basic by default, or in the form body)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        secret_in_body: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(token_url, scope=scope, **kwargs)
        if not client_secret:
            raise AuthError("the client secret is empty")
        self.client_id = client_id
        self._secret = client_secret
        self._secret_in_body = secret_in_body

    def token_form(self) -> dict[str, str]:
        form = super().token_form()
        if self._secret_in_body:
            form["client_id"] = self.client_id
            form["client_secret"] = self._secret
        return form

    def token_request_auth(self) -> tuple[str, str] | None:
        return None if self._secret_in_body else (self.client_id, self._secret)


class SignedJwtAuth(TokenEndpointAuth):
    """Client credentials proven by a JWT signed with our private key (``private_key_jwt``)."""

    algorithms: frozenset[str] = frozenset()

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key: Any,
        *,
        kid: str,
        algorithm: str,
        jku: str | None = None,
        assertion_lifetime: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(token_url, **kwargs)
        if algorithm not in self.algorithms:
            raise AuthError(f"{type(self).__name__} signs with {sorted(self.algorithms)}, not {algorithm}")
        if not 0 < assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise AuthError(f"assertion lifetime must be 1..{MAX_ASSERTION_LIFETIME} seconds")
        if not kid:
            raise AuthError("a key id (kid) is required")
        self.client_id = client_id
        self.kid = kid
        self.algorithm = algorithm
        self.jku = jku
        self.assertion_lifetime = assertion_lifetime
        self._key = _load_key(private_key)
        _check_key_matches(self._key, algorithm)

    def client_assertion(self) -> str:
        """A fresh signed assertion: new jti each time, exp within the 5-minute ceiling.

        Claims use the wall clock, whatever clock drives the token cache.
        """
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.assertion_lifetime,
        }
        headers: dict[str, str] = {"kid": self.kid, "typ": "JWT"}
        if self.jku:
            headers["jku"] = self.jku
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def token_form(self) -> dict[str, str]:
        form = super().token_form()
        form["client_assertion_type"] = JWT_BEARER_ASSERTION
        form["client_assertion"] = self.client_assertion()
        return form


class SmartBackendAuth(SignedJwtAuth):
    """SMART Backend Services (``private_key_jwt``) with RS384 or ES384."""

    algorithms = frozenset({"RS384", "ES384"})

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key: Any,
        *,
        kid: str,
        algorithm: str = "RS384",
        scope: str = "system/*.*",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            token_url, client_id, private_key, kid=kid, algorithm=algorithm, scope=scope, **kwargs
        )


class NhsSignedJwtAuth(SignedJwtAuth):
    """NHS England "signed JWT" application-restricted auth: RS512, iss = sub = the API key."""

    algorithms = frozenset({"RS512"})

    def __init__(self, token_url: str, api_key: str, private_key: Any, *, kid: str, **kwargs: Any) -> None:
        kwargs.pop("algorithm", None)
        super().__init__(token_url, api_key, private_key, kid=kid, algorithm="RS512", **kwargs)


def load_private_key(path: str | Path, password_env: str | None = None) -> Any:
    """Read a PEM private key (optionally encrypted, passphrase from an environment variable)."""
    password = os.environ.get(password_env, "").encode() if password_env else None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AuthError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        return serialization.load_pem_private_key(data, password=password or None)
    except (ValueError, TypeError) as exc:
        raise AuthError(f"{path} is not a usable PEM private key") from exc


def _load_key(key: Any) -> Any:
    if isinstance(key, bytes | str):
        data = key.encode() if isinstance(key, str) else key
        try:
            return serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise AuthError("the private key is not a usable unencrypted PEM key") from exc
    return key


def _check_key_matches(key: Any, algorithm: str) -> None:
    if algorithm.startswith("RS"):
        if not isinstance(key, rsa.RSAPrivateKey):
            raise AuthError(f"{algorithm} needs an RSA private key")
        if key.key_size < 2048:
            raise AuthError("RSA keys must be at least 2048 bits")
    elif algorithm == "ES384" and not (
        isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1)
    ):
        raise AuthError("ES384 needs an EC private key on curve P-384")


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _as_seconds(value: Any, default: int) -> float:
    """``expires_in`` as seconds; NHS England sends it as a string ("599")."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return float(default)
    return seconds if seconds > 0 else float(default)
