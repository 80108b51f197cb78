"""The filesystem store's directories: areas, upload directories, part bodies.

:class:`Directories` is the half of :class:`~.filesystem.FilesystemBucket`
that opens the data directory's areas (never through a symlink: damage is a
503), holds an upload directory's exclusive flock and reads its record
(checked, or the upload is absent: 10024), and streams a part body into a
flocked temp file under ``tmp/`` (:mod:`.fsreceive`). The bucket adds the R2
binding on top (:mod:`.filesystem`); :mod:`.fsupload` uses these through it.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from functools import partial
from typing import Any

from ..errors import ApiError
from ..errors import DataDirDamaged
from ..errors import NoSuchUpload
from . import diskio
from .base import Cleanup
from .base import run_now
from .diskio import CorruptEntry
from .fspublish import reclaim
from .fsreceive import Helpers
from .fsreceive import PartSink
from .fsrecords import UPLOAD_ID
from .fsrecords import UPLOAD_RECORD
from .fsrecords import check_record
from .fsrecords import load_object
from .groupsync import DirSyncs

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class Directories:
    """A data directory on local disk, as :class:`~.filesystem.FilesystemBucket`
    uses it (its base class)."""

    def __init__(self, root: str | os.PathLike[str], durable: bool) -> None:
        self.root = os.path.abspath(root)
        self.durable = durable
        #: Each area's path under :attr:`root`, joined at its first use.
        self._area_paths: dict[str, str] = {}
        #: The time source for creation and expiry (tests move it forward).
        self.clock: Callable[[], datetime] = _now
        #: Threads that hash part bodies while they stream in.
        self.helpers = Helpers()
        #: Directory fsyncs shared by the parts that wait on one (group commit).
        self.dir_syncs = DirSyncs()
        #: Where reclaiming a retired version goes: at once, unless the app
        #: runs it after the answer (:class:`~.base.LeavesCleanup`).
        self.after_answer: Callable[[Cleanup], None] = run_now

    def reclaim_later(self, trash: str) -> None:
        """Delete ``trash/<trash>`` after the answer (unless a reader pins it).

        Its move to the trash was the commit point; this only frees space. A
        failure is logged, never answered: the sweep reclaims the entry later.
        """
        self.after_answer(partial(self._reclaim, trash))

    def _reclaim(self, trash: str) -> None:
        try:
            with self.areas("reclaim", "trash") as (trash_fd,):
                reclaim(trash_fd, trash)
        except (OSError, ApiError) as error:
            log.warning("trash/%s not reclaimed (the sweep will): %s", trash, error)

    def is_expired(self, record: dict[str, Any]) -> bool:
        """Whether an upload's record says it has expired (R2: 10024 from then)."""
        return datetime.fromisoformat(record["expires"]) <= self.clock()

    # -- directories ------------------------------------------------------------

    @contextmanager
    def areas(self, operation: str, *names: str) -> Iterator[list[int]]:
        """Open these areas of the data dir; close them after the block.

        An area that is a symlink or a file (or missing) is damage nobody may
        write through: logged, and the request refused (503).
        """
        fds: list[int] = []
        try:
            for name in names:
                path = self._area_paths.get(name)
                if path is None:
                    path = self._area_paths[name] = self._area(name)
                try:
                    fds.append(diskio.open_dir(path))
                except (CorruptEntry, FileNotFoundError) as error:
                    log.error("data directory damaged: %s: %s", name, error)
                    raise DataDirDamaged(operation) from None
            yield fds
        finally:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError as error:  # read-only: nothing lost; the fd is freed
                    if error.errno == errno.EBADF:  # closed twice: our bug
                        raise

    def _area(self, *names: str) -> str:
        return os.path.join(self.root, *names)

    def sync_dirs(self, *fds: int) -> None:
        """With durability on, make renames inside these directories stick.

        Through :attr:`dir_syncs`: concurrent creates share one fsync of
        ``uploads/``, and publishes and deletes one of their shard's.
        """
        if self.durable:
            for fd in fds:
                self.dir_syncs.sync(fd)

    # -- upload internals -------------------------------------------------------

    @contextmanager
    def locked_upload(
        self,
        key: str,
        upload_id: str,
        operation: str,
        allow_expired: bool = False,
        known: dict[str, Any] | None = None,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Hold the upload's exclusive lock; yield its directory fd and record.

        Raises NoSuchUpload unless ``upload_id`` is an open, unexpired upload of
        ``key`` at the moment the lock is held. ``known``: the upload's record,
        read a moment ago (records never change), so it is not read again.
        """
        with self.areas(operation, "uploads") as (uploads_fd,):
            dir_fd = self._open_upload(uploads_fd, upload_id, operation)
            try:
                diskio.lock(dir_fd)
                # Completed or aborted while we waited: the directory moved away.
                if not diskio.same_dir(uploads_fd, upload_id, dir_fd):
                    raise NoSuchUpload(operation)
                if known is None:
                    record = self._record(
                        dir_fd, upload_id, key, operation, allow_expired
                    )
                elif known["key"] != key or (
                    self.is_expired(known) and not allow_expired
                ):
                    raise NoSuchUpload(operation)
                else:
                    record = known
                yield dir_fd, record
            finally:
                os.close(dir_fd)

    def read_upload(self, key: str, upload_id: str, operation: str) -> dict[str, Any]:
        """The upload's record, or NoSuchUpload; takes no lock (a quick check)."""
        with self.areas(operation, "uploads") as (uploads_fd,):
            dir_fd = self._open_upload(uploads_fd, upload_id, operation)
            try:
                return self._record(dir_fd, upload_id, key, operation)
            finally:
                os.close(dir_fd)

    def _open_upload(self, uploads_fd: int, upload_id: str, operation: str) -> int:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise NoSuchUpload(operation)
        try:
            return diskio.open_dir(upload_id, uploads_fd)
        except FileNotFoundError:
            raise NoSuchUpload(operation) from None
        except CorruptEntry as error:
            log.error("corrupt entry uploads/%s: %s", upload_id, error)
            raise NoSuchUpload(operation) from None

    def _record(
        self,
        dir_fd: int,
        upload_id: str,
        key: str,
        operation: str,
        allow_expired: bool = False,
    ) -> dict[str, Any]:
        try:
            record = check_record(
                load_object(diskio.read_file(dir_fd, UPLOAD_RECORD), upload_id),
                upload_id,
            )
        except FileNotFoundError:
            raise NoSuchUpload(operation) from None
        except CorruptEntry as error:
            log.error("corrupt entry uploads/%s: %s", upload_id, error)
            raise NoSuchUpload(operation) from None
        if record["key"] != key or (self.is_expired(record) and not allow_expired):
            raise NoSuchUpload(operation)
        return record

    @contextmanager
    def received_part(
        self, chunks: Iterable[bytes]
    ) -> Iterator[tuple[int, str, str, int]]:
        """Stream ``chunks`` into a new temp file; yield ``tmp/``'s fd, the
        file's name, its MD5 and size.

        The temp file stays flocked until the ``with`` block ends, so a sweep
        in another process can always tell it from a crash leftover. A block
        that ends normally has renamed it into its upload; one that raises
        leaves it to be deleted here.
        """
        operation = "uploadPart"
        name = secrets.token_hex(16)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with (
            self.areas(operation, "tmp") as (tmp_fd,),
            diskio.disk_full_as_507(operation),
        ):
            fd = os.open(name, flags, 0o644, dir_fd=tmp_fd)
            sink = PartSink(fd, self.durable, self.helpers)
            try:
                diskio.lock(fd)
                size = 0
                try:
                    for chunk in chunks:
                        size += len(chunk)
                        sink.add(chunk)  # hashed while we write it and read on
                    md5 = sink.finish()
                except BaseException:
                    sink.abandon()
                    raise
                if self.durable:
                    os.fsync(fd)
                yield tmp_fd, name, md5, size
            except BaseException:
                diskio.unlink_quietly(name, tmp_fd)  # perhaps renamed away already
                raise
            finally:
                os.close(fd)
