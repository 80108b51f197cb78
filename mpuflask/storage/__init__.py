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
            max_part_size=config["MPUFLASK_MAX_PART_SIZE"],
            upload_ttl=timedelta(seconds=config["MPUFLASK_UPLOAD_TTL"]),
            durable=config["MPUFLASK_DURABLE"],
        )
    raise ValueError(f"MPUFLASK_STORE={kind!r}: unknown store (known: filesystem)")
