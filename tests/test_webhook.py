"""The built-in webhook: its body, its signature, retries, and the helper
receivers check signatures with."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Callable
from collections.abc import Iterator

import pytest
from flask import Flask

from mpuflask.events import SIGNATURE_HEADER
from mpuflask.events import InvalidSignature
from mpuflask.events import deliver_pending
from mpuflask.events import sign_webhook
from mpuflask.events import verify_webhook
from mpuflask.events.install import EXTENSION

from .conftest import Flow
from .webhook_receiver import Receiver

SECRET = "whsec-0"  # noqa: S105 (a test secret)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as running:
        yield running


# -- the signature -------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_time_dot_body() -> None:
    body = b'{"id":"e1"}'
    header = sign_webhook(body, SECRET, timestamp=1700000000)
    expected = hmac.new(
        SECRET.encode(), b"1700000000." + body, hashlib.sha256
    ).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_webhook(body, header, SECRET, now=1700000100) == {"id": "e1"}


@pytest.mark.parametrize(
    ("body", "header", "secret", "now", "reason"),
    [
        (b'{"id":"e2"}', "good", SECRET, 1700000000, "no v1 signature matches"),
        (b'{"id":"e1"}', "good", "other", 1700000000, "no v1 signature matches"),
        (b'{"id":"e1"}', "good", SECRET, 1700000301, "signed at 1700000000, 301 s"),
        (b'{"id":"e1"}', "good", SECRET, 1699999699, "signed at 1700000000, 301 s"),
        (b'{"id":"e1"}', None, SECRET, 1700000000, "no X-Mpuflask-Signature header"),
        (b'{"id":"e1"}', "", SECRET, 1700000000, "no X-Mpuflask-Signature header"),
        (b'{"id":"e1"}', "v1=" + "0" * 64, SECRET, 1700000000, "no t= in the"),
        (b'{"id":"e1"}', "t=1700000000", SECRET, 1700000000, "no v1= signature"),
        (b'{"id":"e1"}', "t=17e8,v1=ab", SECRET, 1700000000, "malformed time"),
        (b'{"id":"e1"}', "t=1;v1=ab", SECRET, 1700000000, "malformed time"),
        (b'{"id":"e1"}', "v1", SECRET, 1700000000, "malformed X-Mpuflask"),
        (b'{"id":"e1"}', "t=١٧,v1=ab", SECRET, 1700000000, "malformed time"),
    ],
)
def test_verify_refuses_what_does_not_hold(
    body: bytes, header: str | None, secret: str, now: float, reason: str
) -> None:
    if header == "good":
        header = sign_webhook(b'{"id":"e1"}', SECRET, timestamp=1700000000)
    with pytest.raises(InvalidSignature) as raised:
        verify_webhook(body, header, secret, now=now)
    assert str(raised.value).startswith(reason)


def test_verify_accepts_any_of_several_signatures_while_secrets_rotate() -> None:
    body = b'{"id":"e1"}'
    old = sign_webhook(body, "old-secret", timestamp=1700000000)
    new = sign_webhook(body, SECRET, timestamp=1700000000)
    header = f"{new},{old.split(',')[1]}"
    assert verify_webhook(body, header, "old-secret", now=1700000000)
    assert verify_webhook(body, header, SECRET, now=1700000000)


def test_verify_refuses_a_signed_body_that_is_not_an_object() -> None:
    header = sign_webhook(b"[1]", SECRET, timestamp=1700000000)
    with pytest.raises(InvalidSignature, match="not a JSON object"):
        verify_webhook(b"[1]", header, SECRET, now=1700000000)


# -- deliveries ------------------------------------------------------------------


def _webhook_app(
    make_app: Callable[..., Flask], receiver: Receiver, **settings: object
) -> Flask:
    config: dict[str, object] = {
        "MPUFLASK_WEBHOOK_URL": receiver.url,
        "MPUFLASK_WEBHOOK_SECRET": SECRET,
        "MPUFLASK_WEBHOOK_TIMEOUT": 1,
    }
    config.update(settings)
    return make_app(**config)


def test_each_event_is_posted_once_as_signed_json(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = _webhook_app(make_app, receiver)
    flow = Flow(app.test_client())
    etag = flow.upload(
        [b"x" * 1024, b"y"], key="a/b.txt", **{"Content-Type": "text/plain"}
    )
    flow.abort(flow.create("c"), "c")
    flow.client.delete("/a/b.txt?action=delete")
    assert deliver_pending(app) == 3
    got = receiver.all()
    assert [d.status for d in got] == [204, 204, 204]
    assert [d.signature for d in got] == ["ok", "ok", "ok"]
    published = got[0].event
    assert published["type"] == "object-published"
    assert f'"{published["etag"]}"' == etag
    assert list(published) == [
        "id",
        "type",
        "key",
        "time",
        "uploadId",
        "etag",
        "size",
        "parts",
        "httpMetadata",
        "identity",
        "owner",
    ]
    assert (published["key"], published["size"], published["parts"]) == (
        "a/b.txt",
        1025,
        2,
    )
    assert published["httpMetadata"] == {"Content-Type": "text/plain"}
    assert [d.event["type"] for d in got[1:]] == ["upload-aborted", "object-deleted"]
    headers = got[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Mpuflask-Event-Id"] == published["id"]
    assert headers["X-Mpuflask-Event-Type"] == "object-published"
    assert deliver_pending(app) == 0 and len(receiver.all()) == 3


def test_a_failing_receiver_gets_the_same_event_again_until_it_takes_it(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = _webhook_app(make_app, receiver)
    Flow(app.test_client()).upload([b"v"], key="k")
    receiver.answer = 500
    assert deliver_pending(app) == 0
    receiver.answer = 302  # a redirect is not followed: a failure too
    assert deliver_pending(app) == 0
    receiver.answer = None
    assert deliver_pending(app) == 1
    attempts = receiver.all()
    assert [d.status for d in attempts] == [500, 302, 204]
    assert len({d.body for d in attempts}) == 1  # same bytes, same id
    assert all(d.signature == "ok" for d in attempts)
    metrics = app.test_client().get("/?action=metrics").text
    assert (
        'mpuflask_events_retried_total{consumer="webhook",type="object-published"} 2.0'
        in metrics
    )


def test_a_stalled_receiver_times_out_and_is_tried_again(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = _webhook_app(make_app, receiver, MPUFLASK_WEBHOOK_TIMEOUT=0.2)
    Flow(app.test_client()).upload([b"v"], key="k")
    receiver.stall_rate, receiver.stall_seconds = 1.0, 1.0
    assert deliver_pending(app) == 0
    receiver.stall_rate = 0.0
    assert deliver_pending(app) == 1
    ids = {json.loads(d.body)["id"] for d in receiver.all()}
    assert len(ids) == 1


def test_a_stopped_receiver_is_a_failure_then_a_restarted_one_gets_it(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = _webhook_app(make_app, receiver)
    Flow(app.test_client()).upload([b"v"], key="k")
    receiver.stop()
    assert deliver_pending(app) == 0
    receiver.start()  # the same port
    assert deliver_pending(app) == 1
    assert len(receiver.accepted()) == 1


def test_the_test_receiver_drops_a_post_whose_sender_died_mid_body(
    receiver: Receiver,
) -> None:
    """http.client sends a POST's headers and body apart; a sender killed
    between the two (the events crash harness kills workers) leaves headers
    and a short body. That is no delivery, so no bad signature either."""
    signed = sign_webhook(b'{"id":"e1"}', SECRET, int(time.time()))
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=30) as sock:
        sock.sendall(
            b"POST /hooks/mpuflask HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
            + f"{SIGNATURE_HEADER}: {signed}\r\n\r\n".encode()
            + b'{"id"'
        )
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""  # closed unanswered
    deadline = time.monotonic() + 30
    while receiver.cut_short == 0:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    assert receiver.all() == []


def test_only_the_configured_types_are_sent(
    make_app: Callable[..., Flask],
    receiver: Receiver,
    stored_state: Callable[[], dict[str, bytes]],
) -> None:
    app = _webhook_app(make_app, receiver, MPUFLASK_WEBHOOK_EVENTS="object-deleted")
    flow = Flow(app.test_client())
    flow.upload([b"v"], key="k")
    flow.abort(flow.create("a"), "a")
    assert [name for name in stored_state() if "events/" in name] == []
    flow.client.delete("/k?action=delete")
    assert deliver_pending(app) == 1
    assert [d.event["type"] for d in receiver.all()] == ["object-deleted"]


def test_without_a_secret_events_go_unsigned_and_the_start_says_so(
    make_app: Callable[..., Flask],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="mpuflask.events"):
        app = make_app(MPUFLASK_WEBHOOK_URL=receiver.url)
    assert (
        "MPUFLASK_WEBHOOK_URL is set without MPUFLASK_WEBHOOK_SECRET: events are "
        f"sent to {receiver.url} unsigned" in caplog.text
    )
    receiver.secret = None
    Flow(app.test_client()).upload([b"v"], key="k")
    assert deliver_pending(app) == 1
    (delivery,) = receiver.all()
    assert SIGNATURE_HEADER not in delivery.headers
    assert delivery.event["type"] == "object-published"


@pytest.mark.filesystem_only("the backoff is the delivery loop's, not the store's")
def test_the_backoff_doubles_with_jitter_up_to_the_configured_cap(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(
        MPUFLASK_WEBHOOK_URL="http://127.0.0.1:9/", MPUFLASK_EVENT_RETRY_MAX=5
    )
    delivery = app.extensions[EXTENSION]
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (60, 5)]:
        for _ in range(50):
            assert ceiling / 2 <= delivery.delay(failures) <= ceiling


def test_the_delivery_loop_delivers_by_itself(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = _webhook_app(make_app, receiver)
    delivery = app.extensions[EXTENSION]
    delivery.poll_interval = 0.05
    delivery.start()
    try:
        Flow(app.test_client()).upload([b"v"], key="k")
        deadline = time.monotonic() + 30
        while not receiver.accepted() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        delivery.stop()
    assert [d.event["key"] for d in receiver.accepted()] == ["k"]
