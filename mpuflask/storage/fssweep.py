"""The filesystem store's sweep: what crashes and expiry leave, cleaned.

Safe beside live requests in any process: every step either takes the lock
the live operation would hold (and skips what is busy) or waits out a grace
period. Entries that are not the store's (a symlink in ``tmp/``, a name that
is no upload id in ``staging/``) are removed without being followed; entries
of ``uploads/`` are never deleted unless their record says they expired.
"""

from __future__ import annotations

import logging
import os
import stat
import time

from ..errors import DataDirDamaged
from . import diskio
from . import fsowners
from . import fspublish
from .diskio import CorruptEntry
from .fsbase import UploadStore
from .fsrecords import MANIFEST
from .fsrecords import UPLOAD_ID
from .fsrecords import UPLOAD_RECORD
from .fsrecords import check_record
from .fsrecords import load_object
from .fsupload import FilesystemUpload

log = logging.getLogger(__name__)

#: A temp file nobody holds a lock on and older than this is a crash leftover.
TEMP_GRACE_SECONDS = 60.0


def sweep(bucket: UploadStore) -> int:
    """Clean what crashes and expiry left; return how many items went."""
    with bucket.areas(
        "sweep", "tmp", "staging", "uploads", "trash", fsowners.OWNERS
    ) as (tmp_fd, staging_fd, uploads_fd, trash_fd, owners_fd):
        removed = _sweep_tmp(tmp_fd)
        removed += _sweep_staging(bucket, staging_fd, uploads_fd)
        removed += _sweep_uploads(bucket, uploads_fd, owners_fd)
        removed += fsowners.sweep_entries(owners_fd, uploads_fd, staging_fd)
        for name in os.listdir(trash_fd):
            removed += fspublish.reclaim(trash_fd, name)
    # Rows a crash left wrong, after the staging roll-backs above. An index
    # that cannot be used is logged (listing answers 503), never a failed sweep.
    try:
        fixed = bucket.index.reconcile()
    except DataDirDamaged:
        fixed = 0
    if fixed:
        log.info("index: %d mark(s) a crash left, their keys' rows settled", fixed)
    return removed


def _sweep_tmp(tmp_fd: int) -> int:
    removed = 0
    cutoff = time.time() - TEMP_GRACE_SECONDS
    for name in os.listdir(tmp_fd):
        try:
            found = os.stat(name, dir_fd=tmp_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if found.st_mtime > cutoff:
            continue
        if not stat.S_ISREG(found.st_mode):
            diskio.remove_entry(tmp_fd, name)  # a dead create, or not ours
            removed += 1
            continue
        try:
            fd = diskio.open_file(name, tmp_fd)
        except (FileNotFoundError, CorruptEntry):
            continue
        try:
            if diskio.try_lock(fd):
                diskio.unlink_quietly(name, tmp_fd)
                removed += 1
        finally:
            os.close(fd)
    return removed


def _sweep_staging(bucket: UploadStore, staging_fd: int, uploads_fd: int) -> int:
    """Finish what a crash between close and publish left in ``staging/``."""
    removed = 0
    for upload_id in os.listdir(staging_fd):
        if not UPLOAD_ID.fullmatch(upload_id):
            log.warning("removing staging/%s: not an upload id", upload_id)
            diskio.remove_entry(staging_fd, upload_id)
            removed += 1
            continue
        try:
            dir_fd = diskio.open_dir(upload_id, staging_fd)
        except FileNotFoundError:
            continue
        except CorruptEntry as error:
            log.warning("removing staging/%s: %s", upload_id, error)
            diskio.remove_entry(staging_fd, upload_id)
            removed += 1
            continue
        try:
            if not diskio.try_lock(dir_fd):
                continue  # a live complete is publishing it right now
            try:
                manifest = load_object(diskio.read_file(dir_fd, MANIFEST), upload_id)
                published_by = manifest.get("upload_id")
            except FileNotFoundError:
                published_by = upload_id
            except CorruptEntry as error:
                log.error("corrupt entry staging/%s: %s; left", upload_id, error)
                continue
            if published_by == upload_id:
                # Never published: roll back, the upload is open again.
                try:
                    os.rename(
                        upload_id,
                        upload_id,
                        src_dir_fd=staging_fd,
                        dst_dir_fd=uploads_fd,
                    )
                except FileNotFoundError:
                    continue  # another sweep rolled it back first
            else:
                # The version a publish swapped out.
                fspublish.retire(bucket, staging_fd, upload_id)
            removed += 1
        finally:
            os.close(dir_fd)
    return removed


def _sweep_uploads(bucket: UploadStore, uploads_fd: int, owners_fd: int) -> int:
    """Abort expired uploads; give open ones their owner index entry."""
    removed = 0
    for upload_id in os.listdir(uploads_fd):
        if not UPLOAD_ID.fullmatch(upload_id):
            log.error("unexpected entry uploads/%s; left", upload_id)
            continue
        try:
            dir_fd = diskio.open_dir(upload_id, uploads_fd)
        except FileNotFoundError:
            continue
        except CorruptEntry as error:
            log.error("corrupt entry uploads/%s: %s; left", upload_id, error)
            continue
        try:
            try:
                record = check_record(
                    load_object(diskio.read_file(dir_fd, UPLOAD_RECORD), upload_id),
                    upload_id,
                )
            except FileNotFoundError:
                continue
            except CorruptEntry as error:
                log.error("corrupt entry uploads/%s: %s; left", upload_id, error)
                continue
            if bucket.is_expired(record):
                FilesystemUpload(bucket, record["key"], upload_id).abort()
                removed += 1
            else:
                fsowners.ensure_entry(owners_fd, uploads_fd, dir_fd, record)
        finally:
            os.close(dir_fd)
    return removed
