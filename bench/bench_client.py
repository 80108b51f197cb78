"""A minimal keep-alive HTTP/1.1 client for the server benchmark.

The client shares the machine's two cores with the servers it measures, so it
must cost as little as possible per request: requests are built as bytes, heads
parsed with ``bytes.split``, bodies read with ``recv_into`` a reused buffer. It
speaks only what the benchmark needs (Content-Length framing, and small chunked
answers, which tus sends).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to ``127.0.0.1:port``."""

    def __init__(self, port: int, timeout: float = 600.0) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.scratch = memoryview(bytearray(MIB))

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer.clear()
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(
        self,
        method: str,
        target: str,
        body: bytes | memoryview = b"",
        headers: dict[str, str] | None = None,
        *,
        keep_body: bool = True,
    ) -> Answer:
        """Send one request and read its answer; ``keep_body=False`` discards
        the body as it arrives (its length is in ``headers``)."""
        sock = self._connect()
        head = [f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n")
        if body or method in ("PUT", "POST", "PATCH"):
            head.append(f"Content-Length: {len(body)}\r\n")
        head.append("\r\n")
        data = "".join(head).encode("latin-1")
        if len(body) <= 64 * 1024:
            sock.sendall(data + bytes(body))
        else:
            sock.sendall(data)
            sock.sendall(body)
        return self._answer(method, keep_body)

    def _answer(self, method: str, keep_body: bool) -> Answer:
        sock = self.sock
        assert sock is not None
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                self.close()
                raise ConnectionError("the server closed the connection")
            buffer += chunk
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        del buffer[: end + 4]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            body = self._chunked()
            if headers.get("connection", "").lower() == "close":
                self.close()
            return Answer(status, headers, body)
        length = int(headers.get("content-length", "0"))
        if method == "HEAD" or status in (204, 304):
            length = 0
        body = self._body(length, keep_body)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, body)

    def _line(self) -> bytes:
        sock = self.sock
        assert sock is not None
        while (end := self.buffer.find(b"\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed mid-body")
            self.buffer += chunk
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _chunked(self) -> bytes:
        """A chunked body (tus answers so), kept whole: they are small."""
        parts = []
        while size := int(self._line().split(b";")[0], 16):
            parts.append(self._body(size, True))
            self._line()
        while self._line():  # trailers, then the blank line
            pass
        return b"".join(parts)

    def _body(self, length: int, keep: bool) -> bytes:
        sock = self.sock
        assert sock is not None
        buffer = self.buffer
        if len(buffer) >= length:
            body = bytes(buffer[:length])
            del buffer[:length]
            return body if keep else b""
        left = length - len(buffer)
        if keep:
            parts = [bytes(buffer)]
            buffer.clear()
            while left > 0:
                chunk = sock.recv(min(left, MIB))
                if not chunk:
                    raise ConnectionError("the server closed mid-body")
                parts.append(chunk)
                left -= len(chunk)
            return b"".join(parts)
        buffer.clear()
        scratch = self.scratch
        while left > 0:
            count = sock.recv_into(scratch, min(left, MIB))
            if not count:
                raise ConnectionError("the server closed mid-body")
            left -= count
        return b""


def expect(answer: Answer, status: int, what: str) -> Answer:
    """The answer, if its status is ``status``; else a RuntimeError naming it."""
    if answer.status != status:
        raise RuntimeError(f"{what}: {answer.status} {answer.body[:200]!r}")
    return answer
