"""An event hook named by configuration in tests (``tests.event_sink:record``)."""

from __future__ import annotations

from mpuflask.events import Event

#: What :func:`record` was called with, in order.
EVENTS: list[Event] = []


def record(event: Event) -> None:
    EVENTS.append(event)
