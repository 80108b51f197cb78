"""Bytes between the client and S3: part bodies going up, objects coming down.

Going up, S3's UploadPart needs the part's length before its first byte.
A request with ``Content-Length`` (every usual client) streams straight
through :class:`PartStream`: a file-like view of the request's chunks that
hashes them on the way and holds one chunk at a time. A chunked request (no
length) is spooled to an anonymous temp file first (:func:`spool_part`), at
most the maximum part size, then sent from there; we spool rather than refuse
with 411 because browsers' streaming ``fetch`` and the Worker's clients send
chunked bodies, and the filesystem store takes them.

Coming down, :class:`S3ObjectBody` reads with ranged GetObjects, each with
``If-Match`` on the etag it opened, so a reader gets one version or an error,
never a mix of two.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterable
from collections.abc import Iterator
from typing import IO
from typing import TYPE_CHECKING
from typing import Any

from botocore.exceptions import ClientError

from ..errors import ApiError
from ..errors import EntityTooLarge
from .base import ObjectBody
from .base import ObjectInfo
from .diskio import disk_full_as_507
from .s3errors import ObjectChanged
from .s3errors import engine_errors
from .s3errors import error_code
from .s3errors import http_status
from .s3errors import is_not_found

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

MIB = 1024 * 1024


class BodyLengthMismatch(ApiError):
    """The request body ended before (or ran past) its ``Content-Length``."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation}: the request body does not match its Content-Length; "
            "nothing was stored."
        )


class PartStream:
    """The request's chunks as the file-like body botocore sends.

    Exactly ``length`` bytes go out: a body that ends early or runs long
    raises :class:`BodyLengthMismatch`, so the engine never gets a short part
    under a longer Content-Length. The last bytes are handed over only once
    the chunks have ended cleanly: a validator that refuses the part at its
    end (a wrong Content-MD5, say) raises before the engine has the whole
    body, so the engine never stores a refused part.

    botocore wraps whatever a body raises in its own ``HTTPClientError``; the
    first such failure is kept in :attr:`failure`, for :meth:`raise_failure`
    to raise as it was (a client that hung up, a validator's refusal), not as
    an engine fault. The stream cannot rewind: it is sent by a client that
    never retries.
    """

    def __init__(self, chunks: Iterable[bytes], length: int, operation: str) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self._length = length
        self._sent = 0
        self._operation = operation
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.failure: BaseException | None = None

    def tell(self) -> int:
        return self._sent

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset != self._sent:
            raise io.UnsupportedOperation("a streamed part cannot be rewound")
        return self._sent

    def read(self, size: int | None = -1) -> bytes:
        if self.failure is not None:
            raise self.failure
        try:
            return self._read(size)
        except BaseException as error:
            self.failure = error
            raise

    def raise_failure(self) -> None:
        """Raise what made reading the body fail, if it did."""
        if self.failure is not None:
            raise self.failure

    def _read(self, size: int | None) -> bytes:
        remaining = self._length - self._sent
        want = remaining if size is None or size < 0 else min(size, remaining)
        pieces = []
        while want > 0:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    raise BodyLengthMismatch(self._operation)
                self._pending = memoryview(chunk)
            piece = self._pending[:want]
            self._pending = self._pending[len(piece) :]
            pieces.append(piece)
            want -= len(piece)
        data = b"".join(pieces)
        if data and self._sent + len(data) == self._length:
            # Drive the chunks to their end (validators finish there) before
            # the engine sees the last byte; more bytes than announced is
            # a mismatch too.
            if self._pending or any(self._chunks):
                raise BodyLengthMismatch(self._operation)
        self._sent += len(data)
        self.md5.update(data)
        return data


def spool_part(
    chunks: Iterable[bytes], max_size: int, spool_dir: str | None, operation: str
) -> tuple[IO[bytes], str, int]:
    """Write a body of unknown length to an anonymous temp file.

    Returns the file (rewound; the caller closes it), its hex MD5 and size.
    Refuses past ``max_size`` as it arrives, so the disk holds at most one
    part per upload in flight.
    """
    spool = tempfile.TemporaryFile(dir=spool_dir)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        with disk_full_as_507(operation):
            for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise EntityTooLarge(operation)
                digest.update(chunk)
                spool.write(chunk)
            spool.flush()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, digest.hexdigest(), size


class S3ObjectBody(ObjectBody):
    """One version of an S3 object, read by ranged GETs pinned to its etag.

    Reads are sequential windows: the first is as large as the caller's
    buffer (at least ``first_window``), each next one twice the last, up to
    ``max_window``; a seek starts over. So a small Range costs one small GET,
    and a whole object a few large ones.

    S3 cannot pin an old version. Every GET carries ``If-Match`` with the
    etag seen when the body was opened: if the key is overwritten or deleted
    while we read, the next window fails with :class:`ObjectChanged` instead
    of returning bytes of another version (the window already streaming
    finishes from the version it started on).
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        info: ObjectInfo,
        engine_etag: str,
        first_window: int = MIB,
        max_window: int = 64 * MIB,
    ) -> None:
        super().__init__()
        self.info = info
        self._client = client
        self._bucket = bucket
        self._engine_etag = engine_etag
        self._first_window = first_window
        self._max_window = max_window
        self._window = first_window
        self._position = 0
        self._stream: Any = None
        self._stream_position = 0
        self._stream_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {
            io.SEEK_SET: 0,
            io.SEEK_CUR: self._position,
            io.SEEK_END: self.info.size,
        }
        self._position = max(0, base[whence] + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._next(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes, as the engine's stream hands them over (no
        copy into a buffer: a GET reads 1 MiB at a time through here)."""
        if size is None or size < 0:
            return self.readall()
        return self._next(size)

    def _next(self, size: int) -> bytes:
        if self._position >= self.info.size or size == 0:
            return b""
        if self._stream is None or self._stream_position != self._position:
            self._open_window(size)
        want = min(size, self._stream_end - self._position)
        data: bytes = self._stream.read(want)
        if not data:
            raise ObjectChanged(f"{self.info.key}: the engine ended a range early")
        self._position += len(data)
        self._stream_position = self._position
        if self._stream_position >= self._stream_end:
            self._close_stream()
        return data

    def _open_window(self, wanted: int) -> None:
        sequential = self._stream_end == self._position and self._position > 0
        self._close_stream()
        if sequential:
            self._window = min(self._window * 2, self._max_window)
        else:
            self._window = self._first_window
        start = self._position
        end = min(self.info.size, start + max(wanted, self._window))
        response = self._get_range(start, end)
        self._stream = response["Body"]
        self._stream_position = start
        self._stream_end = end

    def _get_range(self, start: int, end: int) -> GetObjectOutputTypeDef:
        with engine_errors("get"):
            try:
                return self._client.get_object(
                    Bucket=self._bucket,
                    Key=self.info.key,
                    Range=f"bytes={start}-{end - 1}",
                    IfMatch=self._engine_etag,
                )
            except ClientError as error:
                if is_not_found(error) or http_status(error) == 412:
                    raise ObjectChanged(
                        f"{self.info.key}: overwritten or deleted while being "
                        f"read ({error_code(error)})"
                    ) from error
                raise

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        if not self.closed:
            self._close_stream()
        super().close()
