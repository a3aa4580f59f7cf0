"""The retry policy: which failures are worth another try, and how long to wait before it.

A small immutable object (shaped like urllib3's ``Retry``) so it can be passed in, shared between
threads and tested on its own. It decides; the client (``client.py``) does the waiting and sending.

Retrying writes is safe here because every write this package sends is idempotent by construction:
PUT ``Type/id`` with a deterministic id, conditional update/create, or a bundle of those. A request
the server committed before the line dropped is simply applied again as a no-op.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_RETRY_STATUSES = frozenset({429, 502, 503, 504})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if unusable.

    A date in the past means "now" (0 s); negative or garbled values are ignored rather than trusted.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry, on what, and how long to back off.

    ``total`` counts retries (not attempts): ``total=5`` allows six attempts. Backoff is exponential
    with *full jitter* (a uniform draw in ``[0, min(backoff_max, backoff_base * 2**n)]``), which
    spreads out clients that failed together instead of making them retry in lockstep. A server's
    ``Retry-After`` (seconds or HTTP-date) wins over the backoff when ``respect_retry_after`` is set,
    but is capped at ``retry_after_cap`` so a hostile or broken header cannot stall a run for hours.
    """

    total: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_cap: float = 120.0
    statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    retry_connection_errors: bool = True
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.total < 0:
            raise ValueError("total must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_cap < 0:
            raise ValueError("backoff_base, backoff_max and retry_after_cap must be >= 0")

    @classmethod
    def never(cls) -> RetryPolicy:
        """No retries at all (for probes where a quick verdict beats persistence)."""
        return cls(total=0)

    def can_retry(self, retries_done: int) -> bool:
        return retries_done < self.total

    def is_retryable_status(self, status: int) -> bool:
        return status in self.statuses

    def backoff(self, retries_done: int) -> float:
        """Full-jitter exponential backoff before retry number ``retries_done + 1``."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**retries_done))
        return ceiling * self.rng()

    def delay(self, retries_done: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before the next retry, honouring ``Retry-After`` when the server sent one."""
        if self.respect_retry_after and headers is not None:
            after = parse_retry_after(_header(headers, "Retry-After"))
            if after is not None:
                return min(after, self.retry_after_cap)
        return self.backoff(retries_done)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
