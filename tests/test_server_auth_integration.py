"""Auth end to end: our token endpoint issues short-lived tokens, the proxy in front of the real HAPI
server refuses requests without a valid one, and pushes still go through — refreshing before expiry,
and recovering once from a token revoked early."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from faultproxy import FaultProxy
from server_testdata import Synthetic
from token_server import TokenServer

from fhir_dnacpr.server import (
    AuthError,
    ClientSecretAuth,
    FhirClient,
    NhsSignedJwtAuth,
    Pusher,
    RetryPolicy,
    SmartBackendAuth,
    TokenBucket,
)

pytestmark = pytest.mark.server

FAST = RetryPolicy(total=4, backoff_base=0.05, backoff_max=0.5)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture()
def guarded(fhir_base_url: str) -> Iterator[tuple[FaultProxy, TokenServer]]:
    with TokenServer(token_lifetime=8) as tokens, FaultProxy(fhir_base_url) as proxy:
        proxy.require_token = tokens.is_valid
        yield proxy, tokens


def unauthorised(proxy: FaultProxy) -> int:
    return sum(1 for s in proxy.requests() if s.action == "unauthorised")


def test_without_a_token_the_guard_says_401(guarded) -> None:
    proxy, _ = guarded
    with FhirClient(proxy.base_url, retry=FAST) as client:
        assert client.request("GET", "metadata").status_code == 401


def test_smart_push_refreshes_tokens_before_they_expire(guarded, key, tmp_path: Path) -> None:
    proxy, tokens = guarded
    tokens.register_jwt_client("dnacpr-pusher", key.public_key(), algorithm="RS384", kid="k1")
    auth = SmartBackendAuth(tokens.url, "dnacpr-pusher", key, kid="k1", scope="system/Consent.cu")
    data = Synthetic(records=20)
    out = data.write_bundles(tmp_path / "convert", per_bundle=1)  # 20 bundles
    # 2 requests a second: the push (~10 s) outlives an 8-second token, refreshed 1.6 s before expiry
    with FhirClient(proxy.base_url, auth=auth, retry=FAST, rate=TokenBucket(2, burst=1)) as client:
        summary = Pusher(client, concurrency=2).push_directory(out)
    assert summary.complete and summary.failed == 0 and summary.created == 41
    assert tokens.issue_count >= 2, "a new token was fetched during the run"
    assert unauthorised(proxy) == 0, "no request ever went out with an expired token"
    assert summary.auth_refreshes == 0
    assert data.count(proxy.upstream_base) == 20


def test_a_revoked_token_is_replaced_once_and_the_push_goes_on(guarded, key, tmp_path: Path) -> None:
    proxy, tokens = guarded
    tokens.register_jwt_client("api-key-1", key.public_key(), algorithm="RS512", kid="nhs-1")
    auth = NhsSignedJwtAuth(tokens.url, "api-key-1", key, kid="nhs-1")
    first, second = Synthetic(records=3), Synthetic(records=3)
    with FhirClient(proxy.base_url, auth=auth, retry=FAST) as client:
        pusher = Pusher(client, concurrency=1)
        pusher.push_directory(first.write_bundles(tmp_path / "a", per_bundle=3))
        tokens.revoke_all()
        summary = pusher.push_directory(second.write_bundles(tmp_path / "b", per_bundle=3))
    assert summary.complete and summary.failed == 0
    assert summary.auth_refreshes == 1 and unauthorised(proxy) == 1
    assert second.count(proxy.upstream_base) == 3


def test_client_secret_push(guarded, tmp_path: Path) -> None:
    proxy, tokens = guarded
    tokens.register_secret_client("svc", "synthetic-secret")
    data = Synthetic(records=2)
    with FhirClient(
        proxy.base_url, auth=ClientSecretAuth(tokens.url, "svc", "synthetic-secret"), retry=FAST
    ) as client:
        summary = Pusher(client).push_directory(data.write_bundles(tmp_path / "c", per_bundle=2))
    assert summary.complete and summary.created == 5


def test_refused_credentials_stop_the_push_cleanly(guarded, key, tmp_path: Path) -> None:
    proxy, tokens = guarded
    tokens.register_jwt_client("app", key.public_key(), algorithm="RS384", kid="k1")
    wrong = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = Synthetic(records=2)
    with (
        FhirClient(
            proxy.base_url, auth=SmartBackendAuth(tokens.url, "app", wrong, kid="k1"), retry=FAST
        ) as client,
        pytest.raises(AuthError, match="400"),
    ):
        Pusher(client).push_directory(data.write_bundles(tmp_path / "d", per_bundle=2))
    assert not proxy.requests("POST"), "nothing was sent without credentials"
