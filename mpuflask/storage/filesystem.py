"""The embedded default store: R2's multipart rules over a local directory.

Layout under the data directory (a learner can ``ls -lR`` it)::

    uploads/<uploadId>/           an open upload
        upload.json               key, created, expires, owner, HTTP metadata
        00001 -> 00001.<md5>.<n>  symlink: the current bytes of part 1
        00001.<md5>.<n>           part 1's bytes; <md5> is its etag, <n> its size
    staging/<uploadId>/           an upload between close and publish
    objects/<hh>/<sha256(key)>/   the key's current object: a former upload
        object.json               manifest: key, etag, size, parts in order
    owners/<hash>/<expiry>.<id>   open uploads by identity (see .fsowners)
    index/objects.sqlite          objects by key, for listing (see .fsindex)
    trash/<random>/               retired versions, deleted once unread
    tmp/<random>                  part bodies being received

Why it never tears or loses (see docs/architecture.md for the whole story):

* a part is written under ``tmp/``, fsynced, then renamed into its upload and
  linked by an atomic symlink swap: it is visible whole or not at all;
* complete writes the manifest, renames the upload directory to ``staging/``
  (from then on the upload is closed) and swaps it with the key's current
  object in one ``renameat2(RENAME_EXCHANGE)``: constant time, no byte copied;
* every change to an upload holds an exclusive flock on its directory, so
  parts, complete and abort from any process or thread are serialised;
* readers pin a version with a shared flock on its manifest; retired versions
  are deleted only by whoever gets the exclusive lock, so a GET always streams
  one whole version;
* keys are never paths: an object lives under the SHA-256 of its key, an
  upload under its id, which is checked to be URL-safe base64.

The bucket's directories (areas, upload locks, part bodies in ``tmp/``) are
its base class, :class:`~.fsdirs.Directories`; one upload is :mod:`.fsupload`.

It trusts nothing it reads back (see :mod:`.diskio` and :mod:`.fsrecords`):
every directory is opened relative to its parent's descriptor with
``O_NOFOLLOW``, the only symlinks it follows are its own part links, resolved
inside their upload's directory after their target's name is checked, and
records and manifests are checked field by field. An entry that fails is
corrupt: logged, answered as absent (10024, 404), never a 500, never a read or
write outside the data directory. A damaged area (``uploads`` a symlink, say)
is refused with a 503 for every request that needs it.

A full disk (ENOSPC, EDQUOT: blocks or inodes) at any write is a 507 that
leaves the data directory as it was; past the point of no return of complete
and abort (the rename that closes the upload) the request succeeds and what
the clean-up could not remove is left to the sweep.

What is cleaned up, and when: :meth:`FilesystemBucket.sweep` (run at start-up
and periodically, :mod:`.fssweep`) removes dead temp files, rolls back
completes that crashed before publishing, deletes retired versions nobody
reads and expired uploads, and repairs the owner index and the listing
index (:mod:`.fsindex`). Part files that a complete did not list are deleted
by that complete.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from ..rules import check_key
from . import diskio
from . import fsowners
from . import fssweep
from .base import HttpMetadata
from .base import ListPosition
from .base import ObjectBody
from .base import ObjectInfo
from .base import ObjectListing
from .base import UploadInfo
from .base import UploadListing
from .base import UploadPosition
from .diskio import CorruptEntry
from .fsdirs import Directories
from .fsevents import FilesystemOutbox
from .fsindex import INDEX_DIR
from .fsindex import ObjectIndex
from .fslayouts import LayoutCache
from .fslisting import scan_objects
from .fslisting import uploads_of
from .fsobject import Published
from .fsobject import open_version
from .fsobject import open_whole
from .fspublish import object_name
from .fsrecords import UPLOAD_RECORD
from .fsupload import FilesystemUpload

log = logging.getLogger(__name__)

__all__ = ["FilesystemBucket", "FilesystemUpload", "UPLOAD_RECORD"]

_AREAS = ("uploads", "staging", "objects", "trash", "tmp", fsowners.OWNERS)


def _check_writable(folders: list[str]) -> None:
    """Refuse to start on a data directory the server may not write (read-only,
    or another user's): it would answer health checks, then 500 every write.
    PermissionError names the first such folder."""
    for folder in folders:
        if os.path.lexists(folder) and not diskio.may_write(folder):
            raise PermissionError(errno.EACCES, "the server may not write here", folder)


class FilesystemBucket(Directories):
    """A :class:`~mpuflask.storage.base.Bucket` in a directory on local disk."""

    #: What :meth:`resume_multipart_upload` opens an upload as (a subclass in
    #: ``bench/variants.py`` measures a change to ``upload_part``).
    upload_class: type[FilesystemUpload] = FilesystemUpload

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        min_part_size: int,
        upload_ttl: timedelta,
        durable: bool = True,
    ) -> None:
        super().__init__(root, durable)
        self.min_part_size = min_part_size
        self.upload_ttl = upload_ttl
        #: Events recorded in the same steps (off until the app wants some).
        self.events = FilesystemOutbox(self)
        #: Large versions' layouts, so a GET need not parse 10,000 parts again.
        self.layouts = LayoutCache()
        diskio.make_dirs(self.root, durable)
        for area in _AREAS:
            os.makedirs(self._area(area), exist_ok=True)
        # Every objects/<hh> exists, on disk, before the first publish: one made
        # by a publish could be another's, whose fsync of objects/ may not have
        # happened yet when ours is acknowledged.
        for fan in range(256):
            os.makedirs(self._area("objects", f"{fan:02x}"), exist_ok=True)
        if durable:
            diskio.fsync_path(self.root)
            diskio.fsync_path(self._area("objects"))
        _check_writable([self.root, *map(self._area, (*_AREAS, INDEX_DIR))])
        self.index = ObjectIndex(
            self.root, durable, self._indexed, lambda: scan_objects(self)
        )

    # -- the Bucket interface -------------------------------------------------

    def create_multipart_upload(
        self, key: str, http_metadata: HttpMetadata, owner: str | None = None
    ) -> UploadInfo:
        operation = "createMultipartUpload"
        check_key(key, operation)
        created = self.clock()
        info = UploadInfo(
            key=key,
            upload_id=secrets.token_urlsafe(24),
            created=created,
            expires=created + self.upload_ttl,
            http_metadata=http_metadata,
            owner=owner,
        )
        record = {
            "key": key,
            "upload_id": info.upload_id,
            "created": created.isoformat(),
            "expires": info.expires.isoformat(),
            "http_metadata": http_metadata.headers,
            "owner": owner,
        }
        with (
            self.areas(operation, "tmp", "uploads", fsowners.OWNERS) as fds,
            diskio.disk_full_as_507(operation),
        ):
            self._create(fds, record)
        return info

    def _create(self, fds: list[int], record: dict[str, Any]) -> None:
        """Build the upload aside in ``tmp/``, index it, then rename it in.

        An upload never exists without its record or its index entry; any
        failure undoes every step, so a 507 leaves nothing behind.
        """
        tmp_fd, uploads_fd, owners_fd = fds
        upload_id = record["upload_id"]
        building = f"{upload_id}.new"
        entry = fsowners.entry_of(record)[1]
        done: list[str] = []
        made = False
        try:
            os.mkdir(building, 0o755, dir_fd=tmp_fd)
            done.append("mkdir")
            dir_fd = diskio.open_dir(building, tmp_fd)
            try:
                diskio.write_file_atomic(
                    dir_fd, UPLOAD_RECORD, _to_json(record), self.durable
                )
                if self.durable:
                    os.fsync(dir_fd)
                record_fd = diskio.open_file(UPLOAD_RECORD, dir_fd)
                try:
                    # Until the rename below, sweep must not take the entry
                    # for a crash leftover (see .fsowners).
                    diskio.lock(record_fd)
                    made = fsowners.add(owners_fd, record["owner"], entry, dir_fd)
                    done.append("entry")
                    os.rename(
                        building, upload_id, src_dir_fd=tmp_fd, dst_dir_fd=uploads_fd
                    )
                    done.append("rename")
                    self.sync_dirs(uploads_fd)
                finally:
                    os.close(record_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            if "rename" in done:
                diskio.quietly(
                    lambda: os.rename(
                        upload_id, building, src_dir_fd=uploads_fd, dst_dir_fd=tmp_fd
                    )
                )
            if "entry" in done:
                fsowners.remove(owners_fd, record, rmdir=made)
            if "mkdir" in done:
                diskio.remove_entry(tmp_fd, building)
            raise

    def resume_multipart_upload(self, key: str, upload_id: str) -> FilesystemUpload:
        return self.upload_class(self, key, upload_id)

    def head(self, key: str) -> ObjectInfo | None:
        return self._indexed(key, None)

    def get(self, key: str) -> ObjectBody | None:
        return self._open_object(key)

    def _indexed(self, key: str, published: Published | None) -> ObjectInfo | None:
        """The index's truth: what GET finds (see :data:`.fsindex.Truth`)."""
        if published is not None:
            with self._shard(key) as found:
                if found is not None and diskio.same_dir(*found, published.dir_fd):
                    return published.info
        body = self._open_object(key, open_whole)
        if body is None:
            return None
        with body:
            return body.info

    def _open_object(
        self,
        key: str,
        opener: Callable[[int, str, LayoutCache], ObjectBody | None] = open_version,
    ) -> ObjectBody | None:
        """The key's version opened by ``opener`` (its part files checked as
        they are sent; :func:`.open_whole`: all of them first)."""
        check_key(key, "get")
        with self._shard(key) as found:
            return None if found is None else opener(*found, self.layouts)

    @contextmanager
    def _shard(self, key: str) -> Iterator[tuple[int, str] | None]:
        """The key's shard directory, open, and its version's name there;
        None if the shard is absent (or corrupt: logged)."""
        shard, name = object_name(key)
        with self.areas("get", "objects") as (objects_fd,):
            try:
                shard_fd = diskio.open_dir(shard, objects_fd)
            except FileNotFoundError:
                yield None
                return
            except CorruptEntry as error:
                log.error("corrupt entry objects/%s: %s", shard, error)
                yield None
                return
            try:
                yield shard_fd, name
            finally:
                os.close(shard_fd)

    def delete(self, key: str) -> None:
        operation = "delete"
        check_key(key, operation)
        shard, name = object_name(key)
        trash = secrets.token_hex(16)
        with (
            self.areas(operation, "objects", "trash") as (objects_fd, trash_fd),
            diskio.disk_full_as_507(operation),
        ):
            try:
                shard_fd = diskio.open_dir(shard, objects_fd)
            except FileNotFoundError:
                return
            except CorruptEntry as error:
                log.error("corrupt entry objects/%s: %s", shard, error)
                return
            try:
                with (
                    self.index.changing(key, operation),
                    self.events.deleting(
                        key, shard_fd, name, trash_fd, trash, operation
                    ) as (to_fd, to_name),
                ):
                    os.rename(name, to_name, src_dir_fd=shard_fd, dst_dir_fd=to_fd)
                    # The rename removed an entry from objects/<hh>: that directory
                    # must reach the disk for the delete to survive a power cut
                    # (before the index says it is gone). A rename is one
                    # journal step: syncing one side makes both sides stick.
                    self.sync_dirs(shard_fd)
            except FileNotFoundError:
                return
            finally:
                os.close(shard_fd)
        self.reclaim_later(trash)

    def list_objects_page(
        self,
        prefix: str,
        delimiter: str | None,
        start: ListPosition | None,
        limit: int,
    ) -> ObjectListing:
        """A page of the ordered index (:mod:`.fsindex`): one range scan."""
        return self.index.page(prefix, delimiter, start, limit)

    def list_uploads_page(
        self,
        owner: str | None,
        prefix: str,
        start: UploadPosition | None,
        limit: int,
    ) -> UploadListing:
        """A page of the owner's uploads, from its owner index directory."""
        return uploads_of(self, owner, prefix, start, limit)

    def open_uploads(self, owner: str | None) -> int:
        """How many unexpired uploads ``owner`` holds (None: anonymous).

        One ``listdir`` of the owner's index directory (see :mod:`.fsowners`);
        exact, shared by every process on this data directory, and at most one
        too high per crashed request until the next sweep.
        """
        with self.areas("createMultipartUpload", fsowners.OWNERS) as (owners_fd,):
            return fsowners.count(owners_fd, owner, self.clock())

    def count_open_uploads(self) -> int:
        """How many uploads are open (for the uploads-in-progress gauge)."""
        with self.areas("metrics", "uploads") as (uploads_fd,):
            return len(os.listdir(uploads_fd))

    def sweep(self) -> int:
        """Clean what crashes and expiry left; safe beside live requests."""
        return fssweep.sweep(self)


def _to_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
