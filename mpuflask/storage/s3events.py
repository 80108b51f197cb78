"""The S3 store's outbox: event objects under the state prefix.

Layout (prefix ``.mpuflask/`` by default; keys there are refused to clients)::

    <prefix>events/intents/p.<h>.json   a complete of upload U in progress
    <prefix>events/intents/a.<h>.json   an abort (or expiry) of U in progress
    <prefix>events/intents/d.<id>.json  a delete in progress
    <prefix>events/ready/<id>.json      events that happened, oldest first
                                        (by LastModified); deleted once delivered
    <prefix>events/lease.json           who runs the delivery loop, until when

``<h>`` is a hash of the upload id (engines' ids hold any printable ASCII).

A step writes its intent (the whole event) before the engine call that
commits it, then the ready object, then deletes the intent; if the engine call
fails, the step judges its own outcome by the rules below. S3 has no lock that
dies with a process, so an intent whose writer died is recognised by age: one
older than :attr:`S3Outbox.intent_grace` (longer than any step takes) is
judged by the delivery loop:

* publish: the engine still holds the upload (ListParts) - it did not happen;
  else the key's object carries the intent's etag - it happened; else the
  evidence is gone (overwritten or deleted since) and it is counted as
  happened (at-least-once: a lost event is worse than a doubtful one). The
  one false positive: a staged or empty complete killed between its two
  engine calls (the upload closed, the key not yet written).
* abort or expiry: the engine still holds the upload - it did not happen;
  else it did (a complete that won a race with it and was then killed
  before its ready write is the one case counted wrongly).
* delete: the key still holds the etag seen before the delete - it did not
  happen; else it did (an overwrite in the same moment counts as a delete).

The delivery loop's lease is an object too (:mod:`.s3lease`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

from botocore.exceptions import ClientError

from ..errors import NoSuchUpload
from ..events.model import ABORTED
from ..events.model import DELETED
from ..events.model import EXPIRED
from ..events.model import PUBLISHED
from ..events.model import Event
from ..events.model import ObjectDeleted
from ..events.model import ObjectPublished
from ..events.model import UploadAborted
from ..events.model import UploadExpired
from ..events.model import event_from_json
from ..events.model import new_event_id
from ..events.model import upload_event_id
from ..events.outbox import OutboxSwitch
from ..events.outbox import Pending
from .base import UploadedPart
from .s3errors import engine_errors
from .s3errors import is_not_found
from .s3lease import S3Lease
from .s3records import UploadRecord

if TYPE_CHECKING:
    from .s3 import S3Bucket

log = logging.getLogger(__name__)

HAPPENED = "happened"
NOT_HAPPENED = "not happened"


@dataclass
class Step:
    """Set ``happened = False`` when the engine says the step had nothing to do."""

    happened: bool = True


def _now() -> datetime:
    return datetime.now(UTC)


class S3Outbox(OutboxSwitch):
    """The outbox of an :class:`~.s3.S3Bucket` (``bucket.events``)."""

    #: The delivery loop lists ready events this often (a LIST request).
    poll_interval = 2.0
    #: ... and looks for intents of dead writers this often.
    settle_interval = 30.0
    #: A worker without the lease reads it this often (a GET; every worker of
    #: every gateway does): a dead holder is replaced within this plus its TTL.
    lease_interval = 10.0

    def __init__(self, bucket: S3Bucket) -> None:
        super().__init__()
        self.bucket = bucket
        #: An intent older than this is its dead writer's: judged by the rules.
        self.intent_grace = timedelta(minutes=5)
        self.lease_ttl = timedelta(seconds=30)
        self._bodies: dict[str, Pending] = {}

    @property
    def _prefix(self) -> str:
        return f"{self.bucket.state_prefix}events/"

    # -- in the store's steps --------------------------------------------------------

    @contextmanager
    def publishing(
        self, record: UploadRecord, listed: list[UploadedPart], etag: str
    ) -> Iterator[None]:
        """Record the publish of ``record``'s upload around its engine calls."""
        info = record.info
        event = ObjectPublished(
            id=upload_event_id(PUBLISHED, info.key, info.upload_id),
            key=info.key,
            time=self.bucket.clock(),
            upload_id=info.upload_id,
            etag=etag,
            size=sum(part.size for part in listed),
            parts=len(listed),
            http_metadata=dict(info.http_metadata.headers),
            identity=self.identity(),
            owner=info.owner,
        )
        check = {"engine_key": record.engine_key, "etag": etag}
        with self._step(f"p.{_hash(info.upload_id)}", event, check):
            yield

    @contextmanager
    def ending(self, record: UploadRecord | None) -> Iterator[Step]:
        """Record an abort (or expiry) of ``record``'s upload; None: no event."""
        if record is None:
            yield Step()
            return
        info = record.info
        now = self.bucket.clock()
        event: Event
        if info.expires <= now:
            event = UploadExpired(
                id=upload_event_id(EXPIRED, info.key, info.upload_id),
                key=info.key,
                time=now,
                upload_id=info.upload_id,
                owner=info.owner,
                expires=info.expires,
            )
        else:
            event = UploadAborted(
                id=upload_event_id(ABORTED, info.key, info.upload_id),
                key=info.key,
                time=now,
                upload_id=info.upload_id,
                identity=self.identity(),
                owner=info.owner,
            )
        check = {"engine_key": record.engine_key}
        with self._step(f"a.{_hash(info.upload_id)}", event, check) as step:
            yield step

    def deleting(self, key: str, delete: Callable[[], object]) -> None:
        """Delete ``key`` with ``delete()``, recording the event if it held an object.

        A key that holds nothing when looked at is left alone (the delete
        takes effect at that look: a publish after it stands).
        """
        if not self.wanted(DELETED):
            delete()
            return
        found = self.bucket.head(key)
        if found is None:
            return
        event = ObjectDeleted(
            id=new_event_id(),
            key=key,
            time=self.bucket.clock(),
            etag=found.etag,
            size=found.size,
            identity=self.identity(),
        )
        with self._step(f"d.{event.id}", event, {"etag": found.etag}):
            delete()

    @contextmanager
    def _step(self, name: str, event: Event, check: dict[str, Any]) -> Iterator[Step]:
        if not self.wanted(event.type):
            yield Step()
            return
        intent = f"{self._prefix}intents/{name}.json"
        self.put(intent, _record(event, check), "events")
        step = Step()
        try:
            yield step
        except BaseException:
            try:
                if self._judge(event, check, live=True) == HAPPENED:
                    self._make_ready(intent, event, check)
                else:
                    self.delete(intent)
            except Exception:  # the intent stays: judged later by age
                log.exception("event %s left to be settled later", event.id)
            raise
        try:
            if step.happened:
                self._make_ready(intent, event, check)
            else:
                self.delete(intent)
        except Exception:  # past the commit: never the client's answer
            log.exception("event %s left to be settled later", event.id)

    # -- the rules ---------------------------------------------------------------

    def _judge(self, event: Event, check: dict[str, Any], live: bool = False) -> str:
        """Whether an intent's step happened (module rules).

        ``live``: judged by the step itself, whose engine call raised; then a
        publish happened only if the key shows it (the engine's refusal is
        not doubted, only a lost answer is).
        """
        if event.type == DELETED:
            found = self.bucket.head(event.key)
            still = found is not None and found.etag == check.get("etag")
            return NOT_HAPPENED if still else HAPPENED
        upload_id = getattr(event, "upload_id", "")
        if self._upload_open(str(check.get("engine_key", event.key)), upload_id):
            return NOT_HAPPENED
        if event.type == PUBLISHED:
            found = self.bucket.head(event.key)
            if found is not None and found.etag == check.get("etag"):
                return HAPPENED
            if live:
                return NOT_HAPPENED
            log.warning(
                "event %s: upload %s is gone and %s shows another version; "
                "counted as published",
                event.id,
                upload_id,
                event.key,
            )
        return HAPPENED

    def _upload_open(self, engine_key: str, upload_id: str) -> bool:
        """Whether the engine still holds the upload (ListParts answers)."""
        try:
            with engine_errors("events", upload=True):
                self.bucket.client.list_parts(
                    Bucket=self.bucket.bucket,
                    Key=engine_key,
                    UploadId=upload_id,
                    MaxParts=1,
                )
        except NoSuchUpload:
            return False
        return True

    def settle(self) -> int:
        settled = 0
        cutoff = _now() - self.intent_grace
        for item in self.bucket.list_objects(f"{self._prefix}intents/", "events"):
            if item["LastModified"] >= cutoff:
                continue  # its writer may still be at work
            name = item["Key"]
            data = self.get(name)
            if data is None:
                continue
            try:
                record = json.loads(data)
                event = event_from_json(record["event"])
                check = dict(record["check"])
            except (KeyError, TypeError, ValueError) as error:
                log.error("%s is not an intent: %s; removed", name, error)
                self.delete(name)
                continue
            if self._judge(event, check) == HAPPENED:
                self._make_ready(name, event, check)
            else:
                self.delete(name)
            settled += 1
        return settled

    # -- for the delivery loop ---------------------------------------------------

    def ready(self, limit: int) -> list[Pending]:
        items = list(self.bucket.list_objects(f"{self._prefix}ready/", "events"))
        items.sort(key=lambda item: (item["LastModified"], item["Key"]))
        found = []
        listed = set()
        for item in items[: min(limit, 200)]:
            name = item["Key"]
            listed.add(name)
            pending = self._bodies.get(name)
            if pending is None:
                data = self.get(name)
                if data is None:
                    continue
                try:
                    event_json = json.loads(data)["event"]
                    pending = Pending(
                        name, event_from_json(event_json), _body(event_json)
                    )
                except (KeyError, TypeError, ValueError) as error:
                    log.error("%s cannot be delivered: %s; removed", name, error)
                    self.delete(name)
                    continue
                self._bodies[name] = pending
            found.append(pending)
        for name in [n for n in self._bodies if n not in listed]:
            del self._bodies[name]
        return found

    def done(self, pending: Pending) -> None:
        self.delete(pending.name)
        self._bodies.pop(pending.name, None)

    def pending_count(self) -> int:
        count = 0
        for area in ("intents/", "ready/"):
            count += sum(
                1 for _ in self.bucket.list_objects(self._prefix + area, "events")
            )
        return count

    def lease(self) -> S3Lease:
        return S3Lease(self, f"{self._prefix}lease.json")

    # -- objects -----------------------------------------------------------------

    def _make_ready(self, intent: str, event: Event, check: dict[str, Any]) -> None:
        self.put(
            f"{self._prefix}ready/{event.id}.json", _record(event, check), "events"
        )
        self.delete(intent)
        self.recorded(event)

    def put(self, name: str, data: bytes, operation: str) -> None:
        with engine_errors(operation):
            self.bucket.client.put_object(
                Bucket=self.bucket.bucket,
                Key=name,
                Body=data,
                ContentType="application/json",
            )

    def get(self, name: str) -> bytes | None:
        with engine_errors("events"):
            try:
                answer = self.bucket.client.get_object(
                    Bucket=self.bucket.bucket, Key=name
                )
            except ClientError as error:
                if is_not_found(error):
                    return None
                raise
            data: bytes = answer["Body"].read()
            return data

    def delete(self, name: str) -> None:
        with engine_errors("events"):
            self.bucket.client.delete_object(Bucket=self.bucket.bucket, Key=name)


def _hash(upload_id: str) -> str:
    return hashlib.sha256(upload_id.encode()).hexdigest()[:32]


def _record(event: Event, check: dict[str, Any]) -> bytes:
    return json.dumps(
        {"event": event.to_json(), "check": check},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def _body(event_json: Any) -> bytes:
    return json.dumps(event_json, ensure_ascii=False, separators=(",", ":")).encode()
