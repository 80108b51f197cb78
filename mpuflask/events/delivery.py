"""The delivery loop: one per server, taking events from the outbox to consumers.

Every gunicorn worker starts an :class:`EventDelivery` thread
(``post_worker_init`` in gunicorn.conf.py); only the one holding the outbox's
lease delivers, the others try for the lease now and then and take over when
its holder dies (filesystem: an flock the kernel drops; s3: a lease object
that expires).

A round: settle intents whose writer died (now and then), then hand each
ready event, oldest first, to every consumer that takes its type (the
webhook, the event hooks). An event is done, and removed from the outbox,
once every consumer took it; until then it stays, so delivery is
at-least-once: a crash between a consumer taking it and its removal means it
is delivered again, with the same id. A consumer that fails (raises, or the
webhook answers non-2xx or not at all) is skipped for the rest of the round,
and the event is tried again after an exponential backoff with jitter
(1 s, 2 s, 4 s, ... up to ``MPUFLASK_EVENT_RETRY_MAX``), forever: events are
never dropped. Consumers that took it already are not called again by this
process.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from .model import Event
from .outbox import Outbox
from .outbox import Pending

log = logging.getLogger(__name__)

#: The consumer label of the metrics: a closed set.
WEBHOOK = "webhook"
HOOK = "hook"


@dataclass(frozen=True)
class Consumer:
    """Something that takes events: ``call(event, body)`` raises to refuse."""

    label: str  # WEBHOOK or HOOK
    name: str
    types: frozenset[str]
    call: Callable[[Event, bytes], object]


@dataclass
class _Tries:
    """What this process knows of an event's delivery so far."""

    failures: int = 0
    due: float = 0.0
    taken_by: set[str] = field(default_factory=set)


class EventMetrics:
    """The events' Prometheus metrics (multi-process: summed over workers)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.recorded = Counter(
            "mpuflask_events_recorded",
            "Events that happened and were recorded in the outbox, by type.",
            ["type"],
            registry=registry,
        )
        self.delivered = Counter(
            "mpuflask_events_delivered",
            "Events every consumer took, by type.",
            ["type"],
            registry=registry,
        )
        self.retried = Counter(
            "mpuflask_events_retried",
            "Failed deliveries that will be tried again, by type and consumer.",
            ["type", "consumer"],
            registry=registry,
        )


class PendingEvents:
    """Collector: events recorded and not yet delivered, read from the store."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def collect(self) -> list[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "mpuflask_events_pending", "Events waiting for delivery (all workers)."
        )
        try:
            gauge.add_metric([], float(self.outbox.pending_count()))
        except Exception as error:  # a scrape must not fail with the store
            log.warning("pending events not counted: %r", error)
            return []
        return [gauge]


class EventDelivery:
    """Delivers an outbox's events to consumers (see the module docstring)."""

    def __init__(
        self,
        app: Flask,
        outbox: Outbox,
        consumers: Callable[[], list[Consumer]],
        metrics: EventMetrics,
        max_delay: float,
    ) -> None:
        self.app = app
        self.outbox = outbox
        self.consumers = consumers
        self.metrics = metrics
        #: The first retry waits about this long, each next one twice as long...
        self.base_delay = 1.0
        #: ... up to this (``MPUFLASK_EVENT_RETRY_MAX``).
        self.max_delay = max_delay
        #: How often the loop looks for events other processes recorded.
        self.poll_interval: float = getattr(outbox, "poll_interval", 0.5)
        #: How often it settles intents of dead writers.
        self.settle_interval: float = getattr(outbox, "settle_interval", 2.0)
        #: How often a worker without the lease tries for it.
        self.lease_interval: float = getattr(outbox, "lease_interval", 1.0)
        self.batch = 1000
        self._tries: dict[str, _Tries] = {}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._settled_at = float("-inf")

    # -- one round ---------------------------------------------------------------

    def run_once(self) -> int:
        """Settle, then try every pending event now; return how many were done.

        The loop's round, callable directly (tests, scripts), except that no
        event waits for its backoff. It does not take the lease, so two
        callers may both deliver (receivers drop duplicates by id).
        """
        self.outbox.settle()
        self._settled_at = time.monotonic()
        return self._deliver_due(float("inf"))

    def _deliver_due(self, now: float | None = None) -> int:
        consumers = self.consumers()
        pending = self.outbox.ready(self.batch)
        now = time.monotonic() if now is None else now
        failing: set[str] = set()
        done = 0
        for item in pending:
            tries = self._tries.setdefault(item.event.id, _Tries())
            if tries.due > now:
                continue
            if self._deliver(item, tries, consumers, failing):
                self.outbox.done(item)
                self._tries.pop(item.event.id, None)
                self.metrics.delivered.labels(item.event.type).inc()
                done += 1
        if len(pending) < self.batch:  # forget what another process delivered
            listed = {item.event.id for item in pending}
            for event_id in [i for i in self._tries if i not in listed]:
                del self._tries[event_id]
        return done

    def _deliver(
        self,
        item: Pending,
        tries: _Tries,
        consumers: Iterable[Consumer],
        failing: set[str],
    ) -> bool:
        """Hand ``item`` to each consumer that wants it; True once all took it."""
        event = item.event
        for consumer in consumers:
            if event.type not in consumer.types or consumer.name in tries.taken_by:
                continue
            if consumer.name in failing:
                return False  # it failed this round already: spare it
            try:
                with self.app.app_context():
                    consumer.call(event, item.body)
            except Exception as error:
                failing.add(consumer.name)
                tries.failures += 1
                delay = self.delay(tries.failures)
                tries.due = time.monotonic() + delay
                self.metrics.retried.labels(event.type, consumer.label).inc()
                log.warning(
                    "event %s (%s %s) not taken by %s: %r; retry %d in %.1f s",
                    event.id,
                    event.type,
                    event.key,
                    consumer.name,
                    error,
                    tries.failures,
                    delay,
                    extra={"event_id": event.id, "consumer": consumer.name},
                )
                return False
            tries.taken_by.add(consumer.name)
        return True

    def delay(self, failures: int) -> float:
        """The wait before try ``failures + 1``: doubling, capped, jittered."""
        doubled: float = self.base_delay * 2.0 ** min(failures - 1, 40)
        return min(self.max_delay, doubled) * random.uniform(0.5, 1.0)

    # -- the loop ----------------------------------------------------------------

    def notify(self) -> None:
        """An event was recorded in this process: look now, not at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Run the loop in a daemon thread (it delivers only with the lease)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="mpuflask-events", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        lease = self.outbox.lease()
        holding = False
        try:
            while not self._stopped.is_set():
                try:
                    holding = lease.acquire()
                    if not holding:
                        self._stopped.wait(self.lease_interval)
                        continue
                    if time.monotonic() - self._settled_at >= self.settle_interval:
                        self.outbox.settle()
                        self._settled_at = time.monotonic()
                    self._deliver_due()
                except Exception:  # keep delivering later; never kill the worker
                    log.exception("event delivery round failed")
                self._wake.wait(self._next_wait())
                self._wake.clear()
        finally:
            lease.release()

    def _next_wait(self) -> float:
        """Until the next poll, or the first retry due before it."""
        now = time.monotonic()
        soonest = min((t.due for t in self._tries.values()), default=float("inf"))
        return max(0.0, min(self.poll_interval, soonest - now))
