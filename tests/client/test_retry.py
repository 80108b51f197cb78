"""Retry only what a second try can fix, with growing, jittered waits."""

from __future__ import annotations

import pytest

from mpuflask.client import RetryPolicy
from mpuflask.client.retry import is_retryable_status


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (412, False),
        (413, False),
        (200, False),
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=10.0)
    ceiling = [policy.delay(n, rand=lambda: 1.0) for n in range(1, 8)]
    assert ceiling == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_jitter_spreads_waits_below_the_bound() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    assert policy.delay(3, rand=lambda: 0.0) == 0.0
    assert policy.delay(3, rand=lambda: 0.25) == 1.0
    assert {round(policy.delay(3), 6) for _ in range(50)} != {4.0}


@pytest.mark.parametrize(("header", "wait"), [("3", 3.0), ("600", 20.0), (" 0 ", 0.0)])
def test_retry_after_is_honoured_up_to_the_cap(header: str, wait: float) -> None:
    assert RetryPolicy(max_delay=20.0).delay(1, header, rand=lambda: 1.0) == wait


def test_an_http_date_retry_after_falls_back_to_backoff() -> None:
    policy = RetryPolicy(base_delay=1.0)
    assert policy.delay(1, "Wed, 21 Oct 2026 07:28:00 GMT", rand=lambda: 1.0) == 1.0


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
