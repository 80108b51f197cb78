"""The server bench measures what it says: bench/flask_floor.py answers exactly
as bench/lean_app.py does (its figures are Flask's own cost per request, not
different work), and options it cannot honour stop it at once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from werkzeug.test import Client
from werkzeug.wsgi import FileWrapper


def test_the_flask_floor_answers_a_round_trip_as_the_lean_app_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import flask_floor
    from bench import lean_app

    answers = []
    for name, app in (("lean", lean_app.app), ("floor", flask_floor.app)):
        uploads, objects = tmp_path / name / "uploads", tmp_path / name / "objects"
        uploads.mkdir(parents=True)
        objects.mkdir()
        monkeypatch.setattr(lean_app, "UPLOADS", str(uploads))
        monkeypatch.setattr(lean_app, "OBJECTS", str(objects))
        monkeypatch.setattr(lean_app, "DURABLE", False)
        answers.append(_round_trip(Client(app)))
    lean, floor = answers
    assert floor == lean
    body = b"x" * 4096
    etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert lean[1] == (200, {"partNumber": 1, "etag": etag})
    assert lean[3] == (200, body)
    assert lean[4][0] == 204


def _round_trip(client: Client) -> list[tuple[int, object]]:
    created = client.post("/k?action=mpu-create")
    upload_id = json.loads(created.data)["uploadId"]
    part = client.put(
        f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=b"x" * 4096,
    )
    completed = client.post(
        f"/k?action=mpu-complete&uploadId={upload_id}",
        data=json.dumps({"parts": [json.loads(part.data)]}),
    )
    # gunicorn gives a file wrapper (the lean app sends with it); the test client none.
    got = client.get(
        "/k?action=get", environ_overrides={"wsgi.file_wrapper": FileWrapper}
    )
    got_body = got.get_data()
    got.close()  # the file the wrapper sends
    deleted = client.delete("/k?action=delete")
    return [
        (created.status_code, sorted(json.loads(created.data))),
        (part.status_code, json.loads(part.data)),
        (completed.status_code, completed.headers["etag"]),
        (got.status_code, got_body),
        (deleted.status_code, deleted.get_data()),
    ]


def test_the_bench_refuses_a_one_part_object_larger_than_its_source(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The single workload cuts its object from the source of the big
    uploads: a smaller source is refused at once, with the fix, not after
    minutes of uploads with a puzzling length mismatch."""
    from bench import server_bench

    with pytest.raises(SystemExit) as stopped:
        server_bench.parse_args(["--size-mib", "64"])
    assert stopped.value.code == 2
    assert (
        "--single-mib (256) must not exceed --size-mib (64), or leave out the "
        "single workload (--only)" in capsys.readouterr().err
    )
    assert server_bench.parse_args(["--size-mib", "64", "--only", "small"])
    assert server_bench.parse_args(["--size-mib", "64", "--single-mib", "64"])


def test_the_lean_app_stores_a_chunked_body_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body without Content-Length (chunked: gunicorn hands it over decoded)
    is read to its end, not stored as an empty part."""
    import io

    from bench import lean_app

    monkeypatch.setattr(lean_app, "UPLOADS", str(tmp_path))
    monkeypatch.setattr(lean_app, "DURABLE", False)
    (tmp_path / "U").mkdir()
    body = b"chunked body " * 100_000
    statuses = []
    answer = lean_app.app(
        {
            "REQUEST_METHOD": "PUT",
            "PATH_INFO": "/k",
            "QUERY_STRING": "action=mpu-uploadpart&uploadId=U&partNumber=1",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": io.BytesIO(body),
        },
        lambda status, headers: statuses.append(status),
    )
    etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert statuses == ["200 OK"]
    assert json.loads(b"".join(answer)) == {"partNumber": 1, "etag": etag}
    assert (tmp_path / "U" / f"00001.{etag}").read_bytes() == body
