"""The event moments: plain functions called after something happened.

Registered on the app's :class:`~mpuflask.extension.MpuFlask` with
``@mpu.after_publish``, ``after_abort``, ``after_expire``, ``after_delete``
(one type each) or ``after_event`` (all of them), or by configuration
(``MPUFLASK_EVENT_HOOKS``, every type). They run in the delivery loop, not
in the request: an event hook never changes a client's answer, and one that
raises is called again later with the same event (same ``id``), like the
webhook. docs/hooks.md has the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import Any
from typing import TypeVar

from .model import Event
from .model import ObjectDeleted
from .model import ObjectPublished
from .model import UploadAborted
from .model import UploadExpired

EventHook = Callable[[Event], object]
PublishedHookT = TypeVar("PublishedHookT", bound=Callable[[ObjectPublished], object])
AbortedHookT = TypeVar("AbortedHookT", bound=Callable[[UploadAborted], object])
ExpiredHookT = TypeVar("ExpiredHookT", bound=Callable[[UploadExpired], object])
DeletedHookT = TypeVar("DeletedHookT", bound=Callable[[ObjectDeleted], object])
EventHookT = TypeVar("EventHookT", bound=Callable[..., Any])


class EventHooks:
    """The event hooks of one app, in registration order, with their types."""

    def __init__(self) -> None:
        self._hooks: list[tuple[frozenset[str], Callable[..., Any]]] = []
        #: Called after each registration (the outbox gets ready to record).
        self.on_add: Callable[[], object] = lambda: None

    def add(self, types: Iterable[str], hook: EventHookT) -> EventHookT:
        self._hooks.append((frozenset(types), hook))
        self.on_add()
        return hook

    def entries(self) -> list[tuple[frozenset[str], Callable[..., Any]]]:
        """Each hook with the event types it takes, in registration order."""
        return list(self._hooks)

    def wants(self, event_type: str) -> bool:
        return any(event_type in types for types, _ in self._hooks)
