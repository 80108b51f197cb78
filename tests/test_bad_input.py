"""Input a client controls never causes a 500, and a refusal stores nothing.

Each case here was once a 500 (issue: fail closed at every edge).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import Flow


def test_a_part_number_of_5000_digits_is_refused(
    client: FlaskClient, flow: Flow, stored_state: Callable[[], dict[str, bytes]]
) -> None:
    upload_id = flow.create()
    before = stored_state()
    number = "1" * 5000
    response = flow.put_part(upload_id, number, b"data")
    assert response.status_code == 400
    assert response.text == (
        "Part number must be between 1 and 10000 (inclusive). "
        f"Actual value was: {'1' * 64}..."
    )
    assert stored_state() == before


def test_a_complete_body_nested_1000_deep_is_refused(
    client: FlaskClient, flow: Flow, stored_state: Callable[[], dict[str, bytes]]
) -> None:
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"data")
    before = stored_state()
    body = '{"parts": ' + "[" * 1000 + "]" * 1000 + "}"
    response = client.post(
        f"/file.bin?action=mpu-complete&uploadId={upload_id}",
        data=body,
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.text == "Missing or incomplete body: the body is not valid JSON"
    assert stored_state() == before
    flow.complete(upload_id, [part])  # the upload is still usable


def test_a_complete_body_with_a_huge_number_is_refused(
    client: FlaskClient, flow: Flow, stored_state: Callable[[], dict[str, bytes]]
) -> None:
    upload_id = flow.create()
    before = stored_state()
    body = '{"parts": [{"partNumber": ' + "9" * 5000 + ', "etag": "x"}]}'
    response = client.post(
        f"/file.bin?action=mpu-complete&uploadId={upload_id}",
        data=body,
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.text == "Missing or incomplete body: the body is not valid JSON"
    assert stored_state() == before


def test_metric_labels_come_from_a_closed_set(client: FlaskClient) -> None:
    """Random actions and methods, even refused ones, add no new time series."""
    for index in range(300):
        client.open(f"/k?action=junk-{index}", method="GET")
        client.open(f"/k?action=get&n={index}", method=f"M{index}")
    client.get("/k?action=get")
    client.open("/k?action=get", method="PROPFIND")
    text = client.get("/?action=metrics").text
    series = [
        line for line in text.splitlines() if line.startswith("mpuflask_requests_total")
    ]
    assert series == [
        'mpuflask_requests_total{action="other",method="GET",status="400"} 300.0',
        'mpuflask_requests_total{action="get",method="other",status="405"} 301.0',
        'mpuflask_requests_total{action="get",method="GET",status="404"} 1.0',
    ]
    assert "junk" not in text and "M1" not in text


def test_a_complete_body_cut_short_publishes_nothing(
    client: FlaskClient, flow: Flow, stored_state: Callable[[], dict[str, bytes]]
) -> None:
    """gunicorn ends a short body quietly: a complete read the 12 bytes
    ``{"parts":[]}`` of a promised 40 as the whole body and published an
    empty object. A body that ends before its Content-Length is refused, as
    a part's is, and the connection closed (what follows is not a request)."""
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"data")
    before = stored_state()
    for sent in (b'{"parts":[]}', b'{"parts":[{"partNumber":1,"etag":"x"}]}'):
        response = client.post(
            f"/file.bin?action=mpu-complete&uploadId={upload_id}",
            input_stream=io.BytesIO(sent),
            content_type="application/json",
            environ_overrides={
                "wsgi.input_terminated": True,  # as gunicorn hands a body over
                "CONTENT_LENGTH": str(len(sent) + 28),
            },
        )
        assert (response.status_code, response.text) == (
            400,
            f"The request body ended after {len(sent)} of {len(sent) + 28} bytes",
        )
        assert response.headers["Connection"] == "close"
        assert stored_state() == before
    assert flow.get().status_code == 404
    flow.complete(upload_id, [part])  # the upload is still usable
    assert flow.get().data == b"data"


def test_a_part_body_cut_short_closes_the_connection(
    client: FlaskClient, flow: Flow, stored_state: Callable[[], dict[str, bytes]]
) -> None:
    """The 400 for a part body that broke off said ``keep-alive``: the bytes
    after it would be read as the next request."""
    upload_id = flow.create()
    before = stored_state()
    response = client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        input_stream=io.BytesIO(b"12345"),
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": "10"},
    )
    assert (response.status_code, response.text) == (
        400,
        "The request body ended after 5 of 10 bytes",
    )
    assert response.headers["Connection"] == "close"
    assert stored_state() == before


def test_a_refusal_before_the_body_is_read_closes_the_connection(
    make_app: Callable[..., Any], stored_state: Callable[[], dict[str, bytes]]
) -> None:
    """gunicorn reads the unread rest of a refused request's body to throw it
    away before the next request, holding the thread up to 5 s and reading
    gigabytes at network speed. A refusal that leaves body bytes unread says
    ``Connection: close`` (the worker lingers without a thread); one sent
    after the whole body was read, or for a request without one, does not."""
    app = make_app(
        MPUFLASK_MIN_PART_SIZE=50,
        MPUFLASK_MAX_PART_SIZE=100,
        MPUFLASK_AUTH_TOKENS="tok",
    )
    client = app.test_client()
    auth = {"Authorization": "Bearer tok"}
    upload_id = client.post("/k?action=mpu-create", headers=auth).json["uploadId"]
    part = f"/k?action=mpu-uploadpart&uploadId={upload_id}"

    def put(url: str, body: bytes, **headers: str) -> Any:
        return client.put(url, data=body, headers={**auth, **headers})

    before = stored_state()
    refused_unread = [
        put(f"{part}&partNumber=0", b"data"),  # part number
        put("/k?action=mpu-uploadpart&uploadId=nope&partNumber=1", b"data"),  # 10024
        put(f"{part}&partNumber=1", b"x" * 101),  # over the part size, declared
        client.put(f"{part}&partNumber=1", data=b"data"),  # no token: 401
        client.post(
            "/k?action=mpu-complete&uploadId=nope", data=b"x" * 3_000_000, headers=auth
        ),  # over the complete body's limit, declared
    ]
    assert [answer.status_code for answer in refused_unread] == [
        400,
        400,
        400,
        401,
        413,
    ]
    for answer in refused_unread:
        assert answer.headers.get("Connection") == "close", answer.text
    assert stored_state() == before
    refused_read = [
        # The whole body read, then refused: the connection stays usable.
        put(
            f"{part}&partNumber=1",
            b"data",
            **{"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="},
        ),
        client.post(
            f"/k?action=mpu-complete&uploadId={upload_id}", data=b"{", headers=auth
        ),
        client.get("/absent?action=get", headers=auth),  # no body at all
    ]
    assert [answer.status_code for answer in refused_read] == [400, 400, 404]
    assert stored_state() == before
    stored = put(f"{part}&partNumber=1", b"data")  # and a success
    assert stored.status_code == 200
    for answer in [*refused_read, stored]:
        assert "Connection" not in answer.headers, answer.text


@pytest.mark.filesystem_only("the filesystem store's data directory")
def test_a_data_dir_made_unwritable_under_a_running_server_is_503(
    client: FlaskClient,
    monkeypatch: Any,
    caplog: Any,
    stored_state: Callable[[], dict[str, bytes]],
) -> None:
    """Start-up refuses a data dir the server may not write; one whose modes
    or owner an operator changes later answered 500 to every write."""
    import os

    def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", "/srv/data/uploads")

    before = stored_state()
    monkeypatch.setattr(os, "mkdir", refused)
    answer = client.post("/file.bin?action=mpu-create")
    assert (answer.status_code, answer.text) == (
        503,
        "createMultipartUpload: We encountered an internal error. Please try again."
        " (10001)",
    )
    assert "the store may not use /srv/data/uploads: [Errno 13] Permission denied" in (
        caplog.text
    )
    monkeypatch.undo()
    assert stored_state() == before


def test_an_apps_own_routes_keep_their_connections_and_their_500s(
    tmp_path: Any,
) -> None:
    """A review: the rule that closes the connection after a refusal that left
    a body unread ran app-wide, so an embedding app's own 4xx (a login refused
    after reading its JSON) closed the connection; and its PermissionError
    became mpuflask's 503. Both are mpuflask's blueprints' only."""
    from flask import Flask
    from flask import request

    from mpuflask import MpuFlask

    app = Flask("host")
    app.config.update(TESTING=True, MPUFLASK_DATA_DIR=str(tmp_path / "data"))

    @app.post("/login")
    def login() -> tuple[str, int]:
        return f"no, {request.get_json()['user']}", 401

    @app.get("/secret")
    def secret() -> str:
        raise PermissionError(13, "Permission denied", "/etc/shadow")

    MpuFlask(app)
    client = app.test_client()
    refused = client.post("/login", json={"user": "ann"})
    assert (refused.status_code, refused.text) == (401, "no, ann")
    assert "Connection" not in refused.headers
    app.config["PROPAGATE_EXCEPTIONS"] = False
    failed = client.get("/secret")
    assert (failed.status_code, failed.text) == (500, "Internal Server Error")
