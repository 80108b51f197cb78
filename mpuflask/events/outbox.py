"""The outbox: where a store keeps events between the step and their delivery.

Each store has one (``bucket.events``): :mod:`mpuflask.storage.fsevents` in the
data directory, :mod:`mpuflask.storage.s3events` under the state prefix. The
store writes to it inside the step that publishes, aborts or deletes (before
the step's commit point, so a crash at any instant leaves a record or no
step); the delivery loop (:mod:`.delivery`) reads it through the
:class:`Outbox` protocol below, one loop per server, chosen by the outbox's
:class:`Lease`.

Nothing is recorded unless something consumes events: the app says so with
:meth:`OutboxSwitch.configure` (a webhook, or any event hook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .model import Event


class Lease(Protocol):
    """The right to run the server's one delivery loop."""

    def acquire(self) -> bool:
        """Take the lease, or keep it; True while we hold it."""
        ...

    def release(self) -> None:
        """Give it up (another process takes over)."""
        ...


@dataclass(frozen=True)
class Pending:
    """An event that happened and waits for delivery; ``name`` is its record."""

    name: str
    event: Event
    #: The record's JSON body, exactly as the webhook sends it.
    body: bytes


class Outbox(Protocol):
    """What the delivery loop needs from a store's outbox."""

    def settle(self) -> int:
        """Decide the records whose writer died mid-step; return how many."""
        ...

    def ready(self, limit: int) -> list[Pending]:
        """Up to ``limit`` events that happened, oldest first."""
        ...

    def done(self, pending: Pending) -> None:
        """Forget a delivered event."""
        ...

    def pending_count(self) -> int:
        """Events recorded and not yet delivered (the pending gauge)."""
        ...

    def lease(self) -> Lease:
        """A lease on this outbox's delivery loop (one per caller)."""
        ...


def _never(event_type: str) -> bool:
    return False


def _anonymous() -> str | None:
    return None


def _ignore(event: Event) -> None:
    return None


class OutboxSwitch:
    """The store side's settings: which events to record, and for whom.

    ``wanted(type)``: whether any consumer takes events of that type (else no
    record is written and the step costs nothing more); ``identity()``: who
    acts in the current request; ``recorded(event)``: called once an event
    has happened (metrics, and waking the delivery loop of this process).
    """

    def __init__(self) -> None:
        self.wanted: Callable[[str], bool] = _never
        self.identity: Callable[[], str | None] = _anonymous
        self.recorded: Callable[[Event], None] = _ignore

    def configure(
        self,
        wanted: Callable[[str], bool],
        identity: Callable[[], str | None],
        recorded: Callable[[Event], None],
    ) -> None:
        self.wanted, self.identity, self.recorded = wanted, identity, recorded

    def prepare(self) -> None:
        """Get ready to record (make what the outbox needs), before any request:
        a step's first event must not leave anything behind if it fails."""
