"""The filesystem store trusts nothing it reads from its data directory.

Someone who can write in the data directory (a restored backup, another
program, an operator's mistake) must not be able to make the server write,
read or delete outside it: a symlink where the store expects a directory or a
file is not followed, and names read from records and manifests are checked.
A bad entry is corrupt: answered as absent (or refused), logged, never a 500
and never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import MIN_PART
from .conftest import Flow
from .fstree import tree
from .oracle import md5

pytestmark = pytest.mark.filesystem_only("plants entries in the data directory")

NO_UPLOAD = "{op}: The specified multipart upload does not exist. (10024)"
SECRET = b"outside the data directory"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the data dir, holding a file nobody may serve."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_bytes(SECRET)
    return folder


@pytest.fixture
def flow(make_app: Any) -> Flow:
    return Flow(make_app(PROPAGATE_EXCEPTIONS=False).test_client())


def _object_dir(data_dir: Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return data_dir / "objects" / digest[:2] / digest


def _listed(flow: Flow, upload_id: str, key: str = "file.bin") -> Any:
    return flow.client.get(f"/{key}?action=mpu-listparts&uploadId={upload_id}")


def test_upload_dir_symlinked_outside_is_no_upload(
    flow: Flow, data_dir: Path, outside: Path, caplog
) -> None:
    """uploads/<id> -> a real upload moved outside: following it wrote there."""
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"a" * MIN_PART)
    moved = outside / upload_id
    os.rename(data_dir / "uploads" / upload_id, moved)
    os.symlink(moved, data_dir / "uploads" / upload_id)
    before = tree(outside)
    with caplog.at_level(logging.WARNING):
        answers = [
            ("uploadPart", flow.put_part(upload_id, 2, b"written outside")),
            ("listParts", _listed(flow, upload_id)),
            ("completeMultipartUpload", flow.complete_raw(upload_id, [part])),
        ]
    for operation, response in answers:
        assert (response.status_code, response.text) == (
            400,
            NO_UPLOAD.format(op=operation),
        )
    assert flow.abort(upload_id).status_code == 204
    assert flow.get().status_code == 404
    assert tree(outside) == before
    assert "not a directory of the store" in caplog.text
    flow.client.application.extensions["mpuflask"].bucket.sweep()
    assert tree(outside) == before


def test_part_link_pointing_outside_is_no_part(
    flow: Flow, data_dir: Path, outside: Path, caplog
) -> None:
    """A part link to ``/outside/00001.<md5>``: it was listed, completed, served,
    and deleted by the next upload of that part."""
    upload_id = flow.create()
    planted = outside / f"00001.{md5(SECRET)}"
    planted.write_bytes(SECRET)
    upload_dir = data_dir / "uploads" / upload_id
    os.symlink(planted, upload_dir / "00001")
    os.symlink(f"../../../outside/00002.{md5(SECRET)}", upload_dir / "00002")
    (outside / f"00002.{md5(SECRET)}").write_bytes(SECRET)
    before = tree(outside)
    with caplog.at_level(logging.WARNING):
        assert _listed(flow, upload_id).json["parts"] == []
        planted_part = {"partNumber": 1, "etag": md5(SECRET)}
        response = flow.complete_raw(upload_id, [planted_part])
    assert (response.status_code, response.text) == (
        400,
        "completeMultipartUpload: One or more of the specified parts could not be "
        "found. (10025)",
    )
    assert "corrupt part link" in caplog.text
    # Uploading those parts for real replaces the links, and only them.
    first = flow.part(upload_id, 1, b"a" * MIN_PART)
    second = flow.part(upload_id, 2, b"b")
    flow.complete(upload_id, [first, second])
    assert flow.get().data == b"a" * MIN_PART + b"b"
    assert tree(outside) == before


@pytest.mark.parametrize(
    "planted",
    [
        "../../../../outside/secret",
        "{outside}/secret",
        "00001",
        "object.json",
        "",
        7,
        None,
    ],
)
def test_manifest_naming_a_file_outside_is_not_served(
    flow: Flow, data_dir: Path, outside: Path, planted: Any, caplog
) -> None:
    flow.upload([b"a" * MIN_PART, b"tail"])
    manifest_path = _object_dir(data_dir, "file.bin") / "object.json"
    manifest = json.loads(manifest_path.read_text())
    if isinstance(planted, str):
        planted = planted.format(outside=outside)
    manifest["parts"][0]["file"] = planted
    manifest["parts"][0]["size"] = len(SECRET)
    manifest["size"] = len(SECRET) + 4
    manifest_path.write_text(json.dumps(manifest))
    with caplog.at_level(logging.ERROR):
        got = flow.get()
        head = flow.client.head("/file.bin?action=get")
    assert (got.status_code, got.text) == (404, "Object Not Found")
    assert SECRET not in got.data
    assert head.status_code == 404
    assert "corrupt" in caplog.text
    # Still deletable, and overwritable.
    assert flow.client.delete("/file.bin?action=delete").status_code == 204
    flow.upload([b"fresh"])
    assert flow.get().data == b"fresh"
    assert (outside / "secret").read_bytes() == SECRET


@pytest.mark.parametrize(
    "change",
    [
        {"size": "4"},
        {"size": -1},
        {"size": True},
        {"key": 5},
        {"etag": ["x"]},
        {"upload_id": None},
        {"uploaded": "yesterday"},
        {"http_metadata": {"Content-Type": 5}},
        {"http_metadata": "text/html"},
        {"parts": {"file": "00001.0"}},
        {"parts": [{"file": "00001.d41d8cd98f00b204e9800998ecf8427e"}]},
        # Two good names in one: the names are checked joined, by "/".
        {
            "parts": [
                {
                    "file": "00001.d41d8cd98f00b204e9800998ecf8427e"
                    "/00002.d41d8cd98f00b204e9800998ecf8427e",
                    "size": 4,
                }
            ]
        },
        {"parts": [{"file": 1, "size": 4}]},
        {"parts": ["00001.d41d8cd98f00b204e9800998ecf8427e"]},
        {"parts": [{"file": "00001.d41d8cd98f00b204e9800998ecf8427e", "size": 4.0}]},
    ],
)
def test_manifest_with_bad_fields_is_absent_not_a_500(
    flow: Flow, data_dir: Path, change: dict[str, Any], caplog
) -> None:
    flow.upload([b"four"])
    manifest_path = _object_dir(data_dir, "file.bin") / "object.json"
    manifest = {**json.loads(manifest_path.read_text()), **change}
    manifest_path.write_text(json.dumps(manifest))
    with caplog.at_level(logging.ERROR):
        got = flow.get()
    assert (got.status_code, got.text) == (404, "Object Not Found")
    assert flow.client.head("/file.bin?action=get").status_code == 404
    assert "corrupt" in caplog.text


def test_part_file_of_the_wrong_size_is_not_served(
    flow: Flow, data_dir: Path, caplog
) -> None:
    flow.upload([b"a" * MIN_PART, b"tail"])
    folder = _object_dir(data_dir, "file.bin")
    manifest = json.loads((folder / "object.json").read_text())
    (folder / manifest["parts"][1]["file"]).write_bytes(b"ta")
    with caplog.at_level(logging.ERROR):
        got = flow.get()
    assert (got.status_code, got.text) == (404, "Object Not Found")
    assert "corrupt" in caplog.text


def test_object_dir_and_manifest_symlinked_outside_are_absent(
    flow: Flow, data_dir: Path, outside: Path
) -> None:
    """objects/<hh>/<digest> -> a real object moved outside, and an object.json
    symlinked to a manifest outside: neither is served nor deleted."""
    flow.upload([b"first object"], key="one")
    flow.upload([b"second object"], key="two")
    one = _object_dir(data_dir, "one")
    os.rename(one, outside / "one")
    os.symlink(outside / "one", one)
    two = _object_dir(data_dir, "two")
    os.rename(two / "object.json", outside / "object.json")
    os.symlink(outside / "object.json", two / "object.json")
    before = tree(outside)
    assert flow.get("one").status_code == 404
    assert flow.get("two").status_code == 404
    assert flow.client.delete("/one?action=delete").status_code == 204
    assert flow.client.delete("/two?action=delete").status_code == 204
    flow.client.application.extensions["mpuflask"].bucket.sweep()
    assert tree(outside) == before


def test_shard_dir_symlinked_outside_is_not_written_through(
    flow: Flow, data_dir: Path, outside: Path, caplog
) -> None:
    """objects/<hh> -> outside: a complete published into it."""
    shard = _object_dir(data_dir, "file.bin").parent
    shard.rmdir()  # made (empty) when the store opened its data dir
    os.symlink(outside, shard)
    before = tree(outside)
    with caplog.at_level(logging.WARNING):
        flow.upload([b"published"])
    assert flow.get().data == b"published"
    assert tree(outside) == before
    assert not shard.is_symlink() and shard.is_dir()


@pytest.mark.parametrize("area", ["uploads", "tmp", "objects", "trash", "staging"])
def test_area_symlinked_outside_is_refused_not_followed(
    make_app: Any, data_dir: Path, outside: Path, area: str, caplog
) -> None:
    flow = Flow(make_app(PROPAGATE_EXCEPTIONS=False).test_client())
    flow.upload([b"published"], key="old")
    upload_id = flow.create()
    part = flow.part(upload_id, 1, b"a")
    (data_dir / area).rename(outside / area)
    os.symlink(outside / area, data_dir / area)
    before = tree(outside)
    with caplog.at_level(logging.ERROR):
        answers = [
            flow.client.post("/new?action=mpu-create"),
            flow.put_part(upload_id, 2, b"b"),
            _listed(flow, upload_id),
            flow.complete_raw(upload_id, [part]),
            flow.get("old"),
            flow.client.delete("/old?action=delete"),
            flow.abort(upload_id),
        ]
    # Refused (503, R2's internal error) where the area is needed; never a 500.
    damaged = [r for r in answers if r.status_code >= 500]
    assert damaged, [r.text for r in answers]
    for response in damaged:
        assert response.status_code == 503, response.text
        assert response.text.endswith(
            ": We encountered an internal error. Please try again. (10001)"
        )
    assert f"data directory damaged: {area}" in caplog.text
    assert tree(outside) == before


@pytest.mark.parametrize(
    "change",
    [
        {"key": 5},
        {"key": None},
        {"owner": ["x"]},
        {"owner": 7},
        {"expires": "soon"},
        {"expires": 12},
        {"created": None},
        {"http_metadata": {"Content-Type": None}},
        {"http_metadata": []},
        {"upload_id": "another"},
    ],
)
def test_upload_record_with_bad_fields_is_no_upload(
    flow: Flow, data_dir: Path, change: dict[str, Any], caplog
) -> None:
    upload_id = flow.create()
    record_path = data_dir / "uploads" / upload_id / "upload.json"
    record = {**json.loads(record_path.read_text()), **change}
    record_path.write_text(json.dumps(record))
    with caplog.at_level(logging.ERROR):
        part = flow.put_part(upload_id, 1, b"x")
        listed = _listed(flow, upload_id)
    assert (part.status_code, part.text) == (400, NO_UPLOAD.format(op="uploadPart"))
    assert (listed.status_code, listed.text) == (400, NO_UPLOAD.format(op="listParts"))
    assert flow.abort(upload_id).status_code == 204
    assert "corrupt" in caplog.text
    bucket = flow.client.application.extensions["mpuflask"].bucket
    bucket.sweep()  # no crash on the corrupt record either


@pytest.mark.parametrize("record", [b"", b"{", b"[]", b"null", b"\xff", b"{}"])
def test_unreadable_upload_record_is_no_upload(
    flow: Flow, data_dir: Path, record: bytes
) -> None:
    upload_id = flow.create()
    (data_dir / "uploads" / upload_id / "upload.json").write_bytes(record)
    part = flow.put_part(upload_id, 1, b"x")
    assert (part.status_code, part.text) == (400, NO_UPLOAD.format(op="uploadPart"))
    flow.client.application.extensions["mpuflask"].bucket.sweep()


def test_upload_record_symlinked_outside_is_no_upload(
    flow: Flow, data_dir: Path, outside: Path
) -> None:
    upload_id = flow.create()
    record = data_dir / "uploads" / upload_id / "upload.json"
    os.rename(record, outside / "upload.json")
    os.symlink(outside / "upload.json", record)
    part = flow.put_part(upload_id, 1, b"x")
    assert (part.status_code, part.text) == (400, NO_UPLOAD.format(op="uploadPart"))


def test_symlinks_in_tmp_and_trash_are_removed_not_followed(
    flow: Flow, data_dir: Path, outside: Path
) -> None:
    for area in ("tmp", "trash", "staging"):
        os.symlink(outside, data_dir / area / "0123456789abcdef0123456789abcdef")
        os.symlink(outside / "secret", data_dir / area / "link-to-a-file")
        past = 1_000_000_000
        for name in ("0123456789abcdef0123456789abcdef", "link-to-a-file"):
            os.utime(data_dir / area / name, (past, past), follow_symlinks=False)
    before = tree(outside)
    flow.client.application.extensions["mpuflask"].bucket.sweep()
    assert tree(outside) == before
    assert list((data_dir / "tmp").iterdir()) == []
    assert list((data_dir / "trash").iterdir()) == []


def test_sweep_lock_symlinked_outside_is_not_created_there(
    make_app: Any, data_dir: Path, outside: Path
) -> None:
    """sweep.lock -> outside/planted: the gc command created that file."""
    app = make_app()
    os.symlink(outside / "planted", data_dir / "sweep.lock")
    result = app.test_cli_runner().invoke(args=["gc"])
    assert result.exit_code != 0
    assert not (outside / "planted").exists()
