"""Listing the filesystem store: objects through its index, uploads by owner.

Objects are listed from the ordered index (:mod:`.fsindex`), built from and
repaired against the object directories, which :func:`scan_objects` reads
whole. Open uploads are listed from the owner index (:mod:`.fsowners`): one
directory per identity, so a caller's listing reads only its own uploads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from ..errors import InvalidObjectName
from ..rules import check_key
from . import diskio
from . import fsowners
from .base import ObjectInfo
from .base import UploadListing
from .base import UploadPosition
from .diskio import CorruptEntry
from .fsbase import DataDir
from .fslayouts import LayoutCache
from .fsobject import open_whole
from .fspublish import object_name
from .fsrecords import upload_info
from .listing import uploads_page

log = logging.getLogger(__name__)


def scan_objects(bucket: DataDir) -> Iterator[ObjectInfo]:
    """Every object the directories hold, as GET would find it (slow: all).

    A version filed under another key's name (a manifest moved by hand) is
    skipped: GET of its key would not find it there.
    """
    once = LayoutCache(kept_bytes=0)  # each version is read once: keep none
    with bucket.areas("sweep", "objects") as (objects_fd,):
        for shard in sorted(os.listdir(objects_fd)):
            try:
                shard_fd = diskio.open_dir(shard, objects_fd)
            except (FileNotFoundError, CorruptEntry):
                continue
            try:
                for name in sorted(os.listdir(shard_fd)):
                    body = open_whole(shard_fd, name, once)
                    if body is None:
                        continue
                    with body:
                        info = body.info
                    if _filed_right(info.key, shard, name):
                        yield info
            finally:
                os.close(shard_fd)


def _filed_right(key: str, shard: str, name: str) -> bool:
    try:
        check_key(key, "get")
    except InvalidObjectName:
        return False
    if object_name(key) != (shard, name):
        log.error("objects/%s/%s holds the object of another key; skipped", shard, name)
        return False
    return True


def uploads_of(
    bucket: DataDir,
    owner: str | None,
    prefix: str,
    start: UploadPosition | None,
    limit: int,
) -> UploadListing:
    """A page of ``owner``'s open uploads under ``prefix``."""
    operation = "listMultipartUploads"
    with bucket.areas(operation, fsowners.OWNERS, "uploads") as fds:
        owners_fd, uploads_fd = fds
        records = fsowners.live_records(owners_fd, uploads_fd, owner, bucket.clock())
    return uploads_page((upload_info(r) for r in records), prefix, start, limit)
