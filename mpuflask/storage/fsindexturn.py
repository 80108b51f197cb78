"""Whose turn it is to write the listing index (:mod:`.fsindex`).

SQLite serialises writers itself, but a writer that finds the database
locked sleeps and retries (up to 100 ms a try): under load, completes and
deletes waited on each other's sleeps. So writers queue first on a lock of
their own, which wakes the next one the moment it is free: a thread lock
within the process, then an flock of ``index/write.lock`` between processes.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ..errors import DataDirDamaged
from . import diskio
from .diskio import CorruptEntry

log = logging.getLogger(__name__)

WRITE_LOCK = "write.lock"


class _Writers(NamedTuple):
    """One process's turn to write: a thread lock, then write.lock's flock."""

    pid: int
    turn: threading.Lock
    fd: int
    #: Closes ``fd`` with its WriteTurn, as the index's SQLite connections close.
    closing: weakref.finalize[[int], WriteTurn]


class WriteTurn:
    """The index folder's writers, in turn, one process and thread at a time."""

    def __init__(self, folder: str, timeout: float) -> None:
        self.folder = folder
        #: How long a thread waits behind this process's other writers (503).
        self.timeout = timeout
        self._writers: _Writers | None = None
        self._writers_made = threading.Lock()

    @contextmanager
    def taken(self, operation: str) -> Iterator[None]:
        """Wait for our turn to write: this process's writers first, then
        the other processes' (503 after ``timeout`` here)."""
        writers = self._ensure(operation)
        if not writers.turn.acquire(timeout=self.timeout):
            log.error("index %s: no turn to write in %ss", operation, self.timeout)
            raise DataDirDamaged(operation)
        try:
            diskio.lock(writers.fd)
            try:
                yield
            finally:
                diskio.unlock(writers.fd)
        finally:
            writers.turn.release()

    def _ensure(self, operation: str) -> _Writers:
        """This process's writers' lock and write.lock, made once (write.lock
        never through a symlink; 507 if the disk is full)."""
        pid = os.getpid()
        with self._writers_made:
            if self._writers is None or self._writers.pid != pid:
                if self._writers is not None:  # a parent's: close our copy
                    self._writers.closing.detach()
                    os.close(self._writers.fd)
                flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                try:
                    with diskio.disk_full_as_507(operation):
                        folder_fd = diskio.open_dir(self.folder)
                        try:
                            fd = os.open(WRITE_LOCK, flags, 0o644, dir_fd=folder_fd)
                        finally:
                            os.close(folder_fd)
                except (OSError, CorruptEntry) as error:
                    log.error("data directory damaged: index: %s", error)
                    raise DataDirDamaged(operation) from None
                self._writers = _Writers(
                    pid,
                    threading.Lock(),
                    fd,
                    weakref.finalize(self, _close_quietly, fd),
                )
            return self._writers


def _close_quietly(fd: int) -> None:
    """Close ``fd`` when its WriteTurn goes; a failure (a FUSE daemon gone first,
    at exit) leaves nothing to do."""
    try:
        os.close(fd)
    except OSError:
        pass
