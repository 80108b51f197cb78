"""The current app's mpuflask, as views see it: ``current_app.extensions["mpuflask"]``.

Views need the store, the metrics, the caller's identity and the hooks to
run. They reach them here rather than through :mod:`mpuflask.extension`,
which imports the blueprints to register them (else the two would import
each other). :class:`AppMpu` is what :class:`~mpuflask.extension.MpuFlask`
promises views; mypy checks that it keeps the promise.
"""

from __future__ import annotations

from typing import Protocol
from typing import cast

from flask import current_app
from flask import g

from .hooks import RequestInfo
from .hooks import StreamCheck
from .hooks import request_info
from .observability import Metrics
from .storage import Bucket
from .storage import PublishCheck


class AppMpu(Protocol):
    """What views use of :class:`~mpuflask.extension.MpuFlask`."""

    @property
    def bucket(self) -> Bucket: ...

    @property
    def metrics(self) -> Metrics: ...

    def part_checks(self, upload_id: str, part_number: int) -> list[StreamCheck]:
        """Run the part validators' header stage on this request's part; the
        stream checks they return."""
        ...

    def publish_check(self, upload_id: str) -> PublishCheck | None:
        """The completion validators as the store's check (None: there are none)."""
        ...


def mpuflask() -> AppMpu:
    """The current app's mpuflask."""
    return cast(AppMpu, current_app.extensions["mpuflask"])


def bucket() -> Bucket:
    """The current app's store."""
    return mpuflask().bucket


def current_identity() -> str | None:
    """The identity the auth hooks gave this request (None: anonymous).

    Set by :meth:`~mpuflask.extension.MpuFlask.authenticate_request`, the
    app-wide before-request hook, as ``g.mpuflask_identity``.
    """
    identity: str | None = g.get("mpuflask_identity")
    return identity


def current_request_info() -> RequestInfo:
    """This request as the hooks saw it (made now if no auth hook ran)."""
    info = g.get("mpuflask_request")
    return info if isinstance(info, RequestInfo) else request_info()
