"""The S3 store: the same R2 binding over any S3-compatible engine.

``MPUFLASK_STORE=s3`` puts mpuflask in front of an S3 bucket (Cloudflare R2
through its S3 API, Ceph's radosgw, MinIO, AWS S3), so any number of
gateways can serve one bucket behind a load balancer. No gateway keeps state
another needs: the bytes, the uploads and their records all live in the engine
(see docs/scale-out.md).

How each R2 call maps onto S3, and why:

* create: ``CreateMultipartUpload`` with the HTTP metadata, then the upload's
  record beside it (:mod:`.s3records`): owner and expiry must be readable by
  every gateway, and S3 cannot give an open upload's metadata back.
* uploadPart, listParts, complete, abort: :mod:`.s3upload`.
* get/head/delete: ``HeadObject``, then ranged ``GetObject`` reads pinned with
  ``If-Match`` (:mod:`.s3io`); ``DeleteObject``.
* sweep: aborts expired uploads (their record says when) and uploads without
  a record (a crash between the two writes of create); deletes records whose
  upload is gone, and staging and probe objects a crash left.

What differs from the filesystem store, all in docs/scale-out.md: a GET that
is streaming while its key is overwritten or deleted fails
(:class:`~.s3errors.ObjectChanged`) instead of finishing the old version; keys
under the record prefix (``.mpuflask/``) and keys with NUL are refused (10020);
expiry uses the gateways' clocks, which must agree.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..errors import InvalidObjectName
from ..errors import NoSuchUpload
from ..rules import check_key
from .base import HttpMetadata
from .base import ObjectInfo
from .base import UploadInfo
from .s3errors import EngineFailed
from .s3errors import EngineUnavailable
from .s3errors import engine_errors
from .s3errors import error_code
from .s3errors import is_not_found
from .s3events import S3Outbox
from .s3io import S3ObjectBody
from .s3records import UploadRecord
from .s3records import decode_record
from .s3records import encode_record
from .s3records import object_arguments
from .s3records import object_info
from .s3records import record_key
from .s3records import records_prefix
from .s3records import upload_id_of_record
from .s3upload import S3Upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

#: How long an upload may exist without its record (or a record or staged
#: object without its upload) before sweep calls it a crash leftover: create
#: and complete write them moments apart, and the engine's clock is not ours.
ORPHAN_GRACE = timedelta(minutes=15)
MIB = 1024 * 1024


#: One boto3 session per process, shared by every S3Bucket: a session loads
#: the S3 service model (about 0.4 s), its clients then take milliseconds.
#: Creating clients from one session is not thread-safe, hence the lock.
_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def _now() -> datetime:
    return datetime.now(UTC)


class S3Bucket:
    """A :class:`~mpuflask.storage.base.Bucket` in an S3 bucket.

    Does no I/O until first used. The boto3 clients are made per process (a
    client made before gunicorn forks must not be shared by its workers) and
    shared by that process's threads, as boto3 allows.

    ``stage_uploads``: whether uploads put their parts on a staging key and
    complete copies the result to the object's key. Needed where the engine
    refuses to complete with fewer parts than were uploaded (Ceph's radosgw),
    which R2 allows (unlisted parts are discarded); None finds out once, with
    a tiny probe upload under the record prefix.
    """

    def __init__(
        self,
        bucket: str,
        *,
        min_part_size: int,
        max_part_size: int,
        upload_ttl: timedelta,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: Literal["auto", "path", "virtual"] = "auto",
        state_prefix: str = ".mpuflask/",
        stage_uploads: bool | None = None,
        spool_dir: str | None = None,
        max_connections: int = 32,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.min_part_size = min_part_size
        self.max_part_size = max_part_size
        self.upload_ttl = upload_ttl
        self.state_prefix = state_prefix
        self.stage_uploads = stage_uploads
        self.spool_dir = spool_dir
        self.orphan_grace = ORPHAN_GRACE
        #: The time source for creation and expiry (tests move it forward).
        self.clock: Callable[[], datetime] = _now
        #: The first ranged GET of a read; tests lower it to see windows turn.
        self.read_window = MIB
        self._open_uploads = 0
        self._client_arguments: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": Config(
                signature_version="s3v4",
                s3={
                    "addressing_style": addressing_style,
                    # Parts stream: botocore must not read a body to hash it.
                    # Integrity: our MD5 against the engine's part etag.
                    "payload_signing_enabled": False,
                },
                # Engines other than AWS (Ceph, older MinIO, R2) do not all
                # take the CRC trailers newer botocore adds by default.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": max_attempts},
                max_pool_connections=max_connections,
                tcp_keepalive=True,
            ),
        }
        self._clients: tuple[S3Client, S3Client] | None = None
        self._clients_pid = 0
        #: Events recorded in the same steps (off until the app wants some).
        self.events = S3Outbox(self)

    @property
    def client(self) -> S3Client:
        """This process's boto3 client, with botocore's retries."""
        return self._process_clients()[0]

    @property
    def stream_client(self) -> S3Client:
        """The client for streamed parts: never retries (their bytes are gone)."""
        return self._process_clients()[1]

    def _process_clients(self) -> tuple[S3Client, S3Client]:
        """Made on first use, and again after a fork (a socket pool shared by
        gunicorn's workers would mix their requests)."""
        global _session
        clients = self._clients
        if clients is None or self._clients_pid != os.getpid():
            with _session_lock:
                clients = self._clients
                if clients is None or self._clients_pid != os.getpid():
                    if _session is None:
                        _session = boto3.session.Session()
                    session = _session
                    arguments = self._client_arguments
                    once = arguments["config"].merge(
                        Config(retries={"mode": "standard", "total_max_attempts": 1})
                    )
                    clients = (
                        session.client("s3", **arguments),
                        session.client("s3", **{**arguments, "config": once}),
                    )
                    self._clients, self._clients_pid = clients, os.getpid()
        return clients

    # -- the Bucket interface -------------------------------------------------

    def create_multipart_upload(
        self, key: str, http_metadata: HttpMetadata, owner: str | None = None
    ) -> UploadInfo:
        operation = "createMultipartUpload"
        self.check_key(key, operation)
        engine_key = key
        if self.stages_uploads():
            engine_key = f"{self.state_prefix}staging/{secrets.token_hex(16)}"
        with engine_errors(operation):
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=engine_key, **object_arguments(http_metadata)
            )
        now = self.clock()
        info = UploadInfo(
            key=key,
            upload_id=created["UploadId"],
            created=now,
            expires=now + self.upload_ttl,
            http_metadata=http_metadata,
            owner=owner,
        )
        name = record_key(self.state_prefix, info.upload_id)
        try:
            if name is None:
                raise EngineFailed(operation, f"unusable uploadId {info.upload_id!r}")
            with engine_errors(operation):
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=name,
                    Body=encode_record(UploadRecord(info, engine_key)),
                    ContentType="application/json",
                )
        except BaseException:
            # No record, no upload: nobody could ever use or expire it.
            self.abort_on_engine(engine_key, info.upload_id)
            raise
        return info

    def resume_multipart_upload(self, key: str, upload_id: str) -> S3Upload:
        return S3Upload(self, key, upload_id)

    def head(self, key: str) -> ObjectInfo | None:
        found = self._head(key, "head")
        return None if found is None else found[0]

    def get(self, key: str) -> S3ObjectBody | None:
        found = self._head(key, "get")
        if found is None:
            return None
        info, engine_etag = found
        return S3ObjectBody(
            self.client, self.bucket, info, engine_etag, first_window=self.read_window
        )

    def delete(self, key: str) -> None:
        self.check_key(key, "delete")

        def delete() -> None:
            with engine_errors("delete"):
                self.client.delete_object(Bucket=self.bucket, Key=key)

        self.events.deleting(key, delete)

    def sweep(self) -> int:
        """Abort expired and record-less uploads; delete what crashes left.

        Records are listed before uploads: a record without an upload in the
        later listing belongs to an upload that has finished (create writes
        the upload first). A few listing requests per thousand items, plus one
        small GET per open upload.
        """
        removed = 0
        now = self.clock()
        # Engine timestamps are compared with real time, not the test clock.
        settled = _now() - self.orphan_grace
        records: dict[str, datetime] = {}
        for item in self.list_objects(records_prefix(self.state_prefix), "sweep"):
            upload_id = upload_id_of_record(self.state_prefix, item["Key"])
            if upload_id is not None:
                records[upload_id] = item["LastModified"]
        live, staging_in_use = set(), set()
        for upload in self._list_uploads():
            engine_key, upload_id = upload["Key"], upload["UploadId"]
            live.add(upload_id)
            staging_in_use.add(engine_key)
            record = None
            if upload_id in records:
                record = self.fetch_record(upload_id, "sweep")
            if record is None or record.engine_key != engine_key:
                if upload["Initiated"] < settled:
                    self.abort_on_engine(engine_key, upload_id)
                    removed += 1
            elif record.info.expires <= now:
                S3Upload(self, record.info.key, upload_id).abort()
                removed += 1
        for upload_id, written in records.items():
            if upload_id not in live and written < settled:
                self.delete_record(upload_id)
                removed += 1
        # Staging objects of finished uploads, and probes a crash left.
        for area in ("staging/", "probe/"):
            for item in self.list_objects(f"{self.state_prefix}{area}", "sweep"):
                parent = item["Key"].rsplit("/", 1)[0]
                if item["Key"] in staging_in_use or parent in staging_in_use:
                    continue  # the small parts of a live staged upload
                if item["LastModified"] < settled:
                    with engine_errors("sweep"):
                        self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    removed += 1
        return removed

    def open_uploads(self, owner: str | None) -> int:
        """How many unexpired uploads ``owner`` holds, from the upload records.

        Records carry the owner inside, so this lists the records and reads
        each one: one listing request per thousand records plus one small GET
        per open upload of any owner, at every create while a limit is set.
        Right across gateways; a record a crash left is counted until sweep
        deletes it.
        """
        operation = "createMultipartUpload"
        now = self.clock()
        held = 0
        for item in self.list_objects(records_prefix(self.state_prefix), operation):
            upload_id = upload_id_of_record(self.state_prefix, item["Key"])
            if upload_id is None:
                continue
            try:
                record = self.fetch_record(upload_id, operation)
            except (KeyError, TypeError, ValueError):
                continue  # not a record a gateway wrote: nobody's upload
            if (
                record is not None
                and record.info.owner == owner
                and record.info.expires > now
            ):
                held += 1
        return held

    def count_open_uploads(self) -> int:
        """How many uploads the engine holds open (the uploads-in-progress gauge).

        One listing request per thousand uploads, at each scrape. If the engine
        does not answer, the last count (logged): the gauge is read at app
        start too, and an engine down for a moment must not stop a gateway.
        """
        try:
            self._open_uploads = sum(1 for _ in self._list_uploads())
        except (EngineUnavailable, EngineFailed) as error:
            log.warning("open uploads not counted: %s", error.text)
        return self._open_uploads

    # -- shared with S3Upload ---------------------------------------------------

    def check_key(self, key: str, operation: str) -> None:
        """R2's key rule, plus what this store cannot hold (10020)."""
        check_key(key, operation)
        if key.startswith(self.state_prefix) or "\x00" in key:
            raise InvalidObjectName(operation)

    def stages_uploads(self) -> bool:
        """Whether new uploads go to a staging key (probed once if unset)."""
        if self.stage_uploads is None:
            self.stage_uploads = not self._engine_drops_unlisted_parts()
        return self.stage_uploads

    def fetch_record(self, upload_id: str, operation: str) -> UploadRecord | None:
        """The record stored for ``upload_id``, whatever its key and expiry."""
        name = record_key(self.state_prefix, upload_id)
        if name is None:
            return None
        with engine_errors(operation):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=name)
            except ClientError as error:
                if is_not_found(error):
                    return None
                raise
            data = answer["Body"].read()
        record = decode_record(data)
        return record if record.info.upload_id == upload_id else None

    def open_record(self, key: str, upload_id: str, operation: str) -> UploadRecord:
        """The record of an open, unexpired upload of ``key``, else NoSuchUpload."""
        record = self.fetch_record(upload_id, operation)
        if (
            record is None
            or record.info.key != key
            or record.info.expires <= self.clock()
        ):
            raise NoSuchUpload(operation)
        return record

    def delete_record(self, upload_id: str) -> None:
        name = record_key(self.state_prefix, upload_id)
        if name is not None:
            with engine_errors("abortMultipartUpload"):
                self.client.delete_object(Bucket=self.bucket, Key=name)

    def abort_on_engine(self, engine_key: str, upload_id: str) -> bool:
        """Abort on the engine; False if it had no such upload."""
        with engine_errors("abortMultipartUpload", upload=True):
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=engine_key, UploadId=upload_id
                )
            except ClientError as error:
                if error_code(error) in {"NoSuchUpload", "NoSuchKey", "404"}:
                    return False
                raise
        return True

    # -- internals --------------------------------------------------------------

    def _head(self, key: str, operation: str) -> tuple[ObjectInfo, str] | None:
        self.check_key(key, operation)
        with engine_errors(operation):
            try:
                response = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if is_not_found(error):
                    return None
                raise
        return object_info(key, response)

    def list_objects(self, prefix: str, operation: str) -> Iterator[Any]:
        """Every object under ``prefix`` (ListObjectsV2, paginated)."""
        with engine_errors(operation):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])

    def _list_uploads(self) -> Iterator[Any]:
        """Every open upload of the bucket (ListMultipartUploads, paginated)."""
        with engine_errors("sweep"):
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket):
                yield from page.get("Uploads", [])

    def _engine_drops_unlisted_parts(self) -> bool:
        """Complete a two-part probe upload with one part: R2, AWS and MinIO
        accept (and drop the other), Ceph's radosgw refuses (InvalidPart)."""
        client = self.client
        key = f"{self.state_prefix}probe/{secrets.token_hex(8)}"
        with engine_errors("createMultipartUpload"):
            upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=key)[
                "UploadId"
            ]
            try:
                first = client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=1,
                    Body=b"probe",
                )
                client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=2,
                    Body=b"probe",
                )
                client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": 1, "ETag": first["ETag"]}]
                    },
                )
            except ClientError as error:
                if error_code(error) != "InvalidPart":
                    raise
                self.abort_on_engine(key, upload_id)
                return False
            client.delete_object(Bucket=self.bucket, Key=key)
        return True
