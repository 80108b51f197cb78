"""One upload of the S3 store: parts, listing, complete and abort.

Every call first reads the upload's record (:mod:`.s3records`): it says
whether the uploadId is open, unexpired and bound to this key, and on which
engine key the parts live. Then:

* uploadPart streams the request body into ``UploadPart`` (:mod:`.s3io`). The
  etag we answer is the MD5 we computed on the way; the engine's part etag
  must equal it (true of S3 for all but SSE-KMS/SSE-C), else complete could
  never match it and the part is refused as the engine's failure. On a staged
  upload a part under the minimum size is spooled and also kept as a small
  object (:mod:`.s3staged`). The part is answered 200 only once the engine
  holds it and the record shows no complete under way (:meth:`_confirm`):
  a complete that closes the upload later must list it.
* complete: :mod:`.s3complete`.
* abort aborts on the engine (only one of an abort and a complete can win
  there), then deletes the small objects and the record.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import timedelta
from typing import IO

from botocore.exceptions import BotoCoreError

from ..errors import EntityTooLarge
from ..errors import NoSuchUpload
from ..rules import PartRef
from .base import ObjectInfo
from .base import PublishCheck
from .base import UploadedPart
from .base import UploadInfo
from .s3complete import complete
from .s3complete import settle
from .s3errors import EngineFailed
from .s3errors import EngineUnavailable
from .s3errors import engine_errors
from .s3io import BodyLengthMismatch
from .s3io import PartStream
from .s3io import spool_part
from .s3records import UploadRecord
from .s3staged import current_parts
from .s3staged import small_key
from .s3store import S3Store

log = logging.getLogger(__name__)

ABORT = "abortMultipartUpload"


class S3Upload:
    """One upload of an S3 store (a ``MultipartUpload``).

    A handle lives for one request: the views ask for ``info()`` and then act,
    so the record is read once per handle.
    """

    def __init__(self, store: S3Store, key: str, upload_id: str) -> None:
        self.store = store
        self.key = key
        self.upload_id = upload_id
        self._opened: tuple[UploadRecord, str] | None = None

    def info(self, operation: str = "listParts") -> UploadInfo:
        return self._open(operation).info

    def _open(self, operation: str) -> UploadRecord:
        """The record (expiry checked on every call; an upload finished
        meanwhile is refused by the engine, 10024)."""
        opened = self._opened
        if opened is None or (
            opened[0].claim is None and opened[0].info.expires <= self.store.clock()
        ):
            opened = self.store.open_record(self.key, self.upload_id, operation)
            self._opened = opened
        return opened[0]

    def upload_part(
        self, part_number: int, chunks: Iterable[bytes], length: int | None = None
    ) -> UploadedPart:
        operation = "uploadPart"
        store = self.store
        if length is not None and length > store.max_part_size:
            raise EntityTooLarge(operation)
        # Refuse before reading a byte of the body if the upload is not there.
        record = self._open(operation)
        if length is not None and (not record.staged or length >= store.min_part_size):
            part = self._stream_part(record, part_number, chunks, length)
        else:
            spool, md5, size = spool_part(
                chunks, store.max_part_size, store.spool_dir, operation
            )
            with spool:
                if length is not None and size != length:
                    raise BodyLengthMismatch(operation)
                if record.staged and size < store.min_part_size:
                    # Kept first: whenever the engine holds a small part n,
                    # its bytes can be read back from here (.s3staged).
                    store.engine.put(
                        small_key(record.engine_key, part_number, md5),
                        spool,
                        operation,
                        {"ContentMD5": _base64(md5), "ContentLength": size},
                    )
                    spool.seek(0)
                part = self._send_spooled(record, part_number, spool, md5, size)
        self._confirm(operation)
        return part

    def _confirm(self, operation: str) -> None:
        """Answer 200 only if no complete can have closed the upload without
        this part.

        The engine's answer is not enough: radosgw answers an UploadPart that
        races a CompleteMultipartUpload 200 and publishes without it (26 times
        in 40 tries here). A complete claims the record before it closes. So:
        no claim now, and any close comes later and sees the part; a claim,
        and we wait, as for the filesystem store's lock, until it is released
        (the upload is open, with the part) or done (10024).
        """
        store = self.store
        deadline = time.monotonic() + store.complete_lease.total_seconds()
        delay = 0.02
        while True:
            found = store.read_record(self.upload_id, operation)
            if found is None or found[0].info.key != self.key:
                raise NoSuchUpload(operation)
            claim = found[0].claim
            if claim is None:
                return
            left = claim.until - store.clock()
            if left <= timedelta(0):
                if not settle(store, *found).released:
                    raise NoSuchUpload(operation)
                continue
            if time.monotonic() >= deadline:
                raise EngineUnavailable(operation, int(left.total_seconds()) + 1)
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _stream_part(
        self, record: UploadRecord, part_number: int, chunks: Iterable[bytes], size: int
    ) -> UploadedPart:
        """Straight from the request to the engine, hashed on the way."""
        operation = "uploadPart"
        stream = PartStream(chunks, size, operation)
        with engine_errors(operation, upload=True):
            try:
                etag = self.store.engine.upload_part(
                    record.engine_key,
                    self.upload_id,
                    part_number,
                    stream,
                    size,
                    None,
                    once=True,
                )
            except BotoCoreError:
                stream.raise_failure()  # the request's fault, not the engine's
                raise
        return _checked(part_number, etag, stream.md5.hexdigest(), size)

    def _send_spooled(
        self,
        record: UploadRecord,
        part_number: int,
        spool: IO[bytes],
        md5: str,
        size: int,
    ) -> UploadedPart:
        """From the spool file: known before sending, so the engine checks it."""
        with engine_errors("uploadPart", upload=True):
            etag = self.store.engine.upload_part(
                record.engine_key,
                self.upload_id,
                part_number,
                spool,
                size,
                _base64(md5),
                once=False,
            )
        return _checked(part_number, etag, md5, size)

    def list_parts(self) -> list[UploadedPart]:
        record = self._open("listParts")
        engine_parts = self.store.engine.list_parts(
            record.engine_key, self.upload_id, "listParts"
        )
        return [found.part for found in current_parts(record, engine_parts)]

    def complete(
        self, parts: Sequence[PartRef], check: PublishCheck | None = None
    ) -> ObjectInfo:
        self._open("completeMultipartUpload")
        opened, self._opened = self._opened, None
        return complete(self.store, self.key, self.upload_id, opened, parts, check)

    def abort(self) -> None:
        """Abort on the engine, then delete what the upload kept.

        Unknown and finished uploads are left alone, quietly (R2's abort is
        idempotent); an upload of another key is never touched (its record
        names its key); an expired one is aborted like an open one. An upload
        a complete has closed is that complete's to publish (it won).
        """
        store = self.store
        found = self._opened or store.read_record(self.upload_id, ABORT)
        if found is None:
            # Without a record, an upload of this very key is a crash leftover
            # of create: aborting it is safe (S3 aborts only if the key matches).
            store.engine.abort_upload(self.key, self.upload_id, ABORT)
            return
        record = found[0]
        if record.info.key != self.key:
            return
        with store.events.ending(record) as step:
            aborted = store.engine.abort_upload(
                record.engine_key, self.upload_id, ABORT
            )
            step.happened = aborted
        if not aborted and record.claim is not None:
            return
        discard(store, record)


def discard(store: S3Store, record: UploadRecord) -> None:
    """Delete an aborted upload's small objects, then its record."""
    keys = []
    if record.staged:
        prefix = f"{record.engine_key}/"
        keys = [item.key for item in store.engine.list_objects(prefix, ABORT)]
    name = store.record_key(record.info.upload_id)
    if name is not None:
        keys.append(name)
    store.engine.delete_many(keys, ABORT)


def _checked(part_number: int, etag: str, md5: str, size: int) -> UploadedPart:
    if etag != md5:
        raise EngineFailed(
            "uploadPart",
            f"engine part etag {etag} is not the MD5 {md5} "
            "(SSE-KMS or SSE-C on the bucket?)",
        )
    return UploadedPart(part_number, md5, size)


def _base64(md5_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(md5_hex)).decode()
