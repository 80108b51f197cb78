"""Uploading a file: plan, create (or resume), send parts in parallel, complete.

Each part streams from the file in its own thread. The uploadId goes into a
resume record (:mod:`.state`) before the first part is sent; on the next run
``mpu-listparts`` says which parts the server holds, and only the others (or
those whose etag is not the local MD5) are sent. The object etag the server
answers on complete is checked against the one computed from the part MD5s.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from stat import S_ISREG

from ..rules import DEFAULT_MIN_PART_SIZE
from ..rules import is_md5_hex
from ..rules import multipart_etag
from ..rules import normalize_etag
from .actions import NO_SUCH_UPLOAD
from .actions import ObjectApi
from .errors import ClientError
from .errors import ServerRefused
from .errors import SourceChanged
from .errors import VerificationFailed
from .fileslice import FileSlice
from .parts import PartPlan
from .parts import choose_part_size
from .pool import run_all
from .pool import worker_pool
from .progress import NoProgress
from .progress import Progress
from .resume import SentPart
from .resume import Started
from .resume import resume
from .state import StateStore
from .state import UploadRecord
from .transport import Transport

log = logging.getLogger("mpuflask.client")


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: the object's etag and how much had to be sent."""

    url: str
    upload_id: str
    etag: str
    size: int
    part_size: int
    parts: int
    parts_sent: int
    parts_resumed: int
    verified: bool


def upload_file(
    transport: Transport,
    path: str | os.PathLike[str],
    url: str,
    *,
    part_size: int | None = None,
    min_part_size: int = DEFAULT_MIN_PART_SIZE,
    concurrency: int = 4,
    state: StateStore | None = None,
    headers: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> UploadResult:
    """Upload ``path`` to the object ``url``; resumable when ``state`` is given.

    ``headers`` (Content-Type, Cache-Control, ...) go with mpu-create and
    become the object's HTTP metadata. Raises a :class:`ClientError`.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    source = Path(path).resolve()
    stat = source.stat()
    if not S_ISREG(stat.st_mode):  # a pipe's size is 0: an empty object
        raise ClientError(
            f"{path} is not a regular file (a pipe or a device): read it with "
            "upload_stream, as it comes"
        )
    progress = progress or NoProgress()
    cancel = threading.Event()
    api = ObjectApi(transport, url, cancel)
    with worker_pool(concurrency, cancel, "mpu-part") as pool:
        started = _start(
            api, state, source, stat, url, part_size, min_part_size, headers, pool
        )
        record, plan, done = started.record, started.plan, dict(started.done)
        todo = [n for n in plan.numbers() if n not in done]
        progress.start(plan.size, sum(plan.span(n)[1] for n in done))
        try:
            done.update(
                _send_parts(api, pool, record.upload_id, source, plan, todo, progress)
            )
        finally:
            progress.close()
    _check_unchanged(source, stat)
    parts = [done[n] for n in plan.numbers()]
    etag, verified = complete_upload(api, record.upload_id, parts)
    if state is not None:
        state.delete(record)
    return UploadResult(
        url,
        record.upload_id,
        etag,
        plan.size,
        plan.part_size,
        plan.count,
        len(todo),
        len(started.done),
        verified,
    )


def _start(
    api: ObjectApi,
    state: StateStore | None,
    source: Path,
    stat: os.stat_result,
    url: str,
    part_size: int | None,
    min_part_size: int,
    headers: Mapping[str, str] | None,
    pool: ThreadPoolExecutor,
) -> Started:
    """Resume the upload a record names, else create one (and record it first)."""
    if state is not None:
        resumed = resume(api, state, source, stat, url, part_size, min_part_size, pool)
        if resumed is not None:
            return resumed
    plan = choose_part_size(stat.st_size, part_size, min_part_size=min_part_size)
    record = UploadRecord(
        str(source),
        stat.st_size,
        stat.st_mtime_ns,
        url,
        api.create(headers),
        plan.part_size,
    )
    if state is not None:
        state.save(record)
    return Started(record, plan, {})


def _send_parts(
    api: ObjectApi,
    pool: ThreadPoolExecutor,
    upload_id: str,
    source: Path,
    plan: PartPlan,
    numbers: list[int],
    progress: Progress,
) -> dict[int, SentPart]:
    """Send the parts in ``numbers``; the first failure cancels the rest."""
    tasks = [
        partial(_send_part, api, upload_id, source, plan, n, progress) for n in numbers
    ]
    return {part.number: part for part in run_all(pool, api.cancel, tasks)}


def _send_part(
    api: ObjectApi,
    upload_id: str,
    source: Path,
    plan: PartPlan,
    number: int,
    progress: Progress,
) -> SentPart:
    """Stream one part, whole on every try; check the etag is its MD5."""
    offset, length = plan.span(number)
    tries: list[FileSlice] = []

    def body() -> FileSlice:
        if tries:  # a retry: take the failed try's bytes back off the bar
            progress.update(-tries[-1].sent)
            tries[-1].close()
        tries.append(
            FileSlice(
                source, offset, length, on_read=progress.update, cancel=api.cancel
            )
        )
        return tries[-1]

    try:
        etag = api.upload_part(upload_id, number, body)
        md5 = tries[-1].md5_hex()
    finally:
        for part in tries:
            part.close()
    if is_md5_hex(normalize_etag(etag)) and normalize_etag(etag) != md5:
        raise VerificationFailed(
            f"part {number}: the server stored MD5 {etag}, we sent {md5}"
        )
    return SentPart(number, etag, md5)


def _check_unchanged(source: Path, before: os.stat_result) -> None:
    """Refuse to publish a file that changed while it was read."""
    after = source.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise SourceChanged(f"{source} changed during the upload; run again")


def complete_upload(
    api: ObjectApi, upload_id: str, parts: list[SentPart]
) -> tuple[str, bool]:
    """Complete and check the object etag; whether it could be checked.

    If the answer to an earlier try was lost, the retry finds the upload gone
    (10024): the object then at the URL is accepted if its etag is ours.
    """
    verifiable = all(is_md5_hex(normalize_etag(p.etag)) for p in parts)
    expected = multipart_etag([p.md5 for p in parts])
    try:
        etag = api.complete(upload_id, [(p.number, p.etag) for p in parts])
    except ServerRefused as error:
        if error.r2_code != NO_SUCH_UPLOAD or not verifiable:
            raise
        if api.current_etag() != expected:
            raise
        log.info("upload %s was already completed", upload_id)
        etag = expected
    if verifiable and etag != expected:
        raise VerificationFailed(
            f"the server's object etag is {etag}, the file's is {expected}"
        )
    return etag, verifiable
