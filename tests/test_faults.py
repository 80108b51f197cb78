"""Disk and I/O faults: a full disk is a clean 507, other I/O errors a logged
500, and in both cases nothing partial is left and nothing acknowledged is lost."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpuflask.storage import diskio

from .conftest import MIN_PART
from .conftest import Flow
from .conftest import stored_files
from .fstree import failing_write
from .fstree import leave_free_inodes
from .fstree import mounted_tmpfs
from .fstree import tree
from .oracle import md5

FULL = (
    "uploadPart: There is not enough free space on the server to store this "
    "request; nothing was stored."
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a disk that really fills up (needs root, as CI has)."""
    with mounted_tmpfs(tmp_path / "small-disk", "size=3m") as mount_point:
        yield mount_point


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


def _full(operation: str) -> str:
    return (
        f"{operation}: There is not enough free space on the server to store this "
        "request; nothing was stored."
    )


@pytest.fixture
def inode_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with room for bytes but few inodes: inodes really run out.

    (The store itself takes about 270: its areas and objects/00..ff.)
    """
    with mounted_tmpfs(tmp_path / "inode-disk", "size=16m,nr_inodes=600") as disk:
        (disk / "filler").mkdir()
        yield disk


@pytest.mark.filesystem_only("runs out of inodes on a tmpfs of its own")
@pytest.mark.parametrize(
    ("step", "operation"),
    [
        ("create", "createMultipartUpload"),
        ("part", "uploadPart"),
        ("complete", "completeMultipartUpload"),
    ],
)
def test_running_out_of_inodes_is_a_clean_507_that_leaves_nothing(
    make_app: Any, inode_disk: Path, step: str, operation: str
) -> None:
    data_dir = inode_disk / "data"
    app = make_app(MPUFLASK_DATA_DIR=str(data_dir), PROPAGATE_EXCEPTIONS=False)
    flow = Flow(app.test_client())
    flow.upload([b"kept object"], key="old")
    upload_id = flow.create()
    first = flow.part(upload_id, 1, b"a" * MIN_PART)
    steps = {
        "create": lambda: flow.client.post("/new?action=mpu-create"),
        "part": lambda: flow.put_part(upload_id, 2, b"second part"),
        "complete": lambda: flow.complete_raw(upload_id, [first]),
    }
    refused = 0
    for free in range(12):
        leave_free_inodes(inode_disk, free)
        before = tree(data_dir)
        response = steps[step]()
        if response.status_code == 200:
            break
        refused += 1
        assert (response.status_code, response.text) == (507, _full(operation))
        assert tree(data_dir) == before, f"{free} free inode(s)"
    else:
        pytest.fail(f"{step} never succeeded")
    assert refused > 0, "the step never ran out of inodes"
    # Once it succeeded, the rest works and nothing is left half-done.
    leave_free_inodes(inode_disk, 30)
    if step == "create":
        upload_id = response.json["uploadId"]
        first = flow.part(upload_id, 1, b"a" * MIN_PART, key="new")
        flow.complete(upload_id, [first], key="new")
        assert flow.get("new").data == b"a" * MIN_PART
    elif step == "part":
        second = response.json
        flow.complete(upload_id, [first, second])
        assert flow.get().data == b"a" * MIN_PART + b"second part"
    else:
        assert flow.get().data == b"a" * MIN_PART
    assert flow.get("old").data == b"kept object"
    for area in ("tmp", "staging", "trash"):
        assert list((data_dir / area).iterdir()) == [], area


def _upload_with_part(flow: Flow, key: str = "file.bin") -> dict[str, Any]:
    upload_id = flow.create(key)
    return {"upload_id": upload_id, "part": flow.part(upload_id, 1, b"old", key)}


#: (setup, action, operation, status on success, check after success)
_WRITES: dict[str, tuple[Any, Any, str, int, Any]] = {
    "create": (
        lambda flow: {},
        lambda flow, s: flow.client.post("/file.bin?action=mpu-create"),
        "createMultipartUpload",
        200,
        lambda flow, s, r: flow.part(r.json["uploadId"], 1, b"x"),
    ),
    "part": (
        lambda flow: {"upload_id": flow.create()},
        lambda flow, s: flow.put_part(s["upload_id"], 1, b"new"),
        "uploadPart",
        200,
        lambda flow, s, r: flow.complete(s["upload_id"], [r.json]),
    ),
    "part over an earlier one": (
        _upload_with_part,
        lambda flow, s: flow.put_part(s["upload_id"], 1, b"new"),
        "uploadPart",
        200,
        lambda flow, s, r: flow.complete(s["upload_id"], [r.json]),
    ),
    "complete": (
        _upload_with_part,
        lambda flow, s: flow.complete_raw(s["upload_id"], [s["part"]]),
        "completeMultipartUpload",
        200,
        lambda flow, s, r: flow.get().data == b"old" or pytest.fail("not published"),
    ),
    "complete over an object": (
        lambda flow: (flow.upload([b"previous"]), _upload_with_part(flow))[1],
        lambda flow, s: flow.complete_raw(s["upload_id"], [s["part"]]),
        "completeMultipartUpload",
        200,
        lambda flow, s, r: flow.get().data == b"old" or pytest.fail("not published"),
    ),
    "abort": (
        _upload_with_part,
        lambda flow, s: flow.abort(s["upload_id"]),
        "abortMultipartUpload",
        204,
        lambda flow, s, r: (
            flow.put_part(s["upload_id"], 2, b"x").status_code == 400
            or pytest.fail("not aborted")
        ),
    ),
    "delete": (
        lambda flow: flow.upload([b"previous"]),
        lambda flow, s: flow.client.delete("/file.bin?action=delete"),
        "delete",
        204,
        lambda flow, s, r: flow.get().status_code == 404 or pytest.fail("not gone"),
    ),
}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("action", list(_WRITES))
def test_disk_full_at_any_write_is_a_507_that_leaves_nothing(
    make_app: Any, tmp_path: Path, data_dir: Path, monkeypatch, action: str, code: int
) -> None:
    """Every write syscall of every step, failing in turn: a 507 and the data
    directory exactly as before, or (a fault in the clean-up after the point of
    no return) the step's success, finished by the next sweep."""
    setup, act, operation, success, check = _WRITES[action]
    for nth in range(1, 60):
        root = tmp_path / f"run{nth}"
        app = make_app(MPUFLASK_DATA_DIR=str(root), PROPAGATE_EXCEPTIONS=False)
        flow = Flow(app.test_client())
        state = setup(flow)
        before = tree(root)
        with failing_write(monkeypatch, nth, code) as fault:
            response = act(flow, state)
        if not fault.fired:
            assert response.status_code == success, response.text
            check(flow, state, response)
            return
        if response.status_code == success:
            check(flow, state, response)
            app.extensions["mpuflask"].bucket.sweep()
            for area in ("tmp", "staging", "trash"):
                assert list((root / area).iterdir()) == [], (fault.fired, area)
            continue
        assert (response.status_code, response.text) == (507, _full(operation)), (
            fault.fired
        )
        assert tree(root) == before, fault.fired
        # And the same step succeeds once the disk has room again.
        retried = act(flow, state)
        assert retried.status_code == success, (fault.fired, retried.text)
        check(flow, state, retried)
    pytest.fail("the step never finished without a fault")
