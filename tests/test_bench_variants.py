"""bench/variants.py builds its variants from the store's override points, so a
change to the store cannot silently leave a variant measuring stale code."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mpuflask.storage import diskio
from mpuflask.storage.fsupload import FilesystemUpload

from .conftest import Flow


def test_fsync_unlocked_variant_syncs_a_part_after_releasing_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import variants

    monkeypatch.setenv("MPUFLASK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MPUFLASK_DURABLE", "true")
    app = variants._fsync_unlocked_app()
    store = app.extensions["mpuflask"].bucket
    assert store.upload_class is not FilesystemUpload
    assert type(store).upload_class is FilesystemUpload  # this app's store only
    flow = Flow(app.test_client())
    upload_id = flow.create()
    upload_dir = tmp_path / "data" / "uploads" / upload_id
    locked_at_fsync = _watch_fsyncs_of(upload_dir, monkeypatch)

    part = flow.part(upload_id, 1, b"part")

    assert locked_at_fsync == [False]  # synced once, with the lock released
    assert flow.client.get(f"/file.bin?action=mpu-listparts&uploadId={upload_id}").json[
        "parts"
    ] == [{"partNumber": 1, "etag": part["etag"], "size": 4}]


def _watch_fsyncs_of(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each fsync of ``directory``: whether its flock was held then."""
    seen: list[bool] = []
    real: Callable[[int], None] = os.fsync
    inode = directory.stat().st_ino

    def fsync(fd: int) -> None:
        if os.fstat(fd).st_ino == inode:
            probe = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                seen.append(not diskio.try_lock(probe))
            finally:
                os.close(probe)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen
