"""Turning events on in an app: consumers, the outbox's switch, metrics, the loop.

:func:`install_events` runs in ``create_app``; :func:`start_event_delivery`
in each gunicorn worker (``post_worker_init``); :func:`deliver_pending` runs
one round now (tests, scripts, servers other than gunicorn).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from typing import Protocol

from flask import Flask
from flask import g
from flask import has_request_context
from prometheus_client import CollectorRegistry

from .delivery import HOOK
from .delivery import WEBHOOK
from .delivery import Consumer
from .delivery import EventDelivery
from .delivery import EventMetrics
from .delivery import PendingEvents
from .model import Event
from .moments import EventHooks
from .moments import EventHookT
from .webhook import Webhook

log = logging.getLogger(__name__)

#: Where the app keeps its :class:`EventDelivery`.
EXTENSION = "mpuflask.events"


class EventMetricsHost(Protocol):
    """The app's metrics as :func:`install_events` adds to them (not imported:
    :mod:`mpuflask.observability` imports the stores, which import this package)."""

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def collectors(self) -> list[Any]: ...


class EventsHost(Protocol):
    """What :func:`install_events` uses of :class:`~mpuflask.extension.MpuFlask`
    (typed here, not imported: the extension imports this module)."""

    @property
    def bucket(self) -> object: ...

    @property
    def metrics(self) -> EventMetricsHost: ...

    @property
    def event_hooks(self) -> EventHooks: ...

    def after_event(self, hook: EventHookT) -> EventHookT: ...


def install_events(app: Flask, mpu: EventsHost) -> None:
    """Wire the configured webhook and event hooks to the store's outbox."""
    config = app.config
    for hook in config["MPUFLASK_EVENT_HOOKS"]:
        mpu.after_event(hook)
    url = config["MPUFLASK_WEBHOOK_URL"]
    secret = config["MPUFLASK_WEBHOOK_SECRET"]
    webhook_types = frozenset(config["MPUFLASK_WEBHOOK_EVENTS"])
    webhook = None
    if url is not None:
        webhook = Webhook(url, secret, float(config["MPUFLASK_WEBHOOK_TIMEOUT"]))
        if secret is None:
            log.warning(
                "MPUFLASK_WEBHOOK_URL is set without MPUFLASK_WEBHOOK_SECRET: "
                "events are sent to %s unsigned; receivers cannot tell them from "
                "forgeries (docs/hooks.md)",
                url,
            )
    outbox = getattr(mpu.bucket, "events", None)
    if outbox is None:
        if url is not None:
            log.warning("this store keeps no outbox: no events will be sent")
        return

    def consumers() -> list[Consumer]:
        found = []
        if webhook is not None:
            found.append(Consumer(WEBHOOK, WEBHOOK, webhook_types, webhook))
        for index, (types, hook) in enumerate(mpu.event_hooks.entries()):
            name = f"hook {index} ({getattr(hook, '__qualname__', repr(hook))})"
            found.append(Consumer(HOOK, name, types, _call(hook)))
        return found

    def wanted(event_type: str) -> bool:
        return (webhook is not None and event_type in webhook_types) or (
            mpu.event_hooks.wants(event_type)
        )

    metrics = EventMetrics(mpu.metrics.registry)
    pending = PendingEvents(outbox)
    mpu.metrics.registry.register(pending)
    mpu.metrics.collectors.append(pending)
    delivery = EventDelivery(
        app, outbox, consumers, metrics, float(config["MPUFLASK_EVENT_RETRY_MAX"])
    )

    def recorded(event: Event) -> None:
        metrics.recorded.labels(event.type).inc()
        delivery.notify()

    outbox.configure(wanted, _request_identity, recorded)
    mpu.event_hooks.on_add = outbox.prepare
    if webhook is not None or mpu.event_hooks.entries():
        outbox.prepare()
    app.extensions[EXTENSION] = delivery


def start_event_delivery(app: Flask) -> EventDelivery | None:
    """Start this process's delivery loop (it delivers while it holds the lease).

    Not started, and None, when nothing consumes events (no webhook, no event
    hook): then nothing is recorded and the data directory is left alone.
    """
    delivery: EventDelivery | None = app.extensions.get(EXTENSION)
    if delivery is None or not delivery.consumers():
        return None
    delivery.start()
    return delivery


def deliver_pending(app: Flask) -> int:
    """One delivery round now, in this thread; how many events were done.

    Every pending event is tried, whatever its backoff (see
    :meth:`~.delivery.EventDelivery.run_once`).
    """
    delivery: EventDelivery | None = app.extensions.get(EXTENSION)
    return 0 if delivery is None else delivery.run_once()


def _request_identity() -> str | None:
    """Who acts: the current request's identity (None outside a request)."""
    if has_request_context():
        identity: str | None = g.get("mpuflask_identity")
        return identity
    return None


def _call(hook: Callable[[Event], object]) -> Callable[[Event, bytes], object]:
    """A hook as a consumer: it gets the event, not the body."""

    def call(event: Event, body: bytes) -> object:
        return hook(event)

    return call
