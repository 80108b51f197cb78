"""When to try a request again, and how long to wait first.

Retry only what a second try can fix: a dropped connection, a timeout, 408,
429 and 5xx. Any other 4xx is the server's final word (the seed script
retried 400s; a bad request stays bad). Waits grow exponentially with "full
jitter" (a random wait up to the exponential bound), so many parts failing at
once do not all come back at the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

RETRYABLE_STATUSES = frozenset({408, 429})


def is_retryable_status(status: int) -> bool:
    """True for 408, 429 and every 5xx."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a request is sent at most, and the wait between tries.

    ``attempts`` counts the first try. The wait before try ``n + 1`` is a
    random value in ``[0, min(max_delay, base_delay * 2**n)]``; a server's
    ``Retry-After`` (seconds) is honoured up to ``max_delay``.
    """

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(
        self,
        failed_attempts: int,
        retry_after: str | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after ``failed_attempts`` failures (1 = the first)."""
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self.max_delay)
        bound = min(self.max_delay, self.base_delay * 2.0 ** (failed_attempts - 1))
        return bound * rand()
