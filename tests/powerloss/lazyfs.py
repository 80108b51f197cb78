"""A lazy disk: a directory that, at a power cut, forgets what was never fsynced.

The model of what a careful disk keeps (what an application may count on from
POSIX and Linux's journaling filesystems, and no more):

1. A file's bytes and size become durable when the file is fsynced (fsync or
   fdatasync, through any descriptor). Bytes written since are lost at a cut:
   the file comes back with its last synced content (empty if never synced).
2. A directory's entries (create, mkdir, symlink, link, unlink, rmdir, rename
   in or out of it) become durable when that directory is fsynced. Until then
   a cut undoes them: a new name is gone, a removed name is back (with the
   file it named, its synced bytes intact), a replaced name names the old file.
3. fsync of a file does not make its name durable; fsync of a directory does
   not make the bytes of its files durable. A name can outlive its data (a
   file whose entry was synced and whose bytes were not comes back empty),
   and a file's data can outlive its name (synced bytes nobody can reach).
4. A rename is atomic, also across directories: after a cut the entry is at
   its old place or its new one, never both and never neither. So fsync of
   either directory makes the whole rename durable, and with it the earlier
   changes of the same names it depends on (an entry created in ``tmp/`` and
   renamed into ``d/`` is durable in ``d/`` once ``d/`` is fsynced).
   ``RENAME_EXCHANGE`` swaps both names in one step; ``RENAME_NOREPLACE``
   is a rename that refuses to replace.
5. A directory's own entries need fsync of that directory; its entry in its
   parent needs fsync of the parent (a synced ``mkdir`` is an empty
   directory until the new directory is fsynced too).
6. Symlinks carry their target from creation: a durable symlink entry comes
   back with its target.
7. Modes, owners and times are not modelled: they come back as they were
   last set (mpuflask relies on none of them for durability).

That is stricter than ext4 or xfs, which commit their journal in order every
few seconds and on every fsync (so one fsync makes all earlier changes
durable); it is what a careful application must assume, in the spirit of the
crash-consistency tools (ALICE's abstract persistence model; LazyFS, which
drops unsynced data the same way but applies names at once).

At a cut the disk either keeps exactly what was synced (``cut()``), or, with
a seeded ``random.Random`` (``cut(rng)``), what a disk whose cache was partly
written back keeps: a prefix, in the order they were made, of the changes of
names not yet synced (a journal commit; half the time all but the last few),
and for each file with unsynced bytes
its synced content, its live content, or a mix of the two by 4 KiB block.

How it is built (write-through with an undo record; ``lazynodes`` keeps the
nodes and the limbo, ``names`` the entries, ``rebuild`` builds the durable
tree at a cut): every operation is applied at once to the backing directory
``<store>/live``, so reads, listings and locks are plain pass-through and
cost nothing. The model keeps, in memory, only what a cut needs to rebuild
the durable image: the durable entries of each directory (node ids, not
paths: a directory keeps its entries through renames), the changes of names
not yet durable in the order they were made, and for each file with unsynced
changes its synced size and the synced bytes of the blocks overwritten since
(nothing for a new file, so a part streamed into a new file and fsynced
costs no memory). A file whose last name is removed while a durable entry or
a pending change still names it is kept as a hard link in ``<store>/limbo``.
A cut builds the durable tree beside the live one (directories made anew,
files hard-linked, their unsynced bytes undone in place), swaps it in, and
from then on refuses every operation: the caller remounts on the rebuilt
tree, where everything is durable again.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import stat
from collections import Counter

from mpuflask.storage import diskio

from .lazynodes import LazyNodes
from .names import DIR
from .names import FILE
from .names import SYMLINK
from .names import Entry
from .rebuild import BLOCK as BLOCK  # re-exported for the tests
from .rebuild import Builder
from .rebuild import Unsynced
from .rebuild import sources

RENAME_NOREPLACE = diskio.RENAME_NOREPLACE
RENAME_EXCHANGE = diskio.RENAME_EXCHANGE


class LazyDisk(LazyNodes):
    """The model over ``<store>/live``; what is there when it starts is durable.

    Methods take paths relative to the live root (a leading ``/`` is fine, as
    FUSE gives them) and raise ``OSError`` as the system calls would.
    """

    # -- the namespace ------------------------------------------------------------

    def mkdir(self, rel: str, mode: int = 0o777) -> None:
        with self.lock:
            self._check_on()
            parent, name = self._parent(rel)
            os.mkdir(self.path(rel), mode)
            node = self._new_node(os.lstat(self.path(rel)).st_ino, DIR)
            self._names.record(f"mkdir {rel}", (parent, name, Entry(node, DIR)))

    def symlink(self, target: str, rel: str) -> None:
        with self.lock:
            self._check_on()
            parent, name = self._parent(rel)
            os.symlink(target, self.path(rel))
            node = self._new_node(os.lstat(self.path(rel)).st_ino, SYMLINK)
            self._names.record(
                f"symlink {rel}", (parent, name, Entry(node, SYMLINK, target))
            )

    def link(self, src: str, rel: str) -> None:
        with self.lock:
            self._check_on()
            node, _ = self._node(src)
            parent, name = self._parent(rel)
            os.link(self.path(src), self.path(rel), follow_symlinks=False)
            self._names.record(
                f"link {src} {rel}", (parent, name, self._entry(node, rel))
            )

    def unlink(self, rel: str) -> None:
        with self.lock:
            self._check_on()
            node, st = self._node(rel)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), rel)
            parent, name = self._parent(rel)
            last = self._drop_live_name(node, self.path(rel))
            os.unlink(self.path(rel))
            self._names.record(f"unlink {rel}", (parent, name, None))
            self._gone(node, last)

    def rmdir(self, rel: str) -> None:
        with self.lock:
            self._check_on()
            node, _ = self._node(rel)
            parent, name = self._parent(rel)
            os.rmdir(self.path(rel))
            self._names.record(f"rmdir {rel}", (parent, name, None))
            self._forget(node)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        """rename(2), or renameat2(2) with RENAME_NOREPLACE or RENAME_EXCHANGE."""
        with self.lock:
            self._check_on()
            if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (
                RENAME_NOREPLACE | RENAME_EXCHANGE
            ):
                raise OSError(errno.EINVAL, "unsupported rename flags", old)
            src, _ = self._node(old)
            src_entry = self._entry(src, old)
            old_parent, old_name = self._parent(old)
            new_parent, new_name = self._parent(new)
            if flags & RENAME_EXCHANGE:
                other = self._node(new)[0]
                dst_entry = self._entry(other, new)
                diskio.rename2(self.path(old), self.path(new), RENAME_EXCHANGE)
                self._names.record(
                    f"exchange {old} {new}",
                    (old_parent, old_name, dst_entry),
                    (new_parent, new_name, src_entry),
                )
                return
            dst: int | None
            try:
                dst = self._node(new)[0]
            except FileNotFoundError:
                dst = None
            if dst == src:
                return  # two names of one file: rename(2) does nothing
            if dst is not None and flags & RENAME_NOREPLACE:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), new)
            last = False
            if dst is not None and self._kind_of[dst] == FILE:
                last = self._drop_live_name(dst, self.path(new))
            if flags & RENAME_NOREPLACE:
                diskio.rename2(self.path(old), self.path(new), RENAME_NOREPLACE)
            else:
                os.rename(self.path(old), self.path(new))
            self._names.record(
                f"rename {old} {new}",
                (old_parent, old_name, None),
                (new_parent, new_name, src_entry),
            )
            if dst is not None:
                self._gone(dst, last)

    def fsync_dir(self, rel: str | None = None, fd: int | None = None) -> int:
        """fsync of a directory (by path or by an open descriptor of it)."""
        with self.lock:
            self._check_on()
            if fd is not None:
                node = self._node_of_ino.get(os.fstat(fd).st_ino)
            else:
                node = self._node(rel or "")[0]
            if node is None:
                return 0
            return self._names.fsync_dir(node)

    # -- files ----------------------------------------------------------------------

    @staticmethod
    def _open_flags(flags: int) -> int:
        # Always readable: the undo record reads a block before it is overwritten.
        if flags & os.O_ACCMODE == os.O_WRONLY:
            flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
        return flags

    def create(self, rel: str, flags: int, mode: int = 0o644) -> int:
        """open(2) with O_CREAT of a name that did not exist; returns the backing fd."""
        with self.lock:
            self._check_on()
            if os.path.lexists(self.path(rel)):
                if flags & os.O_EXCL:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), rel)
                return self.open(rel, flags & ~(os.O_CREAT | os.O_EXCL))
            parent, name = self._parent(rel)
            fd = os.open(self.path(rel), self._open_flags(flags) | os.O_CREAT, mode)
            node = self._new_node(os.fstat(fd).st_ino, FILE)
            self._unsynced[node] = Unsynced(0)
            self._fd_node[fd] = node
            self._names.record(f"create {rel}", (parent, name, Entry(node, FILE)))
            return fd

    def open(self, rel: str, flags: int) -> int:
        with self.lock:
            self._check_on()
            node, _ = self._node(rel)
            fd = os.open(self.path(rel), self._open_flags(flags) & ~os.O_TRUNC)
            self._fd_node[fd] = node
            if flags & os.O_TRUNC:
                self._before_change(node, fd, 0, 0, truncate=True)
                os.ftruncate(fd, 0)
            return fd

    def release(self, fd: int) -> None:
        with self.lock:
            self._fd_node.pop(fd, None)
            os.close(fd)

    def read(self, fd: int, size: int, offset: int) -> bytes:
        self._check_on()
        return os.pread(fd, size, offset)

    def write(self, fd: int, data: bytes, offset: int) -> int:
        with self.lock:
            self._check_on()
            self._before_change(self._fd_node[fd], fd, offset, len(data))
            return os.pwrite(fd, data, offset)

    def truncate(
        self, length: int, rel: str | None = None, fd: int | None = None
    ) -> None:
        with self.lock:
            self._check_on()
            if fd is None:
                assert rel is not None
                opened = self.open(rel, os.O_WRONLY)
                try:
                    self.truncate(length, fd=opened)
                finally:
                    self.release(opened)
                return
            self._before_change(self._fd_node[fd], fd, length, 0, truncate=True)
            os.ftruncate(fd, length)

    def fsync_file(self, fd: int) -> None:
        """fsync/fdatasync of a file: its bytes and size are durable (not its name)."""
        with self.lock:
            self._check_on()
            self._unsynced.pop(self._fd_node[fd], None)

    def _before_change(
        self, node: int, fd: int, offset: int, length: int, truncate: bool = False
    ) -> None:
        """Keep the synced bytes that a write or truncate is about to change."""
        record = self._unsynced.get(node)
        if record is None:
            record = self._unsynced[node] = Unsynced(os.fstat(fd).st_size)
        record.save(fd, offset, length, truncate)

    # -- pass-through --------------------------------------------------------------

    def stat(self, rel: str | None = None, fd: int | None = None) -> dict[str, int]:
        """lstat/fstat, with the link count a live caller sees (limbo links hidden)."""
        st = os.fstat(fd) if fd is not None else os.lstat(self.path(rel or ""))
        attrs = {
            name: getattr(st, name)
            for name in (
                "st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size",
                "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blocks",
            )
        }  # fmt: skip
        node = self._node_of_ino.get(st.st_ino)
        if node is not None and node in self._in_limbo:
            attrs["st_nlink"] -= 1
        return attrs

    # -- the cut ----------------------------------------------------------------------

    def cut(self, rng: random.Random | None = None) -> Counter[str]:
        """Power off: rebuild ``live`` as the disk keeps it; refuse everything after.

        Without ``rng`` only what was synced survives; with it, also a random
        part of what a disk's write-back may have stored (see the module doc).
        """
        with self.lock:
            self.off = True
            stats: Counter[str] = Counter()
            pending = self._names.pending()
            if rng is not None:
                # Any prefix; half the time all but the last few changes (a
                # journal commit just before the cut: the riskiest moment).
                count = rng.randint(0, len(pending))
                if rng.random() < 0.5:
                    count = len(pending) - rng.randint(0, min(len(pending), 8))
                stats["written_back_changes"] = self._names.persist(pending[:count])
            stats["dropped_changes"] = len(self._names.pending())
            stats["unsynced_files"] = len(self._unsynced)
            rebuilt = self.store / "rebuilt"
            shutil.rmtree(rebuilt, ignore_errors=True)
            limbo = {node: str(self.limbo / str(node)) for node in self._in_limbo}
            found = sources(str(self.live), limbo, self._node_of_ino)
            builder = Builder(self._names, found, self._unsynced, rng, stats)
            builder.build(self.root, str(rebuilt))
            retired = self.store / "retired"
            shutil.rmtree(retired, ignore_errors=True)
            os.rename(self.live, retired)
            os.rename(rebuilt, self.live)
            shutil.rmtree(retired)
            shutil.rmtree(self.limbo)
            self.limbo.mkdir()
            return stats

    # -- figures ------------------------------------------------------------------------

    def pending_changes(self) -> int:
        return len(self._names.pending())

    def unsynced_files(self) -> int:
        return len(self._unsynced)

    def limbo_files(self) -> int:
        return len(self._in_limbo)
