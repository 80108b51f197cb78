"""The S3 outbox's lease: who runs the delivery loop, as an object.

``<prefix>events/lease.json`` holds a holder token and an expiry, written
with a condition (``If-None-Match: *`` to take a free lease, ``If-Match`` on
the etag read to take an expired one or renew ours), as the sweep's lease
(:mod:`.s3sweep`): one holder at a time, however many gateways try. S3 has no
lock that dies with a process; a holder that dies is replaced once its lease
expires. Expiry uses the store's clock (the gateways' clocks must agree).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Protocol

from .s3engine import S3Engine
from .s3engine import WriteConflict

log = logging.getLogger(__name__)

OPERATION = "events"


class LeaseStore(Protocol):
    """What a lease uses of the :class:`~.s3store.S3Store` (typed here, not
    imported: the store imports the outbox, which imports this module)."""

    @property
    def engine(self) -> S3Engine: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...


class LeaseTerm(Protocol):
    """The outbox as its lease uses it (``lease_ttl``, read at each try), typed
    here: the outbox imports this module."""

    @property
    def lease_ttl(self) -> timedelta: ...


class S3Lease:
    """The delivery loop's lease (see the module docstring)."""

    def __init__(self, store: LeaseStore, name: str, outbox: LeaseTerm) -> None:
        self.store = store
        self.name = name
        self.outbox = outbox
        self.token = secrets.token_hex(16)
        self._renew_at: datetime | None = None

    def acquire(self) -> bool:
        moment = self.store.clock()
        if self._renew_at is not None and moment < self._renew_at:
            return True
        ttl = self.outbox.lease_ttl
        engine = self.store.engine
        body = json.dumps(
            {"holder": self.token, "until": (moment + ttl).isoformat()}
        ).encode()
        stored = engine.read(self.name, OPERATION)
        try:
            if stored is None:
                engine.write(self.name, body, OPERATION, if_absent=True)
            else:
                holder, until = _parse(stored.data)
                if holder != self.token and until is not None and until > moment:
                    self._renew_at = None
                    return False
                engine.write(self.name, body, OPERATION, if_match=stored.etag)
        except WriteConflict:
            self._renew_at = None
            return False
        self._renew_at = moment + ttl / 3
        return True

    def release(self) -> None:
        if self._renew_at is None:
            return
        self._renew_at = None
        engine = self.store.engine
        try:
            stored = engine.read(self.name, OPERATION)
            if stored is not None and _parse(stored.data)[0] == self.token:
                engine.delete(self.name, OPERATION)
        except Exception as error:  # it expires by itself
            log.warning("event lease not released: %r", error)


def _parse(data: bytes) -> tuple[str | None, datetime | None]:
    try:
        fields = json.loads(data)
        return str(fields["holder"]), datetime.fromisoformat(fields["until"])
    except (KeyError, TypeError, ValueError):
        return None, None  # not a lease of ours: taken over
