"""Deleting retired bytes waits for the answer (mpuflask/afterwards.py).

A delete, a replacing complete and an abort commit by moving the old bytes
into ``trash/``; the unlinks that free the space run once the response is
sent (Werkzeug's ``call_on_close``, which gunicorn calls after the last
byte). Here Werkzeug's own test client, which never closes a response,
shows the order: the answer and the object's absence first, the space after.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask import Response
from werkzeug.test import Client
from werkzeug.test import TestResponse

from mpuflask.storage import fsdirs

from .conftest import Flow

pytestmark = pytest.mark.filesystem_only("the trash is the filesystem store's")


def trash(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "trash").rglob("*"))


@pytest.fixture
def raw(app: Flask) -> Client:
    """A client that leaves each response open until the test closes it."""
    return Client(app)


def upload(raw: Client, key: str, data: bytes) -> None:
    created = raw.post(f"/{key}?action=mpu-create")
    upload_id = created.json["uploadId"]  # type: ignore[index]
    part = raw.put(
        f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1", data=data
    )
    done = raw.post(
        f"/{key}?action=mpu-complete&uploadId={upload_id}",
        json={"parts": [part.json]},
    )
    assert done.status_code == 200, done.text
    for response in (created, part, done):
        response.close()


def answered_then_reclaimed(response: TestResponse, data_dir: Path) -> None:
    """The answer is out while the bytes wait in the trash; closing frees them."""
    assert trash(data_dir) != []
    response.close()
    assert trash(data_dir) == []


def test_a_delete_answers_before_its_bytes_are_deleted(
    raw: Client, data_dir: Path
) -> None:
    upload(raw, "k", b"old bytes" * 100)
    response = raw.delete("/k?action=delete")
    assert response.status_code == 204
    assert raw.get("/k?action=get").status_code == 404
    answered_then_reclaimed(response, data_dir)


def test_a_replacing_complete_answers_before_the_old_bytes_are_deleted(
    raw: Client, data_dir: Path
) -> None:
    upload(raw, "k", b"old bytes" * 100)
    created = raw.post("/k?action=mpu-create")
    upload_id = created.json["uploadId"]  # type: ignore[index]
    part = raw.put(
        f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1", data=b"new"
    )
    response = raw.post(
        f"/k?action=mpu-complete&uploadId={upload_id}", json={"parts": [part.json]}
    )
    assert response.status_code == 200
    with raw.get("/k?action=get") as got:
        assert got.data == b"new"
    answered_then_reclaimed(response, data_dir)


def test_an_abort_answers_before_its_parts_are_deleted(
    raw: Client, data_dir: Path
) -> None:
    created = raw.post("/k?action=mpu-create")
    upload_id = created.json["uploadId"]  # type: ignore[index]
    raw.put(f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1", data=b"x")
    response = raw.delete(f"/k?action=mpu-abort&uploadId={upload_id}")
    assert response.status_code == 204
    assert list((data_dir / "uploads").iterdir()) == []
    answered_then_reclaimed(response, data_dir)


def test_a_failed_clean_up_is_logged_and_left_to_the_sweep(
    raw: Client,
    app: Flask,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upload(raw, "k", b"old bytes")

    def failing(trash_fd: int, name: str) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fsdirs, "reclaim", failing)
    response = raw.delete("/k?action=delete")
    assert response.status_code == 204
    with caplog.at_level(logging.WARNING, "mpuflask.storage.fsdirs"):
        response.close()
    assert "not reclaimed (the sweep will): [Errno 13] Permission denied" in caplog.text
    assert trash(data_dir) != []
    monkeypatch.undo()
    app.extensions["mpuflask"].bucket.sweep()
    assert trash(data_dir) == []


def test_outside_a_request_the_store_deletes_at_once(app: Flask, flow: Flow) -> None:
    flow.upload([b"bytes"], key="k")
    bucket = app.extensions["mpuflask"].bucket
    bucket.delete("k")
    assert list(Path(bucket.root, "trash").iterdir()) == []


def test_clean_up_left_by_a_passed_through_body_runs_before_it(app: Flask) -> None:
    """Werkzeug gives the server a ``direct_passthrough`` body as it is,
    without the callbacks of ``call_on_close``: its clean-up runs at once."""
    ran: list[str] = []

    @app.get("/passthrough")
    def passthrough() -> Response:
        app.extensions["mpuflask"].bucket.after_answer(lambda: ran.append("done"))
        return Response(iter([b"body"]), direct_passthrough=True)

    response = Client(app).get("/passthrough")
    assert ran == ["done"]
    assert response.get_data() == b"body"
