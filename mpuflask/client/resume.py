"""Resuming an upload: find the record an earlier run left, ask what arrived.

The record (:mod:`.state`) names the upload; ``mpu-listparts`` says which
parts the server holds. A listed part counts as sent only if its size is
right and its etag is the MD5 of the local bytes (hashed in parallel). An
upload that is gone, a server that cannot list parts, or another part size
asked for: the record is dropped (the old upload aborted where it may still
exist) and the caller starts over.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..rules import is_md5_hex
from ..rules import normalize_etag
from .actions import NO_SUCH_UPLOAD
from .actions import ListedPart
from .actions import ObjectApi
from .actions import why_not_resumable
from .errors import ClientError
from .errors import ServerRefused
from .fileslice import md5_of_range
from .parts import PartPlan
from .parts import choose_part_size
from .state import StateStore
from .state import UploadRecord

log = logging.getLogger("mpuflask.client")


@dataclass(frozen=True)
class SentPart:
    """A part the server holds, and the MD5 of the local bytes it should be."""

    number: int
    etag: str  # as the server answered it: what complete must list
    md5: str  # of the local bytes: what the etag should be


@dataclass(frozen=True)
class Started:
    """An upload under way: its record, its plan and the parts already sent."""

    record: UploadRecord
    plan: PartPlan
    done: dict[int, SentPart]


def resume(
    api: ObjectApi,
    state: StateStore,
    source: Path,
    stat: os.stat_result,
    url: str,
    part_size: int | None,
    min_part_size: int,
    pool: ThreadPoolExecutor,
) -> Started | None:
    """Find the upload an earlier run left, and the parts it already holds."""
    record = state.load(str(source), stat.st_size, stat.st_mtime_ns, url)
    if record is None:
        return None
    if part_size is not None and part_size != record.part_size:
        log.warning(
            "part size changed since upload %s began: starting over", record.upload_id
        )
        _forget(api, state, record)
        return None
    plan = choose_part_size(stat.st_size, record.part_size, min_part_size=min_part_size)
    try:
        listed = api.list_parts(record.upload_id)
    except ServerRefused as error:
        reason = why_not_resumable(error)
        if reason is None:
            raise
        log.warning(
            "cannot resume upload %s: %s; starting over", record.upload_id, reason
        )
        _forget(api, state, record, abort=error.r2_code != NO_SUCH_UPLOAD)
        return None
    done = _matching_parts(listed, plan, source, pool)
    log.info(
        "resuming upload %s: %d of %d parts already on the server",
        record.upload_id,
        len(done),
        plan.count,
    )
    return Started(record, plan, done)


def _forget(
    api: ObjectApi, state: StateStore, record: UploadRecord, abort: bool = True
) -> None:
    """Drop a record we will not resume, aborting its upload if it may exist."""
    if abort:
        try:
            api.abort(record.upload_id)
        except ClientError as error:
            log.warning("could not abort old upload %s: %s", record.upload_id, error)
    state.delete(record)


def _matching_parts(
    listed: Iterable[ListedPart], plan: PartPlan, source: Path, pool: ThreadPoolExecutor
) -> dict[int, SentPart]:
    """The listed parts whose size and etag match the local bytes."""
    candidates = [
        p
        for p in listed
        if 1 <= p.part_number <= plan.count
        and p.size == plan.span(p.part_number)[1]
        and is_md5_hex(normalize_etag(p.etag))
    ]
    hashes = pool.map(
        lambda p: md5_of_range(source, *plan.span(p.part_number)), candidates
    )
    return {
        p.part_number: SentPart(p.part_number, p.etag, md5)
        for p, md5 in zip(candidates, hashes, strict=True)
        if normalize_etag(p.etag) == md5
    }
