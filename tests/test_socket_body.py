"""Bodies read straight from gunicorn's socket (mpuflask/socketbody.py).

gunicorn's own parser over a real socket pair: the body is read with
``recv_into`` and comes out exactly as sent, in chunks short only at its
end; gunicorn's reader stays in step, so a pipelined next request is parsed
as before; a body that ends early or stalls marks the connection unusable.
Anything but a fresh Content-Length body is left to ``wsgi.input``. Under
a real gunicorn: parts stored exactly, keep-alive and pipelining intact.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.http.parser import RequestParser  # type: ignore[import-untyped]
from gunicorn.http.wsgi import create  # type: ignore[import-untyped]

from mpuflask.socketbody import socket_body

from .servers import gunicorn_server

#: Generous: a loaded machine may be slow to hand bytes across a socket pair.
WAIT = 60.0


@contextmanager
def connection(data: bytes, close: bool = True) -> Iterator[socket.socket]:
    """The server end of a socket pair whose client sent ``data`` (and then
    closed its side, with ``close``)."""
    server, client = socket.socketpair()
    server.settimeout(WAIT)

    def send() -> None:
        client.sendall(data)
        if close:
            client.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        yield server
    finally:
        sender.join(WAIT)
        server.close()
        client.close()


def parse(sock: socket.socket) -> tuple[RequestParser, Any, dict[str, Any]]:
    parser = RequestParser(Config(), sock, ("127.0.0.1", 1))
    req = next(parser)
    _, environ = create(req, sock, ("127.0.0.1", 1), ("127.0.0.1", 2), Config())
    return parser, req, environ


def head(length: int, path: str = "/k") -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n".encode()
    )


def read_all(reader: Any, size: int) -> list[bytes]:
    chunks = []
    while chunk := reader.read(size):
        chunks.append(chunk)
    return chunks


@pytest.mark.parametrize("length", [0, 1, 4096, 65_537, 3 * 2**20 + 5])
@pytest.mark.parametrize("size", [1000, 2**20])
def test_the_body_comes_out_exactly_and_the_next_request_still_parses(
    length: int, size: int
) -> None:
    body = os.urandom(length)
    follow = b"GET /next?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    with connection(head(length) + body + follow, close=False) as sock:
        parser, req, environ = parse(sock)
        reader = socket_body(environ)
        assert reader is not None
        chunks = read_all(reader, size)
        assert b"".join(chunks) == body
        # Short only at the end.
        assert all(len(chunk) == size for chunk in chunks[:-1])
        assert req.body.reader.length == 0
        assert req.body.failed is False
        nxt = next(parser)  # gunicorn finds the pipelined request where it was
        assert (nxt.method, nxt.path, nxt.query) == ("GET", "/next", "x=1")
        assert nxt.body.read(10) == b"abc"


FOLLOW = b"GET /next?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"


@pytest.mark.parametrize("first_read", [None, 10, 99])
def test_gunicorn_drains_an_unread_rest_and_finds_the_next_request(
    first_read: int | None,
) -> None:
    """A refusal after some of the body (or none of it: the reader made, never
    read): gunicorn's keep-alive drain discards exactly the rest."""
    body = b"B" * 100
    with connection(head(100) + body + FOLLOW, close=False) as sock:
        parser, _, environ = parse(sock)
        reader = socket_body(environ)
        assert reader is not None
        if first_read is not None:
            assert reader.read(first_read) == body[:first_read]
        assert parser.finish_body() is True
        nxt = next(parser)
        assert (nxt.method, nxt.path) == ("GET", "/next")


def test_a_request_hidden_in_the_next_body_is_never_parsed() -> None:
    """Draining from the wrong place would parse a request smuggled inside
    the next request's body; the next request is the outer one."""
    inner = b"GET /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    outer_head = "PUT /outer HTTP/1.1\r\nHost: a\r\nContent-Length: {:04d}\r\n\r\n"
    outer_body = b"p" * (90 - len(outer_head.format(0))) + inner
    outer = outer_head.format(len(outer_body)).encode() + outer_body
    with connection(head(100) + b"B" * 100 + outer, close=False) as sock:
        parser, _, environ = parse(sock)
        reader = socket_body(environ)
        assert reader is not None
        assert reader.read(10) == b"B" * 10
        assert parser.finish_body() is True
        assert next(parser).path == "/outer"


def test_wsgi_input_reads_on_where_the_socket_reader_stopped_and_back() -> None:
    """A hook's ``request.get_data()`` after our reads gets the rest of the
    body, and reads through gunicorn and from the socket interleave."""
    body = bytes(range(256)) * 40
    with connection(head(len(body)) + body + FOLLOW, close=False) as sock:
        parser, _, environ = parse(sock)
        reader = socket_body(environ)
        assert reader is not None
        got = reader.read(10)
        got += environ["wsgi.input"].read(5)
        got += reader.read(1000)
        got += environ["wsgi.input"].read()
        assert got == body
        assert reader.read(10) == b""
        assert parser.finish_body() is True
        assert next(parser).path == "/next"


def test_a_body_that_ends_early_comes_out_short_and_the_connection_is_not_reused() -> (
    None
):
    with connection(head(10_000) + b"x" * 4000) as sock:
        parser, req, environ = parse(sock)
        reader = socket_body(environ)
        assert reader is not None
        assert b"".join(read_all(reader, 2**20)) == b"x" * 4000
        assert req.body.failed is True
        assert parser.finish_body() is False


def test_a_stalled_body_times_out_and_the_connection_is_not_reused() -> None:
    server, client = socket.socketpair()
    with server, client:
        client.sendall(head(100) + b"y" * 10)
        parser, req, environ = parse(server)
        reader = socket_body(environ)
        assert reader is not None
        assert reader.read(5) == b"yyyyy"
        server.settimeout(0.05)  # nothing more is sent: the timeout is the point
        with pytest.raises(TimeoutError):
            reader.read(100)
        assert req.body.failed is True
        assert parser.finish_body() is False


def test_anything_but_a_fresh_content_length_body_is_left_to_wsgi_input() -> None:
    chunked = b"PUT /k HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    with connection(chunked + b"3\r\nabc\r\n0\r\n\r\n") as sock:
        _, _, environ = parse(sock)
        assert socket_body(environ) is None
        assert environ["wsgi.input"].read() == b"abc"
    with connection(head(6) + b"abcdef") as sock:
        _, _, environ = parse(sock)
        assert environ["wsgi.input"].read(2) == b"ab"  # someone began reading
        assert socket_body(environ) is None
        assert environ["wsgi.input"].read() == b"cdef"
    with connection(head(3) + b"abc") as sock:
        _, _, environ = parse(sock)
        assert socket_body({**environ, "gunicorn.socket": None}) is None
        with socket.socket() as other:
            assert socket_body({**environ, "gunicorn.socket": other}) is None
    assert socket_body({"wsgi.input": object()}) is None


def test_a_gunicorn_whose_reader_changed_shape_is_read_through_wsgi_input() -> None:
    with connection(head(3) + b"abc") as sock:
        _, req, environ = parse(sock)
        del req.body.reader.unreader.buf  # as if a release renamed it
        assert socket_body(environ) is None
    with connection(head(3) + b"abc") as sock:
        _, req, environ = parse(sock)
        del req.body.reader.length
        assert socket_body(environ) is None


def test_under_gunicorn_parts_are_stored_exactly_and_pipelining_works(
    tmp_path: Path,
) -> None:
    env = {"MPUFLASK_MIN_PART_SIZE": "1", "MPUFLASK_CHUNK_SIZE": "65536"}
    with gunicorn_server(tmp_path, workers=1, threads=4, env=env) as server:
        created = requests.post(f"{server.url}obj?action=mpu-create", timeout=WAIT)
        upload_id = created.json()["uploadId"]
        parts = [os.urandom(3 * 2**20 + 11), os.urandom(777)]
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        target = f"/obj?action=mpu-uploadpart&uploadId={upload_id}&partNumber="
        pipelined = b"".join(
            f"PUT {target}{n} HTTP/1.1\r\nHost: a\r\n"
            f"Content-Length: {len(part)}\r\n\r\n".encode()
            + part
            for n, part in enumerate(parts, 1)
        )
        with socket.create_connection(("127.0.0.1", port), WAIT) as sock:
            sock.sendall(pipelined)
            answers = b""
            while answers.count(b"HTTP/1.1 200") < 2 or not answers.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, answers
                answers += chunk
        for part in parts:
            assert hashlib.md5(part).hexdigest().encode() in answers
        refs = [
            {"partNumber": n, "etag": hashlib.md5(part).hexdigest()}
            for n, part in enumerate(parts, 1)
        ]
        done = requests.post(
            f"{server.url}obj?action=mpu-complete&uploadId={upload_id}",
            json={"parts": refs},
            timeout=WAIT,
        )
        assert done.status_code == 200, done.text
        got = requests.get(f"{server.url}obj?action=get", timeout=WAIT)
        assert got.content == b"".join(parts)
