"""HTTP/1.1 message framing on kept-alive connections, under real gunicorn.

Raw sockets, as an attacker or a buggy client writes: a body that is itself a
request, pipelined requests behind a refusal, a chunked body that turns out
malformed only after the answer. Whatever the server answers, a request hidden
in a body never runs, and each request gets at most one response: after it the
connection either answers the next request or closes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mpuflask.worker import head_started

from .servers import Server
from .servers import gunicorn_server

#: Far above any wait here: only a hung server reaches it.
PATIENCE = 60.0
MAX_COMPLETE_BODY = 1000
MAX_PART = 100_000
VICTIM = b"victim bytes"
#: A request that must never run: it deletes the victim object.
SMUGGLED = (
    b"DELETE /victim?action=delete HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
)
#: The harmless next request; it closes the connection once answered.
HEALTH = b"GET /?action=health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
HEALTHY = b'{"status":"ok"}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: x", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _with_length(method: str, target: str, body: bytes, *headers: str) -> bytes:
    return _request(method, target, f"Content-Length: {len(body)}", *headers, body=body)


def _exchange(server: Server, data: bytes) -> bytes:
    """Send ``data`` at once, then read until the server closes (bounded)."""
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


def _answers(data: bytes) -> list[Answer]:
    """The responses in ``data``, in order (bodies framed by Content-Length)."""
    found = []
    while data:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, f"a response cut short: {head!r}"
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        found.append(Answer(int(lines[0].split()[1]), headers, data[:length]))
        data = data[length:]
    return found


def _victim_intact(server: Server) -> bool:
    got = requests.get(f"{server.url}victim?action=get", timeout=PATIENCE)
    return got.status_code == 200 and got.content == VICTIM


def _publish(server: Server, key: str, data: bytes) -> None:
    url = f"{server.url}{key}"
    upload_id = requests.post(f"{url}?action=mpu-create", timeout=PATIENCE).json()[
        "uploadId"
    ]
    part = requests.put(
        f"{url}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        data=data,
        timeout=PATIENCE,
    ).json()
    done = requests.post(
        f"{url}?action=mpu-complete&uploadId={upload_id}",
        json={"parts": [part]},
        timeout=PATIENCE,
    )
    assert done.status_code == 200, done.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One gunicorn (our worker) holding the victim object, for the module."""
    root: Path = tmp_path_factory.mktemp("framing")
    env = {
        "MPUFLASK_MIN_PART_SIZE": "1024",
        "MPUFLASK_MAX_PART_SIZE": str(MAX_PART),
        "MPUFLASK_MAX_COMPLETE_BODY": str(MAX_COMPLETE_BODY),
    }
    with gunicorn_server(root, workers=1, threads=4, env=env) as running:
        _publish(running, "victim", VICTIM)
        yield running


@pytest.fixture
def upload_id(server: Server) -> str:
    created = requests.post(f"{server.url}k?action=mpu-create", timeout=PATIENCE)
    upload_id: str = created.json()["uploadId"]
    return upload_id


def _parts(server: Server, upload_id: str) -> list[object]:
    listed = requests.get(
        f"{server.url}k?action=mpu-listparts&uploadId={upload_id}", timeout=PATIENCE
    )
    parts: list[object] = listed.json()["parts"]
    return parts


# -- a refusal before the body is read: the body is never a request -----------------

PART = "/k?action=mpu-uploadpart&uploadId={u}&partNumber=1"


@pytest.mark.parametrize(
    ("method", "target", "headers", "status", "text"),
    [
        ("PUT", "/k?action=mpu-uploadpart&partNumber=1", (), 400, "Missing partNumber or uploadId"),
        ("PUT", "/k?action=mpu-uploadpart&uploadId={u}&partNumber=x", (), 400, "Part number must be between 1 and 10000 (inclusive). Actual value was: x"),
        ("PUT", "/k?action=mpu-uploadpart&uploadId=nope&partNumber=1", (), 400, "uploadPart: The specified multipart upload does not exist. (10024)"),
        ("PUT", PART, (f"Content-Length: {MAX_PART + 1}",), 400, "uploadPart: Your proposed upload exceeds the maximum allowed object size. (100100)"),
        ("PUT", PART, ("Content-MD5: zz",), 400, "uploadPart: The Content-MD5 you specified is not valid. (InvalidDigest)"),
        ("PUT", "/k?action=nope", (), 400, "Unknown action nope for PUT"),
        ("PATCH", "/k?action=get", (), 405, "Method Not Allowed"),
        ("POST", "/k?action=mpu-complete&uploadId={u}", (), 400, "Missing or incomplete body: the body is not valid JSON"),
        ("POST", "/k?action=mpu-complete&uploadId={u}", (f"Content-Length: {MAX_COMPLETE_BODY + 1}",), 413, f"Request body too large: at most {MAX_COMPLETE_BODY} bytes"),
        ("GET", "/missing?action=get", (), 404, "Object Not Found"),
        ("DELETE", "/k?action=mpu-abort", (), 400, "Missing uploadId"),
    ],
)  # fmt: skip
def test_a_request_in_a_refused_body_never_runs(
    server: Server,
    upload_id: str,
    method: str,
    target: str,
    headers: tuple[str, ...],
    status: int,
    text: str,
) -> None:
    """The body is a request; a health check follows on the same connection."""
    target = target.format(u=upload_id)
    if headers and headers[0].startswith("Content-Length"):
        first = _request(method, target, *headers, body=SMUGGLED)
    else:
        first = _with_length(method, target, SMUGGLED, *headers)
    answers = _answers(_exchange(server, first + HEALTH))
    assert (answers[0].status, answers[0].body.decode()) == (status, text)
    # The health check is answered, or the connection closed before it.
    assert [(a.status, a.body) for a in answers[1:]] in ([], [(200, HEALTHY)])
    assert _victim_intact(server)
    assert _parts(server, upload_id) == []


# -- a chunked body found malformed only after the answer ----------------------------

MALFORMED_CHUNKED = {
    "chunk size": b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk terminator": b"5\r\nhelloXX0\r\n\r\n",
    "chunk extension": b"5;a\rb\r\nhello\r\n0\r\n\r\n",
    "trailer": b"5\r\nhello\r\n0\r\nno colon\r\n\r\n",
}


@pytest.mark.parametrize("body", MALFORMED_CHUNKED.values(), ids=MALFORMED_CHUNKED)
@pytest.mark.parametrize(
    ("method", "target", "status", "answer"),
    [
        ("GET", "/victim?action=get", 200, VICTIM),
        ("GET", "/?action=health", 200, HEALTHY),
        ("PUT", "/victim?action=nope", 400, b"Unknown action nope for PUT"),
    ],
)
def test_a_malformed_unread_body_gets_no_second_answer(
    server: Server, method: str, target: str, status: int, answer: bytes, body: bytes
) -> None:
    """The app answers without reading the body; the worker then reads the
    rest to throw it away and finds it malformed. The answer is out: one
    more (gunicorn's 400) would be taken by a pipelining client, or a proxy
    reusing the connection, for the answer to the next request. The
    connection closes instead, and the next request is never served."""
    first = _request(method, target, "Transfer-Encoding: chunked", body=body)
    answers = _answers(_exchange(server, first + HEALTH))
    assert [(a.status, a.body) for a in answers] == [(status, answer)]
    assert _victim_intact(server)


# -- an empty line between requests ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "started"),
    [(b"", False), (b"\r\n", False), (b"\r\n\r", False), (b"\r\n\r\n", False),
     (b"\r\nG", True), (b"G", True), (b"\n", True), (b"\r\r", True)],
)  # fmt: skip
def test_head_started(data: bytes, started: bool) -> None:
    assert head_started(data) is started


def test_an_empty_line_after_a_body_leaves_the_connection_idle(
    tmp_path: Path,
) -> None:
    """RFC 9112 2.2: a server ignores empty lines before a request line (old
    clients send a CRLF after a POST body). A kept-alive connection holding
    only that is idle: it closes quietly when keep-alive ends, with no 408
    for a request nobody sent (a client sending its next request then would
    take the 408 for its answer)."""
    env = {"GUNICORN_HEADER_TIMEOUT": "2", "GUNICORN_KEEPALIVE": "4"}
    with gunicorn_server(tmp_path, workers=1, threads=2, env=env) as idle:
        created = requests.post(f"{idle.url}k?action=mpu-create", timeout=PATIENCE)
        upload_id = created.json()["uploadId"]
        part = f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
        answers = _answers(
            _exchange(idle, _with_length("PUT", part, b"hello") + b"\r\n")
        )
        assert [(a.status, a.body) for a in answers] == [
            (200, b'{"partNumber":1,"etag":"5d41402abc4b2a76b9719d911017c592"}')
        ]
