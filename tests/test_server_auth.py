"""Auth policies against a real (in-test) token endpoint that verifies signatures and claims."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from token_server import TokenServer

from fhir_dnacpr.server.auth import (
    BearerToken,
    ClientSecretAuth,
    NhsSignedJwtAuth,
    NoAuth,
    SmartBackendAuth,
    load_private_key,
)
from fhir_dnacpr.server.errors import AuthError


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture()
def token_server() -> Iterator[TokenServer]:
    with TokenServer(token_lifetime=60) as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _prepared() -> requests.PreparedRequest:
    return requests.Request("GET", "http://fhir.example/Patient").prepare()


def test_smart_backend_rs384_assertion_is_accepted(token_server: TokenServer, rsa_key) -> None:
    token_server.register_jwt_client("dnacpr-app", rsa_key.public_key(), algorithm="RS384", kid="key-1")
    auth = SmartBackendAuth(
        token_server.url, "dnacpr-app", rsa_key, kid="key-1", jku="https://keys.example/jwks.json"
    )
    request = auth(_prepared())
    token = request.headers["Authorization"].removeprefix("Bearer ")
    assert token_server.is_valid(token)
    (seen,) = token_server.assertions
    assert seen["header"] == {
        "alg": "RS384",
        "kid": "key-1",
        "typ": "JWT",
        "jku": "https://keys.example/jwks.json",
    }
    claims = seen["claims"]
    assert claims["iss"] == claims["sub"] == "dnacpr-app"
    assert claims["aud"] == token_server.url
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert seen["scope"] == "system/*.*"


def test_smart_backend_es384(token_server: TokenServer, ec_key) -> None:
    token_server.register_jwt_client("ec-app", ec_key.public_key(), algorithm="ES384", kid="ec-1")
    auth = SmartBackendAuth(
        token_server.url, "ec-app", ec_key, kid="ec-1", algorithm="ES384", scope="system/Consent.rs"
    )
    assert token_server.is_valid(auth.access_token())
    assert token_server.assertions[0]["scope"] == "system/Consent.rs"


def test_nhs_signed_jwt_rs512_with_string_expires_in(rsa_key) -> None:
    with TokenServer(token_lifetime=599, expires_in_as_string=True) as server:
        server.register_jwt_client("api-key-123", rsa_key.public_key(), algorithm="RS512", kid="nhs-key-1")
        auth = NhsSignedJwtAuth(server.url, "api-key-123", rsa_key, kid="nhs-key-1")
        assert server.is_valid(auth.access_token())
        (seen,) = server.assertions
        assert seen["header"]["alg"] == "RS512" and seen["header"]["kid"] == "nhs-key-1"
        assert seen["claims"]["iss"] == seen["claims"]["sub"] == "api-key-123"
        assert seen["scope"] is None  # NHS England's signed-JWT flow sends no scope


def test_each_assertion_has_a_fresh_jti(token_server: TokenServer, rsa_key) -> None:
    token_server.register_jwt_client("app", rsa_key.public_key(), algorithm="RS384", kid="k")
    auth = SmartBackendAuth(token_server.url, "app", rsa_key, kid="k")
    auth.access_token()
    auth.invalidate()
    auth.access_token()
    jtis = {a["claims"]["jti"] for a in token_server.assertions}
    assert len(jtis) == 2 and not token_server.refusals


def test_token_is_cached_and_refreshed_before_it_expires(token_server: TokenServer, rsa_key) -> None:
    token_server.register_jwt_client("app", rsa_key.public_key(), algorithm="RS384", kid="k")
    clock = Clock()
    auth = SmartBackendAuth(token_server.url, "app", rsa_key, kid="k", refresh_margin=10, clock=clock)
    first = auth.access_token()
    clock.now += 40
    assert auth.access_token() == first  # cached while far from expiry
    assert token_server.issue_count == 1
    clock.now += 11  # 51 s into a 60 s token: inside the 10 s margin
    second = auth.access_token()
    assert second != first
    assert token_server.is_valid(first), "the old token was still valid: refreshed *before* expiry"
    assert token_server.issue_count == 2


def test_short_lived_tokens_refresh_with_a_proportional_margin(rsa_key) -> None:
    with TokenServer(token_lifetime=5) as server:
        server.register_jwt_client("app", rsa_key.public_key(), algorithm="RS384", kid="k")
        clock = Clock()
        auth = SmartBackendAuth(server.url, "app", rsa_key, kid="k", refresh_margin=30, clock=clock)
        first = auth.access_token()
        clock.now += 3.9  # margin shrinks to a fifth of 5 s = 1 s; refresh due at 4 s
        assert auth.access_token() == first
        clock.now += 0.2
        assert auth.access_token() != first


def test_wrong_key_is_refused_by_the_endpoint(token_server: TokenServer, rsa_key) -> None:
    token_server.register_jwt_client("app", rsa_key.public_key(), algorithm="RS384", kid="k")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth = SmartBackendAuth(token_server.url, "app", other, kid="k")
    with pytest.raises(AuthError) as caught:
        auth.access_token()
    assert caught.value.status == 400
    assert "InvalidSignatureError" in token_server.refusals[0]


def test_wrong_kid_is_refused(token_server: TokenServer, rsa_key) -> None:
    token_server.register_jwt_client("app", rsa_key.public_key(), algorithm="RS384", kid="k")
    with pytest.raises(AuthError):
        SmartBackendAuth(token_server.url, "app", rsa_key, kid="other").access_token()


def test_client_secret_basic_and_in_body(token_server: TokenServer) -> None:
    token_server.register_secret_client("svc", "s3cret")
    assert token_server.is_valid(ClientSecretAuth(token_server.url, "svc", "s3cret").access_token())
    body = ClientSecretAuth(token_server.url, "svc", "s3cret", secret_in_body=True)
    assert token_server.is_valid(body.access_token())
    with pytest.raises(AuthError) as caught:
        ClientSecretAuth(token_server.url, "svc", "guess-xyz").access_token()
    assert caught.value.status == 401
    assert "s3cret" not in repr(body) and "guess-xyz" not in str(caught.value)


def test_unreachable_token_endpoint_is_an_auth_error() -> None:
    auth = ClientSecretAuth("http://127.0.0.1:9/token", "svc", "x")
    with pytest.raises(AuthError, match="unreachable"):
        auth.access_token()


def test_key_and_algorithm_must_match(rsa_key, ec_key) -> None:
    with pytest.raises(AuthError, match="P-384"):
        SmartBackendAuth("http://t/token", "app", rsa_key, kid="k", algorithm="ES384")
    with pytest.raises(AuthError, match="RSA"):
        SmartBackendAuth("http://t/token", "app", ec_key, kid="k", algorithm="RS384")
    with pytest.raises(AuthError, match="signs with"):
        SmartBackendAuth("http://t/token", "app", rsa_key, kid="k", algorithm="HS256")
    with pytest.raises(AuthError, match="RS512 needs an RSA"):
        NhsSignedJwtAuth("http://t/token", "key", ec_key, kid="k")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(AuthError, match="2048"):
        NhsSignedJwtAuth("http://t/token", "key", small, kid="k")


def test_assertion_lifetime_is_capped_at_five_minutes(rsa_key) -> None:
    with pytest.raises(AuthError, match="lifetime"):
        SmartBackendAuth("http://t/token", "app", rsa_key, kid="k", assertion_lifetime=301)
    auth = SmartBackendAuth("http://t/token", "app", rsa_key, kid="k", assertion_lifetime=300)
    claims = jwt.decode(
        auth.client_assertion(), rsa_key.public_key(), algorithms=["RS384"], audience="http://t/token"
    )
    assert claims["exp"] - claims["iat"] == 300


def test_pem_keys_load_from_file_and_env_passphrase(tmp_path: Path, rsa_key, monkeypatch) -> None:
    monkeypatch.setenv("KEY_PASS", "pass-phrase")
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass-phrase"),
    )
    (tmp_path / "key.pem").write_bytes(pem)
    loaded = load_private_key(tmp_path / "key.pem", password_env="KEY_PASS")
    assert loaded.private_numbers() == rsa_key.private_numbers()
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(AuthError, match="not a usable"):
        load_private_key(tmp_path / "bad.pem")


def test_bearer_token_from_env_and_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FHIR_TOKEN", "abc")
    assert BearerToken.from_env("FHIR_TOKEN")(_prepared()).headers["Authorization"] == "Bearer abc"
    monkeypatch.delenv("FHIR_TOKEN")
    with pytest.raises(AuthError, match="FHIR_TOKEN"):
        BearerToken.from_env("FHIR_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    auth = BearerToken.from_file(token_file)
    assert auth(_prepared()).headers["Authorization"] == "Bearer first"
    assert auth.invalidate() is False  # unchanged file: another try would not help
    token_file.write_text("second")
    assert auth.invalidate() is True
    assert auth(_prepared()).headers["Authorization"] == "Bearer second"
    assert "first" not in repr(auth) and "second" not in repr(auth)


def test_no_auth_adds_nothing() -> None:
    assert "Authorization" not in NoAuth()(_prepared()).headers
    assert NoAuth().invalidate() is False
