"""What the filesystem store's helper modules use of their bucket, as Protocols.

:class:`~.filesystem.FilesystemBucket` imports its helpers (:mod:`.fsupload`,
:mod:`.fspublish`, :mod:`.fsevents`, :mod:`.fssweep`, ...) and hands itself
to them. They type it against these Protocols instead of importing it back,
so no two modules import each other; mypy checks at each call that the bucket
keeps the promise (as :class:`mpuflask.current.AppMpu` does for the views).
Each helper takes the smallest one that covers what it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from typing import Protocol

from .fsindex import ObjectIndex
from .groupsync import DirSyncs


class Areas(Protocol):
    """The bucket as :mod:`.fseventrules` uses it, so it need not import it."""

    def areas(self, operation: str, *names: str) -> AbstractContextManager[list[int]]:
        """Open these areas; close them after the block (503 if damaged)."""
        ...


class DataDir(Areas, Protocol):
    """The bucket as publish, listing and the outbox use it (not importing it)."""

    @property
    def root(self) -> str: ...

    @property
    def durable(self) -> bool: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    def sync_dirs(self, *fds: int) -> None:
        """With durability on, make renames inside these directories stick
        (one fsync shared by the threads waiting on it: :mod:`.groupsync`)."""
        ...

    def is_expired(self, record: dict[str, Any]) -> bool:
        """Whether an upload's record says it has expired."""
        ...

    def reclaim_later(self, trash: str) -> None:
        """Delete ``trash/<trash>`` once the answer is sent (or at once)."""
        ...


class UploadEnding(Protocol):
    """The outbox as an upload uses it: fsupload cannot import fsevents, whose
    settling imports the sweep, which imports fsupload."""

    def upload_ending(
        self, record: dict[str, Any], manifest: dict[str, Any] | None, operation: str
    ) -> AbstractContextManager[None]:
        """Record how upload ``record`` ends around its commit point."""
        ...


class UploadStore(DataDir, Protocol):
    """The bucket as an upload and the sweep use it, so they need not import it."""

    @property
    def min_part_size(self) -> int: ...

    @property
    def index(self) -> ObjectIndex: ...

    @property
    def events(self) -> UploadEnding: ...

    @property
    def dir_syncs(self) -> DirSyncs: ...

    def locked_upload(
        self,
        key: str,
        upload_id: str,
        operation: str,
        allow_expired: bool = False,
        known: dict[str, Any] | None = None,
    ) -> AbstractContextManager[tuple[int, dict[str, Any]]]:
        """Hold the upload's exclusive lock; its directory fd and record."""
        ...

    def read_upload(self, key: str, upload_id: str, operation: str) -> dict[str, Any]:
        """The upload's record, or NoSuchUpload; takes no lock."""
        ...

    def received_part(
        self, chunks: Iterable[bytes]
    ) -> AbstractContextManager[tuple[int, str, str, int]]:
        """Stream ``chunks`` into a temp file: ``tmp/``'s fd, name, MD5, size."""
        ...
