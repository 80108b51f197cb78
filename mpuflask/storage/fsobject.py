"""Reading one published version of an object from the filesystem store.

An object is a directory of part files plus ``object.json`` (its manifest).
A reader holds a shared flock on ``object.json`` while it is open; whoever
reclaims a retired version must take the exclusive lock first, so the bytes a
reader streams are never deleted under it, even if the key is overwritten or
deleted meanwhile.

Nothing read here is trusted: the version's directory and manifest are opened
without following symlinks, and the manifest is checked field by field
(:func:`~.fsrecords.check_manifest`) when the version is opened; a version
whose manifest fails is corrupt: logged, and absent. A part file must be a
regular file of this directory with the size the manifest says before the
first byte is sent from it (:meth:`FilesystemObjectBody.intact`, then again
as it is opened): a response checks the files it sends from, and only those,
so a HEAD, a 304 or a small range of a 10,000-part object does not ``stat``
10,000 files. :func:`open_whole` checks them all, for the index, which lists
what a whole GET finds.
"""

from __future__ import annotations

import bisect
import errno
import io
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import diskio
from .base import ObjectBody
from .base import ObjectInfo
from .diskio import CorruptEntry
from .fslayouts import Layout
from .fslayouts import LayoutCache
from .fsrecords import MANIFEST

log = logging.getLogger(__name__)

__all__ = [
    "MANIFEST",
    "FilesystemObjectBody",
    "Published",
    "open_version",
    "open_whole",
]

_PART_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Published:
    """A version its publisher has just renamed into place, as the index's
    settle takes it (:data:`.fsindex.Truth`): while it is still the key's
    version, its ObjectInfo is the truth, and its manifest (10,000 entries for
    10,000 parts) need not be read back and parsed."""

    info: ObjectInfo
    #: The version's directory, held open by its publisher until the settle
    #: is done, so no other directory can take its identity meanwhile.
    dir_fd: int


def open_version(
    shard_fd: int, name: str, layouts: LayoutCache
) -> FilesystemObjectBody | None:
    """Open the version published as ``name`` in ``shard_fd`` and pin it.

    None if absent, or its manifest is corrupt (logged). A version can be
    retired between our ``open`` of its directory and our lock; we notice
    (its manifest is gone or unlinked) and look again. Its part files are
    checked as they are sent (:meth:`FilesystemObjectBody.intact`).
    """
    for _ in range(100):
        try:
            dir_fd = diskio.open_dir(name, shard_fd)
        except FileNotFoundError:
            return None
        except CorruptEntry as error:
            log.error("corrupt object %s: %s", name, error)
            return None
        try:
            manifest_fd = diskio.open_file(MANIFEST, dir_fd)
        except FileNotFoundError:
            os.close(dir_fd)
            continue
        except CorruptEntry as error:
            os.close(dir_fd)
            log.error("corrupt object %s: %s", name, error)
            return None
        diskio.lock(manifest_fd, shared=True)
        found = diskio.linked_stat(manifest_fd, MANIFEST)
        if found is None:
            os.close(manifest_fd)
            os.close(dir_fd)
            continue
        try:
            layout = layouts.layout(
                diskio.read_metadata(manifest_fd, found.st_size),
                f"{MANIFEST} of {name}",
            )
        except CorruptEntry as error:
            os.close(manifest_fd)
            os.close(dir_fd)
            log.error("corrupt object %s: %s", name, error)
            return None
        return FilesystemObjectBody(dir_fd, manifest_fd, layout, name)
    raise RuntimeError(f"object {name} kept changing while being opened")


def open_whole(
    shard_fd: int, name: str, layouts: LayoutCache
) -> FilesystemObjectBody | None:
    """:func:`open_version`, with every part file checked: what a GET of the
    whole object finds (None if it would find the version corrupt)."""
    body = open_version(shard_fd, name, layouts)
    if body is not None and not body.whole_intact():
        body.close()
        return None
    return body


class FilesystemObjectBody(ObjectBody):
    """The bytes of one version: its part files read in order, seekably."""

    def __init__(
        self, dir_fd: int, manifest_fd: int, layout: Layout, name: str
    ) -> None:
        super().__init__()
        self.info = layout.info
        self._name = name
        self._dir_fd = dir_fd
        self._manifest_fd = manifest_fd
        self._files = layout.files
        self._sizes = layout.sizes
        #: Where each part starts in the object.
        self._starts = layout.starts
        self._size = layout.info.size
        self._position = 0
        self._open_index = -1
        self._open_fd = -1
        #: The parts :meth:`intact` found whole.
        self._checked: set[int] = set()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}
        self._position = max(0, base[whence] + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._position) - 1
        fd = self._part_fd(index)
        view = memoryview(buffer).cast("B")
        count = os.preadv(fd, [view], self._position - self._starts[index])
        self._position += count
        return count

    def intact(self, start: int, stop: int) -> bool:
        """Whether each part file holding bytes ``start`` to ``stop`` is a
        regular file of this version with the size the manifest says (if not:
        logged, and False)."""
        if start >= stop:
            return True
        if start <= 0 and stop >= self._size:
            return self.whole_intact()  # the whole object: as the index sees it
        first = bisect.bisect_right(self._starts, start) - 1
        last = bisect.bisect_left(self._starts, stop) - 1
        return self._files_intact(range(first, last + 1))

    def whole_intact(self) -> bool:
        """:meth:`intact` for every part file the manifest lists, those of 0
        bytes too (no GET sends from them, but a listed object has them all)."""
        return self._files_intact(range(len(self._files)))

    def _files_intact(self, indexes: range) -> bool:
        for index in indexes:
            if index in self._checked:
                continue
            name = self._files[index]
            try:
                found = os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False)
            except OSError as error:
                log.error(
                    "corrupt object %s: part file %s: %s", self._name, name, error
                )
                return False
            if not stat.S_ISREG(found.st_mode) or found.st_size != self._sizes[index]:
                log.error(
                    "corrupt object %s: part file %s is not the part listed",
                    self._name,
                    name,
                )
                return False
            self._checked.add(index)
        return True

    def file_segments(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """``(fd, offset, count)`` of each part file holding bytes ``start``
        to ``stop`` (for sendfile); the position ends at ``stop``."""
        index = bisect.bisect_right(self._starts, start) - 1
        while start < stop:
            part_end = self._starts[index] + self._sizes[index]
            count = min(stop, part_end) - start
            if count > 0:
                yield self._part_fd(index), start - self._starts[index], count
                start += count
                self._position = start
            index += 1

    def _part_fd(self, index: int) -> int:
        if index != self._open_index:
            if self._open_fd >= 0:
                os.close(self._open_fd)
                self._open_fd = -1
            fd = os.open(self._files[index], _PART_FLAGS, dir_fd=self._dir_fd)
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode) or found.st_size != self._sizes[index]:
                # Checked at open, changed since: never serve other bytes.
                os.close(fd)
                raise OSError(errno.EIO, f"part file {self._files[index]} changed")
            self._open_fd = fd
            self._open_index = index
        return self._open_fd

    def close(self) -> None:
        if not self.closed:
            for fd in (self._open_fd, self._manifest_fd, self._dir_fd):
                if fd >= 0:
                    os.close(fd)
            self._open_fd = self._manifest_fd = self._dir_fd = -1
        super().close()
