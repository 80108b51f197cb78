"""The S3 store's outbox: event objects under the state prefix.

Layout (prefix ``.mpuflask/`` by default; keys there are refused to clients)::

    <prefix>events/intents/p.<h>.json   a complete of upload U in progress
    <prefix>events/intents/a.<h>.json   an abort (or expiry) of U in progress
    <prefix>events/intents/d.<id>.json  a delete in progress
    <prefix>events/ready/<id>.json      events that happened, oldest first
                                        (by LastModified); deleted once delivered
    <prefix>events/lease.json           who runs the delivery loop (:mod:`.s3lease`)

``<h>`` is a hash of the upload id (engines' ids hold any printable ASCII).

A step writes its intent (the whole event) before the engine call that
commits it: a complete once it holds its claim (:mod:`.s3claim`), before the
close; an abort or expiry before ``AbortMultipartUpload``; a delete before
``DeleteObject``. Then it writes the ready object and deletes the intent; if
the engine call fails, the step judges its own outcome by the rules below.
S3 has no lock that dies with a process, so an intent whose writer died is
recognised by age: one older than :attr:`S3Outbox.intent_grace` (longer than
any step takes) is judged by the delivery loop:

* publish: while the upload's record still holds a claim, undecided (the
  claim's holder, a later complete or the sweep finishes it); else the
  engine still holds the upload (ListParts): it did not happen; else the
  key's object carries the upload's token: it happened; else the evidence is
  gone (overwritten or deleted since) and it counts as happened (at least
  once: a doubtful event rather than a lost one). Counted wrongly: a
  complete that lost a race with an abort of the same upload and was killed
  before it cleaned up.
* abort or expiry: the engine still holds the upload: it did not happen;
  else it did.
* delete: the key still has the etag seen before the delete: it did not
  happen; else it did (an overwrite in the same moment counts as a delete).

A publish finished by another request or the sweep (a claim taken over) has
its event from the dead holder's intent, judged as above once it is old.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Protocol

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
from .s3engine import S3Engine
from .s3lease import S3Lease
from .s3records import UPLOAD_META
from .s3records import UploadRecord
from .s3records import object_info

log = logging.getLogger(__name__)

EVENTS = "events"
HAPPENED = "happened"
NOT_HAPPENED = "not happened"
UNDECIDED = "undecided"


def now() -> datetime:
    """Real time: an intent's age is against the engine's LastModified."""
    return datetime.now(UTC)


class OutboxStore(Protocol):
    """What the outbox uses of the :class:`~.s3store.S3Store` (typed here, not
    imported: the store makes its outbox, so it imports this module)."""

    @property
    def engine(self) -> S3Engine: ...

    @property
    def prefix(self) -> str: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    def read_record(
        self, upload_id: str, operation: str
    ) -> tuple[UploadRecord, str] | None: ...


@dataclass
class Step:
    """Set ``happened = False`` when the engine says the step had nothing to do."""

    happened: bool = True


class S3Outbox(OutboxSwitch):
    """The outbox of an S3 store (``bucket.events``)."""

    #: The delivery loop lists ready events this often (a LIST request).
    poll_interval = 2.0
    #: ... and looks for intents of dead writers this often.
    settle_interval = 30.0
    #: A worker without the lease reads it this often (a GET; every worker of
    #: every gateway does): a dead holder is replaced within this plus its TTL.
    lease_interval = 10.0

    def __init__(self, store: OutboxStore) -> None:
        super().__init__()
        self.store = store
        #: An intent older than this is its dead writer's: judged by the rules.
        self.intent_grace = timedelta(minutes=5)
        self.lease_ttl = timedelta(seconds=30)
        self._bodies: dict[str, Pending] = {}

    @property
    def _prefix(self) -> str:
        return f"{self.store.prefix}{EVENTS}/"

    # -- in the store's steps --------------------------------------------------------

    @contextmanager
    def publishing(
        self, record: UploadRecord, parts: Sequence[UploadedPart], etag: str
    ) -> Iterator[None]:
        """Record the publish of ``record``'s upload around its close."""
        info = record.info
        event = ObjectPublished(
            id=upload_event_id(PUBLISHED, info.key, info.upload_id),
            key=info.key,
            time=self.store.clock(),
            upload_id=info.upload_id,
            etag=etag,
            size=sum(part.size for part in parts),
            parts=len(parts),
            http_metadata=dict(info.http_metadata.headers),
            identity=self.identity(),
            owner=info.owner,
        )
        check = {"engine_key": record.engine_key, "etag": etag, "token": record.token}
        with self._step(f"p.{_hash(info.upload_id)}", event, check):
            yield

    @contextmanager
    def ending(self, record: UploadRecord) -> Iterator[Step]:
        """Record an abort (or expiry, if ``record`` has expired) around its
        ``AbortMultipartUpload``; the caller sets ``step.happened``."""
        info = record.info
        moment = self.store.clock()
        event: Event
        if info.expires <= moment:
            event = UploadExpired(
                id=upload_event_id(EXPIRED, info.key, info.upload_id),
                key=info.key,
                time=moment,
                upload_id=info.upload_id,
                owner=info.owner,
                expires=info.expires,
            )
        else:
            event = UploadAborted(
                id=upload_event_id(ABORTED, info.key, info.upload_id),
                key=info.key,
                time=moment,
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
        found = self.store.engine.head(key, "delete")
        if found is None:
            return
        version = object_info(key, found)[0]
        event = ObjectDeleted(
            id=new_event_id(),
            key=key,
            time=self.store.clock(),
            etag=version.etag,
            size=version.size,
            identity=self.identity(),
        )
        with self._step(f"d.{event.id}", event, {"etag": version.etag}):
            delete()

    @contextmanager
    def _step(self, name: str, event: Event, check: dict[str, Any]) -> Iterator[Step]:
        if not self.wanted(event.type):
            yield Step()
            return
        intent = f"{self._prefix}intents/{name}.json"
        self._write_intent(intent, event, check)
        step = Step()
        try:
            yield step
        except BaseException:
            try:
                if self._judge(event, check, live=True) == HAPPENED:
                    self._make_ready(intent, event, check)
                else:
                    self.store.engine.delete(intent, "events")
            except Exception:  # the intent stays: judged later by age
                log.exception("event %s left to be settled later", event.id)
            raise
        try:
            if step.happened:
                self._make_ready(intent, event, check)
            else:
                self.store.engine.delete(intent, "events")
        except Exception:  # past the commit: never the client's answer
            log.exception("event %s left to be settled later", event.id)

    # -- the rules ---------------------------------------------------------------

    def _judge(self, event: Event, check: dict[str, Any], live: bool = False) -> str:
        """Whether an intent's step happened (the module's rules).

        ``live``: judged by the step itself, whose engine call raised; then a
        publish happened only if the key shows it (the engine's refusal is
        not doubted, only a lost answer is).
        """
        engine = self.store.engine
        if event.type == DELETED:
            found = engine.head(event.key, "events")
            same = found is not None and object_info(event.key, found)[0].etag == (
                check.get("etag")
            )
            return NOT_HAPPENED if same else HAPPENED
        upload_id = str(getattr(event, "upload_id", ""))
        if event.type == PUBLISHED and not live:
            found_record = self.store.read_record(upload_id, "events")
            if found_record is not None and found_record[0].claim is not None:
                return UNDECIDED  # a claim in progress: its finisher decides
        if self._upload_open(str(check.get("engine_key", event.key)), upload_id):
            return NOT_HAPPENED
        if event.type != PUBLISHED:
            return HAPPENED
        head = engine.head(event.key, "events")
        token = check.get("token")
        if (
            token
            and head is not None
            and (head.get("Metadata", {}).get(UPLOAD_META) == token)
        ):
            return HAPPENED
        if live:
            return NOT_HAPPENED
        log.warning(
            "event %s: upload %s is closed and %s shows another version; "
            "counted as published",
            event.id,
            upload_id,
            event.key,
        )
        return HAPPENED

    def _upload_open(self, engine_key: str, upload_id: str) -> bool:
        """Whether the engine still holds the upload (ListParts answers)."""
        try:
            self.store.engine.list_parts(engine_key, upload_id, "events")
        except NoSuchUpload:
            return False
        return True

    def settle(self) -> int:
        settled = 0
        cutoff = now() - self.intent_grace
        for item in self.store.engine.list_objects(f"{self._prefix}intents/", "events"):
            if item.modified >= cutoff:
                continue  # its writer may still be at work
            stored = self.store.engine.read(item.key, "events")
            if stored is None:
                continue
            try:
                record = json.loads(stored.data)
                event = event_from_json(record["event"])
                check = dict(record["check"])
            except (KeyError, TypeError, ValueError) as error:
                log.error("%s is not an intent: %s; removed", item.key, error)
                self.store.engine.delete(item.key, "events")
                continue
            verdict = self._judge(event, check)
            if verdict == HAPPENED:
                self._make_ready(item.key, event, check)
            elif verdict == NOT_HAPPENED:
                self.store.engine.delete(item.key, "events")
            settled += verdict != UNDECIDED
        return settled

    # -- for the delivery loop ---------------------------------------------------

    def prepare(self) -> None:
        return None  # nothing to make: objects need no directories

    def ready(self, limit: int) -> list[Pending]:
        engine = self.store.engine
        items = list(engine.list_objects(f"{self._prefix}ready/", "events"))
        items.sort(key=lambda item: (item.modified, item.key))
        found = []
        listed = set()
        for item in items[: min(limit, 200)]:
            listed.add(item.key)
            pending = self._bodies.get(item.key)
            if pending is None:
                stored = engine.read(item.key, "events")
                if stored is None:
                    continue
                try:
                    event_json = json.loads(stored.data)["event"]
                    event = event_from_json(event_json)
                except (KeyError, TypeError, ValueError) as error:
                    log.error("%s cannot be delivered: %s; removed", item.key, error)
                    engine.delete(item.key, "events")
                    continue
                pending = Pending(item.key, event, _body(event_json))
                self._bodies[item.key] = pending
            found.append(pending)
        for name in [n for n in self._bodies if n not in listed]:
            del self._bodies[name]
        return found

    def done(self, pending: Pending) -> None:
        self.store.engine.delete(pending.name, "events")
        self._bodies.pop(pending.name, None)

    def pending_count(self) -> int:
        count = 0
        for area in ("intents/", "ready/"):
            listed = self.store.engine.list_objects(self._prefix + area, "events")
            count += sum(1 for _ in listed)
        return count

    def lease(self) -> S3Lease:
        return S3Lease(self.store, f"{self._prefix}lease.json", self)

    def _write_intent(self, intent: str, event: Event, check: dict[str, Any]) -> None:
        self.store.engine.write(intent, _record(event, check), "events")

    def _make_ready(self, intent: str, event: Event, check: dict[str, Any]) -> None:
        ready = f"{self._prefix}ready/{event.id}.json"
        self.store.engine.write(ready, _record(event, check), "events")
        self.store.engine.delete(intent, "events")
        self.recorded(event)


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
