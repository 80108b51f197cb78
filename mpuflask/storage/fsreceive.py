"""Receiving a part body on two cores: a chunk is hashed while it is written
and the next one arrives.

A part's bytes take three turns on one thread otherwise: the socket read,
MD5, the write to the temp file. hashlib and ``os.write`` release the GIL, so
a helper thread hashes chunk *n* while the request thread writes it and reads
chunk *n + 1*: one upload stream uses two cores, and MD5, the slowest of the
three, is the only one the stream waits for. With durability on, each
chunk's write-back to the disk is started as soon as it is written
(:func:`~.diskio.start_writeback`), so the part's final fsync finds little
left to do. Chunks are absorbed strictly in order, one at a time per part.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor

from . import diskio

#: Below this a chunk is absorbed at once: a hand-off costs more than it saves.
INLINE_BELOW = 64 * 1024

#: Helper threads per process, shared by its requests (each part uses one at
#: a time; more parts than helpers queue, in order).
HELPERS = 16


class Helpers:
    """The process's helper threads, made at first use after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._pool = ThreadPoolExecutor(HELPERS, "mpuflask-part")
            return self._pool


class PartSink:
    """MD5 and the temp file of one part, fed chunk by chunk."""

    def __init__(self, fd: int, durable: bool, helpers: Helpers) -> None:
        self.fd = fd
        self.durable = durable
        self.helpers = helpers
        self.digest = hashlib.md5(usedforsecurity=False)
        self.written = 0
        self._pending: Future[None] | None = None

    def add(self, chunk: bytes) -> None:
        """Hash ``chunk`` after the ones before it (maybe while we return),
        and write it."""
        self._wait()
        if len(chunk) < INLINE_BELOW:
            self.digest.update(chunk)
        else:
            self._pending = self.helpers.pool().submit(self.digest.update, chunk)
        self._write(chunk)

    def finish(self) -> str:
        """Every chunk absorbed: the part's hex MD5."""
        self._wait()
        return self.digest.hexdigest()

    def abandon(self) -> None:
        """Wait for the helper to let go of the file (the part is refused)."""
        try:
            self._wait()
        except Exception:  # the refusal under way says what went wrong
            pass

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write(self, chunk: bytes) -> None:
        diskio.write_all(self.fd, chunk)
        if self.durable:
            diskio.start_writeback(self.fd, self.written, len(chunk))
        self.written += len(chunk)
