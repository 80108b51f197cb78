"""The lazy disk's names: which directory entries are durable, which pending.

Pure bookkeeping, no I/O (``lazyfs`` does the system calls). A directory is a
node (our id, stable through renames); each of its entries is a register that
changes make in order. A change sets one entry (create, mkdir, symlink,
link, unlink, rmdir) or two at once (a rename: the old name removed and the
new one set; an exchange: both swapped). Rules 2 to 5 of ``lazyfs``:

* fsync of a directory makes durable every pending change of its entries;
* making a change durable first makes durable every earlier change of the
  entries it sets (so a rename of ``tmp/x`` to ``d/x`` brings the create of
  ``tmp/x``, and a rename lands whole, in both directories at once);
* whatever else is pending is lost at a cut, or a prefix of it survives (a
  prefix is closed under that rule: it is a state the disk can be in).

It also counts, per file node, the durable entries and pending changes that
name it (its pins): a pinned file's bytes must outlive its last live name, in
case a cut brings a name of it back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

FILE = "file"
DIR = "dir"
SYMLINK = "symlink"


class LazyDiskError(Exception):
    """The model reached a state it cannot rebuild (a bug in the model)."""


@dataclass(frozen=True)
class Entry:
    """What a directory entry names: a node (by our id), its kind, a symlink's target."""

    node: int
    kind: str
    target: str = ""


@dataclass(eq=False)
class Change:
    """A change of names not yet durable: the entries it sets (None: removes)."""

    seq: int
    what: str
    sets: tuple[tuple[int, str, Entry | None], ...]


class Names:
    """Durable and pending directory entries; ``unpinned(node)`` is told when a
    file node is named by nothing durable or pending any more."""

    def __init__(self, unpinned: Callable[[int], None]) -> None:
        self._unpinned = unpinned
        self._seq = 0
        #: Durable entries of each directory node.
        self._durable: dict[int, dict[str, Entry]] = {}
        #: Changes not yet durable, in the order they were made.
        self._pending: dict[int, Change] = {}
        #: The same changes per entry: directory node -> name -> changes in order.
        self._queued: dict[int, dict[str, list[Change]]] = {}
        #: File nodes named by a durable entry or a pending change (count).
        self._pins: Counter[int] = Counter()

    def adopt(self, dir_node: int, name: str, entry: Entry) -> None:
        """An entry that is durable already (found on disk at the start)."""
        self._durable.setdefault(dir_node, {})[name] = entry
        if entry.kind == FILE:
            self._pins[entry.node] += 1

    def entries(self, dir_node: int) -> dict[str, Entry]:
        """The durable entries of a directory."""
        return self._durable.get(dir_node, {})

    def pinned(self, node: int) -> bool:
        return self._pins[node] > 0

    def pending(self) -> list[Change]:
        """Every change not yet durable, in the order they were made."""
        return list(self._pending.values())

    def record(self, what: str, *sets: tuple[int, str, Entry | None]) -> None:
        """A change made live, not yet durable."""
        self._seq += 1
        change = Change(self._seq, what, sets)
        self._pending[change.seq] = change
        for dir_node, name, entry in sets:
            self._queued.setdefault(dir_node, {}).setdefault(name, []).append(change)
            if entry is not None and entry.kind == FILE:
                self._pins[entry.node] += 1

    def fsync_dir(self, dir_node: int) -> int:
        """fsync of a directory: its pending changes (and what they need) land."""
        queued = self._queued.get(dir_node, {})
        return self.persist(
            [change for changes in queued.values() for change in changes]
        )

    def persist(self, changes: list[Change]) -> int:
        """Make ``changes`` durable, with every earlier change of the same entries."""
        closure: set[int] = set()
        stack = list(changes)
        while stack:
            change = stack.pop()
            if change.seq in closure or change.seq not in self._pending:
                continue
            closure.add(change.seq)
            for dir_node, name, _ in change.sets:
                for earlier in self._queued[dir_node][name]:
                    if earlier.seq >= change.seq:
                        break
                    stack.append(earlier)
        for seq in sorted(closure):
            self._apply(self._pending.pop(seq))
        return len(closure)

    def _apply(self, change: Change) -> None:
        touched = []
        for dir_node, name, entry in change.sets:
            queue = self._queued[dir_node][name]
            if queue[0] is not change:
                raise LazyDiskError(f"{change.what} persisted out of order")
            queue.pop(0)
            if not queue:
                del self._queued[dir_node][name]
            entries = self._durable.setdefault(dir_node, {})
            old = entries.pop(name, None)
            if entry is not None:
                entries[name] = entry
            if old is not None and old.kind == FILE:
                self._pins[old.node] -= 1
                touched.append(old.node)
            if entry is not None and entry.kind == FILE:
                touched.append(entry.node)  # its change's pin is now the entry's
        for node in touched:
            if self._pins[node] <= 0:
                del self._pins[node]
                self._unpinned(node)
