"""A part of a file as a streamed request body.

``requests`` streams any object with ``read(n)`` and a length, sending
Content-Length and reading a block at a time, so a 5 GiB part costs one
block of memory, not 5 GiB. The slice hashes the bytes as they leave, so the
part's MD5 (its R2 etag) costs no second read.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .errors import Cancelled
from .errors import SourceChanged


class FileSlice:
    """``length`` bytes of ``path`` from ``offset``, readable once.

    Deliberately has no ``fileno``/``tell``: ``requests`` would then size the
    body from the whole file. ``on_read(n)`` reports progress; ``cancel``
    (when set) stops the transfer mid-body by raising :class:`Cancelled`.
    """

    def __init__(
        self,
        path: str | Path,
        offset: int,
        length: int,
        *,
        on_read: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        self._file.seek(offset)
        self._length = length
        self._remaining = length
        self._md5 = hashlib.md5()
        self._on_read = on_read
        self._cancel = cancel

    def __len__(self) -> int:
        return self._length

    @property
    def sent(self) -> int:
        """Bytes handed out so far."""
        return self._length - self._remaining

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left if negative); ``b""`` at the end."""
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled("cancelled")
        if size < 0 or size > self._remaining:
            size = self._remaining
        if size == 0:
            return b""
        data = self._file.read(size)
        if len(data) != size:
            raise SourceChanged(
                f"{self._file.name} is shorter than when it was planned"
            )
        self._remaining -= size
        self._md5.update(data)
        if self._on_read is not None:
            self._on_read(size)
        return data

    def md5_hex(self) -> str:
        """The hex MD5 of the whole slice (reads what was not read yet)."""
        while self.read(1024 * 1024):
            pass
        return self._md5.hexdigest()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def md5_of_range(path: str | Path, offset: int, length: int) -> str:
    """The hex MD5 of ``length`` bytes of ``path`` from ``offset``."""
    with FileSlice(path, offset, length) as part:
        return part.md5_hex()
