"""Conditional and ranged GET/HEAD under real gunicorn, on raw sockets.

What the test client cannot show: gunicorn joins repeated header lines with
"," before the app reads them, and sends a GET's ranges with sendfile from the
part files (mpuflask/sendfile.py). The object has three parts; the ranges
cross their boundaries.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from .servers import Server
from .servers import gunicorn_server

PATIENCE = 60.0
PART = 1024
#: Three parts, the last one short; no two windows of bytes alike.
PARTS = [hashlib.sha256(bytes([n])).digest() * (PART // 32) for n in (1, 2)] + [b"end"]
DATA = b"".join(PARTS)
SIZE = len(DATA)
EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


@dataclass
class Stored:
    server: Server
    etag: str
    last_modified: str

    def send(self, method: str, *headers: str) -> tuple[int, dict[str, str], bytes]:
        """One request on its own connection: status, headers, body as sent."""
        port = int(self.server.url.rsplit(":", 1)[1].strip("/"))
        lines = [f"{method} /obj?action=get HTTP/1.1", "Host: x", "Connection: close"]
        request = "\r\n".join([*lines, *headers]) + "\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
            sock.sendall(request.encode("latin-1"))
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status, *fields = head.decode("latin-1").split("\r\n")
        found = {}
        for field in fields:
            name, _, value = field.partition(":")
            found[name.strip().lower()] = value.strip()
        return int(status.split()[1]), found, body


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    root = tmp_path_factory.mktemp("conditional")
    env = {"MPUFLASK_MIN_PART_SIZE": str(PART), "MPUFLASK_CHUNK_SIZE": "100"}
    with gunicorn_server(root, workers=1, threads=2, env=env) as server:
        url = f"{server.url}obj"
        created = requests.post(
            f"{url}?action=mpu-create",
            headers={"Content-Type": "text/plain"},
            timeout=PATIENCE,
        )
        upload_id = created.json()["uploadId"]
        parts = [
            requests.put(
                f"{url}?action=mpu-uploadpart&uploadId={upload_id}&partNumber={n}",
                data=data,
                timeout=PATIENCE,
            ).json()
            for n, data in enumerate(PARTS, 1)
        ]
        requests.post(
            f"{url}?action=mpu-complete&uploadId={upload_id}",
            json={"parts": parts},
            timeout=PATIENCE,
        ).raise_for_status()
        whole = requests.get(f"{url}?action=get", timeout=PATIENCE)
        assert whole.content == DATA
        yield Stored(server, whole.headers["etag"], whole.headers["Last-Modified"])


def test_repeated_date_lines_are_ignored(stored: Stored) -> None:
    """gunicorn joins two lines into "a,b": not one HTTP-date, so ignored
    (RFC 9110 13.1.3, 13.1.4). The first date was read: 304 and 412."""
    lm = stored.last_modified
    modified = stored.send(
        "GET", f"If-Modified-Since: {lm}", f"If-Modified-Since: {EPOCH}"
    )
    assert (modified[0], modified[2]) == (200, DATA)
    unmodified = stored.send(
        "GET", f"If-Unmodified-Since: {EPOCH}", f"If-Unmodified-Since: {lm}"
    )
    assert (unmodified[0], unmodified[2]) == (200, DATA)
    # One line each is read; two etag lines are one list.
    assert stored.send("GET", f"If-Modified-Since: {lm}")[0] == 304
    assert stored.send("GET", f"If-Unmodified-Since: {EPOCH}")[0] == 412
    etags = stored.send("GET", 'If-None-Match: "x"', f"If-None-Match: {stored.etag}")
    assert etags[:3:2] == (304, b"")
    assert etags[1]["etag"] == stored.etag


def test_head_ignores_range_and_matches_the_whole_get(stored: Stored) -> None:
    """RFC 9110 14.2: Range is for GET only. It was 206 (or 416) on HEAD."""
    status, whole, body = stored.send("GET")
    assert (status, body) == (200, DATA)
    for spec in ("bytes=1000-1100", "bytes=0-1,2047-2050", f"bytes={SIZE}-"):
        status, head, body = stored.send("HEAD", f"Range: {spec}")
        assert (status, body) == (200, b""), spec
        assert {k: v for k, v in head.items() if k not in ("date", "x-request-id")} == {
            k: v for k, v in whole.items() if k not in ("date", "x-request-id")
        }


@pytest.mark.parametrize(
    "spec",
    ["bytes=1000-1100", "bytes=1023-2048", f"bytes=-{SIZE + 10}", "bytes=2047-"],
)
def test_one_range_sends_exactly_its_bytes(stored: Stored, spec: str) -> None:
    status, headers, body = stored.send("GET", f"Range: {spec}")
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", headers["content-range"])
    assert status == 206 and match is not None
    start, end, size = map(int, match.groups())
    assert size == SIZE and body == DATA[start : end + 1]
    assert headers["content-length"] == str(len(body))
    assert headers["etag"] == stored.etag
    assert headers["last-modified"] == stored.last_modified
    assert (headers["accept-ranges"], headers["content-type"]) == (
        "bytes",
        "text/plain",
    )


def test_several_ranges_are_exact_multipart(stored: Stored) -> None:
    asked = [(SIZE - 2, SIZE - 1), (0, 3), (1020, 2047)]
    spec = "bytes=-2, 0-3,1020-2047"
    status, headers, body = stored.send("GET", f"Range: {spec}")
    assert status == 206
    assert headers["content-length"] == str(len(body))
    assert "content-range" not in headers
    message = email.message_from_bytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body,
        policy=email.policy.HTTP,
    )
    assert [
        (part["Content-Type"], part["Content-Range"], part.get_payload(decode=True))
        for part in message.iter_parts()
    ] == [
        ("text/plain", f"bytes {start}-{end}/{SIZE}", DATA[start : end + 1])
        for start, end in asked
    ]
    status, headers, _ = stored.send("GET", f"Range: bytes={SIZE}-")
    assert (status, headers["content-range"]) == (416, f"bytes */{SIZE}")
