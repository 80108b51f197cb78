"""The rows of the listing index and the walk that makes a page of them.

The storage side of :mod:`.fsindex`, with no connection or transaction of its
own: the table, how an :class:`~.base.ObjectInfo` is written as a row and read
back (a row the store never wrote, from an edited file, is skipped and
logged), and :func:`page`, which reads one page from a read snapshot.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from typing import Any

from .base import HttpMetadata
from .base import ListPosition
from .base import ObjectInfo
from .base import ObjectListing
from .listing import folded
from .listing import successor

log = logging.getLogger(__name__)

#: Keys are BLOBs of their UTF-8 bytes: SQLite orders BLOBs by memcmp, which
#: is R2's order, and no collation or NUL can get in the way.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS objects (
        key BLOB PRIMARY KEY,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        uploaded TEXT NOT NULL,
        http_metadata TEXT NOT NULL,
        version TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS marks (
        id INTEGER PRIMARY KEY,
        key BLOB NOT NULL,
        since REAL NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
COLUMNS = "key, size, etag, uploaded, http_metadata, version"


def raw(key: str) -> bytes:
    """A key as the index stores it: its UTF-8 bytes (any str, surrogates too)."""
    return key.encode("utf-8", "surrogatepass")


def put(conn: sqlite3.Connection, info: ObjectInfo) -> None:
    """Write (or replace) the row of ``info``'s key."""
    conn.execute(
        f"INSERT OR REPLACE INTO objects ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            raw(info.key),
            info.size,
            info.etag,
            info.uploaded.isoformat(),
            json.dumps(info.http_metadata.headers, ensure_ascii=False),
            info.version,
        ),
    )


def _info(row: tuple[Any, ...]) -> ObjectInfo | None:
    """The object a row describes; None (logged) for a row the store never
    wrote (the index file was edited)."""
    key, size, etag, uploaded, metadata, version = row
    try:
        headers = json.loads(metadata)
        if not isinstance(headers, dict) or type(size) is not int:
            raise TypeError("not the store's row")
        return ObjectInfo(
            key=bytes(key).decode("utf-8", "surrogatepass"),
            size=size,
            etag=str(etag),
            uploaded=datetime.fromisoformat(uploaded),
            http_metadata=HttpMetadata({str(k): str(v) for k, v in headers.items()}),
            version=str(version),
        )
    except (TypeError, ValueError, RecursionError) as error:
        log.error("index row %r skipped: %r", bytes(key)[:100], error)
        return None


def page(
    conn: sqlite3.Connection,
    prefix: str,
    delimiter: str | None,
    start: ListPosition | None,
    limit: int,
) -> ObjectListing:
    """Walk the primary key from ``start``; jump past each folded prefix.

    Each query reads rows until the page is full or a key folds; then the
    walk resumes past that prefix with a new query, so a folder of a million
    keys costs one row, not a million.
    """
    low_prefix = raw(prefix)
    high = successor(low_prefix)
    low, inclusive = low_prefix, True
    if start is not None and raw(start.key) >= low_prefix:
        if start.past:
            past = successor(raw(start.key))
            if past is None:
                return ObjectListing([], [], None)
            low, inclusive = past, True
        else:
            low, inclusive = raw(start.key), False
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    last: ListPosition | None = None
    while True:
        wanted = limit + 1 - len(objects) - len(prefixes)
        above = ">=" if inclusive else ">"
        query = f"SELECT {COLUMNS} FROM objects WHERE key {above} ?"
        arguments: list[Any] = [low]
        if high is not None:
            query += " AND key < ?"
            arguments.append(high)
        query += " ORDER BY key LIMIT ?"
        arguments.append(wanted)
        jumped = False
        rows = 0
        for row in conn.execute(query, arguments):
            rows += 1
            if len(objects) + len(prefixes) == limit:
                return ObjectListing(objects, prefixes, last)
            key = bytes(row[0]).decode("utf-8", "surrogatepass")
            fold = folded(key, prefix, delimiter)
            if fold is not None:
                prefixes.append(fold)
                last = ListPosition(fold, past=True)
                past = successor(raw(fold))
                if past is None:
                    return ObjectListing(objects, prefixes, None)
                low, inclusive, jumped = past, True, True
                break
            info = _info(row)
            if info is not None:
                objects.append(info)
            last = ListPosition(key)
            low, inclusive = row[0], False
        if not jumped and rows < wanted:
            return ObjectListing(objects, prefixes, None)
