"""Deadlines for slow clients: bodies that trickle, readers that stop reading.

A worker thread serves one connection at a time (gunicorn's gthread worker and
``mpuflask.worker``), so a client that sends or reads slowly holds a thread.
Two rules, both app settings, bound how long (the header deadline is the
worker's, ``mpuflask/worker.py``):

* **Body pace.** Reading a request body, a silence of ``MPUFLASK_BODY_TIMEOUT``
  seconds is cut off with 408, and so is a body from which fewer than
  ``MPUFLASK_BODY_MIN_RATE`` x ``MPUFLASK_BODY_RATE_WINDOW`` bytes arrived in
  the last ``MPUFLASK_BODY_RATE_WINDOW`` seconds we spent waiting for it. A
  socket timeout only bounds each ``recv``, and one ``read(1 MiB)`` is many of
  them: a client sending a byte per timeout would never be cut. So a watchdog
  thread per process samples the kernel's count of bytes received on the
  socket (Linux ``TCP_INFO``) while a read is waiting, and shuts the socket's
  read side when the pace is too low, which wakes the read. Time the app spends
  elsewhere (writing to disk, waiting for a lock) is never counted against the
  client. Without ``TCP_INFO`` (a Unix socket, another OS) the pace is checked
  after each read instead.
* **Send deadline.** Every write of a response, at most
  ``MPUFLASK_CHUNK_SIZE`` bytes at a time, must be done within
  ``MPUFLASK_SEND_TIMEOUT`` seconds (a socket timeout: CPython's ``sendall``
  counts it for the whole call). A reader that stopped reading is cut after
  that long and its GET's pinned version is released when gunicorn closes the
  response.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol

from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import ClientDisconnected

from .environheaders import content_length
from .errors import RequestTimeout
from .socketbody import socket_body

#: Where ``tcpi_bytes_received`` sits in Linux's ``struct tcp_info`` (since 4.1).
_TCP_INFO_BYTES_RECEIVED = 128
_TCP_INFO_SIZE = 256

_WATCH_KEY = "mpuflask.body_watch"
#: Where the request's :class:`BodyPace` is kept (in its WSGI environ: ``g``
#: can outlive a request, in an app context a test or a script holds open).
_PACE_KEY = "mpuflask.body_pace"


def tcp_bytes_received(sock: socket.socket) -> int | None:
    """Bytes the kernel has received on ``sock`` so far; None if it cannot say."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, _TCP_INFO_SIZE)
    except (OSError, ValueError):
        return None
    if len(info) < _TCP_INFO_BYTES_RECEIVED + 8:
        return None
    received: int = struct.unpack_from("Q", info, _TCP_INFO_BYTES_RECEIVED)[0]
    return received


@dataclass
class _Read:
    """One read waiting for the client: what the watchdog samples."""

    sock: socket.socket
    started: float
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    cut: bool = False


class BodyWatch:
    """Cuts reads whose client sends fewer than ``min_rate`` bytes/s over ``window``.

    One per app, shared by its threads; its thread starts at the first watched
    read in each process (so it survives gunicorn's fork) and polls every
    ``tick`` seconds.
    """

    def __init__(self, min_rate: int, window: float, tick: float = 1.0) -> None:
        self.min_rate = min_rate
        self.window = window
        self.tick = min(tick, window / 4)
        self._lock = threading.Lock()
        self._by_id: dict[int, _Read] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def reading(self, sock: socket.socket) -> Iterator[_Read]:
        """Watch ``sock`` while the ``with`` block waits for it.

        The read is unregistered under the lock before the block ends, so the
        watchdog never shuts a socket that has moved on (keep-alive).
        """
        now = time.monotonic()
        read = _Read(sock, now)
        received = tcp_bytes_received(sock) if self.min_rate else None
        if received is None:
            yield read
            return
        read.samples.append((now, received))
        with self._lock:
            self._by_id[id(read)] = read
            self._ensure_thread()
        try:
            yield read
        finally:
            with self._lock:
                del self._by_id[id(read)]

    def _ensure_thread(self) -> None:
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="mpuflask-body-watch", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.tick)
            with self._lock:
                now = time.monotonic()
                for read in self._by_id.values():
                    if not read.cut and self._too_slow(read, now):
                        read.cut = True
                        try:
                            read.sock.shutdown(socket.SHUT_RD)
                        except OSError:
                            pass  # already gone: the read ends by itself

    def _too_slow(self, read: _Read, now: float) -> bool:
        received = tcp_bytes_received(read.sock)
        if received is None:
            return False
        samples = read.samples
        samples.append((now, received))
        horizon = now - self.window
        while len(samples) >= 2 and samples[1][0] <= horizon:
            samples.popleft()
        oldest_time, oldest_count = samples[0]
        if oldest_time > horizon:
            return False  # not waiting a whole window yet
        return received - oldest_count < self.min_rate * self.window


class Readable(Protocol):
    """What a body is read from: ``read(size)``, short only at its end."""

    def read(self, size: int, /) -> bytes: ...


@dataclass
class BodyPace:
    """Reads a request body under the body rules; one per request."""

    #: ``request.stream``, or the socket itself (:mod:`mpuflask.socketbody`).
    stream: Readable
    sock: socket.socket | None
    idle_timeout: float
    min_rate: int
    window: float
    watch: BodyWatch | None
    #: The body's Content-Length (None: chunked).
    expected: int | None = None
    #: Bytes read so far.
    received: int = 0
    #: Whether the body was read to its end, whole.
    ended: bool = False

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (short only at the end), or a 408/400 refusal.

        A body that ends before its Content-Length is refused (400) at that
        end: gunicorn hands over a raw stream, where a short body ends
        quietly, and its prefix may be a valid part, or valid JSON.
        """
        data = self._paced_read(size)
        if data:
            self.received += len(data)
        elif size > 0:
            if self.expected is not None and self.received < self.expected:
                raise ClientDisconnected(
                    f"The request body ended after {self.received} of "
                    f"{self.expected} bytes"
                )
            self.ended = True
        return data

    def _paced_read(self, size: int) -> bytes:
        if self.sock is None or self.watch is None:
            return self._read(size)
        with self.watch.reading(self.sock) as read:
            try:
                data = self._read(size)
            except ClientDisconnected:
                if read.cut:
                    raise self.too_slow() from None
                raise
        if read.cut:
            raise self.too_slow()
        waited = time.monotonic() - read.started
        if not read.samples and waited >= self.window > 0 and self.min_rate:
            # No TCP_INFO: judge the read once it is over.
            if len(data) < self.min_rate * waited:
                raise self.too_slow()
        return data

    def _read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except TimeoutError:
            raise RequestTimeout(
                f"no body bytes arrived for {self.idle_timeout:g} seconds"
            ) from None
        except (OSError, ValueError) as error:
            # A body cut short or malformed (gunicorn's NoMoreData,
            # InvalidChunkSize...), or our watchdog shut the socket: the
            # client's fault, never a 500.
            raise ClientDisconnected(
                f"The request body was cut short: {error}"
            ) from None
        except Exception as error:
            if type(error).__module__.startswith("gunicorn.http"):
                raise ClientDisconnected("The request body was malformed") from None
            raise

    def too_slow(self) -> RequestTimeout:
        return RequestTimeout(
            f"the body arrived at under {self.min_rate} bytes per second "
            f"over {self.window:g} seconds"
        )


def body_pace() -> BodyPace:
    """The body rules for the current request, from the app's settings.

    Under gunicorn the socket gets the idle timeout; elsewhere (the test
    client) there is no socket and only the stream is read. One per request.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    made: BodyPace | None = environ.get(_PACE_KEY)
    if made is not None:
        return made
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    sock = environ.get("gunicorn.socket")
    idle = config["MPUFLASK_BODY_TIMEOUT"]
    if sock is not None:
        sock.settimeout(idle)
    watch = app.extensions.get(_WATCH_KEY)
    stream = req.stream  # first: Werkzeug's checks (MAX_CONTENT_LENGTH)
    pace = BodyPace(
        stream=socket_body(environ) or stream,
        sock=sock,
        idle_timeout=idle,
        min_rate=config["MPUFLASK_BODY_MIN_RATE"],
        window=config["MPUFLASK_BODY_RATE_WINDOW"],
        watch=watch,
        expected=content_length(environ),
    )
    environ[_PACE_KEY] = pace
    return pace


def body_left_unread() -> bool:
    """Whether the current request has a body we did not read to its end
    (or that broke off before it)."""
    if not request.content_length and "Transfer-Encoding" not in request.headers:
        return False
    pace: BodyPace | None = request.environ.get(_PACE_KEY)
    return pace is None or not pace.ended


class HonorConnectionClose:
    """WSGI middleware: a response that says ``Connection: close`` closes.

    gunicorn drops hop-by-hop headers an app sets and decides keep-alive
    itself, so our 408 for a stalled body would go out as ``keep-alive`` and
    the rest of that body would be read as the next request. gunicorn's
    ``start_response`` is a method of its response object, whose
    ``force_close()`` makes it write ``Connection: close`` and close; other
    servers are left alone.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            if ("Connection", "close") in headers:
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if callable(force_close):
                    force_close()
            return start_response(status, headers, *exc_info)

        return self.app(environ, start)


def install_deadlines(app: Flask, blueprints: Collection[str]) -> None:
    """The body watchdog, the send deadline and ``Connection: close``, for
    this app; ``blueprints``: mpuflask's, whose refusals close the connection
    when they leave a body unread (an app's own routes read theirs their way)."""
    app.wsgi_app = HonorConnectionClose(app.wsgi_app)  # type: ignore[method-assign]
    config: Mapping[str, Any] = app.config
    app.extensions[_WATCH_KEY] = BodyWatch(
        config["MPUFLASK_BODY_MIN_RATE"], config["MPUFLASK_BODY_RATE_WINDOW"]
    )
    send_timeout = config["MPUFLASK_SEND_TIMEOUT"] or None

    @app.after_request
    def _send_deadline(response: Response) -> Response:
        # gunicorn writes the response after we return, on this socket.
        sock = request.environ.get("gunicorn.socket")
        if sock is not None:
            sock.settimeout(send_timeout)
        if (
            response.status_code >= 400
            and request.blueprint in blueprints
            and body_left_unread()
        ):
            # Refused before its body was read (a part on its headers, a
            # request no auth hook vouched for): gunicorn would read the
            # rest, up to gigabytes, to throw away, holding this thread for
            # seconds. Closed instead; the worker lingers for the client to
            # read the answer without a thread (mpuflask/worker.py). A body
            # that broke off or lost its framing: what follows on this
            # connection is never a request of its own.
            response.headers["Connection"] = "close"
        return response
