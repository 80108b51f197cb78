"""The lazy disk's undo records, and the durable tree it builds at a cut.

A file with unsynced changes has an undo record (``Unsynced``): the bytes of
each block as last synced, saved just before a write or truncate changes it.
At a cut, the durable tree is built beside the live one: directories are
made anew from the durable entries (``names.Names``), files are hard-linked
from wherever their inode still is (a live name, or the limbo link ``lazyfs``
keeps for a file whose last live name went), symlinks are made with their
target, and each file's unsynced bytes are undone in place from its undo
record, or, for a write-back cut, kept or torn.
"""

from __future__ import annotations

import os
import random
import stat
from collections import Counter
from dataclasses import dataclass
from dataclasses import field

from .names import DIR
from .names import SYMLINK
from .names import LazyDiskError
from .names import Names

BLOCK = 4096


@dataclass
class Unsynced:
    """A file with unsynced changes: its synced size, and the synced bytes of
    every block changed since (blocks past ``size`` were never synced)."""

    size: int
    saved: dict[int, bytes] = field(default_factory=dict)

    def save(self, fd: int, offset: int, length: int, truncate: bool) -> None:
        """Keep the synced bytes of the blocks a write (or truncate to ``offset``)
        is about to change; ``fd`` is the file, readable."""
        end = self.size if truncate else min(offset + length, self.size)
        if end <= offset:
            return  # only bytes past the synced size change
        for block in range(offset // BLOCK, -(-end // BLOCK)):
            if block not in self.saved:
                start = block * BLOCK
                self.saved[block] = os.pread(fd, min(BLOCK, self.size - start), start)


def sources(
    live: str, limbo: dict[int, str], node_of_ino: dict[int, int]
) -> dict[int, str]:
    """A backing path for every file node still on disk (``limbo``: node -> path)."""
    found = dict(limbo)
    for folder, _, files in os.walk(live):
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            node = node_of_ino.get(st.st_ino)
            if node is not None and stat.S_ISREG(st.st_mode):
                found.setdefault(node, path)
    return found


@dataclass
class Builder:
    """Builds the durable tree of ``names`` under a new directory."""

    names: Names
    sources: dict[int, str]
    unsynced: dict[int, Unsynced]
    rng: random.Random | None
    stats: Counter[str]
    done: set[int] = field(default_factory=set)

    def build(self, dir_node: int, dest: str) -> None:
        if dir_node in self.done:
            raise LazyDiskError(f"directory node {dir_node} is durable twice")
        self.done.add(dir_node)
        os.mkdir(dest)
        for name, entry in self.names.entries(dir_node).items():
            path = os.path.join(dest, name)
            if entry.kind == DIR:
                self.build(entry.node, path)
            elif entry.kind == SYMLINK:
                os.symlink(entry.target, path)
            else:
                source = self.sources.get(entry.node)
                if source is None:
                    raise LazyDiskError(f"no bytes left for durable file {path}")
                os.link(source, path)
                if entry.node not in self.done:
                    self.done.add(entry.node)
                    record = self.unsynced.get(entry.node)
                    if record is not None:
                        self.undo(record, path)
                self.stats["files"] += 1

    def undo(self, record: Unsynced, path: str) -> None:
        """Give a rebuilt file its durable bytes (synced, or a write-back mix)."""
        live_size = os.lstat(path).st_size
        size, restore = record.size, set(record.saved)
        zero: list[int] = []
        if self.rng is not None:
            choice = self.rng.random()
            if choice < 1 / 3:
                self.stats["files_written_back"] += 1
                return  # the cache reached the disk whole
            if choice < 2 / 3:
                self.stats["files_torn"] += 1
                size = self.rng.choice([record.size, live_size])
                restore = {b for b in record.saved if self.rng.random() < 0.5}
                new_blocks = range(record.size // BLOCK, -(-size // BLOCK))
                zero = [
                    b
                    for b in new_blocks
                    if b * BLOCK >= record.size and self.rng.random() < 0.5
                ]
        self.stats["files_undone"] += 1
        self.stats["bytes_undone"] += abs(live_size - record.size) + sum(
            len(record.saved[b]) for b in restore
        )
        fd = os.open(path, os.O_RDWR)
        try:
            for block in sorted(restore):
                os.pwrite(fd, record.saved[block], block * BLOCK)
            for block in zero:
                os.pwrite(fd, bytes(BLOCK), block * BLOCK)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
