"""Uploading a stream of unknown size (standard input), part by part.

The size is known only at the end, so parts are cut as they are read: full
``part_size`` chunks until a short one (or the end). A chunk cannot be read
again, so it stays in memory until its part is stored, to be sent again if a
try fails: at most ``concurrency`` chunks are held at once (the next one is
read only when a part finishes), so memory is ``concurrency`` x
``part_size``. There is no resume: nothing can re-read what a pipe already
gave. On any failure (Ctrl-C included) the upload is aborted, so no parts are
left behind.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from functools import partial
from typing import BinaryIO

from ..rules import DEFAULT_MIN_PART_SIZE
from ..rules import MAX_PART_NUMBER
from ..rules import is_md5_hex
from ..rules import normalize_etag
from .actions import ObjectApi
from .errors import Cancelled
from .errors import ClientError
from .errors import VerificationFailed
from .parts import stream_part_size
from .pool import run_bounded
from .pool import worker_pool
from .progress import NoProgress
from .progress import Progress
from .resume import SentPart
from .retry import RetryPolicy
from .transport import Transport
from .upload import UploadResult
from .upload import complete_upload

log = logging.getLogger("mpuflask.client")


class MemoryPart:
    """A chunk held in memory as a request body, read out in blocks.

    Like :class:`.fileslice.FileSlice`: a length and ``read(n)``, so progress
    moves as the socket takes the bytes and ``cancel`` stops it mid-body.
    """

    def __init__(
        self,
        data: bytes,
        on_read: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self._data = memoryview(data)
        self._offset = 0
        self._on_read = on_read
        self._cancel = cancel

    def __len__(self) -> int:
        return len(self._data)

    @property
    def sent(self) -> int:
        return self._offset

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled("cancelled")
        end = len(self._data) if size < 0 else min(len(self._data), self._offset + size)
        block = bytes(self._data[self._offset : end])
        self._offset = end
        if block and self._on_read is not None:
            self._on_read(len(block))
        return block


def upload_stream(
    transport: Transport,
    stream: BinaryIO,
    url: str,
    *,
    part_size: int | None = None,
    min_part_size: int = DEFAULT_MIN_PART_SIZE,
    concurrency: int = 4,
    headers: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    max_parts: int = MAX_PART_NUMBER,
) -> UploadResult:
    """Upload everything ``stream`` gives, until its end, to the object ``url``.

    ``part_size``: default the cut the client chooses for a file of up to
    ~48 GiB (5 MiB), so a download can verify the etag; at most
    ``max_parts`` parts, so a stream over 10,000 x ``part_size`` fails there:
    give a bigger ``part_size`` for one that big. Raises a
    :class:`ClientError`; the upload is aborted on any failure.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    size = stream_part_size(part_size, min_part_size)
    progress = progress or NoProgress()
    cancel = threading.Event()
    api = ObjectApi(transport, url, cancel)
    upload_id = api.create(headers)
    log.info(
        "upload %s: a stream cannot be resumed (if it stops, start over)", upload_id
    )
    read = _Reader(stream, size, max_parts, cancel)
    progress.start(None)
    try:
        with worker_pool(concurrency, cancel, "mpu-part") as pool:
            tasks = (
                partial(_send_part, api, upload_id, number, chunk, progress)
                for number, chunk in read.chunks()
            )
            parts = run_bounded(pool, cancel, tasks, concurrency)
        progress.close()
        etag, verified = complete_upload(api, upload_id, parts)
    except BaseException:
        cancel.set()
        progress.close()
        _abort(transport, url, upload_id)
        raise
    count = len(parts)
    return UploadResult(
        url, upload_id, etag, read.total, size, count, count, 0, verified
    )


class _Reader:
    """Cuts a stream into numbered chunks, reading one only when asked."""

    def __init__(
        self, stream: BinaryIO, size: int, max_parts: int, cancel: threading.Event
    ) -> None:
        self.stream = stream
        self.size = size
        self.max_parts = max_parts
        self.cancel = cancel
        self.total = 0

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        number = 0
        while not self.cancel.is_set():
            chunk = self._read_full()
            if not chunk:
                return
            number += 1
            if number > self.max_parts:
                raise ClientError(
                    f"the stream is longer than {self.max_parts} parts of "
                    f"{self.size} bytes: give a bigger part size"
                )
            self.total += len(chunk)
            yield number, chunk
            del chunk  # only the parts in flight hold their bytes
            if self.total % self.size:
                return  # a short chunk: the stream ended

    def _read_full(self) -> bytes:
        """``size`` bytes, fewer only at the end (a pipe gives what it has)."""
        pieces: list[bytes] = []
        wanted = self.size
        while wanted:
            piece = self.stream.read(wanted)
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _send_part(
    api: ObjectApi, upload_id: str, number: int, chunk: bytes, progress: Progress
) -> SentPart:
    """Send one chunk (whole again on every try); check its etag is its MD5."""
    md5 = hashlib.md5(chunk).hexdigest()
    tries: list[MemoryPart] = []

    def body() -> MemoryPart:
        if tries:  # a retry: take the failed try's bytes back off the count
            progress.update(-tries[-1].sent)
        tries.append(MemoryPart(chunk, progress.update, api.cancel))
        return tries[-1]

    etag = api.upload_part(upload_id, number, body)
    if is_md5_hex(normalize_etag(etag)) and normalize_etag(etag) != md5:
        raise VerificationFailed(
            f"part {number}: the server stored MD5 {etag}, we sent {md5}"
        )
    return SentPart(number, etag, md5)


def _abort(transport: Transport, url: str, upload_id: str) -> None:
    """One try, no waiting: a stream's upload can never be resumed anyway.

    If it fails (the server is down), the upload expires on the server.
    """
    once = copy.copy(transport)
    once.retry = RetryPolicy(attempts=1)
    try:
        ObjectApi(once, url).abort(upload_id)
    except ClientError as error:
        log.warning(
            "could not abort upload %s (%s); it expires on the server", upload_id, error
        )
    else:
        log.info("aborted upload %s", upload_id)
