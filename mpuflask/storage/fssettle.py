"""The filesystem outbox's settling: an intent judged and acted on.

:class:`SettlingOutbox` is the base of :class:`~.fsevents.FilesystemOutbox`:
it owns the ``events/`` directory (made whole on first use) and settles
intents, the delivery loop's for writers that died (:meth:`~SettlingOutbox.settle`)
and a step's own when it failed. Settling judges an intent by the rules of
:mod:`.fseventrules` and then makes its event ready, drops it or leaves it;
a delete's version goes from ``held/`` to the trash once its event is ready.
The layout and why each rule holds: :mod:`.fsevents`, docs/architecture.md.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..events.model import Event
from ..events.model import event_from_json
from ..events.outbox import OutboxSwitch
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
from .fsoutbox import exists
from .fsoutbox import make_whole
from .fsoutbox import open_dirs
from .fsoutbox import ready_name
from .fsoutbox import same_file
from .fsoutbox import write_ready
from .fspublish import reclaim
from .fsrecords import UPLOAD_ID
from .fsrecords import load_object
from .fssweep import TEMP_GRACE_SECONDS

log = logging.getLogger(__name__)


class SettlingOutbox(OutboxSwitch):
    """The ``events/`` directory of a filesystem outbox, and settling its intents."""

    def __init__(self, bucket: DataDir) -> None:
        super().__init__()
        self.bucket = bucket
        self.root = os.path.join(bucket.root, EVENTS)
        #: Whether events/ exists: an old intent may wait there even while
        #: nothing is recorded now (see :meth:`_in_use`).
        self._made = os.path.isdir(self.root)

    # -- settling intents (the delivery loop; a step that failed) -----------------

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

    # -- the events/ directory ------------------------------------------------------

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
