"""One upload of the S3 store: parts, listing, complete and abort.

Every call first reads the upload's record (:mod:`.s3records`): it says
whether the uploadId is open, unexpired and bound to this key, and on which
engine key the parts live. Then:

* uploadPart streams the request body into ``UploadPart`` (:mod:`.s3io`). The
  etag we answer is the MD5 we computed on the way; the engine's part etag
  must equal it (true of S3 for all but SSE-KMS/SSE-C), else complete could
  never match it and the part is refused as the engine's failure.
* complete applies R2's rules itself, from ``ListParts`` (sizes, equal sizes,
  etags), so every engine answers alike, then publishes: in place (R2, AWS,
  MinIO) with ``CompleteMultipartUpload`` of the listed parts, which drops the
  others and copies nothing; staged (Ceph) as :mod:`.s3staged` explains. The
  empty list, which S3 refuses, becomes an empty ``PutObject`` carrying R2's
  ``-0`` etag in its metadata. The key changes at one instant in every case:
  S3 publishes a completed upload, a copy or a put atomically.
* abort aborts on the engine, then deletes the record.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from botocore.exceptions import BotoCoreError

from ..errors import EntityTooLarge
from ..errors import InvalidPart
from ..errors import NoSuchUpload
from ..rules import PartRef
from ..rules import check_part_order
from ..rules import check_part_sizes
from ..rules import multipart_etag
from ..rules import normalize_etag
from .base import ObjectInfo
from .base import PublishCheck
from .base import UploadedPart
from .base import UploadInfo
from .s3errors import EngineFailed
from .s3errors import engine_errors
from .s3io import PartStream
from .s3io import spool_part
from .s3records import ETAG_META
from .s3records import UploadRecord
from .s3records import object_arguments
from .s3staged import StagedPart
from .s3staged import complete_staged
from .s3staged import current_parts
from .s3staged import delete_staging
from .s3staged import part_list
from .s3staged import small_part_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from .s3 import S3Bucket

log = logging.getLogger(__name__)

COMPLETE = "completeMultipartUpload"


class S3Upload:
    """One upload of :class:`~.s3.S3Bucket` (a ``MultipartUpload``)."""

    def __init__(self, bucket: S3Bucket, key: str, upload_id: str) -> None:
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self._record: UploadRecord | None = None

    def info(self, operation: str = "listParts") -> UploadInfo:
        return self._open(operation).info

    def _open(self, operation: str) -> UploadRecord:
        """The record, read once per handle (a handle lives for one request:
        the views ask for ``info()`` and then act). Expiry is checked on every
        call; an upload finished meanwhile is refused by the engine (10024)."""
        record = self._record
        if record is None or record.info.expires <= self.bucket.clock():
            record = self.bucket.open_record(self.key, self.upload_id, operation)
            self._record = record
        return record

    def upload_part(
        self, part_number: int, chunks: Iterable[bytes], length: int | None = None
    ) -> UploadedPart:
        operation = "uploadPart"
        bucket = self.bucket
        # Refuse before reading a byte of the body if the upload is not there.
        record = self._open(operation)
        if length is not None:
            if length > bucket.max_part_size:
                raise EntityTooLarge(operation)
            stream = PartStream(chunks, length, operation)
            with engine_errors(operation, upload=True):
                try:
                    answer = self._send_part(
                        bucket.stream_client, record, part_number, stream, length, None
                    )
                except BotoCoreError:
                    stream.raise_failure()  # the request's fault, not the engine's
                    raise
            md5, size = stream.md5.hexdigest(), length
        else:
            spool, md5, size = spool_part(
                chunks, bucket.max_part_size, bucket.spool_dir, operation
            )
            with spool, engine_errors(operation, upload=True):
                # Known before sending this time: the engine checks the bytes.
                answer = self._send_part(
                    bucket.client, record, part_number, spool, size, _base64(md5)
                )
        if normalize_etag(answer) != md5:
            raise EngineFailed(
                operation,
                f"engine part etag {answer} is not the MD5 {md5} "
                "(SSE-KMS or SSE-C on the bucket?)",
            )
        if record.staged and size >= bucket.min_part_size:
            # A small part n sent earlier is no longer the current part n.
            with engine_errors(operation):
                bucket.client.delete_object(
                    Bucket=bucket.bucket,
                    Key=small_part_key(record.engine_key, part_number),
                )
        return UploadedPart(part_number, md5, size)

    def _send_part(
        self,
        client: S3Client,
        record: UploadRecord,
        part_number: int,
        body: Any,
        size: int,
        content_md5: str | None,
    ) -> str:
        """Send one part's body; return the engine's etag for it.

        A staged upload keeps parts under the minimum size out of its engine
        upload, as small objects (:mod:`.s3staged`).
        """
        bucket = self.bucket
        checksum: dict[str, Any] = {}
        if content_md5 is not None:
            checksum["ContentMD5"] = content_md5
        if record.staged and size < bucket.min_part_size:
            return client.put_object(
                Bucket=bucket.bucket,
                Key=small_part_key(record.engine_key, part_number),
                Body=body,
                ContentLength=size,
                **checksum,
            )["ETag"]
        return client.upload_part(
            Bucket=bucket.bucket,
            Key=record.engine_key,
            UploadId=self.upload_id,
            PartNumber=part_number,
            Body=body,
            ContentLength=size,
            **checksum,
        )["ETag"]

    def list_parts(self) -> list[UploadedPart]:
        record = self._open("listParts")
        return [staged.part for staged in self._current_parts(record, "listParts")]

    def _current_parts(
        self,
        record: UploadRecord,
        operation: str,
        engine_parts: list[UploadedPart] | None = None,
    ) -> list[StagedPart]:
        if engine_parts is None:
            engine_parts = self._engine_parts(record, operation)
        if not record.staged:
            return [StagedPart(part, True) for part in engine_parts]
        return current_parts(self.bucket, engine_parts, record.engine_key, operation)

    def complete(
        self, parts: Sequence[PartRef], check: PublishCheck | None = None
    ) -> ObjectInfo:
        check_part_order(parts)
        bucket = self.bucket
        record = self._open(COMPLETE)
        engine_parts = self._engine_parts(record, COMPLETE)
        current = self._current_parts(record, COMPLETE, engine_parts)
        by_number = {staged.part.part_number: staged for staged in current}
        chosen = []
        for ref in parts:
            staged = by_number.get(ref.part_number)
            if staged is None or staged.part.etag != ref.etag:
                raise InvalidPart(COMPLETE)
            chosen.append(staged)
        listed = [staged.part for staged in chosen]
        check_part_sizes([part.size for part in listed], bucket.min_part_size)
        if check is not None:
            # The engine publishes exactly these etags or refuses (InvalidPart):
            # a part overwritten after this check cannot slip in.
            check(listed)
        etag = multipart_etag([part.etag for part in listed])
        with bucket.events.publishing(record, listed, etag):
            if not listed:
                self._complete_empty(record, etag)
            elif record.staged:
                complete_staged(bucket, record, chosen, current, engine_parts, etag)
            else:
                self._complete_in_place(listed)
        try:
            bucket.delete_record(self.upload_id)
        except Exception:
            # Published all the same; sweep deletes the record later.
            log.warning("%s: record of %s left for sweep", COMPLETE, self.upload_id)
        return ObjectInfo(
            key=self.key,
            size=sum(part.size for part in listed),
            etag=etag,
            uploaded=bucket.clock(),
            http_metadata=record.info.http_metadata,
            version=etag,
        )

    def abort(self) -> None:
        """Abort on the engine, then drop the record.

        Unknown and finished uploads are left alone, quietly (R2's abort is
        idempotent); an upload of another key is never touched (its record
        names its key); an expired one is aborted like an open one.
        """
        bucket = self.bucket
        record = bucket.fetch_record(self.upload_id, "abortMultipartUpload")
        if record is not None and record.info.key != self.key:
            return
        # Without a record, an upload of this very key is a crash leftover of
        # create: aborting it is safe (S3 aborts only if the key matches).
        engine_key = self.key if record is None else record.engine_key
        with bucket.events.ending(record) as step:
            step.happened = bucket.abort_on_engine(engine_key, self.upload_id)
        if record is not None:
            if record.staged:
                delete_staging(bucket, record.engine_key)
            bucket.delete_record(self.upload_id)

    # -- publishing ---------------------------------------------------------------

    def _complete_in_place(self, listed: list[UploadedPart]) -> None:
        bucket = self.bucket
        with engine_errors(COMPLETE, upload=True):
            bucket.client.complete_multipart_upload(
                Bucket=bucket.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": part_list(listed)},
            )

    def _complete_empty(self, record: UploadRecord, etag: str) -> None:
        """R2 completes an empty list as an empty object; S3 refuses it.

        The upload is aborted first (only one complete or abort can win that),
        then the empty object is written with R2's etag in its metadata.
        """
        bucket = self.bucket
        if not bucket.abort_on_engine(record.engine_key, self.upload_id):
            raise NoSuchUpload(COMPLETE)
        if record.staged:
            delete_staging(bucket, record.engine_key)
        arguments = object_arguments(record.info.http_metadata)
        arguments["Metadata"][ETAG_META] = etag
        with engine_errors(COMPLETE):
            bucket.client.put_object(
                Bucket=bucket.bucket, Key=self.key, Body=b"", **arguments
            )

    def _engine_parts(self, record: UploadRecord, operation: str) -> list[UploadedPart]:
        """Every part the engine holds, by part number (ListParts, paginated)."""
        bucket = self.bucket
        parts = []
        with engine_errors(operation, upload=True):
            paginator = bucket.client.get_paginator("list_parts")
            for page in paginator.paginate(
                Bucket=bucket.bucket, Key=record.engine_key, UploadId=self.upload_id
            ):
                for part in page.get("Parts", []):
                    parts.append(
                        UploadedPart(
                            part["PartNumber"],
                            normalize_etag(part["ETag"]),
                            part["Size"],
                        )
                    )
        return sorted(parts, key=lambda part: part.part_number)


def _base64(md5_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(md5_hex)).decode()
