"""The lazy disk's FUSE daemon: ``python -m tests.powerloss.fusedaemon store
mountpoint address``, started by ``fusefs.LazyMount``.

It serves ``lazyfs.LazyDisk(store)`` at ``mountpoint`` through libfuse3
(mfusepy), each FUSE operation the disk's call of the same name, and answers
the mount's requests (ping, cut, figures: one JSON line each) on the abstract
Unix socket ``address``.
"""

from __future__ import annotations

import json
import os
import random
import socket
import stat
import sys
import threading
from typing import Any

from .lazyfs import LazyDisk


class LazyOps:
    """mfusepy operations: each one the LazyDisk call of the same name."""

    use_ns = True
    # fh-based calls (read, write, fsync, ...) get no path: we use the fh.
    flag_nullpath_ok = True
    flag_nopath = True

    def __init__(self, disk: LazyDisk) -> None:
        self.disk = disk

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        attrs = self.disk.stat(path, fh)
        for name in ("st_atime", "st_mtime", "st_ctime"):
            attrs[name] = attrs.pop(f"{name}_ns")
        return attrs

    def opendir(self, path: str) -> int:
        self.disk._check_on()
        return os.open(self.disk.path(path), os.O_RDONLY | os.O_DIRECTORY)

    def readdir(
        self, path: str | None, fh: int
    ) -> list[tuple[str, dict[str, int], int]]:
        # With use_ino an entry needs its inode number: readdir(3) skips ino 0.
        self.disk._check_on()
        here = {"st_ino": os.fstat(fh).st_ino, "st_mode": stat.S_IFDIR}
        entries = [(".", here, 0), ("..", here, 0)]
        with os.scandir(fh) as found:
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    mode = stat.S_IFDIR
                elif entry.is_symlink():
                    mode = stat.S_IFLNK
                else:
                    mode = stat.S_IFREG
                entries.append(
                    (entry.name, {"st_ino": entry.inode(), "st_mode": mode}, 0)
                )
        return entries

    def releasedir(self, path: str | None, fh: int) -> int:
        os.close(fh)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        self.disk.fsync_dir(fd=fh)
        return 0

    def readlink(self, path: str) -> str:
        self.disk._check_on()
        return os.readlink(self.disk.path(path))

    def mkdir(self, path: str, mode: int) -> int:
        self.disk.mkdir(path, mode)
        return 0

    def rmdir(self, path: str) -> int:
        self.disk.rmdir(path)
        return 0

    def unlink(self, path: str) -> int:
        self.disk.unlink(path)
        return 0

    def symlink(self, target: str, source: str) -> int:
        self.disk.symlink(source, target)  # mfusepy: ``target -> source``
        return 0

    def link(self, target: str, source: str) -> int:
        self.disk.link(source, target)
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        self.disk.rename(old, new, flags)
        return 0

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        return self.disk.create(path, flags, mode)

    def open(self, path: str, flags: int) -> int:
        return self.disk.open(path, flags)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return self.disk.read(fh, size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        return self.disk.write(fh, data, offset)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        self.disk.truncate(length, path, fh)
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0

    def release(self, path: str | None, fh: int) -> int:
        self.disk.release(fh)
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        self.disk.fsync_file(fh)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self.disk._check_on()
        if times is None:
            os.utime(self.disk.path(path), follow_symlinks=False)
        else:
            os.utime(self.disk.path(path), ns=times, follow_symlinks=False)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self.disk._check_on()
        os.chmod(self.disk.path(path), mode, follow_symlinks=False)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self.disk._check_on()
        os.chown(self.disk.path(path), uid, gid, follow_symlinks=False)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self.disk.live)
        return {
            name: getattr(st, name)
            for name in (
                "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
                "f_files", "f_ffree", "f_favail", "f_flag", "f_namemax",
            )
        }  # fmt: skip


def _control(disk: LazyDisk, address: str) -> None:
    """Answer the mount's requests (one JSON line each) until the process ends."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(f"\0{address}")
    server.listen()
    while True:
        connection, _ = server.accept()
        with connection:
            try:
                request = json.loads(connection.makefile("rb").readline())
                if request.get("cut"):
                    seed = request.get("seed")
                    rng = None if seed is None else random.Random(seed)
                    reply: dict[str, Any] = {"stats": dict(disk.cut(rng))}
                elif request.get("figures"):
                    reply = {
                        "figures": {
                            "pending_changes": disk.pending_changes(),
                            "unsynced_files": disk.unsynced_files(),
                            "limbo_files": disk.limbo_files(),
                        }
                    }
                else:
                    reply = {"pong": True}
            except Exception as error:  # reported to the caller, who fails loudly
                reply = {"error": repr(error)}
            connection.sendall(json.dumps(reply).encode() + b"\n")


def serve(store: str, mountpoint: str, address: str) -> None:
    """Mount ``LazyDisk(store)`` at ``mountpoint`` until unmounted."""
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
    import mfusepy  # type: ignore[import-untyped]  # here: it loads libfuse

    class Fuse(mfusepy.FUSE):  # type: ignore[misc]
        """mfusepy, passing renameat2's flags and truncate's fh through."""

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            result: int = self.operations.rename(old.decode(), new.decode(), flags)
            return result

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            fh = fip.contents.fh if fip else None
            name = None if path is None else path.decode()
            result: int = self.operations.truncate(name, length, fh)
            return result

    disk = LazyDisk(store)
    threading.Thread(target=_control, args=(disk, address), daemon=True).start()
    Fuse(
        LazyOps(disk),
        mountpoint,
        foreground=True,
        fsname="lazyfs",
        hard_remove=True,  # an unlinked open file is unlinked (no .fuse_hidden)
        use_ino=True,
    )


if __name__ == "__main__":
    serve(*sys.argv[1:4])
