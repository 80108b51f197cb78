"""The S3 outbox's lease: who runs the delivery loop, as an object.

``<prefix>events/lease.json`` holds a holder token and an expiry (real time,
not the store's test clock): taken when absent, expired or ours, renewed
every third of its time, and read back after writing (the last writer wins).
S3 has no lock that dies with a process; a holder that dies is replaced once
its lease expires. Two loops may overlap for a moment after a takeover:
delivery is at-least-once, and receivers drop duplicates by id.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .s3events import S3Outbox

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class S3Lease:
    """The delivery loop's lease: an object naming its holder and expiry."""

    def __init__(self, outbox: S3Outbox, name: str) -> None:
        self.outbox = outbox
        self.name = name
        self.token = secrets.token_hex(16)
        self._renew_at: datetime | None = None

    def acquire(self) -> bool:
        now = _now()
        if self._renew_at is not None and now < self._renew_at:
            return True
        ttl: timedelta = self.outbox.lease_ttl
        current = self._read()
        if current is not None and current[0] != self.token and current[1] > now:
            self._renew_at = None
            return False
        until = now + ttl
        body = json.dumps({"holder": self.token, "until": until.isoformat()}).encode()
        self.outbox.put(self.name, body, "events")
        confirmed = self._read()
        if confirmed is None or confirmed[0] != self.token:
            self._renew_at = None
            return False
        self._renew_at = now + ttl / 3
        return True

    def release(self) -> None:
        if self._renew_at is None:
            return
        self._renew_at = None
        try:
            current = self._read()
            if current is not None and current[0] == self.token:
                self.outbox.delete(self.name)
        except Exception as error:  # it expires by itself
            log.warning("event lease not released: %r", error)

    def _read(self) -> tuple[str, datetime] | None:
        data = self.outbox.get(self.name)
        if data is None:
            return None
        try:
            fields = json.loads(data)
            return str(fields["holder"]), datetime.fromisoformat(fields["until"])
        except (KeyError, TypeError, ValueError):
            return None  # not ours: taken over
