"""The retry policy on its own: Retry-After parsing, full-jitter backoff, caps, what is retryable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.server.retry import DEFAULT_RETRY_STATUSES, RetryPolicy, parse_retry_after


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("1.5") == 1.5


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(header, now=now) == 0.0


@pytest.mark.parametrize("garbage", [None, "", "soon", "-3", "Tue, 99 Foo 2026"])
def test_unusable_retry_after_is_ignored(garbage: str | None) -> None:
    assert parse_retry_after(garbage) is None


def test_retry_after_wins_over_backoff_but_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap=120.0, rng=lambda: 0.5)
    assert policy.delay(0, {"Retry-After": "3"}) == 3.0
    assert policy.delay(0, {"retry-after": "3"}) == 3.0  # header names are case-insensitive
    assert policy.delay(0, {"Retry-After": "86400"}) == 120.0
    assert policy.delay(2, {}) == pytest.approx(0.5 * 0.5 * 4)


def test_retry_after_can_be_ignored() -> None:
    policy = RetryPolicy(respect_retry_after=False, rng=lambda: 1.0, backoff_base=1.0)
    assert policy.delay(0, {"Retry-After": "60"}) == 1.0


@given(st.integers(min_value=0, max_value=40), st.floats(min_value=0, max_value=1))
def test_full_jitter_stays_within_the_exponential_ceiling(retries: int, draw: float) -> None:
    policy = RetryPolicy(backoff_base=0.25, backoff_max=10.0, rng=lambda: draw)
    ceiling = min(10.0, 0.25 * 2**retries)
    assert 0.0 <= policy.backoff(retries) <= ceiling
    assert policy.backoff(retries) == pytest.approx(ceiling * draw)


def test_jitter_spreads_clients_out() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=60.0)
    delays = {round(policy.backoff(5), 6) for _ in range(50)}
    assert len(delays) > 40


def test_retry_budget_counts_retries_not_attempts() -> None:
    policy = RetryPolicy(total=2)
    assert [policy.can_retry(n) for n in range(4)] == [True, True, False, False]
    assert not RetryPolicy.never().can_retry(0)


def test_only_transient_statuses_are_retried_by_default() -> None:
    policy = RetryPolicy()
    assert {429, 502, 503, 504} == DEFAULT_RETRY_STATUSES
    assert all(policy.is_retryable_status(s) for s in (429, 502, 503, 504))
    assert not any(policy.is_retryable_status(s) for s in (200, 400, 401, 404, 409, 412, 422, 500))


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(total=-1)
    with pytest.raises(ValueError):
        RetryPolicy(backoff_base=-0.1)
