"""The few disk operations the filesystem store is built from.

Every write the store makes goes through these helpers, so the durability
policy (what is fsynced, and when) lives in one module and tests can inject
failures here.

The store trusts nothing it finds in its data directory: every directory is
opened relative to its parent's file descriptor with ``O_NOFOLLOW``, and files
it reads must be regular files of a bounded size. An entry that is a symlink,
a device or a FIFO where the store expects its own directory or file raises
:class:`CorruptEntry` instead of leading the server outside the data dir.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import stat
import sys
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from ..errors import InsufficientStorage

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
T = TypeVar("T")

_AT_FDCWD = -100
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: O_NONBLOCK: opening a FIFO planted where a file should be must not hang.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
#: Records and manifests are small (10,000 parts: under 1 MB); a bigger
#: "manifest" is not one of ours, and is not read into memory.
MAX_METADATA_BYTES = 16 * 1024 * 1024


class CorruptEntry(Exception):
    """An entry of the data dir that the store did not write as it is.

    A symlink, device or FIFO where the store keeps a directory or file, a
    record or manifest that does not parse, a name that is not one of ours.
    The store never follows or serves it: it answers as if it were absent
    (or refuses the request), and logs the entry.
    """


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_renameat2 = getattr(_libc, "renameat2", None)


_sync_file_range = getattr(_libc, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = (
        ctypes.c_int,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_uint,
    )
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, count: int) -> None:
    """Start writing ``count`` bytes of ``fd`` from ``offset`` to the disk, without
    waiting (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``).

    Only a hint, never durability: the fsync that follows still decides. It
    lets the disk work while the rest of a part streams in, so that fsync
    finds little left to write. A no-op where the call is missing.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, count, _SYNC_FILE_RANGE_WRITE)


def can_exchange() -> bool:
    """True where ``renameat2`` exists (Linux 3.15+, glibc 2.28+)."""
    return _renameat2 is not None


def rename2(
    src: str,
    dst: str,
    flags: int,
    src_dir_fd: int = _AT_FDCWD,
    dst_dir_fd: int = _AT_FDCWD,
) -> None:
    """``renameat2(2)``: an atomic swap (EXCHANGE) or a rename that never clobbers.

    Names are relative to the directory fds when given. Raises the usual
    ``OSError`` subclasses: FileNotFoundError when either side is missing,
    FileExistsError when NOREPLACE finds ``dst``.
    """
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available on this system")
    result = _renameat2(
        src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), flags
    )
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
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = over_leftover(temp, dir_fd, lambda: os.open(temp, flags, 0o644, dir_fd=dir_fd))
    try:
        try:
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        unlink_quietly(temp, dir_fd)  # nothing half-written stays behind
        raise


def over_leftover(name: str, dir_fd: int, make: Callable[[], T]) -> T:
    """``make()`` the temp entry ``name`` of ``dir_fd``, which fails if the
    name exists. One there is a crash's leftover (or planted): it is removed,
    never followed, and made again. Tried first, removed only then: no
    failing unlink in the usual case (a part upload, a create, a complete)."""
    try:
        return make()
    except FileExistsError:
        unlink_quietly(name, dir_fd)
        return make()


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """Open a directory of the store without following a symlink.

    FileNotFoundError if it is absent; CorruptEntry if ``name`` is a symlink or
    not a directory.
    """
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise CorruptEntry(f"{name}: not a directory of the store") from None
        raise


@contextmanager
def deleted_meanwhile(name: str) -> Iterator[None]:
    """An open file ``name`` that another process deleted since we opened it
    (two sweeps of one leftover) is absent: FileNotFoundError. A local disk
    still serves it; FUSE and NFS answer ESTALE to anything we ask of it."""
    try:
        yield
    except OSError as error:
        if error.errno == errno.ESTALE:
            raise FileNotFoundError(errno.ENOENT, "deleted meanwhile", name) from None
        raise


def open_file(name: str, dir_fd: int | None) -> int:
    """Open a regular file of the store for reading, never through a symlink.

    FileNotFoundError if it is absent (or deleted as we open it); CorruptEntry
    if ``name`` is a symlink, a directory, a device or a FIFO.
    """
    return _open_regular(name, dir_fd)[0]


def _open_regular(name: str, dir_fd: int | None) -> tuple[int, os.stat_result]:
    """:func:`open_file`, and the file's stat (its size, for reading it)."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise CorruptEntry(f"{name}: not a file of the store") from None
        raise
    try:
        with deleted_meanwhile(name):
            found = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(found.st_mode):
        os.close(fd)
        raise CorruptEntry(f"{name}: not a file of the store")
    return fd, found


def read_file(dir_fd: int | None, name: str) -> bytes:
    """Read a small file whole (metadata, never object bytes); see open_file."""
    fd, found = _open_regular(name, dir_fd)
    try:
        return read_metadata(fd, found.st_size)
    finally:
        os.close(fd)


def read_metadata(fd: int, size: int | None = None) -> bytes:
    """Read an open record or manifest whole; CorruptEntry if it is too big.

    ``size``: what an fstat of it said a moment ago (None: it is asked). The
    first read asks one byte more than that: a regular file reads short only
    at its end, so a short answer is the whole file, in one system call
    instead of two (every part upload reads its upload's record, every GET
    its manifest). A file longer than ``size`` is read on to its end.
    """
    if size is None:
        size = os.fstat(fd).st_size
    if size > MAX_METADATA_BYTES:
        raise CorruptEntry(f"over {MAX_METADATA_BYTES} bytes: not a file of the store")
    chunks = []
    offset = 0
    step = size + 1
    while chunk := os.pread(fd, step, offset):
        chunks.append(chunk)
        offset += len(chunk)
        if len(chunk) < step:
            break
        step = 65536
    return b"".join(chunks)


def same_dir(parent_fd: int, name: str, dir_fd: int) -> bool:
    """Whether ``name`` in ``parent_fd`` is still the directory open as ``dir_fd``.

    A lock on an upload's directory is only worth something while the
    directory is still where we opened it (complete and abort move it away).
    """
    try:
        found = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(dir_fd)
    return (found.st_ino, found.st_dev) == (held.st_ino, held.st_dev)


def quietly(undo: Callable[[], object]) -> None:
    """Undo a step of a failed request as far as possible; sweep does the rest."""
    try:
        undo()
    except OSError:
        pass


def make_dir(name: str, dir_fd: int) -> bool:
    """Create a directory; False if it was there already."""
    try:
        os.mkdir(name, 0o755, dir_fd=dir_fd)
    except FileExistsError:
        return False
    return True


def unlink_quietly(name: str, dir_fd: int | None = None) -> None:
    """Remove a file or symlink (never what it points to); gone is fine."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def remove_entry(dir_fd: int, name: str) -> None:
    """Remove ``name`` whatever it is, without following a symlink anywhere.

    A directory goes with everything in it (``shutil.rmtree``, which walks by
    file descriptors); anything else is unlinked. Errors are ignored: what
    stays is found by the next sweep.
    """
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            shutil.rmtree(name, ignore_errors=True, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


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


def linked_stat(fd: int, name: str) -> os.stat_result | None:
    """The stat of open file ``name``; None if it has lost its last name (it
    was deleted under us: a link count of 0 on a local disk, ESTALE on FUSE
    and NFS, see :func:`deleted_meanwhile`)."""
    try:
        with deleted_meanwhile(name):
            found = os.fstat(fd)
    except FileNotFoundError:
        return None
    return None if found.st_nlink == 0 else found


def may_write(folder: str) -> bool:
    """Whether this process may make and remove entries in ``folder``, asked
    as its effective user (Linux can; elsewhere the real one)."""
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=_EFFECTIVE)


#: Whether access() can ask as the process's effective user.
_EFFECTIVE = os.access in os.supports_effective_ids


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


def unlock(fd: int) -> None:
    """Release an flock before closing ``fd`` (to fsync without holding it)."""
    fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def disk_full_as_507(operation: str) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT into a clean 507; other OSErrors stay our bug (500)."""
    try:
        yield
    except OSError as error:
        if error.errno in _DISK_FULL:
            raise InsufficientStorage(operation) from error
        raise
