"""Staged uploads: R2's complete on engines that must list every part.

R2 (like AWS and MinIO) completes an upload with any ascending subset of its
parts and drops the rest. Ceph's radosgw refuses: its complete must list every
uploaded part, and every part but the highest-numbered must be at least its
minimum size. The only way to read a part's bytes back is to complete. So on
such engines (``S3Store.stages_uploads``) an upload's parts go to a multipart
upload on a staging key, ``<prefix>staging/<token>``, and complete writes the
object's key from there:

* every part goes to the staging upload at its own number, so the engine
  alone says which bytes are part ``n`` now (a later upload of ``n`` replaces
  it), and its complete refuses if any part changed since it was listed;
* a part under the minimum size is also kept as a small object,
  ``<staging key>/<n>.<md5>``, written *before* the engine part (so it exists
  whenever the engine holds such a part) and never overwritten (its name is its
  content);
* complete, usual case (every part listed, in order): completes the staging
  upload with exactly those parts and copies the result to the key
  (``CopyObject``, which radosgw does by reference: constant time);
* complete leaving parts out: every small part that is not the highest is
  overwritten by the filler part (:class:`~.s3records.Substitute`), the
  staging upload is completed whole, and the listed parts are copied into a
  new upload of the key: big ones as byte ranges of the staged object, a small
  one from its small object (``UploadPartCopy``: a real copy, on this rare
  path only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidPart
from ..rules import PartRef
from .base import UploadedPart
from .s3errors import EngineFailed
from .s3records import Claim
from .s3records import Substitute
from .s3records import UploadRecord
from .s3records import object_arguments
from .s3store import S3Store

COMPLETE = "completeMultipartUpload"


@dataclass(frozen=True)
class CurrentPart:
    """Part ``n`` as the client sees it, and as the engine holds it."""

    part: UploadedPart
    engine: UploadedPart

    @property
    def substituted(self) -> bool:
        """Whether the engine holds the filler in this part's place."""
        return self.part.etag != self.engine.etag


def small_key(engine_key: str, part_number: int, md5: str) -> str:
    """Where the bytes of a small part of a staged upload are kept."""
    return f"{engine_key}/{part_number:05d}.{md5}"


def current_parts(
    record: UploadRecord, engine_parts: Sequence[UploadedPart]
) -> list[CurrentPart]:
    """The upload's parts: the engine's, with substitutes mapped back."""
    current = []
    for engine in engine_parts:
        sub = record.subs.get(engine.part_number)
        part = engine
        if sub is not None and engine.etag == sub.filler:
            part = UploadedPart(engine.part_number, sub.md5, sub.size)
        current.append(CurrentPart(part, engine))
    return current


def choose(
    parts: Sequence[PartRef], current: Sequence[CurrentPart]
) -> list[CurrentPart]:
    """The current parts the client listed, matched by number and etag."""
    by_number = {found.part.part_number: found for found in current}
    chosen = []
    for ref in parts:
        found = by_number.get(ref.part_number)
        if found is None or found.part.etag != ref.etag:
            raise InvalidPart(COMPLETE)
        chosen.append(found)
    return chosen


def plan_ranges(
    current: Sequence[CurrentPart], min_part_size: int, filler: tuple[str, int]
) -> tuple[tuple[UploadedPart, ...], dict[int, Substitute]]:
    """How to complete a staging upload whole: the parts to list (small ones
    but the highest replaced by the filler) and the substitutes that makes."""
    filler_etag, filler_size = filler
    layout, subs = [], {}
    for index, found in enumerate(current):
        engine = found.engine
        if index < len(current) - 1 and engine.size < min_part_size:
            subs[engine.part_number] = Substitute(
                found.part.etag, found.part.size, filler_etag
            )
            engine = UploadedPart(engine.part_number, filler_etag, filler_size)
        layout.append(engine)
    return tuple(layout), subs


def copy_sources(
    record: UploadRecord, claim: Claim
) -> list[tuple[int, str, tuple[int, int] | None]]:
    """Where each listed part's bytes are once the staging upload is complete:
    (part number, source key, byte span or None for the whole object)."""
    offsets, offset = {}, 0
    for engine in claim.layout:
        offsets[engine.part_number] = (offset, engine.etag)
        offset += engine.size
    sources: list[tuple[int, str, tuple[int, int] | None]] = []
    for part in claim.parts:
        if part.size == 0:
            continue
        start, engine_etag = offsets[part.part_number]
        sub = record.subs.get(part.part_number)
        if sub is not None and engine_etag == sub.filler:
            source = small_key(record.engine_key, part.part_number, part.etag)
            sources.append((part.part_number, source, None))
        else:
            span = (start, start + part.size)
            sources.append((part.part_number, record.engine_key, span))
    return sources


def publish_ranges(store: S3Store, record: UploadRecord, claim: Claim) -> None:
    """Write the key from the listed parts of a completed staging upload, as a
    new upload of the key: one ``UploadPartCopy`` per part."""
    engine = store.engine
    key = record.info.key
    arguments = object_arguments(record.info.http_metadata, record.token, claim.etag)
    sources = copy_sources(record, claim)
    if not sources:
        engine.put(key, b"", COMPLETE, arguments)
        return
    upload_id = engine.create_upload(key, COMPLETE, arguments)
    try:
        copied = []
        for number, source, span in sources:
            etag = engine.copy_part(key, upload_id, number, source, span, COMPLETE)
            copied.append((number, etag))
        engine.complete_upload(key, upload_id, copied, COMPLETE)
    except Exception:
        try:
            engine.abort_upload(key, upload_id, COMPLETE)
        except Exception:
            pass  # sweep aborts it once it is older than the grace
        raise


def substitute(
    store: S3Store, record: UploadRecord, upload_id: str, subs: dict[int, Substitute]
) -> None:
    """Overwrite each part in ``subs`` with the filler (the record says so
    already, so a crash here leaves every part readable)."""
    filler_key, filler_etag = store.filler(COMPLETE)
    for number in sorted(subs):
        etag = store.engine.copy_part(
            record.engine_key, upload_id, number, filler_key, None, COMPLETE
        )
        if etag != filler_etag:
            raise EngineFailed(COMPLETE, f"filler copied as {etag}, not {filler_etag}")
