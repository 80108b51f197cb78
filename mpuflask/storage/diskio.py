"""The few disk operations the filesystem store is built from.

Every write the store makes goes through these helpers, so the durability
policy (what is fsynced, and when) lives in one module and tests can inject
failures here.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import InsufficientStorage

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_renameat2 = getattr(_libc, "renameat2", None)


def can_exchange() -> bool:
    """True where ``renameat2`` exists (Linux 3.15+, glibc 2.28+)."""
    return _renameat2 is not None


def rename2(src: str, dst: str, flags: int) -> None:
    """``renameat2(2)``: an atomic swap (EXCHANGE) or a rename that never clobbers.

    Raises the usual ``OSError`` subclasses: FileNotFoundError when either side
    is missing, FileExistsError when NOREPLACE finds ``dst``.
    """
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available on this system")
    result = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), src, None, dst)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte (``os.write`` may write fewer than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_file_atomic(dir_fd: int, name: str, data: bytes, durable: bool) -> None:
    """Replace ``name`` in ``dir_fd`` whole: write beside it, fsync, rename over.

    Readers see the old content or the new one, never a mix; with ``durable``
    the new content is on disk before it becomes visible.
    """
    temp = f".{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dir_fd)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def read_file(dir_fd: int | None, name: str) -> bytes:
    """Read a small file whole (metadata, never object bytes)."""
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


def read_fd(fd: int) -> bytes:
    """Read a small open file whole from its start."""
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def fsync_path(path: str) -> None:
    """fsync a directory, so a rename inside it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str, durable: bool) -> None:
    """``os.makedirs(path, exist_ok=True)``; with ``durable``, fsync each parent.

    A new directory's entry is on disk only once its parent is fsynced. The
    parent of ``path`` is fsynced even if ``path`` existed: someone may have
    made it a moment ago (a parent we may not read is someone else's to sync).
    """
    parent = os.path.dirname(path)
    if parent != path and not os.path.isdir(parent):
        make_dirs(parent, durable)
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    if durable:
        try:
            fsync_path(parent)
        except PermissionError:
            pass


def unlinked(fd: int) -> bool:
    """Whether an open file has lost its last name (it was deleted under us).

    A local disk says so with a link count of 0; FUSE and network filesystems
    may not stat a deleted file at all and answer ESTALE.
    """
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError as error:
        if error.errno == errno.ESTALE:
            return True
        raise


def remove_tree(path: str) -> None:
    """``shutil.rmtree(path, ignore_errors=True)``, also when others remove it too.

    rmtree fstats each directory it opens outside its error handling; when
    another process removed that directory in between, FUSE and network
    filesystems answer ESTALE (a local disk does not): then we look again.
    """
    for _ in range(3):
        try:
            shutil.rmtree(path, ignore_errors=True)
            return
        except OSError as error:
            if error.errno != errno.ESTALE:
                raise


def try_lock(fd: int, shared: bool = False) -> bool:
    """Take an flock without waiting; False if another process holds it."""
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock(fd: int, shared: bool = False) -> None:
    """Wait for an flock; it is released when ``fd`` is closed (or we die)."""
    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


@contextmanager
def disk_full_as_507(operation: str) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT into a clean 507; other OSErrors stay our bug (500)."""
    try:
        yield
    except OSError as error:
        if error.errno in _DISK_FULL:
            raise InsufficientStorage(operation) from error
        raise
