"""The filesystem outbox's files: its directories, records and lease.

What :mod:`.fsevents` writes and reads under ``events/`` (its layout is in
that module's docstring), one helper per kind of file, so the rules read
without the system calls. Nothing here follows a symlink.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import DataDirDamaged
from ..events.model import Event
from ..events.model import event_from_json
from ..events.outbox import Pending
from . import diskio
from .diskio import CorruptEntry
from .fsbase import DataDir
from .fsrecords import load_object

log = logging.getLogger(__name__)

EVENTS = "events"
SUBDIRS = ("intents", "ready", "held")
#: An intent being written: ``intents/.new.<random>``.
NEW = ".new."
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def make_whole(bucket: DataDir, operation: str) -> None:
    """Make ``events/`` whole, at one instant: built in ``tmp/`` and renamed
    in, so no process ever sees it without its subdirectories (workers
    starting together all try; one rename wins, the others' are swept)."""
    durable = bucket.durable
    with (
        bucket.areas(operation, "tmp") as (tmp_fd,),
        diskio.disk_full_as_507(operation),
    ):
        building = f"events.{secrets.token_hex(8)}"
        os.mkdir(building, 0o755, dir_fd=tmp_fd)
        try:
            dir_fd = diskio.open_dir(building, tmp_fd)
            try:
                for sub in SUBDIRS:
                    os.mkdir(sub, 0o755, dir_fd=dir_fd)
                if durable:
                    os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            root_fd = diskio.open_dir(bucket.root)
            try:
                try:
                    rename_no_replace(building, EVENTS, tmp_fd, root_fd)
                except FileExistsError:
                    pass  # another process made it first
                else:
                    if durable:
                        os.fsync(root_fd)
            finally:
                os.close(root_fd)
        finally:
            diskio.remove_entry(tmp_fd, building)  # gone if renamed in


@contextmanager
def open_dirs(root: str, operation: str) -> Iterator[tuple[int, int, int]]:
    """The intents, ready and held directories, opened without following links."""
    fds: list[int] = []
    try:
        try:
            root_fd = diskio.open_dir(root)
            fds.append(root_fd)
            for sub in SUBDIRS:
                fds.append(diskio.open_dir(sub, root_fd))
        except (CorruptEntry, FileNotFoundError) as error:
            log.error("data directory damaged: events: %s", error)
            raise DataDirDamaged(operation) from None
        yield fds[1], fds[2], fds[3]
    finally:
        for fd in fds:
            os.close(fd)


def write_intent(
    intents_fd: int, name: str, data: bytes, durable: bool, operation: str
) -> int:
    """Write intent ``name`` whole and durably; return its fd, flocked.

    The flock is taken before the intent has its name, so every intent under
    its name is held by its live writer or by nobody; the caller closes the fd
    (releasing it) when the step is over. A full disk is a 507 that leaves
    nothing.
    """
    temp = f"{NEW}{secrets.token_hex(8)}"
    with diskio.disk_full_as_507(operation):
        fd = os.open(temp, _WRITE_FLAGS, 0o644, dir_fd=intents_fd)
        try:
            diskio.lock(fd)
            diskio.write_all(fd, data)
            if durable:
                os.fsync(fd)
            os.rename(temp, name, src_dir_fd=intents_fd, dst_dir_fd=intents_fd)
            if durable:
                os.fsync(intents_fd)
        except BaseException:
            diskio.unlink_quietly(temp, intents_fd)
            os.close(fd)
            raise
    return fd


def write_ready(ready_fd: int, event: Event, durable: bool) -> None:
    """Write a ready record (a delete's: nothing to rename), on disk when done."""
    name = ready_name(event)
    if exists(ready_fd, name):
        return
    diskio.write_file_atomic(ready_fd, name, record_bytes(event, {}), durable)
    if durable:
        os.fsync(ready_fd)


def read_ready(ready_fd: int, limit: int) -> list[Pending]:
    """The oldest ``limit`` ready events; a record that does not parse is
    logged and removed (it can never be delivered)."""
    found = []
    for name in records(ready_fd)[:limit]:
        try:
            record = load_object(diskio.read_file(ready_fd, name), name)
            event = event_from_json(record["event"])
        except FileNotFoundError:
            continue
        except (CorruptEntry, KeyError, TypeError, ValueError) as error:
            log.error("events/ready/%s cannot be delivered: %s", name, error)
            diskio.remove_entry(ready_fd, name)
            continue
        found.append(Pending(name, event, body(record["event"])))
    return found


class FileLease:
    """The delivery loop's lease: an flock on ``events/lease``.

    The kernel drops it when its process dies, so another worker's loop takes
    over at its next try. The file stays: unlinking a lock file races (PITFALLS).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(
            self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
        if diskio.try_lock(fd):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def record_bytes(event: Event, check: dict[str, Any]) -> bytes:
    return json.dumps(
        {"event": event.to_json(), "check": check},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def body(event_json: Any) -> bytes:
    """The webhook body: the event's JSON, the same bytes on every attempt."""
    return json.dumps(event_json, ensure_ascii=False, separators=(",", ":")).encode()


def ready_name(event: Event) -> str:
    """Sorted by the event's time; the same name whoever settles it."""
    stamp = int(event.time.timestamp() * 1_000_000) * 1000
    return f"{stamp:020d}.{event.id}.json"


def rename_no_replace(name: str, target: str, src_fd: int, dst_fd: int) -> None:
    """Rename a directory unless ``target`` exists (FileExistsError)."""
    if diskio.can_exchange():
        diskio.rename2(name, target, diskio.RENAME_NOREPLACE, src_fd, dst_fd)
        return
    try:  # replaces only an empty directory: ours always has three entries
        os.rename(name, target, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(error.errno, error.strerror, target) from None
        raise


def records(dir_fd: int) -> list[str]:
    """The records of a directory, sorted; temp files (dot names) left out."""
    return sorted(name for name in os.listdir(dir_fd) if not name.startswith("."))


def exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def same_file(dir_fd: int, name: str, fd: int) -> bool:
    """Whether ``name`` still names the file open as ``fd``."""
    try:
        found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (found.st_ino, found.st_dev) == (held.st_ino, held.st_dev)
