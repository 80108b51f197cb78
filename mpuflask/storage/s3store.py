"""What every part of the S3 store shares: the engine, the settings, the names
of its bookkeeping objects, and upload records read and swapped atomically.

Everything the store keeps beside the bytes lives under one prefix of the
bucket (``.mpuflask/`` by default; keys there are refused)::

    uploads/<uploadId>.json       an open upload's record (.s3records)
    staging/<token>               a staged upload's engine key (.s3staged)
    staging/<token>/<n>.<md5>     the bytes of its small part n
    engine.json                   whether this engine can drop unlisted parts
    filler-<size>                 the filler part (.s3records.Substitute)
    sweep.json                    the sweep lease (.s3sweep)
    probe/<random>                the probe upload, while it runs
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from botocore.exceptions import ClientError

from ..errors import NoSuchUpload
from .s3engine import S3Engine
from .s3engine import WriteConflict
from .s3errors import EngineFailed
from .s3errors import engine_errors
from .s3errors import error_code
from .s3events import S3Outbox
from .s3records import UploadRecord
from .s3records import decode_record
from .s3records import encode_record
from .s3records import record_key

log = logging.getLogger(__name__)

MIB = 1024 * 1024


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class S3Store:
    """The engine and settings of one S3 bucket, shared by uploads and sweeps."""

    engine: S3Engine
    min_part_size: int
    max_part_size: int
    upload_ttl: timedelta
    prefix: str = ".mpuflask/"
    #: Whether uploads are staged (None: ask the bucket's engine.json, or probe).
    stage_uploads: bool | None = None
    spool_dir: str | None = None
    #: How old a record-less upload, or an object nobody references, must be
    #: before sweep calls it a crash leftover.
    orphan_grace: timedelta = timedelta(minutes=15)
    #: How long a complete holds its claim on an upload before another
    #: request may take over (renewed while a long copy runs).
    complete_lease: timedelta = timedelta(seconds=30)
    #: How long one sweeper keeps the others away (about 1.5 sweep intervals).
    sweep_lease: timedelta = timedelta(minutes=15)
    #: The time source for expiry and leases (tests move it forward).
    clock: Callable[[], datetime] = now
    #: The first ranged GET of a read; tests lower it to see windows turn.
    read_window: int = MIB
    _filler: tuple[str, str] | None = field(default=None, repr=False)
    #: Events recorded in the steps that make them (off until the app wants
    #: some): mpuflask/storage/s3events.py.
    events: S3Outbox = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.events = S3Outbox(self)  # it reads records through this store

    # -- names ----------------------------------------------------------------

    def record_key(self, upload_id: str) -> str | None:
        return record_key(self.prefix, upload_id)

    def staging_key(self, token: str) -> str:
        return f"{self.prefix}staging/{token}"

    @property
    def engine_info_key(self) -> str:
        return f"{self.prefix}engine.json"

    @property
    def sweep_lease_key(self) -> str:
        return f"{self.prefix}sweep.json"

    # -- records ------------------------------------------------------------------

    def read_record(
        self, upload_id: str, operation: str
    ) -> tuple[UploadRecord, str] | None:
        """The record of ``upload_id`` and its etag, whatever its key and
        expiry; None if there is none (or it is not a record)."""
        name = self.record_key(upload_id)
        if name is None:
            return None
        stored = self.engine.read(name, operation)
        if stored is None:
            return None
        record = decode_record(stored.data)
        if record is None or record.info.upload_id != upload_id:
            return None
        return record, stored.etag

    def open_record(
        self, key: str, upload_id: str, operation: str
    ) -> tuple[UploadRecord, str]:
        """The record of an open upload of ``key``, else NoSuchUpload.

        An expired upload is refused, unless a complete has claimed it (it
        was completed in time; the claim finishes it)."""
        found = self.read_record(upload_id, operation)
        if found is None or found[0].info.key != key:
            raise NoSuchUpload(operation)
        record = found[0]
        if record.claim is None and record.info.expires <= self.clock():
            raise NoSuchUpload(operation)
        return found

    def write_record(
        self,
        record: UploadRecord,
        operation: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write ``record``; with ``if_match``, only over that version
        (:class:`~.s3engine.WriteConflict` otherwise). Returns the new etag."""
        name = self.record_key(record.info.upload_id)
        if name is None:
            raise EngineFailed(operation, f"unusable uploadId {record.info.upload_id}")
        return self.engine.write(
            name,
            encode_record(record),
            operation,
            if_match=if_match,
            if_absent=if_absent,
        )

    # -- the engine's abilities -------------------------------------------------

    def stages_uploads(self) -> bool:
        """Whether new uploads go to a staging key.

        Decided once per bucket: the first gateway to need it probes the engine
        and writes the answer to ``engine.json`` (create-only); every other
        process reads it once.
        """
        if self.stage_uploads is None:
            operation = "createMultipartUpload"
            stored = self.engine.read(self.engine_info_key, operation)
            if stored is None:
                decided = not self._engine_drops_unlisted_parts()
                body = json.dumps({"stage_uploads": decided}).encode()
                try:
                    self.engine.write(
                        self.engine_info_key, body, operation, if_absent=True
                    )
                except WriteConflict:
                    stored = self.engine.read(self.engine_info_key, operation)
            if stored is not None:
                decided = bool(json.loads(stored.data)["stage_uploads"])
            self.stage_uploads = decided
        return self.stage_uploads

    def filler_key(self) -> str:
        return f"{self.prefix}filler-{self.min_part_size}"

    def filler_bytes(self) -> bytes:
        """Exactly the minimum part size, so the engine takes it anywhere in an
        upload; a fixed pattern no client sends by accident."""
        pattern = b"mpuflask filler part; its bytes are never published\n"
        repeat = self.min_part_size // len(pattern) + 1
        return (pattern * repeat)[: self.min_part_size]

    def filler_etag(self) -> str:
        """The filler's etag (its MD5), known without a request."""
        return hashlib.md5(self.filler_bytes(), usedforsecurity=False).hexdigest()

    def filler(self, operation: str) -> tuple[str, str]:
        """The filler object's key and etag, written once per bucket."""
        if self._filler is None:
            key = self.filler_key()
            try:
                etag = self.engine.write(
                    key,
                    self.filler_bytes(),
                    operation,
                    if_absent=True,
                    content_type="application/octet-stream",
                )
            except WriteConflict:
                etag = self.filler_etag()  # there already: its bytes are fixed
            self._filler = (key, etag)
        return self._filler

    def _engine_drops_unlisted_parts(self) -> bool:
        """Complete a two-part probe upload with one part: R2, AWS and MinIO
        accept (and drop the other), Ceph's radosgw refuses (InvalidPart)."""
        operation = "createMultipartUpload"
        client = self.engine.client
        bucket = self.engine.bucket
        key = f"{self.prefix}probe/{secrets.token_hex(8)}"
        upload_id = self.engine.create_upload(key, operation, {})
        with engine_errors(operation):
            try:
                first = client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p"
                )
                client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=b"p"
                )
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": 1, "ETag": first["ETag"]}]
                    },
                )
            except ClientError as error:
                if error_code(error) != "InvalidPart":
                    raise
                self.engine.abort_upload(key, upload_id, operation)
                return False
            client.delete_object(Bucket=bucket, Key=key)
        return True
