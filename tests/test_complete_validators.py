"""Completion validators see exactly what is published, and cannot be raced.

Issue: validators ran outside the lock that publishes and matched parts by
number, so a part overwritten while the complete ran slipped past a size rule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from mpuflask.errors import ApiError
from mpuflask.hooks import CompleteInfo

from .conftest import MIN_PART
from .conftest import Flow
from .oracle import md5

LIMIT = 10_000
SMALL = b"s" * MIN_PART
BIG = b"B" * (2 * LIMIT)


def _limit(done: CompleteInfo) -> None:
    if done.size > LIMIT:
        raise ApiError(f"too big: {done.size}", 413)


def test_validator_sees_the_listed_etags_not_the_part_numbers(
    make_app: Callable[..., Flask],
) -> None:
    """A part overwritten between the validator's look and the publish.

    The racer runs inside the first validator, so it overwrites part 1 with
    20,000 bytes at the worst moment; the client lists those big bytes' etag.
    Either the complete is refused or what it publishes passed the limit.
    """
    app = make_app()
    flow = Flow(app.test_client())
    raced: list[int] = []

    def racer(done: CompleteInfo) -> None:
        if raced:
            return
        outcome: list[Any] = []
        thread = threading.Thread(
            target=lambda: outcome.append(
                Flow(app.test_client()).put_part(upload_id, 1, BIG).status_code
            )
        )
        thread.start()
        thread.join(60)  # bounded: blocks only if the store holds a lock
        raced.append(outcome[0] if outcome else 0)

    mpu = app.extensions["mpuflask"]
    mpu.validate_complete(racer)
    mpu.validate_complete(_limit)
    upload_id = flow.create()
    flow.part(upload_id, 1, SMALL)
    response = flow.complete_raw(upload_id, [{"partNumber": 1, "etag": md5(BIG)}])
    assert response.status_code in (400, 413), response.text
    got = flow.get()
    assert got.status_code == 404, "nothing may be published"


def test_validator_gets_the_parts_matched_by_number_and_etag(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    seen: list[tuple[tuple[int, str, int], ...]] = []
    app.extensions["mpuflask"].validate_complete(
        lambda done: seen.append(
            tuple((p.part_number, p.etag, p.size) for p in done.parts)
        )
    )
    flow = Flow(app.test_client())
    upload_id = flow.create()
    first = flow.part(upload_id, 1, SMALL)
    last = flow.part(upload_id, 2, b"tail")
    flow.complete(upload_id, [first, last])
    assert seen == [((1, md5(SMALL), MIN_PART), (2, md5(b"tail"), 4))]


def test_size_limit_refuses_an_overwritten_big_part(
    make_app: Callable[..., Flask], stored_state: Callable[[], dict[str, bytes]]
) -> None:
    """The configured object-size rule, with part 1 replaced by a big one."""
    app = make_app(MPUFLASK_MAX_OBJECT_SIZE=LIMIT)
    flow = Flow(app.test_client())
    upload_id = flow.create()
    flow.part(upload_id, 1, SMALL)
    big = flow.part(upload_id, 1, BIG)
    before = stored_state()
    response = flow.complete_raw(upload_id, [big])
    assert response.status_code == 413, response.text
    assert response.text == (
        "completeMultipartUpload: The object would be 20000 bytes; "
        "the limit is 10000. (max_object_size)"
    )
    assert flow.get().status_code == 404
    assert stored_state() == before


# -- the built-in limits ----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "status", "text"),
    [
        (
            {"MPUFLASK_MAX_PARTS": 1},
            400,
            "completeMultipartUpload: The object would have 2 parts; the limit is 1. (max_parts)",
        ),
        (
            {"MPUFLASK_MAX_OBJECT_SIZE": MIN_PART},
            413,
            f"completeMultipartUpload: The object would be {MIN_PART + 1} bytes; the limit is {MIN_PART}. (max_object_size)",
        ),
    ],
)
def test_completion_validators(
    make_app: Any, stored_state, settings, status, text
) -> None:
    flow = Flow(make_app(**settings).test_client())
    upload_id = flow.create()
    listed = [flow.part(upload_id, 1, b"a" * MIN_PART), flow.part(upload_id, 2, b"b")]
    before = stored_state()
    response = flow.complete_raw(upload_id, listed)
    assert (response.status_code, response.text) == (status, text)
    assert stored_state() == before
    assert flow.get().status_code == 404
    flow.complete(upload_id, listed[:1])
