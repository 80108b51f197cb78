"""Extension points: who may call, and which parts and objects are accepted.

Three moments, each an ordered list of plain functions on the app's
:class:`~mpuflask.extension.MpuFlask` (``app.extensions["mpuflask"]``):

* ``authenticate(req: RequestInfo) -> str | None``: before every API request,
  before any byte of the body is read. Return an identity to accept, None to
  pass; raise Unauthorized / Forbidden to refuse.
* ``validate_part(part: PartInfo) -> StreamCheck | None``: on mpu-uploadpart,
  on the headers, before the body is read. Raise to refuse, or return a
  stream check whose ``update(chunk)`` / ``finish()`` see the body.
* ``validate_complete(done: CompleteInfo) -> None``: on mpu-complete, before
  the object is published. Raise to refuse.

Register in code (``@mpu.authenticate``) or by configuration
(``MPUFLASK_AUTH_HOOKS``, ``MPUFLASK_PART_VALIDATORS``,
``MPUFLASK_COMPLETE_VALIDATORS``: comma-separated ``package.module:callable``).
docs/hooks.md has the full contract and examples.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from typing import TypeVar

from flask import g
from werkzeug.datastructures import Headers

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
HookT = TypeVar("HookT", bound=Callable[..., Any])


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
    for chunk in chunks:
        with refusals_counted_as("validate_part"):
            for check in checks:
                check.update(chunk)
        yield chunk
    with refusals_counted_as("validate_part"):
        for check in checks:
            check.finish()
