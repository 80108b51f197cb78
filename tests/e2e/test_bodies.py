"""Part bodies as they really arrive: chunked, or cut off by the client."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator

import pytest

from tests.servers import Server

from ..oracle import md5
from .support import MIB
from .support import Api
from .support import address
from .support import serve
from .support import wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(
        tmp_path_factory.mktemp("bodies"),
        MPUFLASK_MIN_PART_SIZE=str(MIB),
        MPUFLASK_DURABLE="false",
    ) as running:
        yield running


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    with Api(server) as client:
        yield client


def pieces(data: bytes, seed: int) -> Iterator[bytes]:
    """``data`` in pieces of uneven sizes, as a generator (so: no length)."""
    rng = random.Random(seed)
    offset = 0
    while offset < len(data):
        size = rng.randint(1, 200_000)
        yield data[offset : offset + size]
        offset += size


@pytest.mark.e2e
def test_parts_without_content_length_stream_whole(api: Api) -> None:
    key = "chunked/upload.bin"
    parts = [os.urandom(2 * MIB) for _ in range(3)] + [os.urandom(300_001)]
    upload_id = api.create(key)
    listed = []
    for number, data in reversed(list(enumerate(parts, 1))):
        response = api.put_part(key, upload_id, number, pieces(data, number))
        sent = response.request.headers
        assert sent.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in sent
        assert response.status_code == 200, response.text
        assert response.json() == {"partNumber": number, "etag": md5(data)}
        listed.insert(0, response.json())

    etag = api.complete(key, upload_id, listed)
    api.assert_object(key, b"".join(parts), etag)


def _cut_off_part(
    server: Server, key: str, upload_id: str, framing: str, half_close: bool = False
) -> bytes:
    """Start a 10 MiB part, send 1 MiB of it, wait until it is on disk, hang up.

    With ``half_close`` only our sending side is shut, so the server's answer
    can still be read (and is returned); else the socket is closed outright.
    """
    tmp = server.data_dir / "tmp"
    assert list(tmp.iterdir()) == []
    target = f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    sent = os.urandom(MIB)
    if framing == "content-length":
        head = f"Content-Length: {10 * MIB}"
        body = sent
    else:
        # 1 MiB in whole chunks, then a chunk that promises 9 MiB more.
        head = "Transfer-Encoding: chunked"
        whole = b"".join(
            b"%x\r\n%s\r\n" % (len(piece), piece)
            for piece in (sent[i : i + 65536] for i in range(0, len(sent), 65536))
        )
        body = whole + b"%x\r\n" % (9 * MIB)
    with socket.create_connection(address(server), timeout=30) as sock:
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: e2e\r\n{head}\r\n\r\n".encode())
        sock.sendall(body)

        def received_all_we_sent() -> bool:
            return [f.stat().st_size for f in tmp.iterdir()] == [MIB]

        wait_for(received_all_we_sent, "the server to write the 1 MiB it was sent")
        answer = b""
        if half_close:
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):  # until the server closes
                answer += chunk
    # The server has seen the end of the stream, 9 MiB early.
    wait_for(lambda: list(tmp.iterdir()) == [], "the server to drop its temp file")
    return answer


@pytest.mark.e2e
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_client_gone_mid_part_leaves_the_upload_usable(
    server: Server, api: Api, framing: str
) -> None:
    key = f"cut/usable-{framing}.bin"
    upload_id = api.create(key)
    _cut_off_part(server, key, upload_id, framing)

    parts = [os.urandom(MIB), os.urandom(5000)]
    listed = [api.part(key, upload_id, n, data) for n, data in enumerate(parts, 1)]
    etag = api.complete(key, upload_id, listed)
    api.assert_object(key, b"".join(parts), etag)
    assert list((server.data_dir / "tmp").iterdir()) == []


@pytest.mark.e2e
@pytest.mark.parametrize(
    "framing",
    [
        "content-length",
        "chunked",
    ],
)
def test_client_gone_mid_part_stores_no_part(
    server: Server, api: Api, framing: str
) -> None:
    key = f"cut/nothing-{framing}.bin"
    upload_id = api.create(key)
    _cut_off_part(server, key, upload_id, framing)

    assert api.parts_stored(key, upload_id) == []


@pytest.mark.e2e
@pytest.mark.parametrize(
    "framing",
    [
        "content-length",
        "chunked",
    ],
)
def test_body_cut_short_is_refused_as_the_clients_fault(
    server: Server, api: Api, framing: str
) -> None:
    key = f"cut/answered-{framing}.bin"
    upload_id = api.create(key)
    answer = _cut_off_part(server, key, upload_id, framing, half_close=True)

    status = int(answer.split(b" ", 2)[1])  # from "HTTP/1.1 <status> <reason>"
    stored = api.parts_stored(key, upload_id)
    assert (status, stored) == (400, []), answer.decode(errors="replace")


@pytest.mark.e2e
def test_a_complete_body_cut_short_is_refused_and_publishes_nothing(
    server: Server, api: Api
) -> None:
    """gunicorn ends a short body quietly, and 12 of a promised 40 bytes,
    ``{"parts":[]}``, were read as a whole complete: an empty object was
    published. Now: 400, ``Connection: close``, nothing published."""
    key = "cut/complete.bin"
    upload_id = api.create(key)
    listed = [api.part(key, upload_id, 1, b"kept")]
    sent = b'{"parts":[]}'
    target = f"/{key}?action=mpu-complete&uploadId={upload_id}"
    _, text = _closing_answer(server, f"POST {target}", 40, sent, half_close=True)
    assert text == b"The request body ended after 12 of 40 bytes"
    api.assert_absent(key)
    etag = api.complete(key, upload_id, listed)  # the upload is still open
    api.assert_object(key, b"kept", etag)


@pytest.mark.e2e
def test_a_part_refused_on_its_headers_is_not_read_to_its_end(
    server: Server, api: Api
) -> None:
    """A part refused before its body is read (no such upload) used to say
    keep-alive, and gunicorn then read up to 5 s of the declared gigabyte to
    throw away, in a worker thread. Now the answer closes the connection."""
    target = "/refused.bin?action=mpu-uploadpart&uploadId=nope&partNumber=1"
    _closing_answer(server, f"PUT {target}", 1 << 30, b"x" * 65536)
    api.assert_absent("refused.bin")


def _closing_answer(
    server: Server, request: str, length: int, sent: bytes, half_close: bool = False
) -> tuple[bytes, bytes]:
    """Send ``request`` with a Content-Length of ``length`` and the bytes
    ``sent``; read until the server closes. Checks that the answer is a 400
    that says ``Connection: close``; returns its head and body."""
    with socket.create_connection(address(server), timeout=30) as sock:
        head = f"{request} HTTP/1.1\r\nHost: e2e\r\nContent-Length: {length}\r\n\r\n"
        sock.sendall(head.encode() + sent)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes
            answer += chunk
    answer_head, _, text = answer.partition(b"\r\n\r\n")
    assert answer_head.startswith(b"HTTP/1.1 400 "), answer
    assert b"\r\nConnection: close" in answer_head, answer_head
    return answer_head, text
