"""Helpers for tests that look inside the filesystem store's data directory."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import closing
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mpuflask.storage import diskio


def tree(root: Path) -> dict[str, Any]:
    """Every entry under ``root`` (directories, files, symlinks), by relative path.

    Stricter than ``stored_files``: an empty directory or a dangling symlink
    left behind shows too. The listing index's SQLite files are shown by what
    they hold (its rows and marks), not their bytes: SQLite rewrites its WAL
    and shared memory as it goes, whatever the rows.
    """
    found: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            relative = str(path.relative_to(root))
            if relative.startswith(INDEX_FILES):
                if relative == INDEX_FILES and path.is_file():
                    found[relative] = ("index", index_rows(path))
                continue
            if path.is_symlink():
                found[relative] = ("symlink", os.readlink(path))
            elif path.is_dir():
                found[relative] = ("dir",)
            elif path.is_file():
                found[relative] = ("file", path.read_bytes())
            else:
                found[relative] = ("other",)
    return found


#: The listing index's database and its -wal and -shm files.
INDEX_FILES = "index/objects.sqlite"


def index_rows(path: Path) -> tuple[list[Any], list[Any]]:
    """The listing index's objects and marked keys (mpuflask/storage/fsindex.py)."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT * FROM objects ORDER BY key").fetchall()
        marks = conn.execute("SELECT key FROM marks ORDER BY key").fetchall()
    return rows, marks


@contextmanager
def mounted_tmpfs(mount_point: Path, options: str) -> Iterator[Path]:
    """A tmpfs of its own at ``mount_point`` (needs root, as CI has), or skip."""
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def leave_free_inodes(disk: Path, free: int) -> None:
    """Fill ``disk``'s inodes with empty files outside the data dir, then free ``free``."""
    filler = disk / "filler"
    existing = sorted(filler.iterdir(), key=lambda p: int(p.name))
    count = int(existing[-1].name) + 1 if existing else 0
    while True:
        try:
            (filler / str(count)).touch()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
            break
        count += 1
    for path in sorted(filler.iterdir(), key=lambda p: int(p.name))[:free]:
        path.unlink()
    assert os.statvfs(disk).f_ffree == free


#: The syscalls that can fail with ENOSPC/EDQUOT: they create an entry, an
#: inode or a block.
WRITES = ("open", "mkdir", "symlink", "link", "rename", "replace", "write")
_CREATING = os.O_CREAT | os.O_WRONLY | os.O_RDWR


class Fault:
    """Makes the ``nth`` write of the filesystem store fail with ``code``."""

    def __init__(self, nth: int, code: int) -> None:
        self.nth = nth
        self.code = code
        self.calls = 0
        self.fired = ""

    def wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "open" and not (args[1] & _CREATING):
                return real(*args, **kwargs)  # a read: cannot fill a disk
            self.calls += 1
            if self.calls == self.nth:
                self.fired = f"{name}{args[:2]!r}"
                raise OSError(self.code, os.strerror(self.code))
            return real(*args, **kwargs)

        return call


class _FaultyOs:
    """The ``os`` module as the store's modules see it, with failing writes."""

    def __init__(self, fault: Fault) -> None:
        for name in WRITES:
            setattr(self, name, fault.wrap(name, getattr(os, name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


@contextmanager
def failing_write(
    monkeypatch: pytest.MonkeyPatch, nth: int, code: int
) -> Iterator[Fault]:
    """Inject ``OSError(code)`` at the ``nth`` write syscall of the filesystem
    store (every module of ``mpuflask.storage`` but the s3 ones)."""
    fault = Fault(nth, code)
    faulty = _FaultyOs(fault)
    with monkeypatch.context() as patch:
        for name, module in list(sys.modules.items()):
            if (
                name.startswith("mpuflask.storage.")
                and ".s3" not in name
                and getattr(module, "os", None) is os
            ):
                patch.setattr(module, "os", faulty)
        patch.setattr(diskio, "rename2", fault.wrap("rename2", diskio.rename2))
        yield fault
