"""The token bucket: average rate, bursts, and thread safety, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from fhir_dnacpr.server.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_steady_rate_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(21):
        bucket.acquire()
    assert clock.now == pytest.approx(2.0)


def test_burst_is_free_then_rate_applies() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert bucket.acquire() == 0
    assert clock.now == 0
    bucket.acquire()
    assert clock.now == pytest.approx(0.2)


def test_idle_time_refills_only_up_to_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, burst=2, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.acquire()
    clock.now += 100
    waits = [bucket.acquire() for _ in range(3)]
    assert waits[:2] == [0, 0] and waits[2] == pytest.approx(0.5)


def test_threads_share_one_budget() -> None:
    clock = FakeClock()
    bucket = TokenBucket(50, burst=1, clock=clock, sleep=clock.sleep)
    threads = [threading.Thread(target=lambda: [bucket.acquire() for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 100 tokens at 50/s: at least 99 refills must have elapsed, whoever waited for them
    assert clock.now >= 99 / 50 - 1e-9


@pytest.mark.parametrize("rate", [0, -1])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate)
