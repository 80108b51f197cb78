"""Listing the s3 store: objects by ListObjectsV2, open uploads by their records.

Objects come in the engine's own order (UTF-8 bytes on R2, AWS, Ceph and
MinIO) from ``ListObjectsV2``, with the engine's own folding for a
delimiter. The record prefix (``.mpuflask/``: upload records, staged parts)
is hidden: a listing that reaches it jumps past it with ``StartAfter`` (one
request), and a folded prefix that only the record prefix fills is left out.
Each listed object is then read with ``HeadObject`` (in parallel): a listing
does not carry the HTTP metadata, nor R2's etag where it differs from the
engine's (a staged upload's copy). An object deleted between the two is left
out.

Open uploads: the upload records are listed, and each one this process has
not read at the etag listed is read (one GET each, in parallel); all are
filtered by owner, expiry and prefix. A record listed again with the etag it
was read at holds the same bytes (:class:`KnownRecords`), so counting the
uploads at each create (``MPUFLASK_MAX_OPEN_UPLOADS``) costs the listing
plus a GET per record written since, not one per open upload. A record a
crash left is listed until sweep deletes it (its uploadId then answers 10024).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import Protocol
from typing import TypeVar

from ..errors import InvalidObjectName
from ..rules import MAX_KEY_BYTES
from .base import ListPosition
from .base import ObjectInfo
from .base import ObjectListing
from .base import UploadInfo
from .base import UploadListing
from .base import UploadPosition
from .listing import order
from .listing import uploads_page
from .s3engine import S3Engine
from .s3errors import engine_errors
from .s3records import UploadRecord
from .s3records import record_key
from .s3records import records_prefix
from .s3records import upload_id_of_record
from .s3store import S3Store

T = TypeVar("T")
R = TypeVar("R")


class KnownRecords:
    """The open uploads this process read from their records, each with the
    etag its record was read at.

    A record's etag changes whenever its bytes do (an engine's etag of a
    plain PUT is its MD5, or unique per write), so a record listed with the
    etag it was read at need not be read again. Only what was read is kept
    (a record that was gone or unreadable is read again next time), only
    its :class:`~.base.UploadInfo` (not a claim's part list), and only for
    what the last count listed: a record gone from the engine is forgotten.
    """

    def __init__(self) -> None:
        self._read: dict[str, tuple[str, UploadInfo]] = {}

    def uploads(
        self,
        listed: dict[str, str],
        read: Callable[[list[str]], list[tuple[UploadRecord, str] | None]],
    ) -> list[UploadInfo]:
        """The uploads whose records ``listed`` names (upload id -> etag),
        reading with ``read`` only those not known at that etag."""
        known = self._read
        unknown = [
            upload_id
            for upload_id, etag in listed.items()
            if upload_id not in known or known[upload_id][0] != etag
        ]
        fresh = dict(zip(unknown, read(unknown), strict=True))
        now_known: dict[str, tuple[str, UploadInfo]] = {}
        for upload_id in listed:
            if upload_id not in fresh:
                now_known[upload_id] = known[upload_id]
            elif (found := fresh[upload_id]) is not None:
                record, etag = found  # the etag read: maybe newer than listed
                now_known[upload_id] = (etag, record.info)
        self._read = now_known  # one assignment: concurrent counts never mix
        return [info for _, info in now_known.values()]


class ListingBucket(Protocol):
    """What listing uses of :class:`~.s3.S3Bucket` (typed here, not imported:
    s3.py imports this module)."""

    @property
    def engine(self) -> S3Engine: ...

    @property
    def store(self) -> S3Store: ...

    @property
    def known_records(self) -> KnownRecords: ...

    def head(self, key: str) -> ObjectInfo | None: ...


#: Engine requests a listing page makes at once (HEADs, record GETs).
PARALLEL = 32
_OBJECT = "object"
_PREFIX = "prefix"


def list_objects_page(
    bucket: ListingBucket,
    prefix: str,
    delimiter: str | None,
    start: ListPosition | None,
    limit: int,
) -> ObjectListing:
    """A page of objects and folded prefixes under ``prefix``."""
    picked: list[tuple[str, str]] = []
    more = False
    if not prefix.startswith(bucket.store.prefix):
        for entry in _entries(bucket, prefix, delimiter, start):
            if len(picked) == limit:
                more = True
                break
            picked.append(entry)
    keys = [name for kind, name in picked if kind == _OBJECT]
    described = _parallel(lambda key: _head(bucket, key), keys)
    objects = [info for info in described if info is not None]
    prefixes = [name for kind, name in picked if kind == _PREFIX]
    last = None
    if more and picked:
        kind, name = picked[-1]
        last = ListPosition(name, past=kind == _PREFIX)
    return ObjectListing(objects, prefixes, last)


def list_uploads_page(
    bucket: ListingBucket,
    owner: str | None,
    prefix: str,
    start: UploadPosition | None,
    limit: int,
) -> UploadListing:
    """A page of ``owner``'s open, unexpired uploads under ``prefix``."""
    found = open_uploads(bucket, owner, "listMultipartUploads")
    return uploads_page(found, prefix, start, limit)


def open_uploads(
    bucket: ListingBucket, owner: str | None, operation: str
) -> list[UploadInfo]:
    """``owner``'s open, unexpired uploads, in no order: every record is
    listed, and those not known at their etag are read, up to PARALLEL reads
    at a time."""
    prefix = bucket.store.prefix
    # Only a record's own key: another S3 client's object whose name decodes
    # to the same upload id (``a+b.json`` beside ``a%2Bb.json``) is not it.
    listed = {
        upload_id: item.etag
        for item in bucket.engine.list_objects(records_prefix(prefix), operation)
        if (upload_id := upload_id_of_record(prefix, item.key))
        and record_key(prefix, upload_id) == item.key
    }

    def read(ids: list[str]) -> list[tuple[UploadRecord, str] | None]:
        # None: gone since the listing, or not a gateway's record.
        return _parallel(lambda each: bucket.store.read_record(each, operation), ids)

    now = bucket.store.clock()
    return [
        info
        for info in bucket.known_records.uploads(listed, read)
        if info.owner == owner and info.expires > now
    ]


def _head(bucket: ListingBucket, key: str) -> ObjectInfo | None:
    try:
        return bucket.head(key)
    except InvalidObjectName:
        return None  # written by another S3 client: a key R2 cannot have


def _parallel(work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``work`` on every item, up to PARALLEL at a time, results in order."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(PARALLEL, len(items))) as pool:
        return list(pool.map(work, items))


def _entries(
    bucket: ListingBucket,
    prefix: str,
    delimiter: str | None,
    start: ListPosition | None,
) -> Iterator[tuple[str, str]]:
    """(kind, name) in the engine's order from ``start``, the record prefix hidden."""
    state = bucket.store.prefix
    start_after = None if start is None else start.key
    past = start.key if start is not None and start.past else None
    token: str | None = None
    jumped = False
    while True:
        arguments: dict[str, Any] = {
            "Bucket": bucket.engine.bucket,
            "Prefix": prefix,
            "MaxKeys": 1000,
        }
        if delimiter:
            arguments["Delimiter"] = delimiter
        if token is not None:
            arguments["ContinuationToken"] = token
        elif start_after is not None:
            arguments["StartAfter"] = start_after
        with engine_errors("list"):
            answer = bucket.engine.client.list_objects_v2(**arguments)
        found = [(_OBJECT, item["Key"]) for item in answer.get("Contents", [])]
        found += [
            (_PREFIX, item["Prefix"]) for item in answer.get("CommonPrefixes", [])
        ]
        found.sort(key=lambda entry: order(entry[1]))
        jump = False
        for kind, name in found:
            if past is not None and name.startswith(past):
                continue  # the folded prefix the last page ended with
            if name.startswith(state):
                if not jumped:
                    jump = True
                    break
                continue  # an engine whose order is not bytes: filtered
            if kind == _PREFIX and state.startswith(name):
                if not _holds_other_keys(bucket, name):
                    continue  # folded from record keys only
            yield kind, name
        if jump:
            jumped, token, start_after = True, None, beyond(state)
            continue
        if not answer.get("IsTruncated"):
            return
        token = answer.get("NextContinuationToken")
        if not token:
            return


def _holds_other_keys(bucket: ListingBucket, folded: str) -> bool:
    """Whether a key under ``folded`` lies outside the record prefix."""
    for start_after in (None, beyond(bucket.store.prefix)):
        arguments: dict[str, Any] = {
            "Bucket": bucket.engine.bucket,
            "Prefix": folded,
            "MaxKeys": 1,
        }
        if start_after is not None:
            arguments["StartAfter"] = start_after
        with engine_errors("list"):
            answer = bucket.engine.client.list_objects_v2(**arguments)
        for item in answer.get("Contents", []):
            if not item["Key"].startswith(bucket.store.prefix):
                return True
    return False


def beyond(state: str) -> str:
    """The greatest key (by UTF-8 bytes, at most 1024 of them) under ``state``.

    ``StartAfter`` it skips everything under the record prefix in one step.
    """
    room = MAX_KEY_BYTES - len(state.encode())
    tail = {0: "", 1: "\x7f", 2: "\u07ff", 3: "\uffff"}[room % 4]
    return state + "\U0010ffff" * (room // 4) + tail
