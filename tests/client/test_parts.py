"""Part planning follows R2's rules before the first byte is sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpuflask.client import ClientError
from mpuflask.client import choose_part_size
from mpuflask.rules import GIB
from mpuflask.rules import MIB


@pytest.mark.parametrize(
    ("size", "part_size", "count"),
    [
        (0, 5 * MIB, 0),
        (1, 5 * MIB, 1),
        (5 * MIB, 5 * MIB, 1),
        (5 * MIB + 1, 5 * MIB, 2),
        (1 * GIB, 5 * MIB, 205),
        (50_000 * MIB, 5 * MIB, 10_000),
        (50_000 * MIB + 1, 6 * MIB, 8334),
    ],
)
def test_default_part_size(size: int, part_size: int, count: int) -> None:
    plan = choose_part_size(size)
    assert (plan.part_size, plan.count) == (part_size, count)


@given(st.integers(0, 10_000 * 5 * GIB), st.integers(1, 64 * MIB))
def test_default_plan_keeps_every_rule(size: int, min_part_size: int) -> None:
    plan = choose_part_size(size, min_part_size=min_part_size)
    assert plan.count <= 10_000
    assert plan.part_size >= min_part_size
    spans = [plan.span(n) for n in plan.numbers()]
    assert sum(length for _, length in spans) == size
    assert all(length == plan.part_size for _, length in spans[:-1])
    assert all(
        offset == (n - 1) * plan.part_size for n, (offset, _) in enumerate(spans, 1)
    )


@pytest.mark.parametrize(
    ("size", "part_size", "message"),
    [
        (10 * MIB, 4 * MIB, "part size 4194304 is under the minimum of 5242880 bytes"),
        (
            100 * GIB,
            5 * MIB,
            "into 20480 parts; at most 10000 are allowed: use at least 10737419 bytes",
        ),
        (
            10 * GIB,
            6 * GIB,
            "part size 6442450944 is over the maximum of 5368709120 bytes",
        ),
        (10, 0, "the part size must be positive"),
    ],
)
def test_given_part_size_breaking_a_rule_is_refused(
    size: int, part_size: int, message: str
) -> None:
    with pytest.raises(ClientError, match=message):
        choose_part_size(size, part_size)


def test_a_small_part_size_is_fine_for_a_single_part() -> None:
    plan = choose_part_size(100, 1000)
    assert (plan.count, plan.span(1)) == (1, (0, 100))


def test_a_file_too_big_for_any_part_size() -> None:
    with pytest.raises(ClientError, match="needs parts over"):
        choose_part_size(10_000 * 5 * GIB + 1)
