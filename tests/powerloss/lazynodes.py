"""The lazy disk's bookkeeping (``lazyfs.LazyDisk`` is built on it).

Node ids for the backing inodes (a directory keeps its id, and its entries,
through renames; an inode number the filesystem reuses gets a new id), the
start (everything already in ``<store>/live`` is durable), paths and parents,
and files that outlive their last live name: kept as hard links in
``<store>/limbo`` while a durable entry or a pending change still names them.
The power switch is here too: once ``off``, every operation refuses (EIO).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from pathlib import Path

from .names import DIR
from .names import FILE
from .names import SYMLINK
from .names import Entry
from .names import Names
from .rebuild import Unsynced


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return DIR
    if stat.S_ISLNK(mode):
        return SYMLINK
    return FILE


class LazyNodes:
    """What the lazy disk knows of ``<store>/live``: nodes, names and limbo."""

    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.store = Path(store)
        self.live = self.store / "live"
        self.limbo = self.store / "limbo"
        self.live.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.limbo, ignore_errors=True)
        self.limbo.mkdir()
        self.lock = threading.RLock()
        self.off = False
        self._next_id = 0
        self._node_of_ino: dict[int, int] = {}
        self._ino_of: dict[int, int] = {}
        self._kind_of: dict[int, str] = {}
        self._names = Names(self._release)
        self._in_limbo: set[int] = set()
        self._unsynced: dict[int, Unsynced] = {}
        self._fd_node: dict[int, int] = {}
        self.root = self._adopt_tree()

    # -- start: everything on disk is durable -----------------------------------

    def _new_node(self, ino: int, kind: str) -> int:
        self._next_id += 1
        node = self._next_id
        self._node_of_ino[ino] = node
        self._ino_of[node] = ino
        self._kind_of[node] = kind
        return node

    def _adopt_tree(self) -> int:
        root = self._new_node(os.lstat(self.live).st_ino, DIR)
        stack = [(root, str(self.live))]
        while stack:
            dir_node, path = stack.pop()
            for name in os.listdir(path):
                full = os.path.join(path, name)
                st = os.lstat(full)
                kind = _kind(st.st_mode)
                node = self._node_of_ino.get(st.st_ino)
                if node is None:
                    node = self._new_node(st.st_ino, kind)
                target = os.readlink(full) if kind == SYMLINK else ""
                self._names.adopt(dir_node, name, Entry(node, kind, target))
                if kind == DIR:
                    stack.append((node, full))
        return root

    # -- paths and nodes --------------------------------------------------------

    def path(self, rel: str) -> str:
        """The backing path of ``rel`` (relative to the live root)."""
        rel = rel.lstrip("/")
        return os.path.join(self.live, rel) if rel else str(self.live)

    def _check_on(self) -> None:
        if self.off:
            raise OSError(errno.EIO, "the power is off")

    def _node(self, rel: str) -> tuple[int, os.stat_result]:
        st = os.lstat(self.path(rel))
        node = self._node_of_ino.get(st.st_ino)
        if node is None:  # made behind our back: take it as it is, not durable
            node = self._new_node(st.st_ino, _kind(st.st_mode))
        return node, st

    def _parent(self, rel: str) -> tuple[int, str]:
        head, name = os.path.split(rel.strip("/"))
        if not name:
            raise OSError(errno.EBUSY, "the root cannot be changed", rel)
        return self._node(head)[0], name

    def _entry(self, node: int, rel: str) -> Entry:
        kind = self._kind_of[node]
        target = os.readlink(self.path(rel)) if kind == SYMLINK else ""
        return Entry(node, kind, target)

    def _forget(self, node: int) -> None:
        """The backing inode is gone: its number may be reused by a new one."""
        ino = self._ino_of.pop(node, None)
        if ino is not None and self._node_of_ino.get(ino) == node:
            del self._node_of_ino[ino]
        self._unsynced.pop(node, None)

    # -- files that outlive their names ----------------------------------------

    def _release(self, node: int) -> None:
        """Nothing durable or pending names ``node``: its limbo link can go."""
        if node in self._in_limbo:
            self._in_limbo.discard(node)
            kept = self.limbo / str(node)
            last = os.lstat(kept).st_nlink == 1
            os.unlink(kept)
            if last:
                self._forget(node)

    def _drop_live_name(self, node: int, backing: str) -> bool:
        """Before a file's name goes: keep its inode if the disk may still need it.

        Returns whether that was its last live name.
        """
        links = os.lstat(backing).st_nlink - (1 if node in self._in_limbo else 0)
        if links > 1:
            return False
        if self._names.pinned(node) and node not in self._in_limbo:
            os.link(backing, self.limbo / str(node))
            self._in_limbo.add(node)
        return True

    def _gone(self, node: int, last_name: bool) -> None:
        """After a name went: forget a node nothing (live or durable) holds."""
        kind = self._kind_of[node]
        if kind != FILE or (last_name and node not in self._in_limbo):
            self._forget(node)
