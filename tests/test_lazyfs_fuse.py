"""The lazy disk through a real FUSE mount (tests/powerloss/fusefs.py): what
was synced survives a cut, renameat2's flags, unlinked open files and flocks
shared by every process. Skipped, saying why, where FUSE is unavailable.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpuflask.storage import diskio
from tests.lazyfs_support import tree
from tests.powerloss.fusefs import LazyMount
from tests.powerloss.fusefs import lazy_mount_unavailable


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[LazyMount]:
    reason = lazy_mount_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with LazyMount(tmp_path / "store", tmp_path / "mnt") as mount:
        yield mount


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def test_fuse_mount_keeps_what_was_synced_and_forgets_the_rest(
    mounted: LazyMount,
) -> None:
    mnt = mounted.mountpoint
    (mnt / "d").mkdir()
    fsync(mnt)
    (mnt / "d" / "kept").write_bytes(b"synced")
    fsync(mnt / "d" / "kept")
    (mnt / "d" / "empty").write_bytes(b"never synced")
    fsync(mnt / "d")
    os.rename(mnt / "d" / "kept", mnt / "d" / "moved")
    (mnt / "lost").write_bytes(b"x")
    stats = mounted.cut()
    assert stats["dropped_changes"] == 2  # the rename and the create of lost
    with pytest.raises(OSError) as off:
        os.listdir(mnt)  # the power is off until the remount
    assert off.value.errno == errno.EIO
    mounted.remount()
    assert tree(mnt) == {"d": "/", "d/kept": b"synced", "d/empty": b""}


def test_fuse_mount_passes_renameat2_flags(mounted: LazyMount) -> None:
    mnt = mounted.mountpoint
    for name in ("a", "b"):
        (mnt / name).mkdir()
        (mnt / name / "id").write_text(name)
    diskio.rename2(str(mnt / "a"), str(mnt / "b"), diskio.RENAME_EXCHANGE)
    assert (mnt / "a" / "id").read_text() == "b"
    with pytest.raises(FileExistsError):
        diskio.rename2(str(mnt / "a"), str(mnt / "b"), diskio.RENAME_NOREPLACE)
    with pytest.raises(FileNotFoundError):
        diskio.rename2(str(mnt / "a"), str(mnt / "c"), diskio.RENAME_EXCHANGE)


def test_fuse_mount_shows_an_unlinked_open_file_unlinked(mounted: LazyMount) -> None:
    """Readers of the store tell a reclaimed manifest by its link count.

    libfuse's high-level API cannot stat a file it no longer has a path for,
    and the kernel sends fstat without the file handle: ESTALE, as NFS says.
    """
    path = mounted.mountpoint / "object.json"
    path.write_text("{}")
    fsync(path)
    fsync(mounted.mountpoint)  # durable: the model keeps it in its limbo
    fd = os.open(path, os.O_RDONLY)
    try:
        os.unlink(path)
        with pytest.raises(OSError) as stale:
            os.fstat(fd)
        assert stale.value.errno == errno.ESTALE
        assert os.pread(fd, 10, 0) == b"{}"  # reading through the handle works
    finally:
        os.close(fd)
    mounted.cut()
    mounted.remount()
    assert tree(mounted.mountpoint) == {"object.json": b"{}"}  # the unlink was lost


def test_fuse_mount_flocks_are_shared_by_every_process(mounted: LazyMount) -> None:
    path = mounted.mountpoint / "upload"
    path.mkdir()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert diskio.try_lock(fd)
        probe = (
            "import os, sys\n"
            "from mpuflask.storage import diskio\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
            "print(diskio.try_lock(fd))\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert other.stdout.strip() == "False"
    finally:
        os.close(fd)
