"""The filesystem store's outbox: each event recorded in the step that makes it.

Layout, under the data directory (made on first use)::

    events/
        lease                   flocked by the server's one delivery loop
        intents/u.<uploadId>.json   how upload U is ending: published, aborted
                                or expired (one name per upload: a later
                                attempt replaces a dead one)
        intents/d.<id>.json     a delete in progress
        intents/.new.<random>   an intent being written
        held/<id>/              a version a delete took away, until its event
                                is ready (then it goes to trash/)
        ready/<ns>.<id>.json    events that happened, oldest first; deleted
                                once delivered

How a step records its event (:meth:`FilesystemOutbox.upload_ending`,
:meth:`~FilesystemOutbox.deleting`): before the step's commit point it writes
an *intent* (the whole event), fsyncs it and its directory, and holds an
exclusive flock on it until the step is over. If the step commits, the intent
is renamed into ``ready/``; if it fails, the step's outcome is judged from
the store (below) and the intent dropped or made ready. A process killed
anywhere leaves either no intent (nothing happened yet) or an intent whose
flock died with it, which the delivery loop settles by the same rules.

The rules (why each holds is in docs/architecture.md, "Events"):

* Every step that ends upload U (complete, abort, expiry) runs under U's
  directory lock and writes ``u.<U>.json``, replacing whatever dead intent
  another attempt left there: a dead intent always names the last attempt.
* An upload intent is judged by looking at ``staging/U`` first, then
  ``uploads/U``: ``staging/U`` holding another upload's manifest means U was
  published (that is the version U replaced); ``staging/U`` holding U's own
  manifest (or none) is undecided until the sweep rolls it back; U in
  ``uploads/`` means the step did not happen (dropped under U's lock); U in
  neither means the intent's step happened.
* A delete moves the version into ``held/<id>``, not straight to the trash,
  and only the settling of its intent moves it on (after the ready record is
  on disk): ``held/<id>`` present means the delete happened, absent means it
  did not (or was settled already, and its event made ready).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

from ..errors import DataDirDamaged
from ..events.model import ABORTED
from ..events.model import DELETED
from ..events.model import EXPIRED
from ..events.model import PUBLISHED
from ..events.model import Event
from ..events.model import ObjectDeleted
from ..events.model import ObjectPublished
from ..events.model import UploadAborted
from ..events.model import UploadExpired
from ..events.model import event_from_json
from ..events.model import new_event_id
from ..events.model import upload_event_id
from ..events.outbox import OutboxSwitch
from ..events.outbox import Pending
from . import diskio
from .diskio import CorruptEntry
from .fspublish import reclaim
from .fsrecords import MANIFEST
from .fsrecords import UPLOAD_ID
from .fsrecords import load_object
from .fssweep import TEMP_GRACE_SECONDS

if TYPE_CHECKING:
    from .filesystem import FilesystemBucket

log = logging.getLogger(__name__)

EVENTS = "events"
_SUBDIRS = ("intents", "ready", "held")
_NEW = ".new."
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

HAPPENED = "happened"
NOT_HAPPENED = "not happened"
#: Not happened, and the upload is still open: dropped only under its lock.
STILL_OPEN = "still open"
UNDECIDED = "undecided"


class FilesystemOutbox(OutboxSwitch):
    """The outbox of a :class:`~.filesystem.FilesystemBucket` (``bucket.events``)."""

    def __init__(self, bucket: FilesystemBucket) -> None:
        super().__init__()
        self.bucket = bucket
        self.root = os.path.join(bucket.root, EVENTS)
        #: Whether events/ exists: an old intent may wait there even while
        #: nothing is recorded now (see :meth:`_exists`).
        self._made = os.path.isdir(self.root)

    # -- in the store's steps ------------------------------------------------------

    @contextmanager
    def upload_ending(
        self, record: dict[str, Any], manifest: dict[str, Any] | None, operation: str
    ) -> Iterator[None]:
        """Record how upload ``record`` ends around its commit point.

        ``manifest``: the object complete is publishing; None for an abort
        (an upload past its expiry is recorded as expired). Call with the
        upload's lock held, around the one call that commits.
        """
        upload_id = record["upload_id"]
        name = f"u.{upload_id}.json"
        event = self._upload_event(record, manifest)
        if not self.wanted(event.type):
            if self._in_use():
                with self._dirs(operation) as (intents_fd, _, _):
                    diskio.unlink_quietly(name, intents_fd)  # a dead attempt's
            yield
            return
        check = {"upload": upload_id}
        with self._intent(name, event, check, operation) as (intents_fd, ready_fd, _):
            try:
                yield
            except BaseException:
                # We hold U's lock: nothing can replace the intent meanwhile.
                try:
                    outcome = self._upload_outcome(upload_id, event.type)
                    if outcome == STILL_OPEN:
                        outcome = NOT_HAPPENED
                    self._conclude(outcome, intents_fd, ready_fd, name, event)
                except Exception:  # the intent stays, for the delivery loop
                    log.exception("event %s left to be settled later", event.id)
                raise
            self._make_ready(intents_fd, ready_fd, name, event)

    @contextmanager
    def deleting(
        self,
        key: str,
        shard_fd: int,
        name: str,
        trash_fd: int,
        trash: str,
        operation: str,
    ) -> Iterator[tuple[int, str]]:
        """Where delete moves ``objects/<shard>/<name>``: ``(dir_fd, name)``.

        The trash when no event is wanted (or there is no object); else
        ``events/held/<id>``, with an intent written first, and on success
        the version goes on to ``trash/<trash>`` once its event is ready, so
        the caller reclaims it from there as usual.
        """
        if not self.wanted(DELETED) or not _exists(shard_fd, name):
            yield trash_fd, trash
            return
        event = ObjectDeleted(
            id=new_event_id(),
            key=key,
            time=self.bucket.clock(),
            etag=None,
            size=None,
            identity=self.identity(),
        )
        intent = f"d.{event.id}.json"
        check = {"held": event.id}
        with self._intent(intent, event, check, operation) as fds:
            intents_fd, ready_fd, held_fd = fds
            try:
                yield held_fd, event.id
            finally:
                # Moved or not (a racing delete got there first), decided by
                # whether held/<id> exists: the same rule a crash is settled by.
                try:
                    self._settle_held(
                        intents_fd, ready_fd, held_fd, intent, event, trash
                    )
                except Exception:  # past the commit: never the client's answer
                    log.exception("event %s left to be settled later", event.id)

    def _upload_event(
        self, record: dict[str, Any], manifest: dict[str, Any] | None
    ) -> Event:
        key, upload_id, owner = record["key"], record["upload_id"], record["owner"]
        if manifest is not None:
            return ObjectPublished(
                id=upload_event_id(PUBLISHED, key, upload_id),
                key=key,
                time=datetime.fromisoformat(manifest["uploaded"]),
                upload_id=upload_id,
                etag=manifest["etag"],
                size=manifest["size"],
                parts=len(manifest["parts"]),
                http_metadata=dict(record["http_metadata"]),
                identity=self.identity(),
                owner=owner,
            )
        now = self.bucket.clock()
        if self.bucket.is_expired(record):
            return UploadExpired(
                id=upload_event_id(EXPIRED, key, upload_id),
                key=key,
                time=now,
                upload_id=upload_id,
                owner=owner,
                expires=datetime.fromisoformat(record["expires"]),
            )
        return UploadAborted(
            id=upload_event_id(ABORTED, key, upload_id),
            key=key,
            time=now,
            upload_id=upload_id,
            identity=self.identity(),
            owner=owner,
        )

    def prepare(self) -> None:
        self._dirs_made("events")

    # -- for the delivery loop -----------------------------------------------------

    def ready(self, limit: int) -> list[Pending]:
        if not self._in_use():
            return []
        found = []
        with self._dirs("events") as (_, ready_fd, _):
            for name in _records(ready_fd)[:limit]:
                try:
                    record = load_object(diskio.read_file(ready_fd, name), name)
                    event = event_from_json(record["event"])
                except FileNotFoundError:
                    continue
                except (CorruptEntry, KeyError, TypeError, ValueError) as error:
                    log.error("events/ready/%s cannot be delivered: %s", name, error)
                    diskio.remove_entry(ready_fd, name)
                    continue
                found.append(Pending(name, event, _body(record["event"])))
        return found

    def done(self, pending: Pending) -> None:
        with self._dirs("events") as (_, ready_fd, _):
            diskio.unlink_quietly(pending.name, ready_fd)

    def pending_count(self) -> int:
        if not self._in_use():
            return 0
        with self._dirs("metrics") as (intents_fd, ready_fd, _):
            return len(_records(intents_fd)) + len(_records(ready_fd))

    def lease(self) -> FileLease:
        self._dirs_made("events")
        return FileLease(os.path.join(self.root, "lease"))

    def settle(self) -> int:
        """Decide every intent whose writer is gone (no flock on it)."""
        if not self._in_use():
            return 0
        settled = 0
        with self._dirs("events") as (intents_fd, ready_fd, held_fd):
            for name in sorted(os.listdir(intents_fd)):
                settled += self._settle_one(intents_fd, ready_fd, held_fd, name)
            for name in os.listdir(held_fd):
                if not _exists(intents_fd, f"d.{name}.json"):
                    # Its event is ready (or delivered): only the move was lost.
                    self._to_trash(held_fd, name, secrets.token_hex(16))
        return settled

    def _settle_one(
        self, intents_fd: int, ready_fd: int, held_fd: int, name: str
    ) -> int:
        try:
            fd = diskio.open_file(name, intents_fd)
        except FileNotFoundError:
            return 0
        except CorruptEntry as error:
            log.error("events/intents/%s: %s; removed", name, error)
            diskio.remove_entry(intents_fd, name)
            return 1
        try:
            if not diskio.try_lock(fd) or not _same_file(intents_fd, name, fd):
                return 0  # a live step holds it, or it was settled meanwhile
            if name.startswith(_NEW):
                # Its writer locks it just after creating it: only an old one
                # nobody locks is a dead writer's (as the sweep's tmp/ files).
                if os.fstat(fd).st_mtime > time.time() - TEMP_GRACE_SECONDS:
                    return 0
                diskio.unlink_quietly(name, intents_fd)
                return 1
            try:
                record = load_object(diskio.read_metadata(fd), name)
                event = event_from_json(record["event"])
                check = record["check"]
            except (CorruptEntry, KeyError, TypeError, ValueError) as error:
                log.error(
                    "events/intents/%s is not an intent: %s; removed", name, error
                )
                diskio.unlink_quietly(name, intents_fd)
                return 1
            if "held" in check:
                self._settle_held(
                    intents_fd, ready_fd, held_fd, name, event, secrets.token_hex(16)
                )
                return 1
            upload_id = check.get("upload")
            if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
                log.error("events/intents/%s names no upload; removed", name)
                diskio.unlink_quietly(name, intents_fd)
                return 1
            outcome = self._upload_outcome(upload_id, event.type)
            if outcome == STILL_OPEN:
                return self._drop_under_lock(intents_fd, name, fd, upload_id)
            return self._conclude(outcome, intents_fd, ready_fd, name, event)
        finally:
            os.close(fd)

    # -- the rules -----------------------------------------------------------------

    def _upload_outcome(self, upload_id: str, event_type: str) -> str:
        """Whether the step an intent of upload U names happened (module rules).

        ``staging/`` is looked at before ``uploads/``: the only move from
        ``uploads/`` to ``staging/`` is a new complete of U, which replaces
        the intent first, so an intent still in place was not overtaken.
        """
        with self.bucket.areas("events", "staging", "uploads") as (
            staging_fd,
            uploads_fd,
        ):
            try:
                dir_fd = diskio.open_dir(upload_id, staging_fd)
            except FileNotFoundError:
                pass
            except CorruptEntry:
                return UNDECIDED
            else:
                try:
                    manifest = load_object(
                        diskio.read_file(dir_fd, MANIFEST), upload_id
                    )
                    published_by = manifest.get("upload_id")
                except FileNotFoundError:
                    published_by = upload_id
                except CorruptEntry:
                    return UNDECIDED
                finally:
                    os.close(dir_fd)
                if published_by == upload_id:
                    return UNDECIDED  # closed, not published: the sweep rolls it back
                return HAPPENED if event_type == PUBLISHED else NOT_HAPPENED
            if _exists(uploads_fd, upload_id):
                return STILL_OPEN
            return HAPPENED

    def _conclude(
        self, outcome: str, intents_fd: int, ready_fd: int, name: str, event: Event
    ) -> int:
        """Act on a judged intent (the step's own process: it holds U's lock)."""
        if outcome == HAPPENED:
            self._make_ready(intents_fd, ready_fd, name, event)
            return 1
        if outcome == NOT_HAPPENED:
            diskio.unlink_quietly(name, intents_fd)
            return 1
        return 0

    def _drop_under_lock(
        self, intents_fd: int, name: str, fd: int, upload_id: str
    ) -> int:
        """Drop a dead intent of an upload that is still open, holding its lock.

        Under U's lock no complete or abort of U runs, so the intent cannot be
        replaced between our check and the unlink.
        """
        with self.bucket.areas("events", "uploads") as (uploads_fd,):
            try:
                dir_fd = diskio.open_dir(upload_id, uploads_fd)
            except (FileNotFoundError, CorruptEntry):
                return 0  # moved meanwhile: judged again next time
            try:
                diskio.lock(dir_fd)
                if not diskio.same_dir(uploads_fd, upload_id, dir_fd):
                    return 0
                if _same_file(intents_fd, name, fd):
                    diskio.unlink_quietly(name, intents_fd)
                    return 1
                return 0
            finally:
                os.close(dir_fd)

    def _settle_held(
        self,
        intents_fd: int,
        ready_fd: int,
        held_fd: int,
        intent: str,
        event: Event,
        trash: str,
    ) -> None:
        """Finish a delete's intent: ready if ``held/<id>`` exists, else drop.

        Order: the ready record reaches the disk, then the version leaves
        ``held/``, then the intent goes; a crash between leaves a state the
        same call settles again (the ready record is written under the same
        name).
        """
        held = event.id
        try:
            dir_fd = diskio.open_dir(held, held_fd)
        except FileNotFoundError:
            diskio.unlink_quietly(intent, intents_fd)  # no delete happened
            return
        except CorruptEntry as error:
            log.error("events/held/%s: %s; left", held, error)
            return
        try:
            event = self._deleted_version(dir_fd, event)
        finally:
            os.close(dir_fd)
        try:
            self._write_ready(ready_fd, event)
        except OSError as error:  # past the commit: never the client's answer
            log.error("event %s not made ready (settled later): %s", event.id, error)
            return
        self._to_trash(held_fd, held, trash)
        diskio.unlink_quietly(intent, intents_fd)
        self.recorded(event)

    def _deleted_version(self, dir_fd: int, event: Event) -> Event:
        """The delete event with the etag and size of the version it removed."""
        try:
            manifest = load_object(diskio.read_file(dir_fd, MANIFEST), event.id)
            etag, size = manifest["etag"], manifest["size"]
        except (OSError, CorruptEntry, KeyError) as error:
            log.warning("deleted version %s unreadable: %s", event.id, error)
            return event
        if not isinstance(etag, str) or type(size) is not int:
            return event
        fields = event.to_json() | {"etag": etag, "size": size}
        return event_from_json(fields)

    def _to_trash(self, held_fd: int, held: str, trash: str) -> None:
        with self.bucket.areas("delete", "trash") as (trash_fd,):
            try:
                os.rename(held, trash, src_dir_fd=held_fd, dst_dir_fd=trash_fd)
            except FileNotFoundError:
                return
            except OSError as error:
                log.warning("events/held/%s not moved to the trash: %s", held, error)
                return
            reclaim(trash_fd, trash)

    # -- records -------------------------------------------------------------------

    @contextmanager
    def _intent(
        self, name: str, event: Event, check: dict[str, Any], operation: str
    ) -> Iterator[tuple[int, int, int]]:
        """Write intent ``name`` durably and hold its flock until the block ends.

        Yields the intents, ready and held directories' fds. A
        failure to write it (a full disk: 507) leaves nothing and the step
        is not attempted.
        """
        durable = self.bucket.durable
        data = _record(event, check)
        with self._dirs(operation) as (intents_fd, ready_fd, held_fd):
            temp = f"{_NEW}{secrets.token_hex(8)}"
            with diskio.disk_full_as_507(operation):
                fd = os.open(temp, _WRITE_FLAGS, 0o644, dir_fd=intents_fd)
                try:
                    diskio.lock(fd)
                    diskio.write_all(fd, data)
                    if durable:
                        os.fsync(fd)
                    os.rename(temp, name, src_dir_fd=intents_fd, dst_dir_fd=intents_fd)
                    if durable:
                        os.fsync(intents_fd)
                except BaseException:
                    diskio.unlink_quietly(temp, intents_fd)
                    os.close(fd)
                    raise
            try:
                yield intents_fd, ready_fd, held_fd
            finally:
                os.close(fd)  # releases the flock: settled from here by others

    def _make_ready(
        self, intents_fd: int, ready_fd: int, name: str, event: Event
    ) -> None:
        """Move a settled upload intent into ``ready/`` (no fsync needed: were
        the rename lost, the intent is judged again and made ready again)."""
        try:
            os.rename(
                name, _ready_name(event), src_dir_fd=intents_fd, dst_dir_fd=ready_fd
            )
        except OSError as error:  # past the commit: settled later, never answered
            log.error("event %s not made ready (settled later): %s", event.id, error)
            return
        self.recorded(event)

    def _write_ready(self, ready_fd: int, event: Event) -> None:
        name = _ready_name(event)
        if _exists(ready_fd, name):
            return
        diskio.write_file_atomic(
            ready_fd, name, _record(event, {}), self.bucket.durable
        )
        if self.bucket.durable:
            os.fsync(ready_fd)

    @contextmanager
    def _dirs(self, operation: str) -> Iterator[tuple[int, int, int]]:
        """The intents, ready and held directories, opened without following links."""
        self._dirs_made(operation)
        fds: list[int] = []
        try:
            try:
                root_fd = diskio.open_dir(self.root)
                fds.append(root_fd)
                for sub in _SUBDIRS:
                    fds.append(diskio.open_dir(sub, root_fd))
            except (CorruptEntry, FileNotFoundError) as error:
                log.error("data directory damaged: events: %s", error)
                raise DataDirDamaged(operation) from None
            yield fds[1], fds[2], fds[3]
        finally:
            for fd in fds:
                os.close(fd)

    def _in_use(self) -> bool:
        """Whether events/ exists (another process may have made it since)."""
        if not self._made:
            self._made = os.path.isdir(self.root)
        return self._made

    def _dirs_made(self, operation: str) -> None:
        """Make ``events/`` whole, at one instant: built in ``tmp/`` and renamed
        in, so no process ever sees it without its subdirectories (workers
        starting together all try; one rename wins, the others' are swept)."""
        if self._in_use():
            return
        durable = self.bucket.durable
        with (
            self.bucket.areas(operation, "tmp") as (tmp_fd,),
            diskio.disk_full_as_507(operation),
        ):
            building = f"events.{secrets.token_hex(8)}"
            os.mkdir(building, 0o755, dir_fd=tmp_fd)
            try:
                dir_fd = diskio.open_dir(building, tmp_fd)
                try:
                    for sub in _SUBDIRS:
                        os.mkdir(sub, 0o755, dir_fd=dir_fd)
                    if durable:
                        os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
                root_fd = diskio.open_dir(self.bucket.root)
                try:
                    try:
                        _rename_no_replace(building, EVENTS, tmp_fd, root_fd)
                    except FileExistsError:
                        pass  # another process made it first
                    else:
                        if durable:
                            os.fsync(root_fd)
                finally:
                    os.close(root_fd)
            finally:
                diskio.remove_entry(tmp_fd, building)  # gone if renamed in
        self._made = True


class FileLease:
    """The delivery loop's lease: an flock on ``events/lease``.

    The kernel drops it when its process dies, so another worker's loop takes
    over at its next try. The file stays: unlinking a lock file races (PITFALLS).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(
            self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
        if diskio.try_lock(fd):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _record(event: Event, check: dict[str, Any]) -> bytes:
    return json.dumps(
        {"event": event.to_json(), "check": check},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def _body(event_json: Any) -> bytes:
    """The webhook body: the event's JSON, the same bytes on every attempt."""
    return json.dumps(event_json, ensure_ascii=False, separators=(",", ":")).encode()


def _ready_name(event: Event) -> str:
    """Sorted by the event's time; the same name whoever settles it."""
    stamp = int(event.time.timestamp() * 1_000_000) * 1000
    return f"{stamp:020d}.{event.id}.json"


def _rename_no_replace(name: str, target: str, src_fd: int, dst_fd: int) -> None:
    """Rename a directory unless ``target`` exists (FileExistsError)."""
    if diskio.can_exchange():
        diskio.rename2(name, target, diskio.RENAME_NOREPLACE, src_fd, dst_fd)
        return
    try:  # replaces only an empty directory: ours always has three entries
        os.rename(name, target, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(error.errno, error.strerror, target) from None
        raise


def _records(dir_fd: int) -> list[str]:
    """The records of a directory, sorted; temp files (dot names) left out."""
    return sorted(name for name in os.listdir(dir_fd) if not name.startswith("."))


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _same_file(dir_fd: int, name: str, fd: int) -> bool:
    """Whether ``name`` still names the file open as ``fd``."""
    try:
        found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (found.st_ino, found.st_dev) == (held.st_ino, held.st_dev)
