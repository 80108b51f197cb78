"""Loopback servers that fail at the socket level, as real networks do.

Each connection is read up to the end of the request headers, then treated
as ``behaviour`` says: ``close`` (hang up without answering), ``reset``
(hang up with a TCP RST), ``silent`` (never answer, until the test ends).
``http`` answers a plain-HTTP 400 at once, before reading anything: what a
TLS client gets from a server without TLS.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def failing_server(behaviour: str) -> Iterator[int]:
    """A server on 127.0.0.1 failing every connection; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not done.is_set():
            conn, _ = listener.accept()
            if done.is_set():  # the wake-up call below: the test is over
                conn.close()
                return
            if behaviour == "http":  # answers at once, in plain HTTP
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                conn.close()
                continue
            _read_headers(conn)
            if behaviour == "silent":
                held.append(conn)
                continue
            if behaviour == "reset":
                linger = struct.pack("ii", 1, 0)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        for conn in held:
            conn.close()
        # accept() does not return when the listener is closed: connect once.
        with socket.create_connection(listener.getsockname()):
            pass
        thread.join(timeout=30)
        listener.close()


def _read_headers(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
