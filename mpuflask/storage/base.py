"""The storage interface: the R2 bucket binding the seed Worker calls, in Python.

The Worker calls ``env.MY_BUCKET.createMultipartUpload(key)``,
``resumeMultipartUpload(key, uploadId)`` and, on the upload it gets back,
``uploadPart``, ``complete`` and ``abort``; plus ``get`` and ``delete`` on the
bucket. :class:`Bucket` and :class:`MultipartUpload` are those calls, typed.
The views see only these Protocols, so the filesystem store and the S3 store
are interchangeable.

A store raises the exceptions of :mod:`mpuflask.errors` (NoSuchUpload,
InvalidPart, ...) and never builds an HTTP response.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Protocol
from typing import runtime_checkable

from ..rules import PartRef

#: The request headers R2 keeps as an object's HTTP metadata, in the order the
#: Worker's ``writeHttpMetadata`` writes them back.
HTTP_METADATA_HEADERS = (
    "Content-Type",
    "Content-Language",
    "Content-Disposition",
    "Content-Encoding",
    "Cache-Control",
    "Expires",
)


@dataclass(frozen=True)
class HttpMetadata:
    """The HTTP headers stored with an object and written back on GET."""

    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, str]]) -> HttpMetadata:
        """Keep only R2's metadata headers, under their canonical names."""
        canonical = {name.lower(): name for name in HTTP_METADATA_HEADERS}
        kept = {
            canonical[name.lower()]: value
            for name, value in headers
            if name.lower() in canonical
        }
        return cls(kept)


@dataclass(frozen=True)
class UploadInfo:
    """What a store records about an open multipart upload."""

    key: str
    upload_id: str
    created: datetime
    expires: datetime
    http_metadata: HttpMetadata
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """R2's ``R2UploadedPart``, plus the size (for listing and for rules).

    Slotted, like :class:`~mpuflask.rules.PartRef`: a listing makes 10,000.
    """

    part_number: int
    etag: str
    size: int


@dataclass(frozen=True)
class ObjectInfo:
    """R2's ``R2Object`` without its body."""

    key: str
    size: int
    etag: str
    uploaded: datetime
    http_metadata: HttpMetadata
    version: str

    @property
    def http_etag(self) -> str:
        """The etag in double quotes, as the ``etag`` response header wants it."""
        return f'"{self.etag}"'


@dataclass(frozen=True)
class ListPosition:
    """Where a page of a listing starts: just after ``key``.

    ``past``: after every key that starts with ``key`` too (``key`` was a
    folded prefix, R2's ``delimitedPrefixes``).
    """

    key: str
    past: bool = False


@dataclass(frozen=True)
class ObjectListing:
    """One page of objects under a prefix (R2's ``R2Objects``)."""

    objects: list[ObjectInfo]
    delimited_prefixes: list[str]
    #: Where the next page starts; None on the last page.
    next: ListPosition | None


@dataclass(frozen=True)
class UploadPosition:
    """Where a page of open uploads starts: just after this upload."""

    key: str
    upload_id: str


@dataclass(frozen=True)
class UploadListing:
    """One page of open uploads, by key then uploadId."""

    uploads: list[UploadInfo]
    #: Where the next page starts; None on the last page.
    next: UploadPosition | None


class ObjectBody(io.RawIOBase):
    """One version of an object, open for reading.

    Seekable and readable like a file, so Werkzeug can serve ranges from it.
    It stays the version that was current when it was opened, whatever happens
    to the key afterwards, until it is closed.
    """

    info: ObjectInfo

    def intact(self, start: int, stop: int) -> bool:
        """Whether bytes ``start`` to ``stop`` can be read whole, as stored.

        A store whose bytes can be found damaged at rest checks (and logs)
        here what a response is about to send, before its first byte: a
        response can still say 404 then, not break off a 200. The default
        (nothing to check before reading) is True.
        """
        return True


@runtime_checkable
class FileSegments(Protocol):
    """An :class:`ObjectBody` whose bytes lie in files: it can be sent with
    ``sendfile(2)``, without reading them into Python."""

    def file_segments(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """``(fd, offset, count)`` for bytes ``start`` to ``stop``, in order.

        Each fd stays open until the next one is yielded or the body is closed.
        """
        ...


#: Called by ``complete`` with the parts about to be published; raise to refuse.
PublishCheck = Callable[[Sequence[UploadedPart]], None]


@runtime_checkable
class MultipartUpload(Protocol):
    """R2's ``R2MultipartUpload``: a handle on one upload of one key.

    Getting the handle does no I/O (as ``resumeMultipartUpload``); each call
    raises NoSuchUpload if the upload is unknown, finished, expired or belongs
    to another key.
    """

    key: str
    upload_id: str

    def info(self, operation: str = "listParts") -> UploadInfo:
        """The upload's record (owner, expiry, metadata); errors name ``operation``."""
        ...

    def upload_part(
        self, part_number: int, chunks: Iterable[bytes], length: int | None = None
    ) -> UploadedPart:
        """Store ``chunks`` as part ``part_number``, replacing an earlier one.

        ``length`` is the body's declared length (None: unknown until the end,
        a chunked body); the chunks add up to exactly that or raise. The part
        becomes visible only whole; if ``chunks`` raises, nothing is stored and
        the exception propagates. The caller bounds the part's size: the app
        reads bodies through :func:`mpuflask.bodies.part_body`.
        """
        ...

    def list_parts(self) -> list[UploadedPart]:
        """The parts uploaded so far, by part number."""
        ...

    def complete(
        self, parts: Sequence[PartRef], check: PublishCheck | None = None
    ) -> ObjectInfo:
        """Publish the listed parts as the key's object, at one instant.

        ``check`` sees exactly the parts that will be published (matched by
        number and etag, in the listed order) inside the same critical section
        as the publication, so no concurrent part upload can change them
        between the check and the publish; raising refuses the complete and
        leaves the upload as it was.
        """
        ...

    def abort(self) -> None:
        """Discard the upload; an unknown or finished upload is not an error."""
        ...


#: Work a request leaves for after its answer (deleting retired bytes).
Cleanup = Callable[[], None]


def run_now(cleanup: Cleanup) -> None:
    """Run a clean-up at once: outside a request, nobody waits for an answer."""
    cleanup()


@runtime_checkable
class LeavesCleanup(Protocol):
    """A store whose requests leave clean-up that can wait for the answer.

    The filesystem store deletes a deleted, replaced or aborted version's
    files after moving them to its trash; for an object of 10,000 parts
    that is 20,000 unlinks the client need not wait for. The app sets
    ``after_answer`` to run them once the response is sent
    (:mod:`mpuflask.afterwards`); by default they run at once.
    """

    after_answer: Callable[[Cleanup], None]


@runtime_checkable
class Bucket(Protocol):
    """R2's ``R2Bucket``, for the calls the Worker makes (and HEAD)."""

    def create_multipart_upload(
        self, key: str, http_metadata: HttpMetadata, owner: str | None = None
    ) -> UploadInfo:
        """Start an upload of ``key``; its metadata becomes the object's."""
        ...

    def resume_multipart_upload(self, key: str, upload_id: str) -> MultipartUpload:
        """A handle on an existing upload, without checking it exists."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or None if the key holds no object."""
        ...

    def get(self, key: str) -> ObjectBody | None:
        """The object, open for reading, or None if the key holds no object."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        ...

    def list_objects_page(
        self,
        prefix: str,
        delimiter: str | None,
        start: ListPosition | None,
        limit: int,
    ) -> ObjectListing:
        """Up to ``limit`` objects and folded prefixes under ``prefix``, in order.

        With a ``delimiter``, a key that goes on past it after the prefix is
        shown once as its folded prefix (``a/`` for ``a/b`` with ``/``), which
        counts as one entry. The filesystem store orders keys by their UTF-8
        bytes; the s3 store in its engine's order (the same on R2 and S3).
        """
        ...

    def list_uploads_page(
        self,
        owner: str | None,
        prefix: str,
        start: UploadPosition | None,
        limit: int,
    ) -> UploadListing:
        """Up to ``limit`` unexpired open uploads of ``owner`` (None: anonymous)
        under ``prefix``, ordered by key (UTF-8 bytes), then uploadId."""
        ...

    def open_uploads(self, owner: str | None) -> int:
        """How many unexpired uploads ``owner`` holds (None: anonymous).

        Behind ``MPUFLASK_MAX_OPEN_UPLOADS``, asked at every create: it must
        be right across processes and crashes (an upload completed, aborted or
        expired does not count) and cheap enough for that.
        """
        ...

    def sweep(self) -> int:
        """Remove what crashes and expiry left behind; return how many items.

        Safe to run at any time, from any process, beside live requests.
        """
        ...
