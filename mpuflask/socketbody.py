"""Reading a request body straight from gunicorn's socket.

gunicorn's ``wsgi.input`` hands a body over through two ``BytesIO`` buffers
and a fresh ``bytes`` object per ``recv``: each byte is copied about five
times, and every fresh megabyte faults its pages in. For a part of 10 MiB
that costs more CPU than the MD5 of it (bench/README.md, ninth round). A
body with a Content-Length, under gunicorn, is instead read with
``recv_into`` one reused buffer and copied out once.

gunicorn's reader stays in step: what it had read ahead is taken first,
nothing past the body's end is ever read (a pipelined next request stays
where gunicorn looks for it), its count of the body left is kept current,
so after the answer it discards an unread rest as before, and a read that
fails marks the body failed, so the connection is not reused. Anything else
(chunked, no socket, another server, a body someone began to read) is read
through ``wsgi.input`` as before.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Mapping
from typing import Any

from gunicorn.http.body import Body  # type: ignore[import-untyped]
from gunicorn.http.body import LengthReader
from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]


class SocketBody:
    """The rest of a Content-Length body, read from gunicorn's socket."""

    def __init__(self, sock: socket.socket, body: Any) -> None:
        self._sock = sock
        self._body = body
        self._reader = body.reader
        self._left: int = self._reader.length
        # What gunicorn read ahead: the body's first bytes, maybe more.
        unreader = self._reader.unreader
        ahead = unreader.buf.getvalue()
        self._ahead = memoryview(ahead)[: self._left]
        unreader.buf = io.BytesIO()
        unreader.buf.write(ahead[self._left :])  # a pipelined next request
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; short only where the body ends (or the
        client stopped sending: the caller counts what it got)."""
        want = min(size, self._left)
        if want <= 0:
            return b""
        if len(self._buffer) < want:
            self._buffer = bytearray(want)
        view = memoryview(self._buffer)
        got = min(len(self._ahead), want)
        if got:
            view[:got] = self._ahead[:got]
            self._ahead = self._ahead[got:]
        try:
            while got < want:
                count = self._sock.recv_into(view[got:want])
                if not count:
                    break  # the client closed early: nothing more will come
                got += count
        except BaseException:
            self._body.failed = True  # where the next request starts is unknown
            raise
        self._left -= got
        self._reader.length = self._left
        if got < want:
            self._body.failed = True
        return bytes(view[:got])


def socket_body(environ: Mapping[str, Any]) -> SocketBody | None:
    """A :class:`SocketBody` for this request, if it is served by gunicorn with
    a Content-Length body nobody has read from yet; else None."""
    sock: socket.socket | None = environ.get("gunicorn.socket")
    body: Any = environ.get("wsgi.input")
    if sock is None or type(body) is not Body:
        return None
    # Only the gunicorn we know: a release that renamed these reads as before.
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    declared = str(environ.get("CONTENT_LENGTH", "")).strip()
    reads_our_socket = getattr(unreader, "sock", None) is sock
    if (
        type(reader) is not LengthReader
        or not isinstance(unreader, SocketUnreader)
        or not reads_our_socket
        or not isinstance(getattr(unreader, "buf", None), io.BytesIO)
        or not isinstance(getattr(body, "buf", None), io.BytesIO)
        or body.buf.getvalue()  # someone began to read it
        or str(getattr(reader, "length", "")) != declared
    ):
        return None
    return SocketBody(sock, body)
