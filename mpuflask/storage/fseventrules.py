"""The filesystem outbox's rules: did the step an intent names happen?

Used by :mod:`.fsevents` when a step fails and when the delivery loop settles
the intents of dead writers; docs/architecture.md ("Events") says why each
rule holds.
"""

from __future__ import annotations

import logging
import os

from ..events.model import PUBLISHED
from ..events.model import Event
from ..events.model import event_from_json
from . import diskio
from .diskio import CorruptEntry
from .fsbase import Areas
from .fsoutbox import exists
from .fsoutbox import same_file
from .fsrecords import MANIFEST
from .fsrecords import load_object

log = logging.getLogger(__name__)

HAPPENED = "happened"
NOT_HAPPENED = "not happened"
#: Not happened, and the upload is still open: dropped only under its lock.
STILL_OPEN = "still open"
UNDECIDED = "undecided"


def upload_outcome(bucket: Areas, upload_id: str, event_type: str) -> str:
    """Whether the step an intent of upload U names happened (fsevents' rules).

    ``staging/`` is looked at before ``uploads/``: the only move from
    ``uploads/`` to ``staging/`` is a new complete of U, which replaces
    the intent first, so an intent still in place was not overtaken.
    """
    with bucket.areas("events", "staging", "uploads") as (
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
                manifest = load_object(diskio.read_file(dir_fd, MANIFEST), upload_id)
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
        if exists(uploads_fd, upload_id):
            return STILL_OPEN
        return HAPPENED


def drop_under_lock(
    bucket: Areas, intents_fd: int, name: str, fd: int, upload_id: str
) -> int:
    """Drop a dead intent of an upload that is still open, holding its lock.

    Under U's lock no complete or abort of U runs, so the intent cannot be
    replaced between our check and the unlink.
    """
    with bucket.areas("events", "uploads") as (uploads_fd,):
        try:
            dir_fd = diskio.open_dir(upload_id, uploads_fd)
        except (FileNotFoundError, CorruptEntry):
            return 0  # moved meanwhile: judged again next time
        try:
            diskio.lock(dir_fd)
            if not diskio.same_dir(uploads_fd, upload_id, dir_fd):
                return 0
            if same_file(intents_fd, name, fd):
                diskio.unlink_quietly(name, intents_fd)
                return 1
            return 0
        finally:
            os.close(dir_fd)


def deleted_version(dir_fd: int, event: Event) -> Event:
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
