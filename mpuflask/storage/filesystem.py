"""The embedded default store: R2's multipart rules over a local directory.

Layout under the data directory (a learner can ``ls -lR`` it)::

    uploads/<uploadId>/           an open upload
        upload.json               key, created, expires, owner, HTTP metadata
        00001 -> 00001.<md5>      symlink: the current bytes of part 1
        00001.<md5>               part 1's bytes; <md5> is its etag
    staging/<uploadId>/           an upload between close and publish
    objects/<hh>/<sha256(key)>/   the key's current object: a former upload
        object.json               manifest: key, etag, size, parts in order
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

What is cleaned up, and when: :meth:`FilesystemBucket.sweep` (run at start-up
and periodically) removes dead temp files, rolls back completes that crashed
before publishing, deletes retired versions nobody reads and expired uploads.
Part files that a complete did not list are deleted by that complete.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from ..errors import EntityTooLarge
from ..errors import InvalidPart
from ..errors import NoSuchUpload
from ..rules import PartRef
from ..rules import check_key
from ..rules import check_part_order
from ..rules import check_part_sizes
from ..rules import multipart_etag
from . import diskio
from .base import HttpMetadata
from .base import ObjectBody
from .base import ObjectInfo
from .base import PublishCheck
from .base import UploadedPart
from .base import UploadInfo
from .fsobject import MANIFEST
from .fsobject import info_from_manifest
from .fsobject import open_version

UPLOAD_RECORD = "upload.json"
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PART_LINK = re.compile(r"[0-9]{5}")
_LINK_TEMP = ".link.tmp"
#: A temp file nobody holds a lock on and older than this is a crash leftover.
_TEMP_GRACE_SECONDS = 60.0


def _now() -> datetime:
    return datetime.now(UTC)


class FilesystemBucket:
    """A :class:`~mpuflask.storage.base.Bucket` in a directory on local disk."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        min_part_size: int,
        max_part_size: int,
        upload_ttl: timedelta,
        durable: bool = True,
    ) -> None:
        self.root = os.path.abspath(root)
        self.min_part_size = min_part_size
        self.max_part_size = max_part_size
        self.upload_ttl = upload_ttl
        self.durable = durable
        #: The time source for creation and expiry (tests move it forward).
        self.clock: Callable[[], datetime] = _now
        diskio.make_dirs(self.root, durable)
        for area in ("uploads", "staging", "objects", "trash", "tmp"):
            os.makedirs(self._area(area), exist_ok=True)
        # Every objects/<hh> exists, on disk, before the first publish: one made
        # by a publish could be another's, whose fsync of objects/ may not have
        # happened yet when ours is acknowledged.
        for fan in range(256):
            os.makedirs(self._area("objects", f"{fan:02x}"), exist_ok=True)
        self._fsync_dirs(self.root, self._area("objects"))

    # -- the Bucket interface -------------------------------------------------

    def create_multipart_upload(
        self, key: str, http_metadata: HttpMetadata, owner: str | None = None
    ) -> UploadInfo:
        check_key(key, "createMultipartUpload")
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
        # Built aside and renamed in, so an upload never exists without its record.
        building = self._area("tmp", f"{info.upload_id}.new")
        with diskio.disk_full_as_507("createMultipartUpload"):
            os.mkdir(building)
            dir_fd = os.open(building, os.O_RDONLY | os.O_DIRECTORY)
            try:
                diskio.write_file_atomic(
                    dir_fd, UPLOAD_RECORD, _to_json(record), self.durable
                )
                if self.durable:
                    os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            os.rename(building, self._upload_path(info.upload_id))
            self._fsync_dirs(self._area("uploads"))
        return info

    def resume_multipart_upload(self, key: str, upload_id: str) -> FilesystemUpload:
        return FilesystemUpload(self, key, upload_id)

    def head(self, key: str) -> ObjectInfo | None:
        check_key(key, "head")
        try:
            manifest = json.loads(
                diskio.read_file(None, os.path.join(self._object_path(key), MANIFEST))
            )
        except FileNotFoundError:
            return None
        return info_from_manifest(manifest)

    def get(self, key: str) -> ObjectBody | None:
        check_key(key, "get")
        return open_version(self._object_path(key))

    def delete(self, key: str) -> None:
        check_key(key, "delete")
        trash = self._area("trash", secrets.token_hex(16))
        path = self._object_path(key)
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        # The rename removed an entry from objects/<hh>: that directory must
        # reach the disk for the delete to survive a power cut.
        self._fsync_dirs(os.path.dirname(path), self._area("trash"))
        self._reclaim(trash)

    def count_open_uploads(self) -> int:
        """How many uploads are open (for the uploads-in-progress gauge)."""
        return len(os.listdir(self._area("uploads")))

    def sweep(self) -> int:
        """Clean what crashes and expiry left; safe beside live requests."""
        removed = 0
        removed += self._sweep_tmp()
        removed += self._sweep_staging()
        removed += self._sweep_expired_uploads()
        for name in os.listdir(self._area("trash")):
            removed += self._reclaim(self._area("trash", name))
        return removed

    def is_expired(self, record: dict[str, Any]) -> bool:
        """Whether an upload's record says it has expired (R2: 10024 from then)."""
        return datetime.fromisoformat(record["expires"]) <= self.clock()

    # -- paths ----------------------------------------------------------------

    def _area(self, *names: str) -> str:
        return os.path.join(self.root, *names)

    def _object_path(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self._area("objects", digest[:2], digest)

    def _upload_path(self, upload_id: str) -> str:
        return self._area("uploads", upload_id)

    def _fsync_dirs(self, *paths: str) -> None:
        """With durability on, make renames inside these directories stick."""
        if self.durable:
            for path in paths:
                diskio.fsync_path(path)

    # -- upload internals -------------------------------------------------------

    @contextmanager
    def locked_upload(
        self, key: str, upload_id: str, operation: str, allow_expired: bool = False
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Hold the upload's exclusive lock; yield its directory fd and record.

        Raises NoSuchUpload unless ``upload_id`` is an open, unexpired upload of
        ``key`` at the moment the lock is held.
        """
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise NoSuchUpload(operation)
        path = self._upload_path(upload_id)
        try:
            dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise NoSuchUpload(operation) from None
        try:
            diskio.lock(dir_fd)
            # Completed or aborted while we waited: the directory moved away.
            try:
                still_here = os.stat(path).st_ino == os.fstat(dir_fd).st_ino
            except FileNotFoundError:
                still_here = False
            if not still_here:
                raise NoSuchUpload(operation)
            record = json.loads(diskio.read_file(dir_fd, UPLOAD_RECORD))
            if record["key"] != key or (self.is_expired(record) and not allow_expired):
                raise NoSuchUpload(operation)
            yield dir_fd, record
        finally:
            os.close(dir_fd)

    def read_upload(self, key: str, upload_id: str, operation: str) -> dict[str, Any]:
        """The upload's record, or NoSuchUpload; takes no lock (a quick check)."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise NoSuchUpload(operation)
        try:
            record: dict[str, Any] = json.loads(
                diskio.read_file(
                    None, os.path.join(self._upload_path(upload_id), UPLOAD_RECORD)
                )
            )
        except FileNotFoundError:
            raise NoSuchUpload(operation) from None
        if record["key"] != key or self.is_expired(record):
            raise NoSuchUpload(operation)
        return record

    @contextmanager
    def received_part(self, chunks: Iterable[bytes]) -> Iterator[tuple[str, str, int]]:
        """Stream ``chunks`` into a new temp file; yield its path, MD5 and size.

        The temp file stays flocked until the ``with`` block ends (by then it
        has been renamed into its upload, or it is deleted), so a sweep in
        another process can always tell it from a crash leftover.
        """
        path = self._area("tmp", secrets.token_hex(16))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            diskio.lock(fd)
            digest = hashlib.md5(usedforsecurity=False)
            size = 0
            with diskio.disk_full_as_507("uploadPart"):
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_part_size:
                        raise EntityTooLarge("uploadPart")
                    digest.update(chunk)
                    diskio.write_all(fd, chunk)
                if self.durable:
                    os.fsync(fd)
            yield path, digest.hexdigest(), size
        finally:
            _unlink_quietly(path)  # already renamed away if all went well
            os.close(fd)

    def publish(self, staged: str, key: str) -> str | None:
        """Make ``staged`` the key's object at one instant; return what it replaced.

        ``RENAME_EXCHANGE`` swaps the two directories atomically, so a reader
        sees the old version or the new one and never a missing key.
        """
        target = self._object_path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        while True:
            if diskio.can_exchange():
                try:
                    diskio.rename2(staged, target, diskio.RENAME_EXCHANGE)
                    return staged
                except FileNotFoundError:
                    pass
                try:
                    diskio.rename2(staged, target, diskio.RENAME_NOREPLACE)
                    return None
                except FileExistsError:
                    continue
            # No renameat2: move the old version out first (a reader may see 404).
            try:
                os.rename(staged, target)
                return None
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
            aside = self._area("trash", secrets.token_hex(16))
            try:
                os.rename(target, aside)
            except FileNotFoundError:
                continue
            self._reclaim(aside)

    def retire(self, path: str) -> None:
        """Move a replaced version to the trash and delete it if nobody reads it."""
        trash = self._area("trash", secrets.token_hex(16))
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        self._reclaim(trash)

    def _reclaim(self, path: str) -> int:
        """Delete a retired version or aborted upload unless a reader pins it."""
        try:
            manifest_fd = os.open(os.path.join(path, MANIFEST), os.O_RDONLY)
        except FileNotFoundError:
            diskio.remove_tree(path)
            return 1
        except NotADirectoryError:
            _unlink_quietly(path)
            return 1
        try:
            if not diskio.try_lock(manifest_fd):
                return 0
            # The manifest goes first: a reader that locks it later sees it unlinked.
            # (Another sweep may have reclaimed it meanwhile: then we are done.)
            _unlink_quietly(os.path.join(path, MANIFEST))
        finally:
            os.close(manifest_fd)
        diskio.remove_tree(path)
        return 1

    # -- sweeping ---------------------------------------------------------------

    def _sweep_tmp(self) -> int:
        removed = 0
        cutoff = time.time() - _TEMP_GRACE_SECONDS
        for entry in os.scandir(self._area("tmp")):
            try:
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    diskio.remove_tree(entry.path)
                    removed += 1
                    continue
                fd = os.open(entry.path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                if diskio.try_lock(fd):
                    _unlink_quietly(entry.path)
                    removed += 1
            finally:
                os.close(fd)
        return removed

    def _sweep_staging(self) -> int:
        """Finish what a crash between close and publish left in ``staging/``."""
        removed = 0
        for upload_id in os.listdir(self._area("staging")):
            path = self._area("staging", upload_id)
            try:
                dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue
            try:
                if not diskio.try_lock(dir_fd):
                    continue  # a live complete is publishing it right now
                try:
                    manifest = json.loads(diskio.read_file(dir_fd, MANIFEST))
                except FileNotFoundError:
                    manifest = {"upload_id": upload_id}
                if manifest["upload_id"] == upload_id:
                    # Never published: roll back, the upload is open again.
                    try:
                        os.rename(path, self._upload_path(upload_id))
                    except FileNotFoundError:
                        continue  # another sweep rolled it back first
                else:
                    self.retire(path)  # the version a publish swapped out
                removed += 1
            finally:
                os.close(dir_fd)
        return removed

    def _sweep_expired_uploads(self) -> int:
        removed = 0
        for upload_id in os.listdir(self._area("uploads")):
            path = self._upload_path(upload_id)
            try:
                record = json.loads(
                    diskio.read_file(None, os.path.join(path, UPLOAD_RECORD))
                )
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not self.is_expired(record):
                continue
            FilesystemUpload(self, record["key"], upload_id).abort()
            removed += 1
        return removed


class FilesystemUpload:
    """One upload of :class:`FilesystemBucket` (a ``MultipartUpload``)."""

    def __init__(self, bucket: FilesystemBucket, key: str, upload_id: str) -> None:
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id

    def info(self, operation: str = "listParts") -> UploadInfo:
        return _upload_info(
            self.bucket.read_upload(self.key, self.upload_id, operation)
        )

    def upload_part(
        self, part_number: int, chunks: Iterable[bytes], length: int | None = None
    ) -> UploadedPart:
        bucket = self.bucket
        if length is not None and length > bucket.max_part_size:
            raise EntityTooLarge("uploadPart")
        # Refuse before reading a byte of the body if the upload is not there.
        bucket.read_upload(self.key, self.upload_id, "uploadPart")
        with (
            bucket.received_part(chunks) as (temp, md5, size),
            bucket.locked_upload(self.key, self.upload_id, "uploadPart") as (dir_fd, _),
        ):
            data_name = f"{part_number:05d}.{md5}"
            link = f"{part_number:05d}"
            os.rename(temp, data_name, dst_dir_fd=dir_fd)
            try:
                previous: str | None = os.readlink(link, dir_fd=dir_fd)
            except FileNotFoundError:
                previous = None
            if previous != data_name:
                # Swap the link atomically: part N is the old bytes or the new.
                _unlink_quietly(_LINK_TEMP, dir_fd)
                os.symlink(data_name, _LINK_TEMP, dir_fd=dir_fd)
                os.rename(_LINK_TEMP, link, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                if previous is not None:
                    _unlink_quietly(previous, dir_fd)
            if bucket.durable:
                os.fsync(dir_fd)
        return UploadedPart(part_number, md5, size)

    def list_parts(self) -> list[UploadedPart]:
        with self.bucket.locked_upload(self.key, self.upload_id, "listParts") as (
            dir_fd,
            _,
        ):
            parts = []
            for name in sorted(os.listdir(dir_fd)):
                if _PART_LINK.fullmatch(name):
                    target = os.readlink(name, dir_fd=dir_fd)
                    size = os.stat(target, dir_fd=dir_fd).st_size
                    parts.append(UploadedPart(int(name), target.split(".", 1)[1], size))
            return parts

    def complete(
        self, parts: Sequence[PartRef], check: PublishCheck | None = None
    ) -> ObjectInfo:
        operation = "completeMultipartUpload"
        check_part_order(parts)
        bucket = self.bucket
        with bucket.locked_upload(self.key, self.upload_id, operation) as (
            dir_fd,
            record,
        ):
            files, md5s, sizes, chosen = [], [], [], []
            for ref in parts:
                try:
                    target = os.readlink(f"{ref.part_number:05d}", dir_fd=dir_fd)
                except FileNotFoundError:
                    raise InvalidPart(operation) from None
                md5 = target.split(".", 1)[1]
                if md5 != ref.etag:
                    raise InvalidPart(operation)
                files.append(target)
                md5s.append(md5)
                sizes.append(os.stat(target, dir_fd=dir_fd).st_size)
                chosen.append(UploadedPart(ref.part_number, md5, sizes[-1]))
            check_part_sizes(sizes, bucket.min_part_size)
            if check is not None:
                check(chosen)  # under the lock: no part can change until publish
            manifest = {
                "key": self.key,
                "upload_id": self.upload_id,
                "etag": multipart_etag(md5s),
                "size": sum(sizes),
                "uploaded": bucket.clock().isoformat(),
                "http_metadata": record["http_metadata"],
                "parts": [
                    {"file": name, "size": size}
                    for name, size in zip(files, sizes, strict=True)
                ],
            }
            with diskio.disk_full_as_507(operation):
                diskio.write_file_atomic(
                    dir_fd, MANIFEST, _to_json(manifest), bucket.durable
                )
                if bucket.durable:
                    os.fsync(dir_fd)
            # Close the upload: from here on parts, completes and aborts get 10024.
            upload_path = bucket._upload_path(self.upload_id)
            staged = bucket._area("staging", self.upload_id)
            os.rename(upload_path, staged)
            try:
                replaced = bucket.publish(staged, self.key)
            except BaseException:
                os.rename(staged, upload_path)  # not published: reopen the upload
                raise
            bucket._fsync_dirs(
                bucket._area("uploads"),
                bucket._area("staging"),
                os.path.dirname(bucket._object_path(self.key)),
            )
            deleted = _remove_all_but(dir_fd, {MANIFEST, UPLOAD_RECORD, *files})
            if deleted and bucket.durable:
                os.fsync(dir_fd)  # deleted parts stay deleted (links may come back)
        if replaced is not None:
            bucket.retire(replaced)
        return info_from_manifest(manifest)

    def abort(self) -> None:
        """Move the upload to the trash under its lock, then delete its bytes.

        Unknown, finished and other keys' uploads are left alone, quietly (R2's
        abort is idempotent); an expired one is deleted like an open one.
        """
        bucket = self.bucket
        trash = bucket._area("trash", secrets.token_hex(16))
        operation = "abortMultipartUpload"
        try:
            with bucket.locked_upload(self.key, self.upload_id, operation, True):
                os.rename(bucket._upload_path(self.upload_id), trash)
                bucket._fsync_dirs(bucket._area("uploads"))
        except NoSuchUpload:
            return
        bucket._reclaim(trash)


def _upload_info(record: dict[str, Any]) -> UploadInfo:
    return UploadInfo(
        key=record["key"],
        upload_id=record["upload_id"],
        created=datetime.fromisoformat(record["created"]),
        expires=datetime.fromisoformat(record["expires"]),
        http_metadata=HttpMetadata(record["http_metadata"]),
        owner=record.get("owner"),
    )


def _to_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _unlink_quietly(name: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _remove_all_but(dir_fd: int, keep: set[str]) -> bool:
    """Delete the parts a complete did not list, and the part links.

    Returns whether a part's bytes were deleted (not just links).
    """
    deleted_bytes = False
    for name in os.listdir(dir_fd):
        if name not in keep:
            deleted_bytes = deleted_bytes or not _PART_LINK.fullmatch(name)
            _unlink_quietly(name, dir_fd)
    return deleted_bytes
