"""A published version's layout (its part files, sizes and offsets), read once.

A GET finds the bytes it sends through its version's manifest, ``object.json``:
which part files, in which order, of which sizes. For a version of 10,000
parts that is 600 KB of JSON to parse and check, 7 ms of CPU for every read,
a 100-byte range included. A manifest never changes once published, but the
data directory is not trusted (:mod:`.fsrecords`): a file can be edited,
restored from a backup, or replaced by another whose inode, size and
timestamps match. So a layout is found again only by the manifest's exact
bytes: the same bytes were checked once, and parse to the same layout.

Small manifests (most objects: a few parts) are parsed every time, which
costs less than hashing their bytes would save; large ones are kept, up to
:data:`KEPT_BYTES` of manifest text per bucket, least recently used first out.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .base import HttpMetadata
from .base import ObjectInfo
from .fsrecords import check_manifest
from .fsrecords import load_object

#: Manifests at least this long are kept: about 900 parts' entries.
KEEP_FROM = 64 * 1024
#: The manifest text kept per bucket (a 10,000-part manifest is about 600 KB;
#: its parsed layout about twice that).
KEPT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Layout:
    """What a reader of a version needs from its checked manifest."""

    info: ObjectInfo
    files: tuple[str, ...]
    sizes: tuple[int, ...]
    #: Where each part starts in the object.
    starts: tuple[int, ...]


def read_layout(data: bytes, what: str) -> Layout:
    """The layout of manifest text ``data``, checked; CorruptEntry if it is not
    a manifest as complete writes them (``what`` names it in the error)."""
    manifest = check_manifest(load_object(data, what), what)
    sizes = tuple(part["size"] for part in manifest["parts"])
    return Layout(
        info=info_from_manifest(manifest),
        files=tuple(part["file"] for part in manifest["parts"]),
        sizes=sizes,
        starts=tuple(itertools.accumulate(sizes[:-1], initial=0)) if sizes else (),
    )


def info_from_manifest(manifest: dict[str, Any]) -> ObjectInfo:
    """The ObjectInfo a checked manifest describes."""
    return ObjectInfo(
        key=manifest["key"],
        size=manifest["size"],
        etag=manifest["etag"],
        uploaded=datetime.fromisoformat(manifest["uploaded"]),
        http_metadata=HttpMetadata(manifest["http_metadata"]),
        version=manifest["upload_id"],
    )


class LayoutCache:
    """Layouts of large manifests by their text, least recently used out."""

    def __init__(self, kept_bytes: int = KEPT_BYTES, keep_from: int = KEEP_FROM):
        self.kept_bytes = kept_bytes
        self.keep_from = keep_from
        self._lock = threading.Lock()
        self._layouts: OrderedDict[bytes, Layout] = OrderedDict()
        self._total = 0

    def layout(self, data: bytes, what: str) -> Layout:
        """:func:`read_layout` of ``data``, parsed once while kept."""
        if not self.keep_from <= len(data) <= self.kept_bytes:
            return read_layout(data, what)
        with self._lock:
            found = self._layouts.get(data)
            if found is not None:
                self._layouts.move_to_end(data)
                return found
        layout = read_layout(data, what)  # outside the lock: 7 ms for 10,000
        with self._lock:
            if data not in self._layouts:
                self._layouts[data] = layout
                self._total += len(data)
                while self._total > self.kept_bytes:
                    dropped, _ = self._layouts.popitem(last=False)
                    self._total -= len(dropped)
        return layout
