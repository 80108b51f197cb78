"""The event moments, on both stores: what each event says, when it comes, and
that a hook never changes a client's answer.

Events are delivered by the delivery loop, not in the request; here one round
runs in the test's thread (:func:`mpuflask.events.deliver_pending`). The
webhook and event settings checked at start are in test_events_settings.py.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from mpuflask.events import Event
from mpuflask.events import ObjectDeleted
from mpuflask.events import ObjectPublished
from mpuflask.events import UploadAborted
from mpuflask.events import UploadExpired
from mpuflask.events import deliver_pending
from mpuflask.events.model import event_from_json
from mpuflask.events.model import upload_event_id

from . import event_sink
from .conftest import Flow

TOKEN = "tok-alice"
IDENTITY = "token:" + hashlib.sha256(TOKEN.encode()).hexdigest()[:12]


def _recording(app: Flask) -> list[Event]:
    got: list[Event] = []
    app.extensions["mpuflask"].after_event(got.append)
    return got


def _flow(app: Flask, token: str | None = None) -> Flow:
    client = app.test_client()
    if token is not None:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Flow(client)


def _event_records(state: dict[str, bytes]) -> list[str]:
    return [name for name in state if "events/" in name]


def test_a_completed_upload_is_one_object_published_event(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(MPUFLASK_AUTH_TOKENS=TOKEN)
    got = _recording(app)
    flow = _flow(app, TOKEN)
    upload_id = flow.create(
        "docs/report.pdf",
        **{"Content-Type": "application/pdf", "Cache-Control": "no-cache"},
    )
    parts = [
        flow.part(upload_id, 1, b"a" * 1024, "docs/report.pdf"),
        flow.part(upload_id, 2, b"tail", "docs/report.pdf"),
    ]
    before = datetime.now(UTC)
    etag = flow.complete(upload_id, parts, "docs/report.pdf")
    assert got == []  # after the fact, from the outbox: not in the request
    assert deliver_pending(app) == 1
    (event,) = got
    assert isinstance(event, ObjectPublished)
    assert event.type == "object-published"
    assert event.id == upload_event_id("object-published", "docs/report.pdf", upload_id)
    assert (event.key, event.upload_id) == ("docs/report.pdf", upload_id)
    assert f'"{event.etag}"' == etag
    assert (event.size, event.parts) == (1028, 2)
    assert event.http_metadata == {
        "Content-Type": "application/pdf",
        "Cache-Control": "no-cache",
    }
    assert (event.identity, event.owner) == (IDENTITY, IDENTITY)
    assert before - timedelta(seconds=5) <= event.time <= datetime.now(UTC)
    assert event_from_json(event.to_json()) == event
    assert deliver_pending(app) == 0  # delivered once: gone from the outbox


def test_an_abort_is_one_upload_aborted_event(make_app: Callable[..., Flask]) -> None:
    app = make_app(MPUFLASK_AUTH_TOKENS=TOKEN)
    got = _recording(app)
    flow = _flow(app, TOKEN)
    upload_id = flow.create("k")
    flow.part(upload_id, 1, b"bytes", "k")
    assert flow.abort(upload_id, "k").status_code == 204
    assert flow.abort(upload_id, "k").status_code == 204  # idempotent: no event
    assert deliver_pending(app) == 1
    (event,) = got
    assert isinstance(event, UploadAborted)
    assert event.to_json() == {
        "id": upload_event_id("upload-aborted", "k", upload_id),
        "type": "upload-aborted",
        "key": "k",
        "time": event.time.isoformat(),
        "uploadId": upload_id,
        "identity": IDENTITY,
        "owner": IDENTITY,
    }


def test_an_upload_past_its_expiry_is_one_upload_expired_event(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(MPUFLASK_UPLOAD_TTL=60)
    bucket = app.extensions["mpuflask"].bucket
    got = _recording(app)
    flow = _flow(app)
    swept = flow.create("swept")
    late = flow.create("late")
    expires = datetime.now(UTC) + timedelta(seconds=60)
    later = datetime.now(UTC) + timedelta(seconds=61)
    bucket.clock = lambda: later
    assert flow.abort(late, "late").status_code == 204  # aborted after expiry
    bucket.sweep()
    assert deliver_pending(app) == 2
    assert sorted((e.type, e.key) for e in got) == [
        ("upload-expired", "late"),
        ("upload-expired", "swept"),
    ]
    for event in got:
        assert isinstance(event, UploadExpired)
        assert event.upload_id == {"swept": swept, "late": late}[event.key]
        assert abs(event.expires - expires) < timedelta(seconds=5)
        assert event.owner is None


def test_a_delete_that_removes_an_object_is_one_object_deleted_event(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(MPUFLASK_AUTH_TOKENS=TOKEN)
    got = _recording(app)
    flow = _flow(app, TOKEN)
    etag = flow.upload([b"x" * 1024, b"y"], key="gone")
    deliver_pending(app)
    got.clear()
    assert flow.client.delete("/gone?action=delete").status_code == 204
    assert flow.client.delete("/gone?action=delete").status_code == 204  # nothing left
    assert flow.client.delete("/never?action=delete").status_code == 204
    assert deliver_pending(app) == 1
    (event,) = got
    assert isinstance(event, ObjectDeleted)
    assert (event.key, f'"{event.etag}"', event.size) == ("gone", etag, 1025)
    assert event.identity == IDENTITY
    assert flow.get("gone").status_code == 404


def test_an_overwrite_is_a_publish_and_no_delete(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    got = _recording(app)
    flow = _flow(app)
    flow.upload([b"first"], key="k")
    flow.upload([b"second"], key="k")
    assert deliver_pending(app) == 2
    assert [e.type for e in got] == ["object-published", "object-published"]
    assert len({e.id for e in got}) == 2


def test_each_moment_gets_its_own_type_in_registration_order(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(MPUFLASK_UPLOAD_TTL=60)
    mpu = app.extensions["mpuflask"]
    calls: list[tuple[str, str]] = []
    for moment in ("after_publish", "after_abort", "after_expire", "after_delete"):

        def hook(event: Any, moment: str = moment) -> None:
            calls.append((moment, event.type))

        assert getattr(mpu, moment)(hook) is hook  # the decorator returns it
    mpu.after_event(lambda event: calls.append(("after_event", event.type)))
    flow = _flow(app)
    flow.upload([b"v"], key="k")
    flow.abort(flow.create("a"), "a")
    flow.client.delete("/k?action=delete")
    flow.create("x")
    later = datetime.now(UTC) + timedelta(seconds=61)
    mpu.bucket.clock = lambda: later
    mpu.bucket.sweep()
    assert deliver_pending(app) == 4
    assert sorted(calls) == sorted(
        [
            ("after_publish", "object-published"),
            ("after_event", "object-published"),
            ("after_abort", "upload-aborted"),
            ("after_event", "upload-aborted"),
            ("after_delete", "object-deleted"),
            ("after_event", "object-deleted"),
            ("after_expire", "upload-expired"),
            ("after_event", "upload-expired"),
        ]
    )


def test_a_hook_that_raises_never_changes_the_answer_and_is_called_again(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    mpu = app.extensions["mpuflask"]
    seen: list[str] = []
    failures = [RuntimeError("the database is down")]

    @mpu.after_publish
    def record(event: ObjectPublished) -> None:
        seen.append(event.id)

    @mpu.after_publish
    def flaky(event: ObjectPublished) -> None:
        if failures:
            raise failures.pop()

    flow = _flow(app)
    etag = flow.upload([b"bytes"], key="k")  # 200: hooks run later
    assert flow.get("k").headers["etag"] == etag
    assert deliver_pending(app) == 0  # flaky raised: the event stays
    assert deliver_pending(app) == 1
    # record took it the first time and is not called again by this process
    assert len(seen) == 1 and not failures


def test_hooks_by_configuration_come_first(make_app: Callable[..., Flask]) -> None:
    event_sink.EVENTS.clear()
    app = make_app(MPUFLASK_EVENT_HOOKS="tests.event_sink:record")
    order: list[str] = []
    app.extensions["mpuflask"].after_event(lambda e: order.append("code"))
    _flow(app).upload([b"v"], key="k")
    deliver_pending(app)
    assert [e.type for e in event_sink.EVENTS] == ["object-published"]
    assert order == ["code"]


def test_a_refused_complete_records_no_event(
    make_app: Callable[..., Flask], stored_state: Callable[[], dict[str, bytes]]
) -> None:
    app = make_app()
    got = _recording(app)
    flow = _flow(app)
    upload_id = flow.create()
    flow.part(upload_id, 1, b"bytes")
    before = stored_state()
    refused = flow.complete_raw(upload_id, [{"partNumber": 1, "etag": "0" * 32}])
    assert refused.status_code == 400
    assert stored_state() == before  # no intent left behind either
    assert deliver_pending(app) == 0 and got == []


def test_without_a_consumer_nothing_is_recorded(
    make_app: Callable[..., Flask], stored_state: Callable[[], dict[str, bytes]]
) -> None:
    app = make_app()
    flow = _flow(app)
    flow.upload([b"v"], key="k")
    flow.abort(flow.create("a"), "a")
    flow.client.delete("/k?action=delete")
    assert _event_records(stored_state()) == []
    assert deliver_pending(app) == 0


def test_metrics_count_recorded_delivered_retried_and_pending(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    failures = [RuntimeError("no")]

    @app.extensions["mpuflask"].after_event
    def flaky(event: Event) -> None:
        if failures:
            raise failures.pop()

    flow = _flow(app)
    flow.upload([b"v"], key="k")

    def metric(name: str) -> list[str]:
        text = flow.client.get("/?action=metrics").text
        return [line for line in text.splitlines() if line.startswith(name)]

    assert metric("mpuflask_events_pending") == ["mpuflask_events_pending 1.0"]
    deliver_pending(app)
    deliver_pending(app)
    assert metric("mpuflask_events_pending") == ["mpuflask_events_pending 0.0"]
    assert metric("mpuflask_events_recorded_total") == [
        'mpuflask_events_recorded_total{type="object-published"} 1.0'
    ]
    assert metric("mpuflask_events_delivered_total") == [
        'mpuflask_events_delivered_total{type="object-published"} 1.0'
    ]
    assert metric("mpuflask_events_retried_total") == [
        'mpuflask_events_retried_total{consumer="hook",type="object-published"} 1.0'
    ]


@pytest.mark.filesystem_only(
    "on S3 the first app holds the bucket's sweep lease: the second one's "
    "start-up sweep is skipped"
)
def test_the_start_up_sweep_s_expiries_are_events(
    make_app: Callable[..., Flask],
) -> None:
    first = make_app(MPUFLASK_UPLOAD_TTL=1)
    upload_id = _flow(first).create("k")
    expires = datetime.now(UTC) + timedelta(seconds=1)
    while datetime.now(UTC) <= expires:  # a bounded wait for the expiry itself
        time.sleep(0.05)
    event_sink.EVENTS.clear()
    second = make_app(
        MPUFLASK_UPLOAD_TTL=1, MPUFLASK_EVENT_HOOKS="tests.event_sink:record"
    )
    deliver_pending(second)
    assert [(e.type, e.upload_id) for e in event_sink.EVENTS] == [  # type: ignore[attr-defined]
        ("upload-expired", upload_id)
    ]


def test_the_delivery_loop_starts_only_when_something_consumes_events(
    make_app: Callable[..., Flask], stored_state: Callable[[], dict[str, bytes]]
) -> None:
    from mpuflask.events import start_event_delivery

    app = make_app()
    assert start_event_delivery(app) is None
    assert _event_records(stored_state()) == []  # no lease, no outbox
    app.extensions["mpuflask"].after_event(lambda event: None)
    delivery = start_event_delivery(app)
    assert delivery is not None
    delivery.stop()
