"""The S3 engine behind the s3 store: every request it makes, in one object.

:class:`S3Engine` is one bucket of one engine, reached through one boto3
client per process. The rest of the store never touches boto3: it asks this
object to put, get, list, copy, and to create, fill, complete and abort
multipart uploads, and gets back plain values or the R2 errors of
:mod:`.s3errors`. So the engine requests a store call makes can be read (and
counted, and made to fail in tests) in one place.

Listings page by hand rather than with boto3's paginators, so every request
goes through :attr:`S3Engine.client` (a test can wrap it to fail or stop after
any request).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..rules import normalize_etag
from .base import UploadedPart
from .s3clients import EngineClients
from .s3errors import EngineFailed
from .s3errors import engine_errors
from .s3errors import error_code
from .s3errors import http_status
from .s3errors import is_not_found


class WriteConflict(Exception):
    """A conditional write lost: the object changed (or appeared) meanwhile."""


@dataclass(frozen=True)
class Stored:
    """A small object read whole: its bytes and its etag (bare, unquoted)."""

    data: bytes
    etag: str


@dataclass(frozen=True)
class Listed:
    """One object of a listing (``LastModified`` to the millisecond)."""

    key: str
    size: int
    etag: str
    modified: datetime


class S3Engine(EngineClients):
    """One bucket of an S3 engine: every request the store makes, each a method.

    The boto3 clients they go through (one that retries, one that never
    does, made again after a fork) are its base's: :mod:`.s3clients`.
    """

    # -- small objects: records, leases, markers ---------------------------------

    def read(self, key: str, operation: str) -> Stored | None:
        """A small object's bytes and etag, or None if there is none."""
        with engine_errors(operation):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if is_not_found(error):
                    return None
                raise
            data = answer["Body"].read()
        return Stored(data, normalize_etag(answer["ETag"]))

    def write(
        self,
        key: str,
        data: bytes,
        operation: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        content_type: str = "application/json",
    ) -> str:
        """Put a small object; return its etag.

        ``if_match`` (an etag) replaces only that version, ``if_absent`` only
        creates: either raises :class:`WriteConflict` when the condition fails,
        which makes the object a compare-and-swap register. The etag goes bare:
        radosgw compares it as stored, without the quotes.
        """
        conditions: dict[str, str] = {}
        if if_match is not None:
            conditions["IfMatch"] = if_match
        if if_absent:
            conditions["IfNoneMatch"] = "*"
        with engine_errors(operation):
            try:
                answer = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    **conditions,  # type: ignore[arg-type]
                )
            except ClientError as error:
                if conditions and http_status(error) in (409, 412):
                    raise WriteConflict(key) from error
                raise
        return normalize_etag(answer["ETag"])

    def put(
        self, key: str, body: Any, operation: str, arguments: dict[str, Any]
    ) -> str:
        """Put an object with metadata ``arguments``; return its etag."""
        with engine_errors(operation):
            answer = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, **arguments
            )
        return normalize_etag(answer["ETag"])

    def head(self, key: str, operation: str) -> Any | None:
        """HeadObject's answer, or None if the key holds no object."""
        with engine_errors(operation):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if is_not_found(error):
                    return None
                raise

    def find(self, key: str, operation: str) -> Listed | None:
        """The object at ``key`` as a listing shows it (LastModified in ms,
        where HeadObject gives whole seconds), or None."""
        with engine_errors(operation):
            answer = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=key, MaxKeys=1
            )
        for item in answer.get("Contents", []):
            if item["Key"] == key:
                return _listed(item)
        return None

    def delete(self, key: str, operation: str) -> None:
        with engine_errors(operation):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: Sequence[str], operation: str) -> None:
        """Delete ``keys`` in order, a thousand per request (DeleteObjects)."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with engine_errors(operation):
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": batch, "Quiet": True},  # type: ignore[typeddict-item]
                )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise EngineFailed(operation, f"DeleteObjects refused {first}")

    def list_objects(self, prefix: str, operation: str) -> Iterator[Listed]:
        """Every object under ``prefix`` (ListObjectsV2, a request per 1000)."""
        token: dict[str, str] = {}
        while True:
            with engine_errors(operation):
                page = self.client.list_objects_v2(
                    Bucket=self.bucket,
                    Prefix=prefix,
                    **token,  # type: ignore[arg-type]
                )
            for item in page.get("Contents", []):
                yield _listed(item)
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def copy(
        self, source: str, target: str, operation: str, arguments: dict[str, Any]
    ) -> None:
        """CopyObject with new metadata (``MetadataDirective=REPLACE``)."""
        with engine_errors(operation):
            self.client.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": source},
                MetadataDirective="REPLACE",
                **arguments,
            )

    # -- multipart uploads ------------------------------------------------------

    def create_upload(self, key: str, operation: str, arguments: dict[str, Any]) -> str:
        """CreateMultipartUpload; return the uploadId."""
        with engine_errors(operation):
            answer = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **arguments
            )
        return answer["UploadId"]

    def upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        body: Any,
        size: int,
        content_md5: str | None,
        *,
        once: bool,
    ) -> str:
        """UploadPart; return the engine's etag. ``once``: a body that cannot
        be rewound goes through the client that never retries."""
        client = self.stream_client if once else self.client
        checksum = {} if content_md5 is None else {"ContentMD5": content_md5}
        answer = client.upload_part(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=part_number,
            Body=body,
            ContentLength=size,
            **checksum,  # type: ignore[arg-type]
        )
        return normalize_etag(answer["ETag"])

    def copy_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        source: str,
        span: tuple[int, int] | None,
        operation: str,
    ) -> str:
        """UploadPartCopy of ``source`` (bytes ``span``: start, end exclusive)."""
        ranged = {} if span is None else {"CopySourceRange": _range(*span)}
        with engine_errors(operation, upload=True):
            answer = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=part_number,
                CopySource={"Bucket": self.bucket, "Key": source},
                **ranged,  # type: ignore[arg-type]
            )
        return normalize_etag(answer["CopyPartResult"].get("ETag", ""))

    def list_parts(
        self, key: str, upload_id: str, operation: str
    ) -> list[UploadedPart]:
        """Every part the engine holds, by part number (a request per 1000)."""
        parts = []
        marker: dict[str, Any] = {}
        while True:
            with engine_errors(operation, upload=True):
                page = self.client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, **marker
                )
            for part in page.get("Parts", []):
                parts.append(
                    UploadedPart(
                        part["PartNumber"], normalize_etag(part["ETag"]), part["Size"]
                    )
                )
            if not page.get("IsTruncated"):
                break
            marker = {"PartNumberMarker": page["NextPartNumberMarker"]}
        return sorted(parts, key=lambda part: part.part_number)

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        operation: str,
    ) -> None:
        """CompleteMultipartUpload with exactly these (number, etag) pairs:
        the engine refuses (InvalidPart) if any part changed meanwhile."""
        listed = [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in parts]
        with engine_errors(operation, upload=True):
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},  # type: ignore[typeddict-item]
            )

    def abort_upload(self, key: str, upload_id: str, operation: str) -> bool:
        """AbortMultipartUpload; False if the engine had no such open upload."""
        with engine_errors(operation, upload=True):
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            except ClientError as error:
                if error_code(error) in {"NoSuchUpload", "NoSuchKey", "404"}:
                    return False
                raise
        return True

    def list_uploads(self, operation: str) -> Iterator[Any]:
        """Every open upload of the bucket (ListMultipartUploads, per 1000)."""
        marker: dict[str, str] = {}
        while True:
            with engine_errors(operation):
                page = self.client.list_multipart_uploads(
                    Bucket=self.bucket,
                    **marker,  # type: ignore[arg-type]
                )
            yield from page.get("Uploads", [])
            if not page.get("IsTruncated"):
                return
            marker = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }


def _listed(item: Any) -> Listed:
    return Listed(
        item["Key"], item["Size"], normalize_etag(item["ETag"]), item["LastModified"]
    )


def _range(start: int, end: int) -> str:
    return f"bytes={start}-{end - 1}"
