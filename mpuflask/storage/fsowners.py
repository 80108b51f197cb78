"""Who holds which open uploads: the index behind ``MPUFLASK_MAX_OPEN_UPLOADS``.

Layout under the data directory::

    owners/<sha256(json(owner))>/<expires, µs since 1970>.<uploadId>

One directory per identity (anonymous is ``null``, one identity like any
other), one entry per open upload. An entry is a **hard link** to the upload's
own ``upload.json``: it costs no inode (the quota exists because inodes run
out) and it is the record itself, so sweep can tell whether an entry still
belongs to a live upload by comparing inode numbers.

Counting an identity's open uploads is one ``listdir`` of its directory (a
few hundred bytes per upload, read only at create); the expiry in each name
lets expired uploads be left out before any sweep has removed them. No
record is opened.

Kept right by the operations themselves, across processes:

* create links the entry *before* renaming the upload into ``uploads/``, and
  holds an exclusive flock on the record from before the link until after
  that rename: a crash in between leaves an entry too many, never one too few;
* complete and abort remove the entry under the upload's lock, after the
  upload has left ``uploads/`` (a crash in between: one too many);
* expiry is abort, run by sweep.

Repaired by :func:`sweep_entries` (and :func:`ensure_entry` for every open
upload): an entry whose upload is in neither ``uploads/`` nor ``staging/`` is
removed, unless its record is flocked (a create in flight); an open upload
without its entry (a data dir from before the index, or a power cut: entries
are never fsynced, they can always be rebuilt) gets one. So the count can be
one too high after a crash, until the next sweep, and is otherwise exact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from . import diskio
from .diskio import CorruptEntry
from .fsrecords import UPLOAD_ID
from .fsrecords import UPLOAD_RECORD
from .fsrecords import check_record
from .fsrecords import load_object

log = logging.getLogger(__name__)

OWNERS = "owners"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OWNER_DIR = re.compile(r"[0-9a-f]{64}")
_ENTRY = re.compile(r"([0-9]{1,20})\.([A-Za-z0-9_-]{1,128})")


def owner_dir(owner: str | None) -> str:
    """The directory name of ``owner``'s entries (any string is a safe name)."""
    return hashlib.sha256(json.dumps(owner).encode()).hexdigest()


def entry_name(upload_id: str, expires: datetime) -> str:
    """The entry of one upload: its expiry (exact, in µs) and its id."""
    return f"{(expires - _EPOCH) // timedelta(microseconds=1)}.{upload_id}"


def entry_of(record: dict[str, Any]) -> tuple[str, str]:
    """(owner directory, entry name) of a checked upload record."""
    expires = datetime.fromisoformat(record["expires"])
    return owner_dir(record.get("owner")), entry_name(record["upload_id"], expires)


def add(owners_fd: int, owner: str | None, name: str, record_dir_fd: int) -> bool:
    """Link ``name`` to the record in ``record_dir_fd``, in ``owner``'s directory.

    Returns whether the owner's directory was made for it (so that undoing a
    failed create can remove it again).

    A sweep may remove the owner's directory when it finds it empty; then the
    link fails with ENOENT and we make the directory again. On failure (a full
    disk), a directory made here is removed again.
    """
    folder = owner_dir(owner)
    for _ in range(100):
        made = diskio.make_dir(folder, owners_fd)
        try:
            folder_fd = _open_owner(owners_fd, folder)
        except FileNotFoundError:
            continue  # swept away between mkdir and open
        try:
            os.link(
                UPLOAD_RECORD,
                name,
                src_dir_fd=record_dir_fd,
                dst_dir_fd=folder_fd,
                follow_symlinks=False,
            )
            return made
        except FileNotFoundError:
            continue  # the directory was swept away between mkdir and link
        except BaseException:
            if made:
                try:
                    os.rmdir(folder, dir_fd=owners_fd)
                except OSError:
                    pass  # another create's entry landed in it meanwhile
            raise
        finally:
            os.close(folder_fd)
    raise RuntimeError(f"{OWNERS}/{folder} kept disappearing")


def remove(owners_fd: int, record: dict[str, Any], rmdir: bool = False) -> None:
    """Remove the entry of an upload that has just left ``uploads/``.

    Called after the point of no return of complete and abort: a failure is
    logged and left to sweep, never answered. ``rmdir``: also remove the
    owner's directory if that leaves it empty.
    """
    folder, name = entry_of(record)
    try:
        folder_fd = _open_owner(owners_fd, folder)
        try:
            diskio.unlink_quietly(name, folder_fd)
        finally:
            os.close(folder_fd)
        if rmdir:
            try:
                os.rmdir(folder, dir_fd=owners_fd)
            except OSError:
                pass  # not empty: other uploads of this owner
    except (OSError, CorruptEntry) as error:
        log.warning("owner index entry %s/%s not removed: %s", folder, name, error)


def count(owners_fd: int, owner: str | None, now: datetime) -> int:
    """How many unexpired uploads ``owner`` holds: one listdir, no record read."""
    try:
        folder_fd = _open_owner(owners_fd, owner_dir(owner))
    except FileNotFoundError:
        return 0
    try:
        names = os.listdir(folder_fd)
    finally:
        os.close(folder_fd)
    now_us = (now - _EPOCH) // timedelta(microseconds=1)
    return sum(
        1
        for name in names
        if (match := _ENTRY.fullmatch(name)) and int(match[1]) > now_us
    )


def live_records(
    owners_fd: int, uploads_fd: int, owner: str | None, now: datetime
) -> list[dict[str, Any]]:
    """The checked records of ``owner``'s open, unexpired uploads (mpu-list).

    One ``listdir`` of the owner's directory, then each entry's record (the
    entry is the record: a hard link). An entry a crash left behind is
    skipped: its inode is no longer the record in ``uploads/``.
    """
    try:
        folder_fd = _open_owner(owners_fd, owner_dir(owner))
    except FileNotFoundError:
        return []
    now_us = (now - _EPOCH) // timedelta(microseconds=1)
    records = []
    try:
        for name in os.listdir(folder_fd):
            match = _ENTRY.fullmatch(name)
            if match is None or int(match[1]) <= now_us:
                continue
            try:
                fd = diskio.open_file(name, folder_fd)
            except (FileNotFoundError, CorruptEntry):
                continue
            try:
                if _record_ino(uploads_fd, match[2]) != os.fstat(fd).st_ino:
                    continue  # completed, aborted or expired meanwhile
                record = check_record(
                    load_object(diskio.read_metadata(fd), name), match[2]
                )
            except CorruptEntry as error:
                log.error("corrupt entry %s/%s: %s", OWNERS, name, error)
                continue
            finally:
                os.close(fd)
            if record.get("owner") == owner:
                records.append(record)
    finally:
        os.close(folder_fd)
    return records


def ensure_entry(
    owners_fd: int, uploads_fd: int, dir_fd: int, record: dict[str, Any]
) -> bool:
    """Give an open upload its entry if it has none (sweep); True if one was made.

    ``dir_fd`` is the upload's directory (not locked by the caller), ``record``
    its checked record. The link is made under the upload's lock, so no
    complete or abort can be removing the entry at the same time; a busy
    upload is left for the next sweep.
    """
    folder, name = entry_of(record)
    record_ino = os.stat(UPLOAD_RECORD, dir_fd=dir_fd, follow_symlinks=False).st_ino
    if _entry_ino(owners_fd, folder, name) == record_ino:
        return False
    if not diskio.try_lock(dir_fd):
        return False
    if not diskio.same_dir(uploads_fd, record["upload_id"], dir_fd):
        return False  # completed or aborted meanwhile
    if _entry_ino(owners_fd, folder, name) is not None:
        remove(owners_fd, record)  # an entry that is not this record
    add(owners_fd, record.get("owner"), name, dir_fd)
    return True


def sweep_entries(owners_fd: int, uploads_fd: int, staging_fd: int) -> int:
    """Remove entries whose upload is gone (a crash after it left ``uploads/``).

    Returns how many entries (and foreign names) were removed. Owner
    directories left empty are removed too; :func:`add` copes with that.
    """
    removed = 0
    for folder in os.listdir(owners_fd):
        if not _OWNER_DIR.fullmatch(folder):
            log.warning("removing %s/%s: not an owner directory", OWNERS, folder)
            diskio.remove_entry(owners_fd, folder)
            removed += 1
            continue
        try:
            folder_fd = _open_owner(owners_fd, folder)
        except FileNotFoundError:
            continue
        except CorruptEntry as error:
            log.warning("removing %s/%s: %s", OWNERS, folder, error)
            diskio.remove_entry(owners_fd, folder)
            removed += 1
            continue
        try:
            for name in os.listdir(folder_fd):
                if _stale(folder_fd, folder, name, uploads_fd, staging_fd):
                    diskio.remove_entry(folder_fd, name)
                    removed += 1
        finally:
            os.close(folder_fd)
        try:
            os.rmdir(folder, dir_fd=owners_fd)
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise
    return removed


def _stale(
    folder_fd: int, folder: str, name: str, uploads_fd: int, staging_fd: int
) -> bool:
    """Whether entry ``name`` belongs to no open upload (and no create in flight).

    Every worker sweeps at start: an entry another sweep removes meanwhile,
    before we open it or after, leaves nothing to judge.
    """
    match = _ENTRY.fullmatch(name)
    if match is None:
        return True
    try:
        fd = diskio.open_file(name, folder_fd)
    except FileNotFoundError:
        return False
    except CorruptEntry:
        return True
    try:
        with diskio.deleted_meanwhile(name):
            return _stale_open(fd, folder, name, match[2], uploads_fd, staging_fd)
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)


def _stale_open(
    fd: int, folder: str, name: str, upload_id: str, uploads_fd: int, staging_fd: int
) -> bool:
    """:func:`_stale` of the entry open as ``fd``, of upload ``upload_id``."""
    if not diskio.try_lock(fd):
        return False  # a create holds its record: it is being made
    found = os.fstat(fd)
    if not any(
        _record_ino(area, upload_id) == found.st_ino
        for area in (uploads_fd, staging_fd)
    ):
        return True
    # The entry is the upload's record: it must also be filed right.
    try:
        text = diskio.read_metadata(fd, found.st_size)
        record = check_record(load_object(text, name), upload_id)
    except CorruptEntry:
        return True
    return entry_of(record) != (folder, name)


def _record_ino(area_fd: int, upload_id: str) -> int | None:
    """The inode of ``<area>/<upload_id>/upload.json``, never via a symlink."""
    if not UPLOAD_ID.fullmatch(upload_id):
        return None
    try:
        dir_fd = diskio.open_dir(upload_id, area_fd)
    except (FileNotFoundError, CorruptEntry):
        return None
    try:
        return os.stat(UPLOAD_RECORD, dir_fd=dir_fd, follow_symlinks=False).st_ino
    except FileNotFoundError:
        return None
    finally:
        os.close(dir_fd)


def _entry_ino(owners_fd: int, folder: str, name: str) -> int | None:
    try:
        folder_fd = _open_owner(owners_fd, folder)
    except (FileNotFoundError, CorruptEntry):
        return None
    try:
        return os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_ino
    except FileNotFoundError:
        return None
    finally:
        os.close(folder_fd)


def _open_owner(owners_fd: int, folder: str) -> int:
    return diskio.open_dir(folder, owners_fd)
