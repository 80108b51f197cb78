"""The lazy disk mounted with FUSE: a daemon per mount, a power cut on command.

``LazyMount(store, mountpoint)`` starts ``python -m tests.powerloss.fusefs``,
which serves ``lazyfs.LazyDisk(store)`` at ``mountpoint`` through libfuse3
(mfusepy: Debian's ``fuse3`` and ``libfuse3-3``; libfuse2's high-level API
drops renameat2's flags, which the store needs for ``RENAME_EXCHANGE``).
Every process using the mountpoint goes through the one daemon, so flocks
(kept by the kernel, as the daemon implements no lock operation) and
directory fsyncs behave as on a local disk.

``cut(seed)`` asks the daemon to cut the power: it rebuilds the backing
directory as the disk keeps it and then refuses every operation (EIO).
``remount()`` unmounts and starts a fresh daemon on the rebuilt directory,
which also drops every cache the kernel had of the old one. Files a process
still holds open on the old mount are cut off (the harness kills the server
before it cuts; a test's own store is simply abandoned).

The daemon is controlled through an abstract Unix socket (no path length
limit, nothing left on disk): one JSON line per request and per answer.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import json
import os
import random
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .lazyfs import LazyDisk

ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT = 30.0


def fuse_unavailable() -> str | None:
    """Why a lazy mount cannot work here, or None if it may."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy is not installed (pip install -e '.[test]')"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse3 is not installed (apt-get install fuse3 libfuse3-3)"
    if not any(
        os.access(os.path.join(folder, "fusermount3"), os.X_OK)
        for folder in os.environ.get("PATH", "/usr/bin").split(os.pathsep)
    ):
        return "fusermount3 is not installed (apt-get install fuse3)"
    return None


class MountError(Exception):
    """The daemon would not mount, answer or unmount."""


_probed: list[str | None] = []


def lazy_mount_unavailable() -> str | None:
    """Why no lazy disk can be mounted here (checked once by mounting one), or None."""
    if not _probed:
        reason = fuse_unavailable()
        if reason is None:
            with tempfile.TemporaryDirectory(prefix="mpuflask-lazyfs-probe-") as temp:
                try:
                    with LazyMount(Path(temp, "store"), Path(temp, "mnt")):
                        pass
                except MountError as error:
                    reason = f"a FUSE mount failed here: {error}"
        _probed.append(reason)
    return _probed[0]


class LazyMount:
    """A lazy disk over ``store`` mounted at ``mountpoint`` (a context manager)."""

    def __init__(self, store: Path, mountpoint: Path) -> None:
        self.store = store
        self.mountpoint = mountpoint
        self.log = store.parent / f"{store.name}-fuse.log"
        self.address = f"mpuflask-lazyfs-{os.getpid()}-{random.getrandbits(48):x}"
        self.process: subprocess.Popen[bytes] | None = None
        self.mounts = 0

    def __enter__(self) -> LazyMount:
        self.mount()
        return self

    def __exit__(self, *exc: object) -> None:
        # Done with the disk: what a test's stores still hold open is cut off.
        self.unmount(cut_off=True)

    def mount(self) -> None:
        """Start the daemon; return once the mountpoint serves it (bounded poll)."""
        self.store.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.powerloss.fusefs",
                    str(self.store),
                    str(self.mountpoint),
                    self.address,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "FUSE_LIBRARY_NAME": "fuse3"},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (os.path.ismount(self.mountpoint) and self._answers()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.unmount()
                raise MountError(f"the lazy disk did not mount:\n{self.log_tail()}")
            time.sleep(0.02)  # a bounded start-up poll
        self.mounts += 1

    def _answers(self) -> bool:
        try:
            return bool(self.request({"ping": True}, timeout=2.0).get("pong"))
        except OSError:
            return False

    def request(self, message: dict[str, Any], timeout: float = 120.0) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(f"\0{self.address}")
            sock.sendall(json.dumps(message).encode() + b"\n")
            answer = sock.makefile("rb").readline()
        if not answer:
            raise MountError(f"the lazy disk did not answer {message}")
        reply = json.loads(answer)
        if "error" in reply:
            raise MountError(f"the lazy disk failed: {reply['error']}")
        return reply

    def cut(self, seed: int | None = None) -> dict[str, int]:
        """Cut the power: only what the disk keeps stays (write-back mix if seeded)."""
        stats: dict[str, int] = self.request({"cut": True, "seed": seed})["stats"]
        return stats

    def figures(self) -> dict[str, int]:
        """What the disk holds unsynced right now."""
        figures: dict[str, int] = self.request({"figures": True})["figures"]
        return figures

    def remount(self) -> None:
        """After a cut: a fresh daemon on what the disk kept.

        Files still open on the old mount (a test's store that is still
        referenced) are cut off, as a dead process's would be: the old daemon
        refuses everything since the cut, so it is ended at once instead of
        waiting for them to close.
        """
        self.unmount(cut_off=True)
        self.mount()

    def unmount(self, cut_off: bool = False) -> None:
        """Unmount and wait for the daemon to end.

        While the mount is busy (a process still closes its files), retry for
        up to 30 s, or with ``cut_off`` detach it at once (``fusermount3 -uz``)
        and end the daemon, which would otherwise serve until they close.
        """
        process, self.process = self.process, None
        deadline = time.monotonic() + 30
        while os.path.ismount(self.mountpoint):
            done = subprocess.run(
                ["fusermount3", "-u", str(self.mountpoint)],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                break
            if cut_off or time.monotonic() > deadline:
                subprocess.run(
                    ["fusermount3", "-uz", str(self.mountpoint)], check=False
                )
                if cut_off and process is not None:
                    process.kill()
                break
            time.sleep(0.05)  # busy: a process still closes its files
        if process is not None:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


# -- the daemon ---------------------------------------------------------------------


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
