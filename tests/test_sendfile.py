"""GET bodies go out with sendfile(2) under gunicorn (issue 16).

The app is called as gunicorn calls it: ``environ["gunicorn.socket"]`` is one
end of a socket pair, ``start_response`` returns a ``write`` that sends the
head on that socket; the test reads the other end. ``os.sendfile`` is wrapped
to record its calls, so each test proves the bytes went by sendfile (or, for
the read-loop variant, that they did not) and that they are the object's.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from bench import variants
from mpuflask import create_app

PART = 300 * 1024
CHUNK = 64 * 1024
#: Three parts, the last one short; every byte distinct enough to place.
DATA = hashlib.sha256(b"sendfile").digest() * ((3 * PART - 1000) // 32)
SETTINGS = {
    "MPUFLASK_MIN_PART_SIZE": 1024,
    "MPUFLASK_CHUNK_SIZE": CHUNK,
    "MPUFLASK_SWEEP_ON_START": False,
}


@pytest.fixture
def sendfile_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every ``os.sendfile`` call as (in_fd, offset, bytes sent)."""
    calls: list[tuple[int, int, int]] = []
    real = os.sendfile

    def recording(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        sent = real(out_fd, in_fd, offset, count)
        calls.append((in_fd, offset or 0, sent))
        return sent

    monkeypatch.setattr(os, "sendfile", recording)
    return calls


def _store_object(app: Any) -> None:
    client = app.test_client()
    upload_id = client.post("/obj?action=mpu-create").get_json()["uploadId"]
    parts = []
    for number, start in enumerate(range(0, len(DATA), PART), 1):
        answer = client.put(
            f"/obj?action=mpu-uploadpart&uploadId={upload_id}&partNumber={number}",
            data=DATA[start : start + PART],
        )
        parts.append(answer.get_json())
    done = client.post(
        f"/obj?action=mpu-complete&uploadId={upload_id}", json={"parts": parts}
    )
    assert done.status_code == 200


def _serve(app: Callable[..., Iterable[bytes]], headers: dict[str, str]) -> bytes:
    """One GET of ``obj`` as gunicorn serves it; the raw answer as received."""
    server, client = socket.socketpair()
    received = bytearray()

    def read() -> None:
        while chunk := client.recv(1 << 20):
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        environ = EnvironBuilder(
            path="/obj", query_string="action=get", headers=headers
        ).get_environ()
        environ["gunicorn.socket"] = server

        def start_response(
            status: str, head: list[tuple[str, str]], *_: Any
        ) -> Callable[[bytes], None]:
            lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in head]
            sent_head = []

            def write(data: bytes) -> None:
                if not sent_head:
                    server.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                    sent_head.append(True)
                server.sendall(data)

            writes.append(write)
            return write

        writes: list[Callable[[bytes], None]] = []
        result = app(environ, start_response)
        for item in result:  # what the app did not send itself, as gunicorn does
            writes[-1](item)
        getattr(result, "close", lambda: None)()
    finally:
        server.close()
        reader.join(60)
        client.close()
    return bytes(received)


def _body(answer: bytes) -> tuple[str, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].decode().split(" ", 1)[1]
    length = [
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    assert length == [len(body)]
    return status, body


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        ({}, "200 OK", DATA),
        (
            {"Range": f"bytes={PART - 100}-{2 * PART + 99}"},
            "206 PARTIAL CONTENT",
            DATA[PART - 100 : 2 * PART + 100],
        ),
        ({"Range": "bytes=-5000"}, "206 PARTIAL CONTENT", DATA[-5000:]),
    ],
)
def test_a_get_is_sent_with_sendfile_part_by_part(
    tmp_path: Path,
    sendfile_calls: list[tuple[int, int, int]],
    headers: dict[str, str],
    status: str,
    expected: bytes,
) -> None:
    app = create_app({"MPUFLASK_DATA_DIR": str(tmp_path / "data"), **SETTINGS})
    _store_object(app)
    got_status, body = _body(_serve(app, headers))
    assert (got_status, body) == (status, expected)
    # Every byte went by sendfile, from the part files, a chunk at most a call.
    assert sum(sent for *_, sent in sendfile_calls) == len(expected)
    assert all(0 < sent <= CHUNK for *_, sent in sendfile_calls)


def test_several_ranges_send_the_object_bytes_with_sendfile(
    tmp_path: Path, sendfile_calls: list[tuple[int, int, int]]
) -> None:
    app = create_app({"MPUFLASK_DATA_DIR": str(tmp_path / "data"), **SETTINGS})
    _store_object(app)
    spans = [(10, 2000), (PART - 5, PART + 5), (2 * PART + 7, 2 * PART + 70000)]
    spec = ",".join(f"{a}-{b - 1}" for a, b in spans)
    status, body = _body(_serve(app, {"Range": f"bytes={spec}"}))
    assert status.startswith("206 ")
    for a, b in spans:
        assert DATA[a:b] in body
    assert sum(sent for *_, sent in sendfile_calls) == sum(b - a for a, b in spans)
    # The same body as a server without sendfile gets (the test client), but
    # for the random boundary.
    plain = app.test_client().get("/obj?action=get", headers={"Range": f"bytes={spec}"})
    boundary = plain.headers["Content-Type"].split("boundary=")[1].encode()
    sent_boundary = body.split(b"\r\n", 1)[0][2:]
    assert body.replace(sent_boundary, boundary) == plain.get_data()


def test_a_reader_that_stops_reading_hits_the_send_deadline(
    tmp_path: Path, sendfile_calls: list[tuple[int, int, int]]
) -> None:
    app = create_app(
        {
            "MPUFLASK_DATA_DIR": str(tmp_path / "data"),
            "MPUFLASK_SEND_TIMEOUT": 1,
            **SETTINGS,
        }
    )
    _store_object(app)
    server, client = socket.socketpair()  # nobody reads the client end
    try:
        environ = EnvironBuilder(path="/obj", query_string="action=get").get_environ()
        environ["gunicorn.socket"] = server
        with pytest.raises(TimeoutError):
            app(environ, lambda *_: server.sendall)
        assert 0 < sum(sent for *_, sent in sendfile_calls) < len(DATA)
    finally:
        server.close()
        client.close()


@pytest.mark.parametrize(
    ("builder", "uses_sendfile"), [("_sendfile_app", True), ("_readloop_app", False)]
)
def test_the_bench_variants_do_what_they_say(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sendfile_calls: list[tuple[int, int, int]],
    builder: str,
    uses_sendfile: bool,
) -> None:
    monkeypatch.setenv("MPUFLASK_DATA_DIR", str(tmp_path / "data"))
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, str(value).lower())
    app = getattr(variants, builder)()
    _store_object(app)
    status, body = _body(_serve(app, {}))
    assert (status, body) == ("200 OK", DATA)
    assert bool(sendfile_calls) is uses_sendfile


def test_only_a_body_in_files_is_sendable() -> None:
    """What ``isinstance(body, FileSegments)`` would tell (the check is made
    on every GET without the protocol's cost): a body in files (the
    filesystem store's) goes by sendfile; one without (the s3 store's) is
    iterated."""
    from mpuflask.sendfile import ObjectChunks
    from mpuflask.storage import FileSegments
    from mpuflask.storage.base import ObjectBody
    from mpuflask.storage.fsobject import FilesystemObjectBody
    from mpuflask.storage.s3io import S3ObjectBody

    class InFiles(ObjectBody):
        def file_segments(self, start: int, stop: int) -> Iterable[Any]:
            return iter(())

    class NotInFiles(ObjectBody):
        file_segments = None  # an attribute of that name is not enough

    assert issubclass(FilesystemObjectBody, FileSegments)
    assert not issubclass(S3ObjectBody, FileSegments)
    for body, sendable in (
        (InFiles(), True),
        (ObjectBody(), False),
        (NotInFiles(), False),
    ):
        assert ObjectChunks(body, [], CHUNK).sendable is sendable
