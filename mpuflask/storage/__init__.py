"""Stores behind the API: the interface, and how the app picks one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from .base import Bucket as Bucket
from .base import HttpMetadata as HttpMetadata
from .base import MultipartUpload as MultipartUpload
from .base import ObjectBody as ObjectBody
from .base import ObjectInfo as ObjectInfo
from .base import PublishCheck as PublishCheck
from .base import UploadedPart as UploadedPart
from .base import UploadInfo as UploadInfo


def open_bucket(config: Mapping[str, Any]) -> Bucket:
    """Build the store named by ``MPUFLASK_STORE`` from the app's config."""
    kind = config["MPUFLASK_STORE"]
    if kind == "filesystem":
        from .filesystem import FilesystemBucket

        return FilesystemBucket(
            config["MPUFLASK_DATA_DIR"],
            min_part_size=config["MPUFLASK_MIN_PART_SIZE"],
            upload_ttl=timedelta(seconds=config["MPUFLASK_UPLOAD_TTL"]),
            durable=config["MPUFLASK_DURABLE"],
        )
    if kind == "s3":
        # Imported here: boto3 is the optional extra ``mpuflask[s3]``.
        from .s3 import S3Bucket

        return S3Bucket(
            config["MPUFLASK_S3_BUCKET"],
            min_part_size=config["MPUFLASK_MIN_PART_SIZE"],
            max_part_size=config["MPUFLASK_MAX_PART_SIZE"],
            upload_ttl=timedelta(seconds=config["MPUFLASK_UPLOAD_TTL"]),
            endpoint=config["MPUFLASK_S3_ENDPOINT"],
            region=config["MPUFLASK_S3_REGION"],
            access_key_id=config["MPUFLASK_S3_ACCESS_KEY_ID"],
            secret_access_key=config["MPUFLASK_S3_SECRET_ACCESS_KEY"],
            addressing_style=config["MPUFLASK_S3_ADDRESSING_STYLE"],
            state_prefix=config["MPUFLASK_S3_STATE_PREFIX"],
            stage_uploads=_auto(config["MPUFLASK_S3_STAGE_UPLOADS"]),
            spool_dir=config["MPUFLASK_S3_SPOOL_DIR"],
            max_connections=config["MPUFLASK_S3_MAX_CONNECTIONS"],
            max_attempts=config["MPUFLASK_S3_MAX_ATTEMPTS"],
            orphan_grace=timedelta(seconds=config["MPUFLASK_S3_ORPHAN_GRACE"]),
            complete_lease=timedelta(seconds=config["MPUFLASK_S3_COMPLETE_LEASE"]),
            sweep_lease=_sweep_lease(config["MPUFLASK_SWEEP_INTERVAL"]),
        )
    raise ValueError(f"MPUFLASK_STORE={kind!r}: unknown store (known: filesystem, s3)")


def _auto(value: Any) -> bool | None:
    """``"auto"`` (let the store find out) as None, else the boolean."""
    return None if value == "auto" else bool(value)


def _sweep_lease(interval: float) -> timedelta:
    """How long one sweeper keeps the others away: one and a half intervals,
    so the holder renews it on its next sweep (five minutes if none runs)."""
    return timedelta(seconds=1.5 * interval if interval > 0 else 300)
