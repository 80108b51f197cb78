"""What the outbox's crash tests share: a forked child that dies at a chosen
point, and a store whose outbox records every event (see test_event_outbox.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from mpuflask.events import Event
from mpuflask.rules import PartRef
from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.filesystem import FilesystemBucket

KILLED = 86


def in_child_killed(
    action: Callable[[], object], patches: list[tuple[Any, str, Any]]
) -> None:
    """Run ``action`` in a forked child with ``patches`` applied; it must die."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            for owner, name, value in patches:
                setattr(owner, name, value)
            action()
            code = 2  # the step finished: the crash point was never reached
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == KILLED


def die(*args: Any, **kwargs: Any) -> None:
    os._exit(KILLED)


def dying_after_intent(real: Any) -> Any:
    """An ``_intent`` that writes the intent, then dies before the step runs."""

    @contextmanager
    def intent(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(self, *args, **kwargs):
            os._exit(KILLED)
        yield  # never reached

    return intent


class Store:
    """A store whose outbox records every event, and what it published."""

    def __init__(self, root: Path) -> None:
        self.bucket = FilesystemBucket(
            root, min_part_size=1, upload_ttl=timedelta(days=1)
        )
        self.recorded: list[Event] = []
        self.bucket.events.configure(
            lambda event_type: True, lambda: "alice", self.recorded.append
        )

    def start(self, key: str, data: bytes = b"bytes") -> tuple[str, PartRef]:
        upload = self.bucket.create_multipart_upload(key, HttpMetadata({}))
        handle = self.bucket.resume_multipart_upload(key, upload.upload_id)
        part = handle.upload_part(1, [data])
        return upload.upload_id, PartRef(1, part.etag)

    def complete(self, key: str, upload_id: str, ref: PartRef) -> None:
        self.bucket.resume_multipart_upload(key, upload_id).complete([ref])

    def abort(self, key: str, upload_id: str) -> None:
        self.bucket.resume_multipart_upload(key, upload_id).abort()

    def delivered(self) -> list[tuple[str, str]]:
        """Settle, then take every ready event as the delivery loop would."""
        outbox = self.bucket.events
        outbox.settle()
        found = []
        for pending in outbox.ready(1000):
            found.append((pending.event.type, pending.event.id))
            outbox.done(pending)
        return found

    def intents(self) -> list[str]:
        return sorted(os.listdir(os.path.join(self.bucket.root, "events", "intents")))
