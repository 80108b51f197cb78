"""One open upload of the filesystem store: parts, listing, complete, abort.

Every change holds the upload directory's exclusive flock (see
:meth:`~.filesystem.FilesystemBucket.locked_upload`). Part links are the only
symlinks the store follows, and only after :func:`~.fsrecords.part_file` has
checked that they name a part file of the same directory.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from ..bulk import instances
from ..errors import InvalidPart
from ..errors import NoSuchUpload
from ..jsontext import quoted
from ..jsontext import with_array
from ..rules import PartRef
from ..rules import check_part_order
from ..rules import check_part_sizes
from ..rules import multipart_etag
from . import diskio
from . import fsowners
from . import fspublish
from .base import ObjectInfo
from .base import PublishCheck
from .base import UploadedPart
from .base import UploadInfo
from .diskio import CorruptEntry
from .fsbase import UploadStore
from .fslayouts import info_from_manifest
from .fsobject import Published
from .fsrecords import MANIFEST
from .fsrecords import PART_LINK
from .fsrecords import UPLOAD_RECORD
from .fsrecords import PartFiles
from .fsrecords import part_etag
from .fsrecords import part_etags
from .fsrecords import part_file
from .fsrecords import part_file_name
from .fsrecords import upload_info

log = logging.getLogger(__name__)

_LINK_TEMP = ".link.tmp"


class FilesystemUpload:
    """One upload of :class:`FilesystemBucket` (a ``MultipartUpload``)."""

    def __init__(self, bucket: UploadStore, key: str, upload_id: str) -> None:
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self._record: dict[str, Any] | None = None

    def info(self, operation: str = "listParts") -> UploadInfo:
        record = self.bucket.read_upload(self.key, self.upload_id, operation)
        # A record never changes once the upload exists: the part upload that
        # follows on this handle need not read it again (expiry is rechecked).
        self._record = record
        return upload_info(record)

    def upload_part(
        self, part_number: int, chunks: Iterable[bytes], length: int | None = None
    ) -> UploadedPart:
        operation = "uploadPart"
        bucket = self.bucket
        # Refuse before reading a byte of the body if the upload is not there
        # (info() on this handle has just read its record: no need to again).
        record = self._record
        if record is None or bucket.is_expired(record):
            record = bucket.read_upload(self.key, self.upload_id, operation)
        with (
            bucket.received_part(chunks) as (tmp_fd, temp, md5, size),
            bucket.locked_upload(self.key, self.upload_id, operation, known=record) as (
                dir_fd,
                _,
            ),
            diskio.disk_full_as_507(operation),
        ):
            link = f"{part_number:05d}"
            data_name = part_file_name(link, md5, size)
            previous = self._current(dir_fd, link)
            os.rename(temp, data_name, src_dir_fd=tmp_fd, dst_dir_fd=dir_fd)
            if previous != data_name:
                try:
                    # Swap the link atomically: part N is the old bytes or the new.
                    diskio.over_leftover(
                        _LINK_TEMP,
                        dir_fd,
                        lambda: os.symlink(data_name, _LINK_TEMP, dir_fd=dir_fd),
                    )
                    os.rename(_LINK_TEMP, link, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                except BaseException:
                    # Not linked: the bytes would be an orphan nobody lists.
                    diskio.unlink_quietly(_LINK_TEMP, dir_fd)
                    diskio.unlink_quietly(data_name, dir_fd)
                    raise
                if previous is not None:
                    diskio.unlink_quietly(previous, dir_fd)
            if bucket.durable:
                self.sync_part(dir_fd)
        return UploadedPart(part_number, md5, size)

    def sync_part(self, dir_fd: int) -> None:
        """Make a new part's rename and link durable, before it is acknowledged.

        The part is durable before we answer, but the other parts of this
        upload need not queue behind our fsync: the lock goes first, and one
        fsync serves every part of the process waiting on it (group commit,
        :mod:`.groupsync`). An override point for measuring where this fsync
        goes (bench/variants.py).
        """
        diskio.unlock(dir_fd)
        self.bucket.dir_syncs.sync(dir_fd)

    def _current(self, dir_fd: int, link: str) -> str | None:
        """The file part ``link`` names now; a corrupt link is removed (logged)."""
        try:
            found = part_file(dir_fd, link)
        except CorruptEntry as error:
            log.error("uploads/%s: %s; replaced", self.upload_id, error)
            diskio.remove_entry(dir_fd, link)
            return None
        return None if found is None else found[0]

    def list_parts(self) -> list[UploadedPart]:
        with self.bucket.locked_upload(self.key, self.upload_id, "listParts") as (
            dir_fd,
            _,
        ):
            files = PartFiles(dir_fd)
            listed = files.listed()
            if listed is not None:
                names, sizes = listed
                return instances(
                    UploadedPart,
                    part_number=list(map(int, files.links)),
                    etag=part_etags(names),
                    size=sizes,
                )
            found = [
                part
                for link in files.links
                if (part := self._part(files, link)) is not None
            ]
            return [
                UploadedPart(int(name[:5]), part_etag(name), size)
                for name, size in found
            ]

    def _part(
        self, files: PartFiles, link: str, measured: bool = False
    ) -> tuple[str, int] | None:
        """Part ``link``'s file and size (see :meth:`.PartFiles.current`);
        None if absent or corrupt (logged)."""
        try:
            return files.current(link, measured)
        except CorruptEntry as error:
            log.error("uploads/%s: %s", self.upload_id, error)
            return None

    def _each_measured(
        self, files: PartFiles, links: list[str], operation: str
    ) -> tuple[list[str], list[int]]:
        """Part by part, where :meth:`.PartFiles.measured` found some part
        unusual: which one, and why (logged); InvalidPart for it."""
        names, sizes = [], []
        for link in links:
            part = self._part(files, link, measured=True)
            if part is None:
                raise InvalidPart(operation)
            names.append(part[0])
            sizes.append(part[1])
        return names, sizes

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
            present = PartFiles(dir_fd)
            links = [f"{ref.part_number:05d}" for ref in parts]
            files, sizes = present.measured(links) or self._each_measured(
                present, links, operation
            )
            etags = [ref.etag for ref in parts]
            if part_etags(files) != etags:
                raise InvalidPart(operation)
            check_part_sizes(sizes, bucket.min_part_size)
            if check is not None:
                # Under the lock: no part can change until publish.
                numbers = [ref.part_number for ref in parts]
                check(
                    instances(UploadedPart, part_number=numbers, etag=etags, size=sizes)
                )
            manifest: dict[str, Any] = {
                "key": self.key,
                "upload_id": self.upload_id,
                "etag": multipart_etag(etags),
                "size": sum(sizes),
                "uploaded": bucket.clock().isoformat(),
                "http_metadata": record["http_metadata"],
                "parts": [
                    {"file": name, "size": size}
                    for name, size in zip(files, sizes, strict=True)
                ],
            }
            with bucket.areas(operation, "uploads", "staging", fsowners.OWNERS) as (
                uploads_fd,
                staging_fd,
                owners_fd,
            ):
                info = info_from_manifest(manifest)
                with (
                    # Settling takes our info while our directory is the key's.
                    bucket.index.changing(self.key, operation, Published(info, dir_fd)),
                    bucket.events.upload_ending(record, manifest, operation),
                ):
                    replaced = self._publish(dir_fd, uploads_fd, staging_fd, manifest)
                # Published: what follows is clean-up, never answered.
                fsowners.remove(owners_fd, record)
                deleted = _remove_unlisted(dir_fd, present.names, files, links)
                if deleted and bucket.durable:
                    # Parts left out stay deleted after a power cut (the part
                    # links may come back: a few bytes, gone with the version).
                    os.fsync(dir_fd)
                if replaced:
                    try:
                        fspublish.retire(bucket, staging_fd, self.upload_id)
                    except OSError as error:  # the sweep retires it later
                        log.warning("retired version not moved: %s", error)
        return info

    def _publish(
        self, dir_fd: int, uploads_fd: int, staging_fd: int, manifest: dict[str, Any]
    ) -> bool:
        """Write the manifest, close the upload and publish it; True if it
        replaced a version (now in ``staging/<uploadId>``).

        Until the publishing rename, every failure puts everything back: the
        upload stays open as it was, a full disk answers 507.
        """
        operation = "completeMultipartUpload"
        bucket = self.bucket
        upload_id = self.upload_id
        closed = False
        with diskio.disk_full_as_507(operation):
            try:
                diskio.write_file_atomic(
                    dir_fd, MANIFEST, _manifest_json(manifest), bucket.durable
                )
                if bucket.durable:
                    os.fsync(dir_fd)
                # Close the upload: from here on parts, completes and aborts get 10024.
                os.rename(
                    upload_id, upload_id, src_dir_fd=uploads_fd, dst_dir_fd=staging_fd
                )
                closed = True
                replaced = fspublish.publish(
                    bucket, staging_fd, upload_id, self.key, operation
                )
            except BaseException:
                if closed:  # not published: reopen the upload
                    try:
                        os.rename(
                            upload_id,
                            upload_id,
                            src_dir_fd=staging_fd,
                            dst_dir_fd=uploads_fd,
                        )
                    except OSError as error:
                        # Without its manifest, sweep rolls it back later.
                        log.error("upload %s left in staging: %s", upload_id, error)
                diskio.unlink_quietly(MANIFEST, dir_fd)
                raise
        # Durable now: publish synced the shard, and with it both renames.
        return replaced

    def abort(self) -> None:
        """Move the upload to the trash under its lock, then delete its bytes.

        Unknown, finished and other keys' uploads are left alone, quietly (R2's
        abort is idempotent); an expired one is deleted like an open one.
        """
        bucket = self.bucket
        trash = secrets.token_hex(16)
        operation = "abortMultipartUpload"
        with (
            bucket.areas(operation, "uploads", "trash", fsowners.OWNERS) as fds,
            diskio.disk_full_as_507(operation),
        ):
            uploads_fd, trash_fd, owners_fd = fds
            try:
                with bucket.locked_upload(
                    self.key, self.upload_id, operation, True
                ) as (
                    _,
                    record,
                ):
                    with bucket.events.upload_ending(record, None, operation):
                        os.rename(
                            self.upload_id,
                            trash,
                            src_dir_fd=uploads_fd,
                            dst_dir_fd=trash_fd,
                        )
                        bucket.sync_dirs(uploads_fd)
                    fsowners.remove(owners_fd, record)
            except NoSuchUpload:
                return
        bucket.reclaim_later(trash)


def _manifest_json(manifest: dict[str, Any]) -> bytes:
    """``manifest`` as compact JSON, its ``parts`` written entry by entry
    (see :mod:`mpuflask.jsontext`)."""
    head = {name: value for name, value in manifest.items() if name != "parts"}
    parts = (
        f'{{"file":{quoted(part["file"])},"size":{part["size"]}}}'
        for part in manifest["parts"]
    )
    return with_array(head, "parts", parts).encode()


def _remove_unlisted(
    dir_fd: int, names: list[str], files: list[str], links: list[str]
) -> bool:
    """Delete the parts a complete did not list, with their links.

    ``names`` is what the directory held before the manifest was written,
    read under the lock that is still held; ``files`` and ``links`` are the
    listed parts'. Their links stay: a few bytes each, gone with the version
    (a power cut could bring them back anyway), while unlinking them would
    make a complete of 10,000 parts pay 10,000 more system calls. Returns
    whether a part's bytes were deleted (not just links).
    """
    keep = {MANIFEST, UPLOAD_RECORD, *files, *links}
    if keep.issuperset(names):  # the usual complete: every part listed
        return False
    deleted_bytes = False
    try:
        for name in names:
            if name not in keep:
                deleted_bytes = deleted_bytes or not PART_LINK.fullmatch(name)
                diskio.remove_entry(dir_fd, name)
    except OSError as error:  # published already: the bytes stay, harmlessly
        log.warning("unlisted parts not removed: %s", error)
    return deleted_bytes
