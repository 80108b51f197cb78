"""How the filesystem store takes a part in (issue 16): on two cores, with
write-back started early, its record read once, its fsync outside the lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpuflask import create_app
from mpuflask.storage import diskio
from mpuflask.storage.filesystem import FilesystemBucket

from .conftest import Flow

CHUNK = 256 * 1024
BODY = hashlib.sha256(b"part").digest() * (4 * CHUNK // 32)


def _bucket(tmp_path: Path, durable: bool = True) -> FilesystemBucket:
    from datetime import timedelta

    return FilesystemBucket(
        tmp_path / "data",
        min_part_size=1,
        upload_ttl=timedelta(hours=1),
        durable=durable,
    )


def _chunks(read_by: list[str]) -> Iterator[bytes]:
    for start in range(0, len(BODY), CHUNK):
        read_by.append(threading.current_thread().name)
        yield BODY[start : start + CHUNK]


def test_big_chunks_are_hashed_by_a_helper_while_the_next_is_written_and_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MD5, the slowest of the three, runs on a helper; the request thread
    writes the chunk and reads the next meanwhile (issue 16: overlap)."""
    bucket = _bucket(tmp_path)
    upload = bucket.resume_multipart_upload(
        "k", bucket.create_multipart_upload("k", _no_metadata()).upload_id
    )
    written_by: list[str] = []
    real_write_all = diskio.write_all

    def recording(fd: int, data: Any) -> None:
        written_by.append(threading.current_thread().name)
        real_write_all(fd, data)

    handed: list[str] = []
    pool = bucket.helpers.pool()
    real_submit = pool.submit

    def submit(work: Any, *args: Any) -> Any:
        handed.append(getattr(work, "__name__", repr(work)))
        return real_submit(work, *args)

    monkeypatch.setattr(diskio, "write_all", recording)
    monkeypatch.setattr(pool, "submit", submit)
    read_by: list[str] = []
    part = upload.upload_part(1, _chunks(read_by), len(BODY))
    assert part.etag == hashlib.md5(BODY).hexdigest()
    assert part.size == len(BODY)
    me = threading.current_thread().name
    assert read_by == [me] * 4
    assert written_by == [me] * 4
    assert handed == ["update"] * 4
    assert (
        tmp_path / "data/uploads" / upload.upload_id / f"00001.{part.etag}.{part.size}"
    ).read_bytes() == BODY


def test_a_refused_body_leaves_no_temp_file_while_a_helper_writes(
    tmp_path: Path,
) -> None:
    bucket = _bucket(tmp_path)
    upload = bucket.resume_multipart_upload(
        "k", bucket.create_multipart_upload("k", _no_metadata()).upload_id
    )

    def failing() -> Iterator[bytes]:
        yield BODY[:CHUNK]
        yield BODY[CHUNK : 2 * CHUNK]
        raise ConnectionError("client gone")

    with pytest.raises(ConnectionError):
        upload.upload_part(1, failing(), len(BODY))
    assert list((tmp_path / "data/tmp").iterdir()) == []
    assert upload.list_parts() == []


@pytest.mark.parametrize("durable", [True, False])
def test_durable_parts_start_their_writeback_as_they_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(
        diskio,
        "start_writeback",
        lambda fd, offset, count: started.append((offset, count)),
    )
    bucket = _bucket(tmp_path, durable)
    upload = bucket.resume_multipart_upload(
        "k", bucket.create_multipart_upload("k", _no_metadata()).upload_id
    )
    upload.upload_part(1, _chunks([]), len(BODY))
    expected = [(start, CHUNK) for start in range(0, len(BODY), CHUNK)]
    assert started == (expected if durable else [])


def test_a_part_upload_reads_the_upload_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(
        {"MPUFLASK_DATA_DIR": str(tmp_path / "data"), "MPUFLASK_MIN_PART_SIZE": 1}
    )
    flow = Flow(app.test_client())
    upload_id = flow.create()
    reads: list[str] = []
    real = diskio.read_file

    def counting(dir_fd: int | None, name: str) -> bytes:
        reads.append(name)
        return real(dir_fd, name)

    monkeypatch.setattr(diskio, "read_file", counting)
    flow.part(upload_id, 1, b"abc")
    assert reads == ["upload.json"]


def test_a_parts_directory_fsync_does_not_hold_the_upload_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", _no_metadata()).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload_dir = tmp_path / "data/uploads" / upload_id
    lockable_at_fsync: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode) and os.path.samestat(
            os.fstat(fd), os.stat(upload_dir)
        ):
            other = os.open(upload_dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                lockable_at_fsync.append(diskio.try_lock(other))
                fcntl.flock(other, fcntl.LOCK_UN)
            finally:
                os.close(other)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    upload.upload_part(1, [b"abc"], 3)
    assert lockable_at_fsync == [True]


def _no_metadata() -> Any:
    from mpuflask.storage import HttpMetadata

    return HttpMetadata({})
