"""Sending an object's bytes with ``sendfile(2)``: no copy through Python.

A GET's body is an :class:`ObjectChunks`: the object's ranges (and, for
several ranges, the multipart heads between them), in order. Any WSGI server
can iterate it (the bytes are read in ``MPUFLASK_CHUNK_SIZE`` reads). Under
gunicorn, :class:`SendfileMiddleware` sends it instead: the status line and
headers through the server's ``write``, then each range straight from the part
files to the socket with ``os.sendfile``, part by part, ranges and all.
gunicorn's own ``wsgi.file_wrapper`` cannot do this: it sends one file from its
current position, and an object is several part files.

The send deadline (:mod:`mpuflask.deadlines`) holds as for a written body:
every ``MPUFLASK_CHUNK_SIZE`` bytes must leave within the socket's timeout
(``MPUFLASK_SEND_TIMEOUT``), or ``TimeoutError`` ends the response.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import IO
from typing import Any
from typing import cast

from .ranges import ByteRange
from .ranges import read_range
from .storage import FileSegments
from .storage import ObjectBody


class ObjectChunks:
    """A response body: pieces of bytes and ranges of ``body``, in order.

    Iterating reads the ranges in chunks of ``chunk_size``; :meth:`send`
    copies them with sendfile where the body is made of files. ``close``
    releases the body (the version it pins).
    """

    def __init__(
        self,
        body: ObjectBody,
        pieces: Sequence[bytes | ByteRange],
        chunk_size: int,
    ) -> None:
        self.body = body
        self.pieces = pieces
        self.chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        stream = cast(IO[bytes], self.body)
        for piece in self.pieces:
            if isinstance(piece, bytes):
                yield piece
            else:
                yield from read_range(stream, piece, self.chunk_size)

    def close(self) -> None:
        self.body.close()

    @property
    def sendable(self) -> bool:
        """Whether the body's bytes are in files sendfile can copy from.

        What ``isinstance(body, FileSegments)`` tells, without its cost: a
        runtime-checkable protocol's check takes ~6 us, on every GET."""
        return callable(getattr(self.body, "file_segments", None))

    def send(self, sock: socket.socket) -> int:
        """Send every piece on ``sock``; return the bytes sent."""
        body = cast(FileSegments, self.body)
        timeout = sock.gettimeout()
        sent = 0
        for piece in self.pieces:
            if isinstance(piece, bytes):
                sock.sendall(piece)
                sent += len(piece)
                continue
            for fd, offset, count in body.file_segments(piece.start, piece.stop):
                send_file(sock, fd, offset, count, self.chunk_size, timeout)
                sent += count
        return sent


def send_file(
    sock: socket.socket,
    fd: int,
    offset: int,
    count: int,
    chunk_size: int,
    timeout: float | None,
) -> None:
    """``count`` bytes of ``fd`` from ``offset`` to ``sock``, by sendfile.

    Each ``chunk_size`` bytes must be sent within ``timeout`` seconds (None:
    no deadline): a reader that stopped reading raises TimeoutError.
    """
    out = sock.fileno()
    while count > 0:
        step = min(count, chunk_size)
        deadline = None if timeout is None else time.monotonic() + timeout
        while step > 0:
            try:
                sent = os.sendfile(out, fd, offset, step)
            except BlockingIOError:
                _wait_writable(out, deadline)
                continue
            if sent == 0:
                # The Content-Length is promised: fail the response.
                raise OSError(errno.EIO, "the object ended early")
            offset += sent
            step -= sent
            count -= sent


def _wait_writable(fd: int, deadline: float | None) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    if deadline is None:
        poller.poll()
        return
    left = deadline - time.monotonic()
    if left <= 0 or not poller.poll(left * 1000):
        raise TimeoutError("the client stopped reading")


StartResponse = Callable[..., Callable[[bytes], Any]]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SendfileMiddleware:
    """WSGI middleware: an :class:`ObjectChunks` body goes out by sendfile.

    Only under gunicorn (``environ["gunicorn.socket"]``), on a plain TCP or
    Unix socket (never TLS), when the server handed out its ``write``; any
    other server, or a HEAD, 304 or 416, is served as the app answered.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        writes: list[Callable[[bytes], Any]] = []

        def start(*args: Any) -> Callable[[bytes], Any]:
            write = start_response(*args)
            writes.append(write)
            return write

        result = self.app(environ, start)
        sock = environ.get("gunicorn.socket")
        if (
            not isinstance(result, ObjectChunks)
            or not result.sendable
            or not writes
            or type(sock) is not socket.socket  # not TLS (ssl.SSLSocket)
        ):
            return result
        try:
            writes[-1](b"")  # the status line and headers, now
            result.send(sock)
        finally:
            result.close()
        return []
