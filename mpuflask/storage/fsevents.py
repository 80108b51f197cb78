"""The filesystem store's outbox: each event recorded in the step that makes it.

Layout, under the data directory (made whole when events are turned on)::

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

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

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
from .fsbase import DataDir
from .fseventrules import HAPPENED
from .fseventrules import NOT_HAPPENED
from .fseventrules import STILL_OPEN
from .fseventrules import deleted_version
from .fseventrules import drop_under_lock
from .fseventrules import upload_outcome
from .fsoutbox import EVENTS
from .fsoutbox import NEW
from .fsoutbox import FileLease
from .fsoutbox import exists
from .fsoutbox import make_whole
from .fsoutbox import open_dirs
from .fsoutbox import read_ready
from .fsoutbox import ready_name
from .fsoutbox import record_bytes
from .fsoutbox import records
from .fsoutbox import same_file
from .fsoutbox import write_intent
from .fsoutbox import write_ready
from .fspublish import reclaim
from .fsrecords import UPLOAD_ID
from .fsrecords import load_object
from .fssweep import TEMP_GRACE_SECONDS

log = logging.getLogger(__name__)


class FilesystemOutbox(OutboxSwitch):
    """The outbox of a :class:`~.filesystem.FilesystemBucket` (``bucket.events``)."""

    def __init__(self, bucket: DataDir) -> None:
        super().__init__()
        self.bucket = bucket
        self.root = os.path.join(bucket.root, EVENTS)
        #: Whether events/ exists: an old intent may wait there even while
        #: nothing is recorded now (see :meth:`_in_use`).
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
                    outcome = upload_outcome(self.bucket, upload_id, event.type)
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
        if not self.wanted(DELETED) or not exists(shard_fd, name):
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
        with self._intent(intent, event, {"held": event.id}, operation) as fds:
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
        with self._dirs("events") as (_, ready_fd, _):
            return read_ready(ready_fd, limit)

    def done(self, pending: Pending) -> None:
        with self._dirs("events") as (_, ready_fd, _):
            diskio.unlink_quietly(pending.name, ready_fd)

    def pending_count(self) -> int:
        if not self._in_use():
            return 0
        with self._dirs("metrics") as (intents_fd, ready_fd, _):
            return len(records(intents_fd)) + len(records(ready_fd))

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
                if not exists(intents_fd, f"d.{name}.json"):
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
            if not diskio.try_lock(fd) or not same_file(intents_fd, name, fd):
                return 0  # a live step holds it, or it was settled meanwhile
            if name.startswith(NEW):
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
            outcome = upload_outcome(self.bucket, upload_id, event.type)
            if outcome == STILL_OPEN:
                return drop_under_lock(self.bucket, intents_fd, name, fd, upload_id)
            return self._conclude(outcome, intents_fd, ready_fd, name, event)
        finally:
            os.close(fd)

    def _conclude(
        self, outcome: str, intents_fd: int, ready_fd: int, name: str, event: Event
    ) -> int:
        """Act on a judged intent: make it ready, drop it, or leave it."""
        if outcome == HAPPENED:
            self._make_ready(intents_fd, ready_fd, name, event)
            return 1
        if outcome == NOT_HAPPENED:
            diskio.unlink_quietly(name, intents_fd)
            return 1
        return 0

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
            event = deleted_version(dir_fd, event)
        finally:
            os.close(dir_fd)
        try:
            write_ready(ready_fd, event, self.bucket.durable)
        except OSError as error:  # past the commit: never the client's answer
            log.error("event %s not made ready (settled later): %s", event.id, error)
            return
        self._to_trash(held_fd, held, trash)
        diskio.unlink_quietly(intent, intents_fd)
        self.recorded(event)

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
        """Write intent ``name`` (:func:`.fsoutbox.write_intent`) and hold its
        flock until the block ends; yields the intents, ready and held
        directories' fds."""
        data = record_bytes(event, check)
        with self._dirs(operation) as (intents_fd, ready_fd, held_fd):
            fd = write_intent(intents_fd, name, data, self.bucket.durable, operation)
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
                name, ready_name(event), src_dir_fd=intents_fd, dst_dir_fd=ready_fd
            )
        except OSError as error:  # past the commit: settled later, never answered
            log.error("event %s not made ready (settled later): %s", event.id, error)
            return
        self.recorded(event)

    @contextmanager
    def _dirs(self, operation: str) -> Iterator[tuple[int, int, int]]:
        self._dirs_made(operation)
        with open_dirs(self.root, operation) as fds:
            yield fds

    def _in_use(self) -> bool:
        """Whether events/ exists (another process may have made it since)."""
        if not self._made:
            self._made = os.path.isdir(self.root)
        return self._made

    def _dirs_made(self, operation: str) -> None:
        if not self._in_use():
            make_whole(self.bucket, operation)
            self._made = True
