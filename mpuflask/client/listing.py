"""Listing what a server holds: objects by prefix, and the caller's open uploads.

``GET /?action=list&prefix=P&delimiter=D&cursor=C&limit=N`` answers R2's list
shape, ``{"objects": [{"key", "size", "etag", "uploaded", "httpMetadata"}],
"truncated", "cursor", "delimitedPrefixes"}``; ``GET /?action=mpu-list``
answers ``{"uploads": [{"key", "uploadId", "created", "expires"}],
"truncated", "cursor"}``. Both are paged: the generators here follow the
cursor until ``truncated`` is false, one request per page, so a listing of a
million keys costs one page of memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from typing import TypeVar
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import requests

from ..rules import normalize_etag
from .errors import ClientError
from .transport import Transport
from .urls import display

T = TypeVar("T")


@dataclass(frozen=True)
class ListedObject:
    """One stored object, as the listing tells it."""

    key: str
    size: int
    etag: str
    uploaded: datetime
    http_metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectPage:
    """One page of an object listing; ``prefixes``: R2's ``delimitedPrefixes``."""

    objects: list[ListedObject]
    prefixes: list[str]
    cursor: str | None


@dataclass(frozen=True)
class OpenUpload:
    """An unfinished upload of the caller's: abort it with its ``upload_id``."""

    key: str
    upload_id: str
    created: datetime
    expires: datetime | None


class BadListing(ClientError):
    """The server's listing is not the documented shape (not mpuflask, or a bug)."""


def object_pages(
    transport: Transport,
    root: str,
    *,
    prefix: str = "",
    delimiter: str | None = None,
    page_size: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ObjectPage]:
    """Every page of ``action=list`` under ``prefix``, following the cursor."""
    params = [("prefix", prefix)] if prefix else []
    if delimiter:
        params.append(("delimiter", delimiter))
    for answer in _pages(transport, root, "list", params, page_size, cancel):
        yield _shape(root, "list", answer, _object_page)


def open_uploads(
    transport: Transport,
    root: str,
    *,
    prefix: str = "",
    page_size: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[OpenUpload]:
    """Every open upload of ``action=mpu-list`` under ``prefix``, page by page."""
    params = [("prefix", prefix)] if prefix else []
    for answer in _pages(transport, root, "mpu-list", params, page_size, cancel):
        yield from _shape(root, "mpu-list", answer, _uploads)


def _pages(
    transport: Transport,
    root: str,
    action: str,
    params: list[tuple[str, str]],
    page_size: int | None,
    cancel: threading.Event | None,
) -> Iterator[dict[str, Any]]:
    """The JSON answers of ``action``, one per page, until ``truncated`` is false."""
    if page_size is not None:
        params = [*params, ("limit", str(page_size))]
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        query = [*params, ("cursor", cursor)] if cursor else params
        answer = transport.call("GET", root, action, _json, params=query, cancel=cancel)
        yield answer
        if answer.get("truncated") is not True:
            return
        cursor = answer.get("cursor")
        if not isinstance(cursor, str) or not cursor or cursor in seen:
            raise BadListing(
                f"{action} {display(root)}: the answer says there is more "
                f"but gives {'the same' if cursor in seen else 'no'} cursor"
            )
        seen.add(cursor)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        action = dict(parse_qsl(urlsplit(response.url).query)).get("action")
        raise BadListing(
            f"{action} {display(response.url)}: the answer is not a JSON object"
        )
    return answer


def _shape(
    root: str, action: str, answer: dict[str, Any], read: Callable[[dict[str, Any]], T]
) -> T:
    """``read(answer)``, or a :class:`BadListing` naming what was missing."""
    try:
        return read(answer)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BadListing(
            f"{action} {display(root)}: the answer is not a listing "
            f"({type(error).__name__}: {error}); is this an mpuflask server?"
        ) from None


def _object_page(answer: dict[str, Any]) -> ObjectPage:
    objects = [
        ListedObject(
            key=str(item["key"]),
            size=int(item["size"]),
            etag=normalize_etag(str(item["etag"])),
            uploaded=_time(item["uploaded"]),
            http_metadata={
                str(k): str(v) for k, v in (item.get("httpMetadata") or {}).items()
            },
        )
        for item in answer["objects"]
    ]
    prefixes = [str(p) for p in answer.get("delimitedPrefixes") or []]
    cursor = answer.get("cursor") if answer.get("truncated") else None
    return ObjectPage(objects, prefixes, cursor)


def _uploads(answer: dict[str, Any]) -> list[OpenUpload]:
    return [
        OpenUpload(
            key=str(item["key"]),
            upload_id=str(item["uploadId"]),
            created=_time(item["created"]),
            expires=_time(item["expires"]) if item.get("expires") else None,
        )
        for item in answer["uploads"]
    ]


def _time(value: Any) -> datetime:
    """An ISO 8601 time (``2024-05-01T12:00:00.000Z``) as an aware datetime."""
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not an ISO 8601 time")
    return datetime.fromisoformat(value)
