"""How the filesystem store finds an upload's parts at listing and complete
(issue 16): one ``scandir``, no ``readlink`` when a number has one file, the
size from the part file's name at a listing (from ``stat`` at a complete),
and the links of the parts a complete keeps left where they are. Which names
count as parts at all is in test_part_file_names.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mpuflask.errors import InvalidPart
from mpuflask.rules import PartRef
from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.fspublish import object_name

from .part_files_support import fs_bucket
from .part_files_support import md5_hex


@contextmanager
def _part_file_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ``stat`` and ``readlink`` calls made on part files and links
    inside the block, as ``"stat 00001.<md5>.3"``."""
    calls: list[str] = []
    real_stat, real_readlink = os.stat, os.readlink

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        calls.append(f"stat {path}")
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    def readlink(path: object, *args: object, **kwargs: object) -> str:
        calls.append(f"readlink {path}")
        return real_readlink(path, *args, **kwargs)  # type: ignore[arg-type]

    part_calls: list[str] = []
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "readlink", readlink)
    try:
        yield part_calls
    finally:
        monkeypatch.undo()
        part_calls.extend(call for call in calls if call.split()[1][:5].isdigit())


def test_complete_keeps_the_links_of_its_parts_and_drops_the_rest(
    tmp_path: Path,
) -> None:
    bucket = fs_bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    bodies = {1: b"one", 2: b"two", 3: b"3"}
    for number, body in bodies.items():
        upload.upload_part(number, [body])

    upload.complete([PartRef(1, md5_hex(b"one")), PartRef(3, md5_hex(b"3"))])

    shard, name = object_name("k")
    version = tmp_path / "data" / "objects" / shard / name
    assert sorted(os.listdir(version)) == sorted(
        [
            "object.json",
            "upload.json",
            f"00001.{md5_hex(b'one')}.3",
            "00001",
            f"00003.{md5_hex(b'3')}.1",
            "00003",
        ]
    )
    body = bucket.get("k")
    assert body is not None
    with body:
        assert body.read() == b"one3"


def test_a_second_file_of_one_number_is_told_apart_by_the_link(
    tmp_path: Path,
) -> None:
    """A crash between a re-upload's rename and its link swap leaves two
    files of part 1: the link says which is part 1; the other is no part."""
    bucket = fs_bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload.upload_part(1, [b"current"])
    leftover = tmp_path / "data" / "uploads" / upload_id / f"00001.{md5_hex(b'new')}.3"
    leftover.write_bytes(b"new")

    listed = bucket.resume_multipart_upload("k", upload_id).list_parts()
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (1, md5_hex(b"current"), 7)
    ]
    with pytest.raises(InvalidPart):
        upload.complete([PartRef(1, md5_hex(b"new"))])
    assert leftover.exists()  # a refused complete changes nothing

    upload.complete([PartRef(1, md5_hex(b"current"))])
    body = bucket.get("k")
    assert body is not None
    with body:
        assert body.read() == b"current"
    shard, name = object_name("k")
    version = tmp_path / "data" / "objects" / shard / name
    assert leftover.name not in os.listdir(version)


def test_complete_reads_each_part_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the parts under the lock is the one ``stat`` per part: no
    ``readlink`` of a number with one file, and the index's settling reads
    only the manifest of the version just checked."""
    bucket = fs_bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    refs = [PartRef(n, upload.upload_part(n, [b"%03d" % n]).etag) for n in (1, 2, 3)]
    with _part_file_calls(monkeypatch) as part_calls:
        upload.complete(refs)

    assert sorted(part_calls) == sorted(
        f"stat {ref.part_number:05d}.{ref.etag}.3" for ref in refs
    )


def test_a_listing_reads_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each part's size is in its file's name: listing 10,000 parts is one
    ``scandir``, with no ``stat`` or ``readlink`` per part."""
    bucket = fs_bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    for n in (1, 2, 3):
        upload.upload_part(n, [b"%03d" % n])
    with _part_file_calls(monkeypatch) as part_calls:
        listed = upload.list_parts()

    assert [(p.part_number, p.size) for p in listed] == [(1, 3), (2, 3), (3, 3)]
    assert part_calls == []


def test_complete_lists_the_upload_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts left out are found in the listing taken under the lock, not
    in a second listing of 20,000 names (issue 16: complete of 10,000)."""
    bucket = fs_bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    refs = [PartRef(n, upload.upload_part(n, [b"%03d" % n]).etag) for n in (1, 2, 3)]
    upload.upload_part(4, [b"left out"])
    listed: list[object] = []
    real_listdir, real_scandir = os.listdir, os.scandir

    def listdir(path: Any = ".") -> list[str]:
        listed.append(path)
        return real_listdir(path)

    def scandir(path: Any = ".") -> Any:
        listed.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "scandir", scandir)
    upload.complete(refs)
    monkeypatch.undo()

    assert len(listed) == 1
    shard, name = object_name("k")
    version = tmp_path / "data" / "objects" / shard / name
    assert not [n for n in os.listdir(version) if n.startswith("00004")]


def test_settling_the_index_does_not_read_the_new_manifest_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index takes the info of the version complete has just written
    while it is still the key's: its manifest (10,000 entries for 10,000
    parts) is neither read back nor checked again. A reader still checks it
    (test_fsindex.py: a version published over it is read)."""
    from mpuflask.storage import fslayouts

    bucket = fs_bucket(tmp_path)
    checked: list[str] = []
    real_check = fslayouts.check_manifest

    def check_manifest(manifest: dict[str, object], what: str) -> dict[str, object]:
        checked.append(what)
        return real_check(manifest, what)

    monkeypatch.setattr(fslayouts, "check_manifest", check_manifest)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    info = upload.complete([PartRef(1, upload.upload_part(1, [b"one"]).etag)])
    assert checked == []
    assert bucket.head("k") == info
    assert len(checked) == 1


def test_a_link_temp_a_crash_left_is_replaced(tmp_path: Path) -> None:
    """``.link.tmp`` is made first and removed only if one is there: one a
    crash left between its symlink and its rename does not stop the part."""
    bucket = fs_bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload_dir = tmp_path / "data" / "uploads" / upload_id
    first = upload.upload_part(1, [b"one"])
    os.symlink(os.readlink(upload_dir / "00001"), upload_dir / ".link.tmp")

    second = upload.upload_part(2, [b"two"])

    assert not (upload_dir / ".link.tmp").exists()
    assert not (upload_dir / ".link.tmp").is_symlink()
    assert [(p.part_number, p.etag) for p in upload.list_parts()] == [
        (1, first.etag),
        (2, second.etag),
    ]
    assert os.listdir(tmp_path / "data" / "tmp") == []


def test_the_manifest_text_is_what_json_dumps_writes() -> None:
    from mpuflask.storage.fsupload import _manifest_json

    manifest = {
        "key": 'k\u00e9y "quoted" \\ \n\u2028',
        "upload_id": "u-1",
        "etag": "0" * 32 + "-2",
        "size": 3,
        "uploaded": "2026-12-02T00:00:00+00:00",
        "http_metadata": {"contentType": "text/plain; charset=\u00e9"},
        "parts": [
            {"file": f"00001.{md5_hex(b'a')}", "size": 1},
            {"file": f"00002.{md5_hex(b'bc')}", "size": 2},
        ],
    }
    expected = json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
    assert _manifest_json(manifest) == expected.encode()
    assert (
        _manifest_json({**manifest, "parts": []})
        == json.dumps(
            {**manifest, "parts": []}, ensure_ascii=False, separators=(",", ":")
        ).encode()
    )
