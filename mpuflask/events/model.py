"""What happened: the four events, their ids and their JSON.

An event is a frozen dataclass, one per kind, as the other hooks receive one
(:mod:`mpuflask.hooks`). Its JSON (:meth:`Event.to_json`) is both what the
store records in its outbox and the webhook's body, so a redelivery sends the
very same bytes.

Ids are stable and unique per event. An upload ends once (published, aborted
or expired), so the id of that ending is derived from its upload id: a
complete retried after a crash, or a record settled twice, yields the same id.
A delete has no such name: its id is minted once, before the delete, and kept
in the record.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields
from datetime import datetime
from typing import Any
from typing import ClassVar

PUBLISHED = "object-published"
ABORTED = "upload-aborted"
EXPIRED = "upload-expired"
DELETED = "object-deleted"
#: Every event type, in the order docs/hooks.md lists them.
EVENT_TYPES = (PUBLISHED, ABORTED, EXPIRED, DELETED)


def upload_event_id(event_type: str, key: str, upload_id: str) -> str:
    """The id of the event that ended an upload: the same on every attempt."""
    message = "\0".join(("mpuflask-event-v1", event_type, key, upload_id))
    return hashlib.sha256(message.encode()).hexdigest()[:32]


def new_event_id() -> str:
    """A fresh id, for an event no upload names (a delete)."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Event:
    """Something that happened to a key; the fields every event has.

    ``id`` is unique per event and the same on every redelivery: receivers
    drop duplicates by it. ``time`` is when it happened (UTC).
    """

    type: ClassVar[str] = ""

    id: str
    key: str
    time: datetime

    def to_json(self) -> dict[str, Any]:
        """The event as the webhook sends it (camelCase, times in ISO 8601)."""
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "key": self.key,
            "time": self.time.isoformat(),
        }
        for name, value in _fields(self).items():
            body[_camel(name)] = (
                value.isoformat() if isinstance(value, datetime) else value
            )
        return body


@dataclass(frozen=True)
class ObjectPublished(Event):
    """An upload was completed: its parts are now the key's object."""

    type: ClassVar[str] = PUBLISHED

    upload_id: str
    etag: str
    size: int
    #: How many parts the object was assembled from.
    parts: int
    http_metadata: Mapping[str, str]
    #: Who completed it (what the auth hooks returned; None: anonymous).
    identity: str | None
    #: Who created the upload.
    owner: str | None


@dataclass(frozen=True)
class UploadAborted(Event):
    """An open upload was aborted; its parts are gone."""

    type: ClassVar[str] = ABORTED

    upload_id: str
    #: Who aborted it.
    identity: str | None
    owner: str | None


@dataclass(frozen=True)
class UploadExpired(Event):
    """An upload reached its expiry unfinished and was removed.

    Removed by the sweep, or by an abort that came after its expiry.
    """

    type: ClassVar[str] = EXPIRED

    upload_id: str
    owner: str | None
    expires: datetime


@dataclass(frozen=True)
class ObjectDeleted(Event):
    """A delete removed the key's object (a delete of an absent key is no event)."""

    type: ClassVar[str] = DELETED

    #: The removed version's etag and size (None where the store cannot say).
    etag: str | None
    size: int | None
    #: Who deleted it.
    identity: str | None


_KINDS: dict[str, type[Event]] = {
    kind.type: kind
    for kind in (ObjectPublished, UploadAborted, UploadExpired, ObjectDeleted)
}


def event_from_json(body: Mapping[str, Any]) -> Event:
    """The event a :meth:`Event.to_json` body describes; ValueError if it is not one."""
    try:
        kind = _KINDS[body["type"]]
        values: dict[str, Any] = {
            "id": _text(body["id"]),
            "key": _text(body["key"]),
            "time": _time(body["time"]),
        }
        for name in _field_names(kind):
            value = body.get(_camel(name))
            if name in ("time", "expires"):
                value = _time(value)
            elif name == "http_metadata":
                if not isinstance(value, Mapping):
                    raise ValueError("httpMetadata is not an object")
                value = {str(k): str(v) for k, v in value.items()}
            values[name] = value
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not an mpuflask event: {error!r}") from None
    return kind(**values)


def _fields(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in _field_names(type(event))}


def _field_names(kind: type[Event]) -> list[str]:
    common = {"id", "key", "time"}
    return [each.name for each in fields(kind) if each.name not in common]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _time(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed
