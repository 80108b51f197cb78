"""The S3 store: the same R2 binding over any S3-compatible engine.

``MPUFLASK_STORE=s3`` puts mpuflask in front of an S3 bucket (Cloudflare R2
through its S3 API, Ceph's radosgw, MinIO, AWS S3), so any number of
gateways can serve one bucket behind a load balancer. No gateway keeps state
another needs: the bytes, the uploads and their records all live in the engine
(see docs/scale-out.md).

How each R2 call maps onto S3, and why (one module per job, all requests
through one :class:`~.s3engine.S3Engine`, settings in one
:class:`~.s3store.S3Store`):

* create: ``CreateMultipartUpload`` with the HTTP metadata, then the upload's
  record beside it (:mod:`.s3records`): owner and expiry must be readable by
  every gateway, and S3 cannot give an open upload's metadata back.
* uploadPart, listParts, abort: :mod:`.s3upload`; complete:
  :mod:`.s3complete` (its steps: :mod:`.s3claim`), staged uploads:
  :mod:`.s3staged`.
* get/head/delete: ``HeadObject``, then ranged ``GetObject`` reads pinned with
  ``If-Match`` (:mod:`.s3io`); ``DeleteObject``.
* sweep: :mod:`.s3sweep`, one sweeper at a time for the whole bucket.

What differs from the filesystem store, all in docs/scale-out.md: a GET that
is streaming while its key is overwritten or deleted fails
(:class:`~.s3errors.ObjectChanged`) instead of finishing the old version; keys
under the record prefix (``.mpuflask/``) and keys with NUL are refused (10020);
expiry and leases use the gateways' clocks, which must agree.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Literal

from ..errors import InvalidObjectName
from ..rules import check_key
from . import s3list
from .base import HttpMetadata
from .base import ListPosition
from .base import ObjectInfo
from .base import ObjectListing
from .base import UploadInfo
from .base import UploadListing
from .base import UploadPosition
from .s3engine import S3Engine
from .s3errors import EngineFailed
from .s3errors import EngineUnavailable
from .s3events import S3Outbox
from .s3io import S3ObjectBody
from .s3records import UploadRecord
from .s3records import object_arguments
from .s3records import object_info
from .s3store import S3Store
from .s3sweep import Sweeper
from .s3upload import S3Upload

log = logging.getLogger(__name__)


class S3Bucket:
    """A :class:`~mpuflask.storage.base.Bucket` in an S3 bucket.

    Does no I/O until first used. ``stage_uploads``: whether uploads put their
    parts on a staging key and complete copies the result to the object's key
    (:mod:`.s3staged`). Needed where the engine refuses to complete with fewer
    parts than were uploaded (Ceph's radosgw), which R2 allows; None: decided
    once per bucket, by a tiny probe upload.
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
        orphan_grace: timedelta = timedelta(minutes=15),
        complete_lease: timedelta = timedelta(seconds=30),
        sweep_lease: timedelta = timedelta(minutes=15),
    ) -> None:
        self.bucket = bucket
        self.engine = S3Engine.connect(
            bucket,
            endpoint=endpoint,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            addressing_style=addressing_style,
            max_connections=max_connections,
            max_attempts=max_attempts,
        )
        self.store = S3Store(
            self.engine,
            min_part_size=min_part_size,
            max_part_size=max_part_size,
            upload_ttl=upload_ttl,
            prefix=state_prefix,
            stage_uploads=stage_uploads,
            spool_dir=spool_dir,
            orphan_grace=orphan_grace,
            complete_lease=complete_lease,
            sweep_lease=sweep_lease,
        )
        self.sweeper = Sweeper(self.store)
        self._open_uploads = 0
        #: The upload records this process has read (counts, upload listings).
        self.known_records = s3list.KnownRecords()

    @property
    def min_part_size(self) -> int:
        return self.store.min_part_size

    @min_part_size.setter
    def min_part_size(self, size: int) -> None:
        self.store.min_part_size = size

    @property
    def max_part_size(self) -> int:
        return self.store.max_part_size

    @max_part_size.setter
    def max_part_size(self, size: int) -> None:
        self.store.max_part_size = size

    @property
    def clock(self) -> Callable[[], datetime]:
        """The time source for expiry and leases (tests move it forward)."""
        return self.store.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.store.clock = clock

    @property
    def events(self) -> S3Outbox:
        """Events recorded in the same steps (mpuflask/storage/s3events.py)."""
        return self.store.events

    def stages_uploads(self) -> bool:
        """Whether new uploads go to a staging key (decided once per bucket)."""
        return self.store.stages_uploads()

    # -- the Bucket interface -------------------------------------------------

    def create_multipart_upload(
        self, key: str, http_metadata: HttpMetadata, owner: str | None = None
    ) -> UploadInfo:
        operation = "createMultipartUpload"
        self.check_key(key, operation)
        store = self.store
        token = secrets.token_hex(16)
        engine_key = store.staging_key(token) if store.stages_uploads() else key
        upload_id = self.engine.create_upload(
            engine_key, operation, object_arguments(http_metadata, token)
        )
        created = store.clock()
        info = UploadInfo(
            key=key,
            upload_id=upload_id,
            created=created,
            expires=created + store.upload_ttl,
            http_metadata=http_metadata,
            owner=owner,
        )
        try:
            if store.record_key(upload_id) is None:
                raise EngineFailed(operation, f"unusable uploadId {upload_id!r}")
            store.write_record(UploadRecord(info, engine_key, token), operation)
        except BaseException:
            # No record, no upload: nobody could ever use or expire it.
            self.engine.abort_upload(engine_key, upload_id, operation)
            raise
        return info

    def resume_multipart_upload(self, key: str, upload_id: str) -> S3Upload:
        return S3Upload(self.store, key, upload_id)

    def head(self, key: str) -> ObjectInfo | None:
        found = self._head(key, "head")
        return None if found is None else found[0]

    def get(self, key: str) -> S3ObjectBody | None:
        found = self._head(key, "get")
        if found is None:
            return None
        info, engine_etag = found
        return S3ObjectBody(
            self.engine.client,
            self.bucket,
            info,
            engine_etag,
            first_window=self.store.read_window,
        )

    def delete(self, key: str) -> None:
        self.check_key(key, "delete")
        self.events.deleting(key, lambda: self.engine.delete(key, "delete"))

    def sweep(self) -> int:
        """Expired and record-less uploads, stalled completes and leftovers
        (:mod:`.s3sweep`); 0 if another gateway holds the sweep lease."""
        return self.sweeper.sweep()

    def list_objects_page(
        self,
        prefix: str,
        delimiter: str | None,
        start: ListPosition | None,
        limit: int,
    ) -> ObjectListing:
        return s3list.list_objects_page(self, prefix, delimiter, start, limit)

    def list_uploads_page(
        self,
        owner: str | None,
        prefix: str,
        start: UploadPosition | None,
        limit: int,
    ) -> UploadListing:
        return s3list.list_uploads_page(self, owner, prefix, start, limit)

    def open_uploads(self, owner: str | None) -> int:
        """How many unexpired uploads ``owner`` holds, from the upload records.

        Records carry the owner inside, so this lists the records and reads
        those this process has not read at the etag listed: one listing
        request per thousand records plus one small GET per record written
        since the last count (up to 32 at a time), at every create while a
        limit is set. Right across gateways; a record a crash left is
        counted until sweep deletes it.
        """
        return len(s3list.open_uploads(self, owner, "createMultipartUpload"))

    def count_open_uploads(self) -> int:
        """How many uploads the engine holds open (the uploads-in-progress gauge).

        One listing request per thousand uploads, at each scrape. If the engine
        does not answer, the last count (logged): the gauge is read at app
        start too, and an engine down for a moment must not stop a gateway.
        """
        try:
            self._open_uploads = sum(1 for _ in self.engine.list_uploads("sweep"))
        except (EngineUnavailable, EngineFailed) as error:
            log.warning("open uploads not counted: %s", error.text)
        return self._open_uploads

    # -- internals --------------------------------------------------------------

    def check_key(self, key: str, operation: str) -> None:
        """R2's key rule, plus what this store cannot hold (10020)."""
        check_key(key, operation)
        if key.startswith(self.store.prefix) or "\x00" in key:
            raise InvalidObjectName(operation)

    def _head(self, key: str, operation: str) -> tuple[ObjectInfo, str] | None:
        self.check_key(key, operation)
        response = self.engine.head(key, operation)
        return None if response is None else object_info(key, response)
