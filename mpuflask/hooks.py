"""What hooks see and return: the types of the three moments, and the stream runner.

Three moments, each an ordered list of plain functions kept and run by the
app's :class:`~mpuflask.extension.MpuFlask` (``app.extensions["mpuflask"]``):

* ``authenticate(req: RequestInfo) -> str | None``: before every API request,
  before any byte of the body is read. Return an identity to accept, None to
  pass; raise Unauthorized / Forbidden to refuse.
* ``validate_part(part: PartInfo) -> StreamCheck | None``: on mpu-uploadpart,
  on the headers, before the body is read. Raise to refuse, or return a
  stream check whose ``update(chunk)`` / ``finish()`` see the body.
* ``validate_complete(done: CompleteInfo) -> None``: on mpu-complete, before
  the object is published. Raise to refuse.

The built-in hooks are in :mod:`mpuflask.auth` and :mod:`mpuflask.validators`;
docs/hooks.md has the full contract and examples.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol
from typing import TypeVar

from flask import g
from flask import request
from werkzeug.datastructures import Headers

from .actions import LISTING_ACTIONS
from .routing import path_key
from .storage import UploadedPart


@dataclass(frozen=True)
class RequestInfo:
    """What an auth hook sees: the request, before its body is read."""

    method: str
    action: str | None
    #: The object key; for ``list`` and ``mpu-list``, the prefix they list.
    key: str
    upload_id: str | None
    part_number: str | None
    headers: Headers
    remote_addr: str | None
    args: Mapping[str, str]


@dataclass(frozen=True)
class PartInfo:
    """What a part validator sees: the part's request and who sends it."""

    request: RequestInfo
    identity: str | None
    upload_id: str
    part_number: int
    content_length: int | None
    content_type: str | None


@dataclass(frozen=True)
class CompleteInfo:
    """What a completion validator sees: the parts about to become the object."""

    request: RequestInfo
    identity: str | None
    upload_id: str
    parts: tuple[UploadedPart, ...]

    @property
    def size(self) -> int:
        """The object's size if published."""
        return sum(part.size for part in self.parts)


class StreamCheck(Protocol):
    """Sees every chunk of a part as it arrives; raising refuses the part."""

    def update(self, chunk: bytes) -> None: ...

    def finish(self) -> None: ...


AuthHook = Callable[[RequestInfo], str | None]
PartValidator = Callable[[PartInfo], StreamCheck | None]
CompleteValidator = Callable[[CompleteInfo], None]
AuthHookT = TypeVar("AuthHookT", bound=AuthHook)
PartValidatorT = TypeVar("PartValidatorT", bound=PartValidator)
CompleteValidatorT = TypeVar("CompleteValidatorT", bound=CompleteValidator)


def request_info() -> RequestInfo:
    """The current request as hooks see it.

    The key is the matched rule's, or the path's; one that is not UTF-8 is
    shown as latin-1 text (its view refuses it, 10020), so a hook never meets
    a string it cannot encode.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]
    key = (req.view_args or {}).get("key")
    if not isinstance(key, str):
        key = path_key(req.environ)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        key = key.encode("utf-8", "surrogateescape").decode("latin-1")
    args: Mapping[str, str] = req.args
    action = args.get("action")
    if action in LISTING_ACTIONS:
        # What a listing reads is every key under its prefix: a hook that
        # limits keys by prefix limits listings the same way.
        key = args.get("prefix", "")
    return RequestInfo(
        method=req.method,
        action=action,
        key=key,
        upload_id=args.get("uploadId"),
        part_number=args.get("partNumber"),
        headers=req.headers,
        remote_addr=req.remote_addr,
        args=args,
    )


@contextmanager
def refusals_counted_as(moment: str) -> Iterator[None]:
    """Mark a refusal raised inside as coming from ``moment`` (for metrics)."""
    try:
        yield
    except Exception:
        g.hook_refused = moment
        raise


def checked_chunks(
    chunks: Iterable[bytes], checks: list[StreamCheck]
) -> Iterator[bytes]:
    """Pass ``chunks`` through, letting every check see each one first.

    ``finish()`` runs after the last chunk and before the store commits the
    part, so a refusal there still leaves nothing stored.
    """
    if not checks:  # the usual part: nothing to see the chunks, nothing to mark
        for chunk in chunks:
            yield chunk
        return
    for chunk in chunks:
        with refusals_counted_as("validate_part"):
            for check in checks:
                check.update(chunk)
        yield chunk
    with refusals_counted_as("validate_part"):
        for check in checks:
            check.finish()
