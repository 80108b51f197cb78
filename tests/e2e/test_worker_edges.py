"""The edges of issue 12 through a real gunicorn: ranges, request targets, bodies.

Where gunicorn parses or frames something (the request line, Transfer-Encoding,
the length of a multipart answer on a kept-alive connection), the Flask test
client proves nothing: these requests go over raw sockets, byte for byte.
"""

from __future__ import annotations

import email
import email.policy
import os
import socket
from collections.abc import Iterator

import pytest

from tests.servers import Server

from ..oracle import md5
from ..oracle import multipart_etag
from .support import MIB
from .support import Api
from .support import address
from .support import raw_request
from .support import serve
from .support import stored_files

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(
        tmp_path_factory.mktemp("edges"),
        workers=2,
        MPUFLASK_MIN_PART_SIZE=str(MIB),
        MPUFLASK_DURABLE="false",
        MPUFLASK_CHUNK_SIZE=str(64 * 1024),
    ) as running:
        yield running


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    with Api(server) as client:
        yield client


def exchange(server: Server, request: bytes) -> bytes:
    """Send ``request`` as written; read until the server closes the connection."""
    with socket.create_connection(address(server), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def head_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ", 2)[1]), headers, body


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)


# -- 5. ranges ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_object(server: Server) -> tuple[str, bytes]:
    """Three parts, so ranges cross the files the object is stored in."""
    key = "ranges/big.bin"
    parts = [os.urandom(MIB), os.urandom(MIB), os.urandom(300_001)]
    with Api(server) as api:
        upload_id = api.create(key, **{"Content-Type": "video/mp4"})
        listed = [api.part(key, upload_id, n, d) for n, d in enumerate(parts, 1)]
        api.complete(key, upload_id, listed)
    return key, b"".join(parts)


def parts_of(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body,
        policy=email.policy.HTTP,
    )
    return [
        (part["Content-Type"], part["Content-Range"], part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


@pytest.mark.e2e
def test_several_ranges_stream_as_multipart_byteranges(
    api: Api, big_object: tuple[str, bytes]
) -> None:
    key, data = big_object
    size = len(data)
    wanted = [(MIB - 10, MIB + 200_000), (5, 9), (size - 100, size - 1)]
    header = "bytes=" + ",".join(f"{s}-{e}" for s, e in wanted)
    got = api.get(key, headers={"Range": header})
    assert got.status_code == 206, got.text
    assert got.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert got.headers["Content-Length"] == str(len(got.content))
    assert parts_of(got.headers["Content-Type"], got.content) == [
        ("video/mp4", f"bytes {s}-{e}/{size}", data[s : e + 1]) for s, e in wanted
    ]


@pytest.mark.e2e
def test_multipart_length_is_exact_on_a_kept_alive_connection(
    server: Server, big_object: tuple[str, bytes]
) -> None:
    """Two requests on one connection: a wrong Content-Length would desync them."""
    key, data = big_object
    target = f"/{key}?action=get"
    request = (
        f"GET {target} HTTP/1.1\r\nHost: e2e\r\nRange: bytes=0-0,-1\r\n\r\n"
        f"GET {target} HTTP/1.1\r\nHost: e2e\r\nRange: bytes=1-2\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer = exchange(server, request)
    status, headers, rest = head_and_body(answer)
    assert status == 206
    length = int(headers["content-length"])
    first, second = rest[:length], rest[length:]
    assert parts_of(headers["content-type"], first) == [
        ("video/mp4", f"bytes 0-0/{len(data)}", data[:1]),
        ("video/mp4", f"bytes {len(data) - 1}-{len(data) - 1}/{len(data)}", data[-1:]),
    ]
    status, headers, body = head_and_body(second)
    assert (status, body) == (206, data[1:3])
    assert headers["content-range"] == f"bytes 1-2/{len(data)}"


@pytest.mark.e2e
@pytest.mark.parametrize("header", ["items=0-1", "bytes=0-5,3-8", "bytes=x"])
def test_ranges_we_ignore_serve_the_whole_object(
    api: Api, big_object: tuple[str, bytes], header: str
) -> None:
    key, data = big_object
    got = api.get(key, headers={"Range": header})
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Accept-Ranges"] == "bytes"


@pytest.mark.e2e
def test_if_match_star_and_head_with_ranges(
    api: Api, big_object: tuple[str, bytes]
) -> None:
    key, data = big_object
    got = api.get(key, headers={"If-Match": "*", "Range": "bytes=0-1,4-5"})
    assert got.status_code == 206
    assert [p[2] for p in parts_of(got.headers["Content-Type"], got.content)] == [
        data[0:2],
        data[4:6],
    ]
    head = api.session.head(
        api.url(key), params={"action": "get"}, headers={"Range": "bytes=0-1,4-5"}
    )
    # RFC 9110 14.2: Range is for GET only; HEAD answers the whole object's headers.
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["Content-Length"]) == len(data)
    assert "Content-Range" not in head.headers


# -- 8. raw UTF-8 in the request target ---------------------------------------------


@pytest.mark.e2e
def test_raw_utf8_request_target_is_refused_by_gunicorn(
    server: Server, api: Api
) -> None:
    """A documented difference: gunicorn refuses it before the app runs.

    RFC 9112 3.2 / RFC 3986 2.1: a request target is ASCII; gunicorn checks
    this in both of its parsers and has no setting to relax it. Every HTTP
    client percent-encodes the path, and that form works.
    """
    before = stored_files(server.data_dir)
    answer = exchange(
        server,
        "POST /café.txt?action=mpu-create HTTP/1.1\r\nHost: e2e\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode(),
    )
    status, _, body = head_and_body(answer)
    assert status == 400
    assert b"Invalid HTTP request line" in body
    assert stored_files(server.data_dir) == before

    status, body, _ = raw_request(server, "POST", "/caf%C3%A9.txt?action=mpu-create")
    assert status == 200
    assert body.decode().startswith('{"key":"café.txt","uploadId":"')


# -- 3 and 9. empty parts, transfer codings ------------------------------------------


def _part_target(key: str, upload_id: str, number: int = 1) -> str:
    return f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber={number}"


@pytest.mark.e2e
def test_content_length_zero_through_gunicorn(api: Api) -> None:
    key = "bodies/empty.bin"
    upload_id = api.create(key)
    status, body, _ = raw_request(api.server, "PUT", _part_target(key, upload_id))
    assert status == 200
    assert body == b'{"partNumber":1,"etag":"%s"}' % EMPTY_MD5.encode()
    etag = api.complete(key, upload_id, [{"partNumber": 1, "etag": EMPTY_MD5}])
    assert etag == f'"{multipart_etag([b""])}"'
    api.assert_object(key, b"", etag)


@pytest.mark.e2e
def test_put_without_any_body_framing_is_missing_a_body(
    server: Server, api: Api
) -> None:
    key = "bodies/none.bin"
    upload_id = api.create(key)
    answer = exchange(
        server,
        f"PUT {_part_target(key, upload_id)} HTTP/1.1\r\nHost: e2e\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    status, _, body = head_and_body(answer)
    assert (status, body) == (400, b"Missing request body")
    assert api.parts_stored(key, upload_id) == []


@pytest.mark.e2e
@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate,chunked"])
def test_unknown_transfer_coding_is_refused_and_nothing_stored(
    server: Server, api: Api, coding: str
) -> None:
    key = "bodies/gzip.bin"
    upload_id = api.create(key)
    before = stored_files(server.data_dir)
    # No "Connection: close": the server must close on its own.
    answer = exchange(
        server,
        f"PUT {_part_target(key, upload_id)} HTTP/1.1\r\nHost: e2e\r\n"
        f"Transfer-Encoding: {coding}\r\n\r\n".encode()
        + chunked(b"\x1f\x8b\x08\x00 not what the client uploaded"),
    )
    status, headers, body = head_and_body(answer)
    assert status == 501
    assert body.decode() == (
        f"Transfer-Encoding {coding} is not supported: send the body as it is, "
        "with Content-Length or chunked; nothing was stored."
    )
    assert headers["connection"] == "close"
    assert stored_files(server.data_dir) == before
    assert api.parts_stored(key, upload_id) == []


@pytest.mark.e2e
def test_chunked_body_still_stored_as_sent(server: Server, api: Api) -> None:
    key = "bodies/chunked.bin"
    upload_id = api.create(key)
    data = os.urandom(5000)
    answer = exchange(
        server,
        f"PUT {_part_target(key, upload_id)} HTTP/1.1\r\nHost: e2e\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        + chunked(data),
    )
    status, _, body = head_and_body(answer)
    assert (status, body) == (200, b'{"partNumber":1,"etag":"%s"}' % md5(data).encode())


# -- 6 and 7. keys with a line feed, keys under static/ -----------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("path", "key"), [("a%0Ab%0Dc", "a\nb\rc"), ("static/logo.png", "static/logo.png")]
)
def test_any_key_round_trips_through_gunicorn(
    server: Server, api: Api, path: str, key: str
) -> None:
    data = b"bytes of " + path.encode()
    etag = api.upload(key, [data])
    status, body, response = raw_request(server, "GET", f"/{path}?action=get")
    assert (status, body) == (200, data)
    assert response.headers["etag"] == etag
