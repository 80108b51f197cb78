"""mpuflask's gunicorn worker: gthread, but no thread waits for request headers.

``gunicorn -k mpuflask.worker.DeadlineWorker`` (the default in
``gunicorn.conf.py``). gunicorn's gthread worker hands a connection to a pool
thread as soon as a byte arrives, and the thread then reads the request head
with no deadline: a few dozen clients sending their headers slowly hold every
thread. This worker keeps gthread's request handling (``handle_request``, keep-
alive, the graceful stop) and changes who waits:

* The main loop reads request heads itself, without blocking, and hands a
  connection to a thread only once its head has arrived (a blank line seen, or
  64 KiB, which gunicorn's parser then judges). A head not there within
  ``GUNICORN_HEADER_TIMEOUT`` seconds (default 15, counted from the connection,
  or from the first byte of a kept-alive connection's next request line) is
  answered 408 and closed; a connection that sent nothing (or only the empty
  lines RFC 9112 lets a client send between requests) is just closed. Waiting
  heads cost a socket and a buffer, never a thread.
* The thread that parses a head still obeys the same deadline (a socket
  timeout per ``recv``, shrinking to it), should the head be longer than what
  the main loop buffers.
* A worker whose threads are all busy stops accepting, so a new connection
  goes to a worker that can serve it instead of queueing behind slow clients.
* A connection closed after its response lingers (to let the client read the
  answer, RFC 9112 section 9.6) in the main loop, not blocking it.

Bodies and responses are the app's to bound (``mpuflask/deadlines.py``). TLS,
HTTP/2 and the uWSGI protocol are not served: terminate TLS in a proxy.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import struct
import time
from collections.abc import Mapping
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn.http.errors import NoMoreData  # type: ignore[import-untyped]
from gunicorn.http.errors import ParseException
from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]
from gunicorn.workers import gthread  # type: ignore[import-untyped]

HEADER_TIMEOUT_ENV = "GUNICORN_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 15.0

#: A head this long goes to a thread anyway: gunicorn's parser refuses it or
#: reads the rest (under the same deadline).
MAX_BUFFERED_HEAD = 64 * 1024

#: How long a closed connection lingers for the client to read our answer.
LINGER = 2.0

_ABORT = object()  # the connection is broken mid-response: close, no linger


def header_timeout(environ: Mapping[str, str]) -> float:
    """``GUNICORN_HEADER_TIMEOUT`` in seconds (a positive number), or the default."""
    text = environ.get(HEADER_TIMEOUT_ENV)
    if text is None:
        return DEFAULT_HEADER_TIMEOUT
    if not text.strip():
        raise RuntimeError(
            f"{HEADER_TIMEOUT_ENV} is set but empty; unset it or give it a value"
        )
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise RuntimeError(
            f"{HEADER_TIMEOUT_ENV} must be a positive number of seconds, not {text!r}"
        )
    return value


def request_timeout_response(seconds: float) -> bytes:
    """The 408 for a head that did not arrive in time."""
    text = (
        "Request Timeout: the request headers did not arrive within "
        f"{seconds:g} seconds"
    )
    return (
        "HTTP/1.1 408 Request Timeout\r\n"
        "Connection: close\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(text)}\r\n\r\n{text}"
    ).encode()


def _request_line_at(data: bytes | bytearray) -> int:
    """Past the empty lines a client may send before a request line (RFC 9112
    2.2: old clients add a CRLF after a POST body)."""
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    return start


def head_complete(data: bytes | bytearray) -> bool:
    """Whether ``data`` holds a whole request head (or all we will buffer)."""
    start = _request_line_at(data)
    return data.find(b"\r\n\r\n", start) >= 0 or len(data) >= MAX_BUFFERED_HEAD


def head_started(data: bytes | bytearray) -> bool:
    """Whether a request head began in ``data`` (empty lines alone: still idle)."""
    return data[_request_line_at(data) :] not in (b"", b"\r")


class _HeadUnreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader, with a deadline while ``deadline`` is set."""

    deadline: float | None = None

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request head deadline")
            self.sock.settimeout(remaining)
        data: bytes = super().chunk(size_hint)
        return data


class _Conn(gthread.TConn):  # type: ignore[misc]
    """A client connection and what the main loop waits for on it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.head = bytearray()  # the next request's bytes read so far
        self.deadline = 0.0  # when the main loop gives up waiting
        self.lingering = False  # closed for writing; waiting for the client's EOF


class DeadlineWorker(gthread.ThreadWorker):  # type: ignore[misc]
    """gthread whose threads never wait for a request head (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout(os.environ)
        self._waiting: set[_Conn] = set()
        self._next_expiry = 0.0  # no waiting connection's deadline is earlier
        self._busy = 0

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Refuse what this worker does not serve, once, in the master."""
        super().check_config(cfg, log)
        header_timeout(os.environ)
        if cfg.is_ssl:
            raise RuntimeError(
                "mpuflask.worker.DeadlineWorker does not terminate TLS: put a proxy "
                "(nginx, docs/deployment.md) in front, or use -k gthread"
            )
        if getattr(cfg, "protocol", "http") != "http":
            raise RuntimeError("mpuflask.worker.DeadlineWorker serves only HTTP/1")
        if "h2" in (getattr(cfg, "http_protocols", None) or ()):
            raise RuntimeError("mpuflask.worker.DeadlineWorker serves only HTTP/1")

    # -- the main loop ---------------------------------------------------------

    def run(self) -> None:
        self.poller.register(
            self.method_queue.fileno(),
            selectors.EVENT_READ,
            self.method_queue.run_callbacks,
        )
        while self.alive:
            self.notify()
            self.set_accept_enabled(
                self.nr_conns < self.worker_connections
                and self._busy < self.cfg.threads
            )
            self.wait_for_and_dispatch_events(timeout=self._next_wakeup())
            if not self.is_parent_alive():
                break
            self._expire(time.monotonic())

        # Graceful stop: no new connections; idle ones get a short grace for a
        # request already on its way; requests in progress get graceful_timeout.
        self.set_accept_enabled(False)
        now = time.monotonic()
        for conn in self._waiting:
            if not head_started(conn.head) and not conn.lingering:
                self._set_deadline(
                    conn, min(conn.deadline, now + gthread.STOP_KEEPALIVE_LINGER)
                )
        stop_by = now + self.cfg.graceful_timeout
        while self.nr_conns > 0 and time.monotonic() < stop_by:
            self.notify()
            self.wait_for_and_dispatch_events(timeout=self._next_wakeup())
            self._expire(time.monotonic())
        for conn in list(self._waiting):
            self._close(conn)
        self.tpool.shutdown(wait=False)
        self.poller.close()
        self.method_queue.close()
        for listener in self.sockets:
            listener.close()

    def _next_wakeup(self) -> float:
        return max(0.0, min(1.0, self._next_expiry - time.monotonic()))

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = _Conn(self.cfg, client, address, listener.getsockname())
        self._wait(conn, time.monotonic() + self.header_timeout)

    def _wait(self, conn: _Conn, deadline: float) -> None:
        """Wait in the poller (never in a thread) for the client's bytes."""
        conn.sock.setblocking(False)
        self._set_deadline(conn, deadline)
        self._waiting.add(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn)
        )

    def _set_deadline(self, conn: _Conn, deadline: float) -> None:
        """Give up on ``conn`` at ``deadline``: the only way a waiting
        connection's deadline changes, so the next scan is never later than it
        (setting one alone left a shortened deadline to the old scan's time)."""
        conn.deadline = deadline
        self._next_expiry = min(self._next_expiry, deadline)

    def _unwait(self, conn: _Conn) -> None:
        self._waiting.discard(conn)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _on_readable(self, conn: _Conn, _sock: socket.socket) -> None:
        try:
            data = conn.sock.recv(MAX_BUFFERED_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or conn.lingering:
            # The client closed (or, lingering, we drop what it still sends).
            if not data:
                self._unwait(conn)
                self._close(conn)
            return
        started = head_started(conn.head)
        conn.head += data
        if not started and conn.initialized and head_started(conn.head):
            # A kept-alive connection's next request starts: its head deadline.
            self._set_deadline(conn, time.monotonic() + self.header_timeout)
        if head_complete(conn.head):
            self._unwait(conn)
            self._dispatch(conn)

    def _dispatch(self, conn: _Conn) -> None:
        self._busy += 1
        future = self.tpool.submit(self.handle, conn)
        future.add_done_callback(
            lambda done: self.method_queue.defer(self.finish_request, conn, done)
        )

    def _expire(self, now: float) -> None:
        """Give up on connections past their deadline (a scan only when one is due)."""
        if now < self._next_expiry:
            return
        for conn in [c for c in self._waiting if c.deadline <= now]:
            self._unwait(conn)
            if head_started(conn.head) and not conn.lingering:
                # Part of a head came: say why we close, if it fits right now.
                try:
                    conn.sock.send(request_timeout_response(self.header_timeout))
                except OSError:
                    pass
                self._linger(conn)
            else:
                self._close(conn)
        deadlines = (conn.deadline for conn in self._waiting)
        # At most 20 scans a second, however many connections wait.
        self._next_expiry = max(now + 0.05, min(deadlines, default=now + 1.0))

    def _linger(self, conn: _Conn) -> None:
        """Half-close, then wait (in the poller) for the client to close too."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.lingering = True
        self._wait(conn, time.monotonic() + LINGER)

    def _close(self, conn: _Conn, reset: bool = False) -> None:
        self.nr_conns -= 1
        if reset:
            # A response cut mid-way: reset rather than leave the kernel an
            # orphan socket still trying to push its buffer to a stalled reader.
            try:
                conn.sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            except OSError:
                pass
        conn.close()

    def finish_request(self, conn: _Conn, future: Future[Any]) -> None:
        """Back on the main loop after a request: keep, linger or close."""
        self._busy -= 1
        try:
            result = future.result() if not future.cancelled() else False
        except Exception:
            result = _ABORT
        if result is _ABORT:
            self._close(conn, reset=True)
        elif result:
            # Bytes read ahead are the start of the next request.
            conn.head = bytearray(conn.parser.unreader.take_buffered())
            if conn.head and head_complete(conn.head):
                self._dispatch(conn)
                return
            if head_started(conn.head):
                wait = self.header_timeout
            elif self.alive:
                wait = self.cfg.keepalive
            else:
                wait = gthread.STOP_KEEPALIVE_LINGER
            self._wait(conn, time.monotonic() + wait)
        else:
            self._linger(conn)

    # -- in a pool thread --------------------------------------------------------

    def handle(self, conn: _Conn) -> Any:
        """Serve one request whose head (or 64 KiB of it) has arrived."""
        req = None
        try:
            conn.sock.setblocking(True)
            if not conn.initialized:
                conn.init()  # gunicorn's parser, reading through our unreader
                conn.parser.unreader = _HeadUnreader(conn.sock)
            unreader = conn.parser.unreader
            unreader.unread(bytes(conn.head))
            conn.head = bytearray()
            unreader.deadline = conn.deadline
            try:
                req = next(conn.parser)
            finally:
                unreader.deadline = None
                conn.sock.settimeout(None)
            if not req:
                return False
            return self._reusable(conn, self.handle_request(req, conn))
        except TimeoutError:
            if req is None:
                self._send_quietly(conn, request_timeout_response(self.header_timeout))
                return False
            # A response write passed MPUFLASK_SEND_TIMEOUT: the client stopped
            # reading. The response is cut; nothing more can be said on it.
            self.log.info("closing %s: the client stopped reading", conn.client)
            return _ABORT
        except NoMoreData:
            return False
        except StopIteration:
            return False
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
            return _ABORT
        except Exception as error:
            self.handle_error(req, conn.sock, conn.client, error)
            return False

    def _reusable(self, conn: _Conn, keepalive: bool) -> bool:
        """Whether the answered connection may serve another request (gthread
        first throws away the body's unread rest). A chunked rest found
        malformed closes it quietly: a 400 after the answer would be taken, by
        a pipelining client or a proxy, for the next request's answer."""
        try:
            return bool(self._keepalive_after(conn, keepalive))
        except ParseException as error:
            self.log.info("closing %s after its answer: %s", conn.client, error)
            return False

    @staticmethod
    def _send_quietly(conn: _Conn, data: bytes) -> None:
        try:
            conn.sock.settimeout(1.0)
            conn.sock.sendall(data)
        except OSError:
            pass
