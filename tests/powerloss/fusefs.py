"""The lazy disk mounted with FUSE: a daemon per mount, a power cut on command.

``LazyMount(store, mountpoint)`` starts the daemon
(``python -m tests.powerloss.fusedaemon``), which serves
``lazyfs.LazyDisk(store)`` at ``mountpoint`` through libfuse3 (mfusepy:
Debian's ``fuse3`` and ``libfuse3-3``; libfuse2's high-level API drops
renameat2's flags, which the store needs for ``RENAME_EXCHANGE``). Every
process using the mountpoint goes through the one daemon, so flocks (kept by
the kernel, as the daemon implements no lock operation) and directory fsyncs
behave as on a local disk.

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
                    "tests.powerloss.fusedaemon",
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
