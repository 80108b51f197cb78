"""What the part-file tests share: a filesystem bucket and the md5 parts are named by."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from mpuflask.storage.filesystem import FilesystemBucket


def md5_hex(data: bytes) -> str:
    """The hex MD5 in a part file's name (and its etag)."""
    return hashlib.md5(data).hexdigest()


def fs_bucket(tmp_path: Path) -> FilesystemBucket:
    """A bucket in ``tmp_path/data`` that takes parts of any size."""
    return FilesystemBucket(
        tmp_path / "data", min_part_size=1, upload_ttl=timedelta(hours=1)
    )
