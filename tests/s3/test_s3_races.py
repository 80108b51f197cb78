"""The findings of issue 11, each as a test: retries, races, coordination.

Faults are injected with botocore's event hooks on the store's own clients,
so each test states the interleaving it needs without timing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from flask import Flask

from ..conftest import MIN_PART
from ..conftest import Flow
from ..oracle import multipart_etag
from .conftest import Gateway
from .conftest import s3_bucket_of

NO_SUCH_UPLOAD = "The specified multipart upload does not exist. (10024)"


def _clients(app: Flask) -> list[Any]:
    engine = s3_bucket_of(app).engine
    return [engine.client, engine.stream_client]


def _on(app: Flask, event: str, handler: Callable[..., Any]) -> None:
    """Run ``handler`` at botocore ``event`` on every client of the app's store."""
    for client in _clients(app):
        client.meta.events.register(event, handler)


def _once(error_code: str) -> Callable[..., Any]:
    """A before-call handler that fails the first call (500), as an engine
    failure that outlasted botocore's retries would."""
    calls: list[str] = []

    def fail(**_: Any) -> None:
        calls.append("x")
        if len(calls) == 1:
            raise ClientError(
                {
                    "Error": {"Code": error_code, "Message": "injected"},
                    "ResponseMetadata": {"HTTPStatusCode": 500},
                },
                "injected",
            )

    return fail


def test_a_failed_copy_after_the_staging_close_is_finished_by_the_retry(
    gateway: Gateway,
) -> None:
    """Finding 1: CopyObject failing once after the staging upload was closed
    lost the upload (the retry got 10024)."""
    app = gateway(MPUFLASK_S3_STAGE_UPLOADS=True)
    flow = Flow(app.test_client())
    data = [b"a" * MIN_PART, b"tail"]
    upload_id = flow.create("k")
    parts = [flow.part(upload_id, n, d, "k") for n, d in enumerate(data, 1)]
    _on(app, "before-call.s3.CopyObject", _once("InternalError"))
    failed = flow.complete_raw(upload_id, parts, "k")
    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "1")
    assert flow.complete(upload_id, parts, "k") == f'"{multipart_etag(data)}"'
    assert flow.get("k").data == b"".join(data)


def test_a_part_sent_once_the_upload_is_closed_is_refused(gateway: Gateway) -> None:
    """Finding 2: a small part sent while a complete closed the upload was
    answered 200 and never part of anything. It must get 10024 (the complete
    won), or be in the upload (it won)."""
    one = gateway(MPUFLASK_S3_STAGE_UPLOADS=True)
    two = Flow(gateway(MPUFLASK_S3_STAGE_UPLOADS=True).test_client())
    flow = Flow(one.test_client())
    upload_id = flow.create("k")
    parts = [flow.part(upload_id, 1, b"a" * MIN_PART, "k")]
    late: list[Any] = []

    def part_meanwhile(**_: Any) -> None:
        if not late:
            late.append(two.put_part(upload_id, 2, b"late small part", "k"))

    _on(one, "after-call.s3.CompleteMultipartUpload", part_meanwhile)
    flow.complete(upload_id, parts, "k")
    assert (late[0].status_code, late[0].text) == (
        400,
        f"uploadPart: {NO_SUCH_UPLOAD}",
    )
    assert flow.get("k").data == b"a" * MIN_PART


def test_the_losers_of_a_complete_race_get_10024(gateway: Gateway) -> None:
    """Finding 3: identical completes through several gateways at once: one
    publishes, the others answer 10024 as on the filesystem store (radosgw's
    InternalError to the loser was passed on as "try again")."""
    apps = [gateway(MPUFLASK_S3_STAGE_UPLOADS=True) for _ in range(4)]
    flow = Flow(apps[0].test_client())
    data = [b"a" * MIN_PART, b"b" * MIN_PART, b"tail"]

    def race(key: str) -> list[tuple[int, str]]:
        upload_id = flow.create(key)
        parts = [flow.part(upload_id, n, d, key) for n, d in enumerate(data, 1)]
        start = threading.Barrier(len(apps))
        answers: list[tuple[int, str]] = []

        def complete(app: Flask) -> None:
            client = app.test_client()
            start.wait(timeout=60)
            response = Flow(client).complete_raw(upload_id, parts, key)
            answers.append((response.status_code, response.text))

        threads = [threading.Thread(target=complete, args=(app,)) for app in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return sorted(answers)

    for trial in range(4):
        assert race(f"race-{trial}") == [(200, "")] + [
            (400, f"completeMultipartUpload: {NO_SUCH_UPLOAD}")
        ] * (len(apps) - 1)
        assert flow.get(f"race-{trial}").data == b"".join(data)


def _requests(app: Flask) -> list[str]:
    seen: list[str] = []
    _on(app, "before-send.s3", lambda event_name, **_: seen.append(event_name))
    return seen


def test_one_sweeper_for_all_gateways(gateway: Gateway) -> None:
    """Finding 4: every worker of every gateway listed and read every upload
    at every interval. With the lease, one sweeps; the others skip after one
    small read."""
    first = gateway()
    second = gateway(MPUFLASK_SWEEP_ON_START=False)
    seen = _requests(second)
    assert s3_bucket_of(second).sweep() == 0
    assert [name.rsplit(".", 1)[1] for name in seen] == ["GetObject"]
    seen.clear()
    s3_bucket_of(first).sweep()  # the holder sweeps whenever it likes
    assert [name.rsplit(".", 1)[1] for name in seen] == []


def test_the_staging_decision_is_made_once_per_bucket(gateway: Gateway) -> None:
    """Finding 4: each worker ran its own probe upload. The first gateway to
    need it probes; every other reads the answer once."""
    first = Flow(gateway().test_client())
    first.create("k")
    later = gateway()
    seen = _requests(later)
    Flow(later.test_client()).create("k")
    Flow(later.test_client()).create("k")
    assert [name.rsplit(".", 1)[1] for name in seen] == [
        "GetObject",  # the bucket's engine.json, once per process
        "CreateMultipartUpload",
        "PutObject",
        "CreateMultipartUpload",
        "PutObject",
    ]
    assert s3_bucket_of(later).stages_uploads() is True


def test_a_part_confirmed_before_the_claim_is_never_overwritten(
    gateway: Gateway,
) -> None:
    """A complete leaving parts out stands the filler in for a small part it
    lists (here part 3, with part 4 above it). A new part 3 acknowledged
    between that complete's listing and its claim must win: the complete is
    refused (10025), not published with the part it replaced."""
    one = gateway(MPUFLASK_S3_STAGE_UPLOADS=True)
    two = Flow(gateway(MPUFLASK_S3_STAGE_UPLOADS=True).test_client())
    flow = Flow(one.test_client())
    upload_id = flow.create("k")
    data = [b"1" * MIN_PART, b"2" * MIN_PART, b"old 3", b"4"]
    parts = [flow.part(upload_id, n, d, "k") for n, d in enumerate(data, 1)]
    replaced: list[Any] = []

    def replace_part_3(**_: Any) -> None:
        if not replaced:
            replaced.append(two.put_part(upload_id, 3, b"new 3", "k"))

    _on(one, "after-call.s3.ListParts", replace_part_3)
    refused = flow.complete_raw(upload_id, [parts[0], parts[2]], "k")
    assert replaced[0].status_code == 200, replaced[0].text
    assert (refused.status_code, refused.text) == (
        400,
        "completeMultipartUpload: One or more of the specified parts could not be found. (10025)",
    )
    flow.complete(upload_id, [parts[0], replaced[0].json], "k")
    assert flow.get("k").data == b"1" * MIN_PART + b"new 3"


def test_a_slow_complete_keeps_its_claim(
    gateway: Gateway, s3_engine: Any, s3_bucket: str
) -> None:
    """An engine request that outlasts the lease (radosgw stalls for a minute
    when its store fills) must not let another request take the upload over:
    the holder renews its lease while it works. Here the close waits until
    the lease was renewed; meanwhile the other gateway is told to retry."""
    settings = {"MPUFLASK_S3_STAGE_UPLOADS": True, "MPUFLASK_S3_COMPLETE_LEASE": 0.3}
    slow, other = gateway(**settings), Flow(gateway(**settings).test_client())
    flow = Flow(slow.test_client())
    upload_id = flow.create("k")
    parts = [flow.part(upload_id, 1, b"a" * MIN_PART, "k")]
    record = f".mpuflask/uploads/{upload_id}.json"
    meanwhile: list[Any] = []

    def until() -> str:
        body = s3_engine.client.get_object(Bucket=s3_bucket, Key=record)["Body"]
        return str(json.loads(body.read())["claim"]["until"])

    def stall_then_race(**_: Any) -> None:
        if meanwhile:
            return
        first = until()
        deadline = time.monotonic() + 60
        while until() == first and time.monotonic() < deadline:
            time.sleep(0.05)  # a bounded poll: the heartbeat renews it
        meanwhile.append(other.complete_raw(upload_id, parts, "k"))

    _on(slow, "before-call.s3.CompleteMultipartUpload", stall_then_race)
    assert (
        flow.complete(upload_id, parts, "k") == f'"{multipart_etag([b"a" * MIN_PART])}"'
    )
    assert meanwhile[0].status_code == 503, meanwhile[0].text
    assert flow.get("k").data == b"a" * MIN_PART
