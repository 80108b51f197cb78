"""Downloading an object as one stream, in order: to standard output, a pipe, a device.

A download to a file (:mod:`.download`) fetches ranges in parallel into a
temp file and renames it over the target once verified. Standard output, a
named pipe or a device can be neither seeked nor replaced: their bytes go out
once, in order, and cannot be taken back. So here:

* one GET asks for ``Range: bytes=0-``: the whole object, whose 206 answer
  says its size and etag up front, so its bytes are hashed as they go out,
  cut where the upload cut its parts (:func:`.hashing.etag_check`);
* a connection lost mid-body is resumed from the first byte not yet written,
  ``Range: bytes=<n>-`` with ``If-Match`` the first answer's etag: the rest
  is the same object's, or the download fails (412) saying how many bytes
  went out. A server without ranges (the original Worker) sends the whole
  body again: the bytes already written are read past, and its etag and
  length must be the first answer's;
* the etag is recomputed at the end as for a file (:func:`.hashing.etag_verdict`).
  A mismatch fails the command (exit 1) after its bytes went out, as a
  checksum failure does in ``curl | tar``: a pipeline must look at the exit
  status (``set -o pipefail``).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import requests

from ..rules import DEFAULT_MIN_PART_SIZE
from ..rules import normalize_etag
from .download import READ_SIZE
from .download import DownloadResult
from .download import content_range
from .errors import ClientError
from .errors import ServerRefused
from .errors import TransferFailed
from .hashing import EtagCheck
from .hashing import PartHasher
from .hashing import etag_check
from .hashing import etag_verdict
from .progress import NoProgress
from .progress import Progress
from .transport import Transport
from .urls import display


def download_stream(
    transport: Transport,
    url: str,
    out: BinaryIO,
    *,
    name: str = "-",
    part_size: int | None = None,
    min_part_size: int = DEFAULT_MIN_PART_SIZE,
    progress: Progress | None = None,
) -> DownloadResult:
    """Write the object ``url`` to ``out`` in order, resuming a lost connection.

    ``name``: what ``out`` is, for the result. Raises a :class:`ClientError`
    (``VerificationFailed`` for bytes that are not the etag's, after they were
    written), or the ``OSError`` of a write (``BrokenPipeError``: the reader
    went away).
    """
    progress = progress or NoProgress()
    stream = _Stream(transport, url, out, progress, part_size, min_part_size)
    try:
        stream.fetch()
    finally:
        progress.close()
    out.flush()
    warning = stream.verdict()
    return DownloadResult(
        url, Path(name), stream.written, stream.etag or "", warning is None, warning
    )


class _Stream:
    """The GETs of one stream download, and what it has written so far."""

    def __init__(
        self,
        transport: Transport,
        url: str,
        out: BinaryIO,
        progress: Progress,
        part_size: int | None,
        min_part_size: int,
    ) -> None:
        self.transport = transport
        self.url = url
        self.shown = display(url)  # no password, no query (a signature)
        self.out = out
        self.progress = progress
        self.part_size = part_size
        self.min_part_size = min_part_size
        self.written = 0
        #: The object's size and etag, from the first answer (None: not yet;
        #: a size None after it: a whole body of unannounced length).
        self.size: int | None = None
        self.etag: str | None = None
        #: Cut where the etag's parts were (None: not known up front, so
        #: nothing is hashed).
        self.hasher: PartHasher | None = None
        #: What the next try asks for: each try that ends moves its Range on
        #: to the bytes written, so one the transport repeats resumes there.
        self.headers = {"Range": "bytes=0-"}
        self.empty = False

    def fetch(self) -> None:
        """GET until every byte went out (a 416 for byte 0: an empty object)."""
        try:
            self._get(ok=(200, 206, 416))
            if self.empty:  # nothing to range over: the empty body, whole
                self.headers.pop("Range")
                self._get(ok=(200,))
        except ServerRefused as error:
            if error.status != 412:
                raise
            raise ClientError(
                f"{self.shown} changed during the download (its etag is no longer "
                f"{self.etag}) after {self.written} bytes were written"
            ) from None

    def verdict(self) -> str | None:
        """None if the etag was recomputed and matched; else why not (a warning)."""
        etag, hasher = self.etag or "", self.hasher
        check = etag_check(etag, self.written, self.part_size, self.min_part_size)
        if hasher is None or not _cut_alike(hasher, check, self.written):
            check = EtagCheck(etag, None, check.multipart)  # not hashed so
        sized = self.size is not None
        checked = "its length was checked" if sized else "nothing else was checked"
        return etag_verdict(
            check,
            etag,
            lambda _: hasher.digests() if hasher is not None else [],
            checked,
            sized,
        )

    def _get(self, ok: tuple[int, ...]) -> None:
        self.transport.call(
            "GET",
            self.url,
            "get",
            self._handle,
            headers=self.headers,
            ok=ok,
            stream=True,
        )

    def _handle(self, response: requests.Response) -> None:
        if response.status_code == 416:
            if self.written or self.etag is not None:
                raise ClientError(f"{self.shown}: 416 for bytes still to come")
            self.empty = True
            return
        etag = normalize_etag(response.headers.get("etag", ""))
        if response.status_code == 206:
            first, last, total = content_range(response)
            if first != self.written or last != total - 1:
                raise ClientError(
                    f"{self.shown}: asked for bytes {self.written}-, got "
                    f"{response.headers.get('Content-Range')}"
                )
            self._learn(total, etag)
            self._write(response, skip=0)
            return
        length = response.headers.get("Content-Length")
        self._learn(int(length) if length is not None else None, etag)
        self._write(response, skip=self.written)  # a whole body, again

    def _learn(self, size: int | None, etag: str) -> None:
        """Take the first answer's size and etag; later ones must match."""
        if self.etag is None:
            self.size, self.etag = size, etag
            if etag:
                self.headers["If-Match"] = f'"{etag}"'
            self.hasher = _hasher_for(etag, size, self.part_size, self.min_part_size)
            self.progress.start(size)
            return
        if (size, etag) != (self.size, self.etag):
            raise ClientError(
                f"{self.shown} changed during the download (now {size} bytes, "
                f'etag "{etag}") after {self.written} bytes were written'
            )

    def _write(self, response: requests.Response, skip: int) -> None:
        """Write the body on, past its first ``skip`` bytes (ones a body sent
        whole again holds that went out already); refuse a short or long one."""
        try:
            for chunk in response.iter_content(READ_SIZE):
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                    if not chunk:
                        continue
                if self.size is not None and self.written + len(chunk) > self.size:
                    raise TransferFailed(f"{self.shown}: more bytes than announced")
                self.out.write(chunk)
                if self.hasher is not None:
                    self.hasher.update(chunk)
                self.written += len(chunk)
                self.progress.update(len(chunk))
        finally:  # a try the transport repeats asks for the rest
            self.headers["Range"] = f"bytes={self.written}-"
        if skip or (self.size is not None and self.written != self.size):
            came = self.written - skip
            raise TransferFailed(
                f"{self.shown}: {came} of {self.size or self.written} bytes came"
            )


def _hasher_for(
    etag: str, size: int | None, part_size: int | None, min_part_size: int
) -> PartHasher | None:
    """A hasher cut where the etag's parts were, if that is known up front.

    A length not announced (a whole body, chunked) leaves only a one-part
    etag to check: the MD5 of everything, one piece as long as it comes.
    """
    if size is None:
        whole = etag_check(etag, 1, part_size, min_part_size)
        return PartHasher(_UNBOUNDED) if whole.part_size is not None else None
    check = etag_check(etag, size, part_size, min_part_size)
    return None if check.part_size is None else PartHasher(check.part_size)


def _cut_alike(hasher: PartHasher, check: EtagCheck, size: int) -> bool:
    """Whether ``hasher``'s pieces of a ``size``-byte stream are ``check``'s
    parts: cut at its part size, or both one piece holding everything."""
    if check.part_size is None:
        return False
    return hasher.part_size == check.part_size or min(
        hasher.part_size, check.part_size
    ) >= max(size, 1)


#: A part no stream reaches the end of (for the MD5 of a whole stream).
_UNBOUNDED = 1 << 62
