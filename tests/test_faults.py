"""Disk and I/O faults: a full disk is a clean 507, other I/O errors a logged
500, and in both cases nothing partial is left and nothing acknowledged is lost."""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpuflask.storage import diskio

from .conftest import MIN_PART
from .conftest import Flow
from .conftest import md5
from .conftest import stored_files

FULL = (
    "uploadPart: There is not enough free space on the server to store this "
    "request; nothing was stored."
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a disk that really fills up (needs root, as CI has)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.filesystem_only("fills a small disk under the data directory")
def test_disk_full_is_a_clean_507(make_app: Any, small_disk: Path) -> None:
    data_dir = small_disk / "data"
    flow = Flow(make_app(MPUFLASK_DATA_DIR=str(data_dir)).test_client())
    flow.upload([b"kept object"], key="old")
    upload_id = flow.create()
    part = b"p" * (512 * 1024)
    acknowledged = []
    for number in range(1, 20):
        response = flow.put_part(upload_id, number, part)
        if response.status_code != 200:
            break
        acknowledged.append(number)
    assert (response.status_code, response.text) == (507, FULL)
    assert acknowledged, "the disk filled before any part was stored"
    # Nothing partial: no temp file, and exactly the acknowledged parts.
    assert list((data_dir / "tmp").iterdir()) == []
    listed = flow.client.get(
        f"/file.bin?action=mpu-listparts&uploadId={upload_id}"
    ).json
    assert [p["partNumber"] for p in listed["parts"]] == acknowledged
    assert all(p["etag"] == md5(part) for p in listed["parts"])
    assert flow.get("old").data == b"kept object"
    # Freeing space makes the server usable again.
    assert flow.abort(upload_id).status_code == 204
    flow.upload([b"x" * MIN_PART, b"y"], key="after")
    assert flow.get("after").data == b"x" * MIN_PART + b"y"


def _failing(real: Any, error_number: int, calls_before_failure: int = 0) -> Any:
    calls = {"n": 0}

    def fail(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > calls_before_failure:
            raise OSError(error_number, "injected fault")
        return real(*args, **kwargs)

    return fail


def test_io_error_on_a_part_is_a_logged_500_and_leaves_nothing(
    make_app: Any, data_dir: Path, monkeypatch, caplog
) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False, MPUFLASK_CHUNK_SIZE=1024)
    flow = Flow(app.test_client())
    upload_id = flow.create()
    first = flow.part(upload_id, 1, b"a" * MIN_PART)
    before = stored_files(data_dir)
    monkeypatch.setattr(diskio, "write_all", _failing(diskio.write_all, errno.EIO, 2))
    with caplog.at_level(logging.ERROR):
        response = flow.put_part(upload_id, 2, b"b" * 10_000)
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert "injected fault" in caplog.text
    assert stored_files(data_dir) == before
    monkeypatch.undo()
    second = flow.part(upload_id, 2, b"b" * 10)
    flow.complete(upload_id, [first, second])
    assert flow.get().data == b"a" * MIN_PART + b"b" * 10


def test_io_error_on_complete_keeps_upload_and_old_object(
    make_app: Any, data_dir: Path, monkeypatch
) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    flow = Flow(app.test_client())
    flow.upload([b"old version"])
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"new version")
    monkeypatch.setattr(
        diskio, "write_file_atomic", _failing(diskio.write_file_atomic, errno.EIO)
    )
    response = flow.complete_raw(upload_id, [part])
    assert response.status_code == 500
    assert flow.get().data == b"old version"
    monkeypatch.undo()
    flow.complete(upload_id, [part])
    assert flow.get().data == b"new version"


def test_disk_full_on_complete_is_507(
    make_app: Any, data_dir: Path, monkeypatch
) -> None:
    flow = Flow(make_app().test_client())
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"bytes")
    monkeypatch.setattr(
        diskio, "write_file_atomic", _failing(diskio.write_file_atomic, errno.ENOSPC)
    )
    response = flow.complete_raw(upload_id, [part])
    assert (response.status_code, response.text) == (
        507,
        "completeMultipartUpload: There is not enough free space on the server to "
        "store this request; nothing was stored.",
    )
    monkeypatch.undo()
    flow.complete(upload_id, [part])
    assert flow.get().data == b"bytes"
