"""Failures and crashes at every engine request: nothing acknowledged is lost.

Each test runs one operation through a gateway whose engine client fails or
dies at request N (:mod:`.faults`), for every N the operation makes and every
way of failing, then lets the client retry through a healthy gateway. That
gateway's clock runs a lease ahead: the dead gateway's claim on the upload
has run out, as it would have for a client retrying later.

What must hold for every crash point:

* complete: the object ends up published with exactly the listed parts, and an
  answer 10024 (first try or retry) only ever comes once it is;
* a part answered 200 before the failure is still there, and the upload
  completes with it;
* abort, create: a retry (or sweep) leaves nothing behind;
* after a sweep, the bucket holds the published objects and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from werkzeug.test import TestResponse

from ..conftest import MIN_PART
from ..conftest import Flow
from ..oracle import multipart_etag
from .conftest import Gateway
from .conftest import s3_bucket_of
from .faults import MODES
from .faults import Crash
from .faults import Plan
from .faults import install

LEASE = 30
NO_SUCH_UPLOAD = (
    "completeMultipartUpload: The specified multipart upload does not exist. (10024)"
)

#: (staged, the parts uploaded, the indexes of those listed at complete)
LAYOUTS: dict[str, tuple[bool, list[bytes], list[int]]] = {
    # every part listed: complete the staging upload, copy it to the key
    "whole": (True, [b"a" * MIN_PART, b"b" * MIN_PART, b"tail"], [0, 1, 2]),
    # parts left out, a small one in the middle: filler, ranges copied
    "ranges": (True, [b"1" * MIN_PART, b"2" * MIN_PART, b"3" * 7, b"4" * 5], [0, 2]),
    # the engine's complete publishes (R2, AWS, MinIO)
    "inplace": (False, [b"a" * MIN_PART, b"tail"], [0, 1]),
    # no part listed: an empty object
    "empty": (True, [b"a" * MIN_PART], []),
}


class Gateways:
    """A healthy gateway (a lease ahead) and one whose engine client fails."""

    def __init__(self, gateway: Gateway, staged: bool) -> None:
        settings = {
            "MPUFLASK_S3_STAGE_UPLOADS": staged,
            "MPUFLASK_S3_COMPLETE_LEASE": LEASE,
            "MPUFLASK_S3_ORPHAN_GRACE": 0,
        }
        self.healthy = gateway(**settings)
        self.faulty = gateway(MPUFLASK_SWEEP_ON_START=False, **settings)
        s3_bucket_of(self.healthy).clock = _later
        self.flow = Flow(self.healthy.test_client())
        self.faulty_flow = Flow(self.faulty.test_client())

    def fail(self, at: int | None, mode: str = "fail") -> Plan:
        return install(s3_bucket_of(self.faulty), Plan(at, mode))

    def attempt(self, request: Callable[[Flow], TestResponse]) -> TestResponse | None:
        """The request through the faulty gateway; None if it died."""
        try:
            return request(self.faulty_flow)
        except Crash:
            return None


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=LEASE + 1)


def _retry(request: Callable[[], TestResponse]) -> TestResponse:
    """What a client does: retry while told to (503), a few times."""
    for _ in range(3):
        response = request()
        if response.status_code != 503:
            return response
    return response


def _steps(gateways: Gateways, run: Callable[[Plan], Any]) -> int:
    """How many engine requests a clean run of the operation makes (the
    second run: the first may write what is written once per bucket)."""
    run(gateways.fail(None))
    plan = gateways.fail(None)
    run(plan)
    assert plan.calls, "the operation made no engine request"
    return len(plan.calls)


def _published(flow: Flow, key: str, parts: list[bytes]) -> bool:
    got = flow.get(key)
    return got.status_code == 200 and (got.data, got.headers["etag"]) == (
        b"".join(parts),
        f'"{multipart_etag(parts)}"',
    )


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_complete_survives_a_failure_at_every_step(
    gateway: Gateway, s3_engine: Any, s3_bucket: str, layout: str
) -> None:
    staged, data, listed_indexes = LAYOUTS[layout]
    gateways = Gateways(gateway, staged)
    flow = gateways.flow
    expected = [data[i] for i in listed_indexes]
    published: list[str] = []

    def prepare(key: str) -> tuple[str, list[dict[str, Any]]]:
        upload_id = flow.create(key)
        parts = [flow.part(upload_id, n, d, key) for n, d in enumerate(data, 1)]
        return upload_id, [parts[i] for i in listed_indexes]

    def clean(plan: Plan) -> None:
        upload_id, listed = prepare("clean")
        plan.calls.clear()
        done = gateways.faulty_flow.complete_raw(upload_id, listed, key="clean")
        assert done.status_code == 200, done.text
        if "clean" not in published:
            published.append("clean")

    def case(at: int, mode: str) -> None:
        key = f"{layout}-{at}-{mode}"
        upload_id, listed = prepare(key)
        plan = gateways.fail(at, mode)
        first = gateways.attempt(lambda f: f.complete_raw(upload_id, listed, key))
        where = f"{mode} at request {at} ({plan.calls[at : at + 1]})"
        if first is not None and first.status_code != 503:
            # An answer that is not "try again" is final: it must be true.
            if first.status_code != 200:
                assert first.text == NO_SUCH_UPLOAD, (where, first.text)
            assert _published(flow, key, expected), where
        retry = _retry(lambda: flow.complete_raw(upload_id, listed, key))
        assert retry.status_code != 503, (where, retry.text)
        if retry.status_code != 200:
            assert retry.text == NO_SUCH_UPLOAD, (where, retry.text)
        assert _published(flow, key, expected), where
        published.append(key)
        s3_bucket_of(gateways.healthy).sweep()
        assert s3_engine.leftovers(s3_bucket) == sorted(published), where

    for at in range(_steps(gateways, clean)):
        for mode in MODES:
            case(at, mode)


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "inplace"])
@pytest.mark.parametrize("size", [MIN_PART, 9], ids=["full", "small"])
def test_a_failed_part_loses_no_acknowledged_part(
    gateway: Gateway, s3_engine: Any, s3_bucket: str, staged: bool, size: int
) -> None:
    gateways = Gateways(gateway, staged)
    flow = gateways.flow
    first, second = b"f" * MIN_PART, b"s" * size
    published: list[str] = []

    def prepare(key: str) -> tuple[str, dict[str, Any]]:
        upload_id = flow.create(key)
        return upload_id, flow.part(upload_id, 1, first, key)

    def clean(plan: Plan) -> None:
        upload_id, _ = prepare("clean")
        plan.calls.clear()
        assert (
            gateways.faulty_flow.put_part(upload_id, 2, second, "clean").status_code
            == 200
        )
        flow.abort(upload_id, "clean")

    def part_case(at: int, mode: str) -> None:
        key = f"part-{at}-{mode}"
        upload_id, acknowledged = prepare(key)
        gateways.fail(at, mode)
        gateways.attempt(lambda f: f.put_part(upload_id, 2, second, key))
        listed = flow.client.get(f"/{key}?action=mpu-listparts&uploadId={upload_id}")
        assert listed.json["parts"][0] == {**acknowledged, "size": MIN_PART}
        retried = _retry(lambda: flow.put_part(upload_id, 2, second, key))
        assert retried.status_code == 200, retried.text
        flow.complete(upload_id, [acknowledged, retried.json], key)
        assert _published(flow, key, [first, second])
        published.append(key)
        s3_bucket_of(gateways.healthy).sweep()
        assert s3_engine.leftovers(s3_bucket) == sorted(published), (at, mode)

    for at in range(_steps(gateways, clean)):
        for mode in MODES:
            part_case(at, mode)


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "inplace"])
def test_a_failed_abort_or_create_leaves_nothing_behind(
    gateway: Gateway, s3_engine: Any, s3_bucket: str, staged: bool
) -> None:
    gateways = Gateways(gateway, staged)
    flow = gateways.flow

    def prepare(key: str) -> str:
        upload_id = flow.create(key)
        flow.part(upload_id, 1, b"a" * MIN_PART, key)
        flow.part(upload_id, 2, b"small", key)
        return upload_id

    def clean_abort(plan: Plan) -> None:
        upload_id = prepare("clean")
        plan.calls.clear()
        assert gateways.faulty_flow.abort(upload_id, "clean").status_code == 204

    def abort_case(at: int, mode: str) -> None:
        key = f"abort-{at}-{mode}"
        upload_id = prepare(key)
        gateways.fail(at, mode)
        gateways.attempt(lambda f: f.abort(upload_id, key))
        assert _retry(lambda: flow.abort(upload_id, key)).status_code == 204
        assert flow.put_part(upload_id, 3, b"late", key).text == (
            "uploadPart: The specified multipart upload does not exist. (10024)"
        )
        s3_bucket_of(gateways.healthy).sweep()
        assert s3_engine.leftovers(s3_bucket) == [], (at, mode)

    for at in range(_steps(gateways, clean_abort)):
        for mode in MODES:
            abort_case(at, mode)

    def clean_create(plan: Plan) -> None:
        created = gateways.faulty_flow.client.post("/clean?action=mpu-create")
        assert created.status_code == 200
        flow.abort(created.json["uploadId"], "clean")

    # A create that died once its record was written made a whole upload
    # nobody was told of: like on the filesystem store, it lives until it
    # expires. So these sweeps run a TTL ahead.
    healthy = s3_bucket_of(gateways.healthy)
    healthy.clock = lambda: _later() + timedelta(days=8)
    for at in range(_steps(gateways, clean_create)):
        for mode in MODES:
            gateways.fail(at, mode)
            answer = gateways.attempt(lambda f: f.client.post("/k?action=mpu-create"))
            if answer is not None and answer.status_code == 200:
                flow.abort(answer.json["uploadId"], "k")  # it works: usable
            healthy.sweep()
            assert s3_engine.leftovers(s3_bucket) == [], (at, mode)


def test_a_live_claim_makes_a_retry_wait_then_answers_503(
    gateway: Gateway, s3_bucket: str
) -> None:
    """A complete that died after claiming: before its lease runs out, a
    retry is told to come back when it has (Retry-After), not 10024."""
    gateways = Gateways(gateway, True)
    impatient = Flow(gateway(MPUFLASK_S3_COMPLETE_LEASE=0).test_client())
    flow = gateways.flow
    upload_id = flow.create("k")
    parts = [flow.part(upload_id, 1, b"a" * MIN_PART, "k")]
    plan = gateways.fail(3, "stop")
    assert gateways.attempt(lambda f: f.complete_raw(upload_id, parts, "k")) is None
    assert plan.calls[:4] == [
        "get_object",
        "list_parts",
        "put_object",
        "complete_multipart_upload",
    ]
    waited = impatient.complete_raw(upload_id, parts, "k")
    assert waited.status_code == 503
    assert 1 <= int(waited.headers["Retry-After"]) <= LEASE + 1
    # Once the lease is over (the healthy gateway's clock), it is finished.
    etag = flow.complete(upload_id, parts, "k")
    assert etag == f'"{multipart_etag([b"a" * MIN_PART])}"'
