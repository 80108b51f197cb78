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

Judging and settling an intent is the base class's job
(:class:`~.fssettle.SettlingOutbox`); this module records events in the steps
and serves the delivery loop.
"""

from __future__ import annotations

import logging
import os
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
from ..events.model import new_event_id
from ..events.model import upload_event_id
from ..events.outbox import Pending
from . import diskio
from .fseventrules import NOT_HAPPENED
from .fseventrules import STILL_OPEN
from .fseventrules import upload_outcome
from .fsoutbox import FileLease
from .fsoutbox import exists
from .fsoutbox import read_ready
from .fsoutbox import record_bytes
from .fsoutbox import records
from .fsoutbox import write_intent
from .fssettle import SettlingOutbox

log = logging.getLogger(__name__)


class FilesystemOutbox(SettlingOutbox):
    """The outbox of a :class:`~.filesystem.FilesystemBucket` (``bucket.events``)."""

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

    # -- intents -------------------------------------------------------------------

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
