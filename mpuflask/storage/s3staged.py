"""Staged uploads: R2's complete on engines that must list every part.

R2 (like AWS and MinIO) completes an upload with any ascending subset of its
parts and drops the rest. Ceph's radosgw refuses: its complete must list every
uploaded part, and every part but the highest-numbered must be at least its
minimum size. The only way to read a part's bytes back is to complete. So on
such engines (``S3Bucket.stage_uploads``) an upload is laid out so that
completing all of it is always allowed, and the object's key is written by a
copy:

* parts of at least the minimum size go to a multipart upload on a staging
  key, ``<prefix>staging/<token>``; smaller ones (only a last part may be
  small) are small objects beside it, ``<prefix>staging/<token>/<n>``. The
  current part ``n`` is the small object if there is one, else the engine's.
* complete, usual case (every part listed): the small last part, if any, is
  copied into the staging upload as its highest part (a copy of under the
  minimum part size), the staging upload is completed, and the result is
  copied to the key with ``CopyObject``, which radosgw does by reference
  (constant time, whatever the size).
* complete with parts left out: the staging upload is completed whole, and
  the listed parts are copied by byte range into a new upload of the key
  (``UploadPartCopy``: a real copy, on this rare path only).

Staging objects are deleted by complete and abort; sweep deletes those of
uploads that are gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from ..errors import NoSuchUpload
from ..rules import normalize_etag
from .base import UploadedPart
from .s3errors import engine_errors
from .s3records import ETAG_META
from .s3records import UploadRecord
from .s3records import object_arguments

if TYPE_CHECKING:
    from .s3 import S3Bucket

log = logging.getLogger(__name__)

COMPLETE = "completeMultipartUpload"


@dataclass(frozen=True)
class StagedPart:
    """A current part of a staged upload, and where its bytes are."""

    part: UploadedPart
    #: In the staging multipart upload (else: a small object).
    in_engine: bool


def small_part_key(engine_key: str, part_number: int) -> str:
    """Where a small part of a staged upload lives."""
    return f"{engine_key}/{part_number:05d}"


def small_parts(bucket: S3Bucket, engine_key: str, operation: str) -> list[Any]:
    """The small-part objects of a staged upload (ListObjectsV2 items)."""
    return list(bucket.list_objects(f"{engine_key}/", operation))


def current_parts(
    bucket: S3Bucket, engine_parts: list[UploadedPart], engine_key: str, operation: str
) -> list[StagedPart]:
    """The upload's parts as the client sees them: small objects win."""
    current = {part.part_number: StagedPart(part, True) for part in engine_parts}
    for item in small_parts(bucket, engine_key, operation):
        number = int(item["Key"].rsplit("/", 1)[1])
        etag = normalize_etag(item["ETag"])
        current[number] = StagedPart(UploadedPart(number, etag, item["Size"]), False)
    return [current[number] for number in sorted(current)]


def delete_small_parts(bucket: S3Bucket, engine_key: str, operation: str) -> None:
    for item in small_parts(bucket, engine_key, operation):
        with engine_errors(operation):
            bucket.client.delete_object(Bucket=bucket.bucket, Key=item["Key"])


def complete_staged(
    bucket: S3Bucket,
    record: UploadRecord,
    listed: list[StagedPart],
    current: list[StagedPart],
    engine_parts: list[UploadedPart],
    etag: str,
) -> None:
    """Publish ``listed`` at the record's key (see the module docstring)."""
    client = bucket.client
    engine_key = record.engine_key
    arguments = object_arguments(record.info.http_metadata)
    arguments["Metadata"][ETAG_META] = etag
    engine_numbers = {part.part_number for part in engine_parts}
    listed_numbers = [staged.part.part_number for staged in listed]
    tail = listed[-1]
    in_order = (
        len(listed) == len(current)
        and engine_numbers <= set(listed_numbers)
        and all(staged.in_engine for staged in listed[:-1])
    )
    upload_id = record.info.upload_id
    with engine_errors(COMPLETE, upload=True):
        if in_order:
            # Every part listed: complete the staging upload as the object.
            parts = [staged.part for staged in listed[:-1]]
            if tail.in_engine:
                parts.append(tail.part)
            else:
                copied = client.upload_part_copy(
                    Bucket=bucket.bucket,
                    Key=engine_key,
                    UploadId=upload_id,
                    PartNumber=tail.part.part_number,
                    CopySource={
                        "Bucket": bucket.bucket,
                        "Key": small_part_key(engine_key, tail.part.part_number),
                    },
                )
                tail_etag = normalize_etag(copied["CopyPartResult"].get("ETag", ""))
                parts.append(UploadedPart(tail.part.part_number, tail_etag, 0))
            client.complete_multipart_upload(
                Bucket=bucket.bucket,
                Key=engine_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": part_list(parts)},
            )
        elif engine_parts:
            # Every engine part is of the minimum size: completing all is allowed.
            client.complete_multipart_upload(
                Bucket=bucket.bucket,
                Key=engine_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": part_list(engine_parts)},
            )
        elif not bucket.abort_on_engine(engine_key, upload_id):
            raise NoSuchUpload(COMPLETE)
    # The upload is closed from here: a failure below loses it (10024 on a
    # retry); sweep deletes whatever is left under the staging key.
    try:
        with engine_errors(COMPLETE):
            if in_order:
                client.copy_object(
                    Bucket=bucket.bucket,
                    Key=record.info.key,
                    CopySource={"Bucket": bucket.bucket, "Key": engine_key},
                    MetadataDirective="REPLACE",
                    **arguments,
                )
            else:
                _copy_ranges(bucket, record, listed, engine_parts, arguments)
    finally:
        delete_staging(bucket, engine_key)


def delete_staging(bucket: S3Bucket, engine_key: str) -> None:
    """Delete a closed staged upload's objects (best effort: sweep retries)."""
    try:
        with engine_errors(COMPLETE):
            bucket.client.delete_object(Bucket=bucket.bucket, Key=engine_key)
            delete_small_parts(bucket, engine_key, COMPLETE)
    except Exception:
        log.warning("staging objects under %s left for sweep", engine_key)


def _copy_ranges(
    bucket: S3Bucket,
    record: UploadRecord,
    listed: list[StagedPart],
    engine_parts: list[UploadedPart],
    arguments: dict[str, Any],
) -> None:
    """Write the key from the listed parts: byte ranges of the completed
    staging object, and small-part objects, copied into a new upload."""
    client = bucket.client
    engine_key = record.engine_key
    offsets, offset = {}, 0
    for part in engine_parts:
        offsets[part.part_number] = offset
        offset += part.size
    sources = [staged for staged in listed if staged.part.size > 0]
    key = record.info.key
    if not sources:
        client.put_object(Bucket=bucket.bucket, Key=key, Body=b"", **arguments)
        return
    upload_id = client.create_multipart_upload(
        Bucket=bucket.bucket, Key=key, **arguments
    )["UploadId"]
    try:
        copied = []
        for staged in sources:
            number = staged.part.part_number
            if staged.in_engine:
                source = {"Bucket": bucket.bucket, "Key": engine_key}
                start = offsets[number]
                span = f"bytes={start}-{start + staged.part.size - 1}"
            else:
                source = {
                    "Bucket": bucket.bucket,
                    "Key": small_part_key(engine_key, number),
                }
                span = f"bytes=0-{staged.part.size - 1}"
            answer = client.upload_part_copy(
                Bucket=bucket.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,  # type: ignore[arg-type]
                CopySourceRange=span,
            )
            etag = normalize_etag(answer["CopyPartResult"].get("ETag", ""))
            copied.append(UploadedPart(number, etag, staged.part.size))
        client.complete_multipart_upload(
            Bucket=bucket.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": part_list(copied)},
        )
    except BaseException:
        bucket.abort_on_engine(key, upload_id)
        raise


def part_list(parts: list[UploadedPart]) -> Any:
    """CompleteMultipartUpload's part list."""
    return [
        {"PartNumber": part.part_number, "ETag": f'"{part.etag}"'} for part in parts
    ]
