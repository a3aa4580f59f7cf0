"""A thread-safe token bucket: at most ``rate`` requests a second on average, bursts up to ``burst``.

Shared by every worker thread of a client so ``--rate`` limits the whole run, retries included.
Clock and sleep are injectable so the behaviour can be tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_EPSILON = 1e-9


class TokenBucket:
    """Blocks ``acquire()`` until a token is free; tokens refill continuously at ``rate`` per second."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1.0, rate))
        if self.capacity < 1:
            raise ValueError("burst must be >= 1")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self) -> float:
        """Take a token if one is free and return 0; else return the seconds until one will be."""
        with self._lock:
            self._refill()
            if self._tokens >= 1 - _EPSILON:  # float refills land a hair short of 1
                self._tokens = max(0.0, self._tokens - 1)
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self) -> float:
        """Wait for a token; returns the total seconds waited."""
        waited = 0.0
        while True:
            wait = self.try_acquire()
            if wait == 0:
                return waited
            self._sleep(wait)
            waited += wait
