"""The filesystem store's ordered index of objects, for listing by prefix.

Objects live under the SHA-256 of their key (``objects/<hh>/<sha256>``), so
a listing by prefix without an index would read every object. The index is a
SQLite database in the data directory, ``index/objects.sqlite`` (WAL mode:
readers never wait for writers), one row per object keyed by the key's UTF-8
bytes: a page of 1,000 keys is one range scan of the primary key, whatever
the number of objects (bench/listing.py).

The object directories are the truth; the index is derived from them and
repaired, never trusted over them:

* every publish (complete) and delete first commits a *mark* for its key
  (fsynced with durability on), then renames, then, in one write transaction,
  reads the key's current version back from the directories and writes its
  row (or removes it), deleting the mark (a complete whose directory is
  still the key's takes the info it has just written: :class:`.fsobject.Published`);
* those write transactions are serialised by SQLite's write lock and each
  reads the truth inside it, so the last one always sees the last rename:
  two completes of one key racing cannot leave the older version's row.
  Writers queue for it on a lock of their own first (:mod:`.fsindexturn`):
  SQLite's own wait sleeps and retries, up to 100 ms a time, which made a
  busy server's completes wait on each other;
* a mark is committed with a full fsync; the settling transaction is not
  (``synchronous=NORMAL``): if a power cut loses it, its mark is still there
  and the sweep settles the key again;
* a crash between the rename and that transaction leaves the mark:
  :meth:`ObjectIndex.reconcile` (in every sweep, so at start-up too) reads the
  truth for each marked key the same way. A mark younger than
  ``MARK_GRACE_SECONDS`` may belong to a live request, so it is kept (its key
  fixed anyway) until a later sweep;
* an index that is missing, unreadable or not yet built (a data directory
  from before it) is built from the directories at start-up, under a lock
  (``index/build.lock``) the other processes wait on.

A key listed is then exactly what GET answers: a version that GET would find
corrupt is left out too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import DataDirDamaged
from ..errors import InsufficientStorage
from . import diskio
from .base import ListPosition
from .base import ObjectInfo
from .base import ObjectListing
from .diskio import CorruptEntry
from .fsindexrows import SCHEMA
from .fsindexrows import page
from .fsindexrows import put
from .fsindexrows import raw
from .fsindexturn import WriteTurn
from .fsobject import Published

log = logging.getLogger(__name__)

INDEX_DIR = "index"
INDEX_FILE = "objects.sqlite"
BUILD_LOCK = "build.lock"
#: A mark older than this belongs to a request that died (see the docstring).
MARK_GRACE_SECONDS = 60.0
#: How long a writer waits for another's transaction before giving up (503).
BUSY_TIMEOUT_SECONDS = 60.0
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


#: The current version of a key, read from the object directories. The
#: second argument is the version the caller has just published, if any:
#: while it is still the key's version, its info is the truth.
Truth = Callable[[str, Published | None], ObjectInfo | None]
#: Every object the directories hold (for a build).
Scan = Callable[[], Iterator[ObjectInfo]]


class ObjectIndex:
    """The index of one data directory; a SQLite connection per thread."""

    def __init__(self, root: str, durable: bool, truth: Truth, scan: Scan) -> None:
        self.folder = os.path.join(root, INDEX_DIR)
        self.path = os.path.join(self.folder, INDEX_FILE)
        self.durable = durable
        self.truth = truth
        self.scan = scan
        self._local = threading.local()
        #: Whose turn it is to write (index/write.lock).
        self.turn = WriteTurn(self.folder, BUSY_TIMEOUT_SECONDS)
        #: Connections a fork left behind: never used, never closed (SQLite).
        self._inherited: list[sqlite3.Connection] = []
        os.makedirs(self.folder, exist_ok=True)
        try:
            self._ensure_built()  # write.lock too, before any request writes
        except (DataDirDamaged, InsufficientStorage, sqlite3.Error) as error:
            # Listing and publishing answer 503 until it is repaired.
            log.error("index not usable: %r", error)

    # -- what the store calls ---------------------------------------------------

    @contextmanager
    def changing(
        self, key: str, operation: str, published: Published | None = None
    ) -> Iterator[None]:
        """Around a rename that changes ``key``'s object: mark, then settle.

        The mark is committed before the block runs (a failure there refuses
        the request: 507 or 503); settling after it never fails the request,
        whatever the block did: a settle that fails is logged and left to
        the sweep.
        """
        mark = self._mark(key, operation)
        try:
            yield
        finally:
            try:
                with self._write(operation, durable=False) as conn:
                    self._put_truth(conn, key, published)
                    conn.execute("DELETE FROM marks WHERE id = ?", (mark,))
            except Exception as error:  # the sweep fixes the row from the mark
                log.warning("index row of %r left to the sweep: %r", key, error)

    def page(
        self,
        prefix: str,
        delimiter: str | None,
        start: ListPosition | None,
        limit: int,
    ) -> ObjectListing:
        """One page of the listing, from one read snapshot of the index."""
        try:
            conn = self._connection("list")
            conn.execute("BEGIN")
            try:
                return page(conn, prefix, delimiter, start, limit)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise _refusal(error, "list") from None

    def reconcile(self) -> int:
        """Fix the row of every marked key from the directories.

        Returns how many marks were old enough to be a crash's, and went.
        """
        cutoff = time.time() - MARK_GRACE_SECONDS
        try:
            conn = self._connection("sweep")
            keys = [row[0] for row in conn.execute("SELECT DISTINCT key FROM marks")]
        except sqlite3.Error as error:
            raise _refusal(error, "sweep") from None
        cleared = 0
        for marked in keys:
            key = bytes(marked).decode("utf-8", "surrogatepass")
            with self._write("sweep") as writer:
                self._put_truth(writer, key)
                cleared += writer.execute(
                    "DELETE FROM marks WHERE key = ? AND since < ?", (marked, cutoff)
                ).rowcount
        return cleared

    def rebuild(self) -> int:
        """Rebuild every row from the directories; how many objects."""
        with self._build_lock():
            try:
                return self._rebuild()
            except sqlite3.Error as error:
                raise _refusal(error, "sweep") from None

    # -- connections and transactions ---------------------------------------

    def _connection(self, operation: str) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if getattr(local, "conn", None) is not None:
                self._inherited.append(local.conn)
            local.conn = None
            local.pid = os.getpid()
        if local.conn is None:
            local.conn = self._connect(operation)
        conn: sqlite3.Connection = local.conn
        return conn

    def _connect(self, operation: str) -> sqlite3.Connection:
        """A new connection (raises sqlite3.Error; DataDirDamaged if the
        index folder or file is not the store's own)."""
        try:
            os.close(diskio.open_dir(self.folder))
            if os.path.islink(self.path):
                raise CorruptEntry(f"{INDEX_FILE} is a symlink")
        except (CorruptEntry, FileNotFoundError) as error:
            log.error("data directory damaged: %s: %s", INDEX_DIR, error)
            raise DataDirDamaged(operation) from None
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=True,
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _write(
        self, operation: str, durable: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """One write transaction; a SQLite failure is answered: 507 when the
        disk is full, else 503."""
        try:
            with self._transaction(operation, durable) as conn:
                yield conn
        except sqlite3.Error as error:
            raise _refusal(error, operation) from None

    @contextmanager
    def _transaction(
        self, operation: str = "sweep", durable: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """A write transaction in our turn (BEGIN IMMEDIATE: SQLite's write
        lock at once); its SQLite errors propagate as they are.

        ``durable=False``: committed without an fsync (what it writes must be
        redone by the sweep if lost).
        """
        with self.turn.taken(operation):
            conn = self._connection(operation)
            relaxed = self.durable and not durable
            if relaxed:
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                if relaxed:
                    conn.execute("PRAGMA synchronous=FULL")

    def _mark(self, key: str, operation: str) -> int:
        with self._write(operation) as conn:
            cursor = conn.execute(
                "INSERT INTO marks (key, since) VALUES (?, ?)",
                (raw(key), time.time()),
            )
        mark = cursor.lastrowid
        assert mark is not None
        return mark

    def _put_truth(
        self, conn: sqlite3.Connection, key: str, published: Published | None = None
    ) -> None:
        """Inside a write transaction: the key's row as the directories say."""
        info = self.truth(key, published)
        if info is None:
            conn.execute("DELETE FROM objects WHERE key = ?", (raw(key),))
        else:
            put(conn, info)

    # -- building --------------------------------------------------------------

    @contextmanager
    def _build_lock(self) -> Iterator[None]:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(os.path.join(self.folder, BUILD_LOCK), flags, 0o644)
        except OSError as error:
            log.error("data directory damaged: %s: %s", INDEX_DIR, error)
            raise DataDirDamaged("sweep") from None
        try:
            diskio.lock(fd)
            yield
        finally:
            os.close(fd)  # the lock file stays: unlinking it would race

    def _ensure_built(self) -> None:
        """Make the tables; build the rows if never built (or unreadable)."""
        with self._build_lock():
            try:
                built = self._built()
            except sqlite3.DatabaseError as error:
                if getattr(error, "sqlite_errorcode", None) not in _CORRUPT:
                    raise
                log.error("index unreadable, rebuilt from the objects: %r", error)
                self._discard()
                built = self._built()
            if not built:
                count = self._rebuild()
                log.info("index built from the objects: %d object(s)", count)

    def _built(self) -> bool:
        """Whether the rows were built (raises sqlite3.Error as it comes)."""
        with self._transaction() as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE name = 'built'").fetchone()
        if self.durable:
            diskio.fsync_path(self.folder)
        return row is not None

    def _rebuild(self) -> int:
        """Every row from the directories, in one transaction; how many."""
        count = 0
        with self._transaction() as conn:
            conn.execute("DELETE FROM objects")
            conn.execute("DELETE FROM marks")
            for info in self.scan():
                put(conn, info)
                count += 1
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('built', '1')")
        return count

    def _discard(self) -> None:
        """Drop an unreadable database: this thread's connection and its files."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        for suffix in ("", "-wal", "-shm"):
            diskio.unlink_quietly(self.path + suffix)


def _refusal(error: sqlite3.Error, operation: str) -> Exception:
    """What a request answers when the index fails: 507 if full, else 503."""
    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return InsufficientStorage(operation)
    log.error("index %s failed: %r", operation, error)
    return DataDirDamaged(operation)
