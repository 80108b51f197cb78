"""Reading a request body straight from gunicorn's socket.

gunicorn's ``wsgi.input`` hands a body over through two ``BytesIO`` buffers
and a fresh ``bytes`` object per ``recv``: each byte is copied several times,
and fresh megabytes fault their pages in (``bench/body_reader.py``: about
1.2 s of CPU per GiB read, against 0.17 s here; bench/README.md, ninth
round). A body with a Content-Length, under gunicorn, is instead read with
``recv_into`` one reused buffer and copied out once.

gunicorn's reader stays in step: what it had read ahead leaves its buffer
only as it is read, nothing past the body's end is ever read (a pipelined
next request stays where gunicorn looks for it), and its count of the body
left is the one read down here, so whatever reads through gunicorn next (its
keep-alive drain of an unread rest, a hook's ``request.get_data()``) starts
where this stopped. A read that fails marks the body failed, so the
connection is not reused. Anything else (chunked, no socket, another server,
a body someone began to read) is read through ``wsgi.input`` as before.
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
    """The rest of a Content-Length body, read from gunicorn's socket.

    gunicorn's reader is a valid reader of the same body at every moment:
    its read-ahead leaves its buffer only as it is read, and its count of
    the body left is the one this reads down.
    """

    def __init__(self, sock: socket.socket, body: Any) -> None:
        self._sock = sock
        self._body = body
        self._reader = body.reader
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; short only where the body ends (or the
        client stopped sending: the caller counts what it got)."""
        if self._body.buf.tell():  # someone read through gunicorn meanwhile
            data: bytes = self._body.read(size)
            return data
        reader = self._reader
        want = min(size, reader.length)
        if want <= 0:
            return b""
        if len(self._buffer) < want:
            self._buffer = bytearray(want)
        view = memoryview(self._buffer)
        got = self._take_read_ahead(view[:want])
        try:
            while got < want:
                count = self._sock.recv_into(view[got:want])
                if not count:
                    break  # the client closed early: nothing more will come
                got += count
        except BaseException:
            self._body.failed = True  # where the next request starts is unknown
            raise
        finally:
            reader.length -= got
        if got < want:
            self._body.failed = True
        return bytes(view[:got])

    def _take_read_ahead(self, into: memoryview) -> int:
        """Move what gunicorn read ahead (up to ``len(into)`` bytes of this
        body) into ``into``; the rest stays in its buffer."""
        unreader = self._reader.unreader
        ahead = unreader.buf.getvalue()
        taken = min(len(ahead), len(into))
        if taken:
            into[:taken] = memoryview(ahead)[:taken]
            unreader.buf = io.BytesIO()
            unreader.buf.write(ahead[taken:])
        return taken


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
