"""Publishing, retiring and reclaiming versions of the filesystem store.

Publish makes a closed upload (``staging/<uploadId>``, its manifest written)
the key's object with one ``renameat2(RENAME_EXCHANGE)``: a reader sees the old
version or the new one, never none. The replaced version goes through
``staging/`` to ``trash/``, and is deleted once no reader holds a shared lock
on its manifest. Nothing here follows a symlink: a planted entry where a
shard or a version should be is moved to the trash and unlinked.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets

from . import diskio
from .diskio import CorruptEntry
from .fsbase import DataDir
from .fsrecords import MANIFEST

log = logging.getLogger(__name__)


def object_name(key: str) -> tuple[str, str]:
    """Where a key's object lives: ``objects/<shard>/<name>``."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return digest[:2], digest


def publish(
    bucket: DataDir, staging_fd: int, name: str, key: str, operation: str
) -> bool:
    """Make ``staging/<name>`` the key's object at one instant.

    ``RENAME_EXCHANGE`` swaps the two directories atomically, so a reader
    sees the old version or the new one and never a missing key. Returns
    True if a version was replaced: it is now ``staging/<name>``.
    """
    shard, target = object_name(key)
    with bucket.areas(operation, "objects", "trash") as (objects_fd, trash_fd):
        for _ in range(100):
            shard_fd, made = _shard(objects_fd, trash_fd, shard)
            try:
                replaced = _swap_in(bucket, staging_fd, name, shard_fd, target)
                if replaced is not None:
                    # One rename (or exchange), one journal step: syncing the
                    # shard makes both of its sides stick, and with them the
                    # earlier move of the upload from uploads/ to staging/.
                    bucket.sync_dirs(shard_fd)
                    return replaced
            except BaseException:
                if made:  # leave no empty shard behind a failed complete
                    diskio.quietly(lambda: os.rmdir(shard, dir_fd=objects_fd))
                raise
            finally:
                os.close(shard_fd)
    raise RuntimeError(f"objects/{shard}/{target} kept changing while publishing")


def _swap_in(
    bucket: DataDir, staging_fd: int, name: str, shard_fd: int, target: str
) -> bool | None:
    """One try at publishing; None if the shard changed under us (try again)."""
    if diskio.can_exchange():
        try:
            diskio.rename2(name, target, diskio.RENAME_EXCHANGE, staging_fd, shard_fd)
            return True
        except FileNotFoundError:
            pass
        try:
            diskio.rename2(name, target, diskio.RENAME_NOREPLACE, staging_fd, shard_fd)
            return False
        except (FileExistsError, FileNotFoundError):
            return None
    # No renameat2: move the old version out first (a reader may see 404).
    try:
        os.rename(name, target, src_dir_fd=staging_fd, dst_dir_fd=shard_fd)
        return False
    except OSError as error:
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
            raise
    with bucket.areas("completeMultipartUpload", "trash") as (trash_fd,):
        aside = secrets.token_hex(16)
        try:
            os.rename(target, aside, src_dir_fd=shard_fd, dst_dir_fd=trash_fd)
        except FileNotFoundError:
            return None
        reclaim(trash_fd, aside)
    return None


def _shard(objects_fd: int, trash_fd: int, shard: str) -> tuple[int, bool]:
    """Open ``objects/<shard>``, making it if needed; whether we made it.

    Something else under that name (a symlink planted there) is moved to
    the trash, never written through.
    """
    for _ in range(100):
        made = diskio.make_dir(shard, objects_fd)
        try:
            return diskio.open_dir(shard, objects_fd), made
        except FileNotFoundError:
            continue  # removed by a failed complete between mkdir and open
        except CorruptEntry as error:
            log.error("corrupt entry objects/%s: %s; moved aside", shard, error)
            aside = secrets.token_hex(16)
            os.rename(shard, aside, src_dir_fd=objects_fd, dst_dir_fd=trash_fd)
            reclaim(trash_fd, aside)
    raise RuntimeError(f"objects/{shard} kept disappearing")


def retire(bucket: DataDir, staging_fd: int, name: str) -> None:
    """Move a replaced version to the trash; delete it after the answer if
    nobody reads it."""
    trash = secrets.token_hex(16)
    with bucket.areas("completeMultipartUpload", "trash") as (trash_fd,):
        try:
            os.rename(name, trash, src_dir_fd=staging_fd, dst_dir_fd=trash_fd)
        except FileNotFoundError:
            return
    bucket.reclaim_later(trash)


def reclaim(trash_fd: int, name: str) -> int:
    """Delete a retired version or aborted upload unless a reader pins it."""
    try:
        dir_fd = diskio.open_dir(name, trash_fd)
    except FileNotFoundError:
        return 0  # another sweep reclaimed it first
    except CorruptEntry:
        diskio.remove_entry(trash_fd, name)  # a symlink or file: unlinked
        return 1
    try:
        try:
            manifest_fd = diskio.open_file(MANIFEST, dir_fd)
        except (FileNotFoundError, CorruptEntry):
            pass  # no manifest a reader could have locked
        else:
            try:
                if not diskio.try_lock(manifest_fd):
                    return 0
                # The manifest goes first: a reader that locks it later
                # sees it unlinked. (Another sweep may have reclaimed it
                # meanwhile: then we are done.)
                diskio.unlink_quietly(MANIFEST, dir_fd)
            finally:
                os.close(manifest_fd)
    finally:
        os.close(dir_fd)
    diskio.remove_entry(trash_fd, name)
    return 1
