"""How the filesystem store finds an upload's parts at listing and complete
(issue 16): one ``scandir``, no ``readlink`` when a number has one file, the
size from the part file's name at a listing (from ``stat`` at a complete),
and the links of the parts a complete keeps left where they are."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mpuflask.errors import InvalidPart
from mpuflask.rules import PartRef
from mpuflask.storage.base import HttpMetadata
from mpuflask.storage.filesystem import FilesystemBucket
from mpuflask.storage.fspublish import object_name


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _bucket(tmp_path: Path) -> FilesystemBucket:
    return FilesystemBucket(
        tmp_path / "data", min_part_size=1, upload_ttl=timedelta(hours=1)
    )


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
    bucket = _bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    bodies = {1: b"one", 2: b"two", 3: b"3"}
    for number, body in bodies.items():
        upload.upload_part(number, [body])

    upload.complete([PartRef(1, _md5(b"one")), PartRef(3, _md5(b"3"))])

    shard, name = object_name("k")
    version = tmp_path / "data" / "objects" / shard / name
    assert sorted(os.listdir(version)) == sorted(
        [
            "object.json",
            "upload.json",
            f"00001.{_md5(b'one')}.3",
            "00001",
            f"00003.{_md5(b'3')}.1",
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
    bucket = _bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload.upload_part(1, [b"current"])
    leftover = tmp_path / "data" / "uploads" / upload_id / f"00001.{_md5(b'new')}.3"
    leftover.write_bytes(b"new")

    listed = bucket.resume_multipart_upload("k", upload_id).list_parts()
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (1, _md5(b"current"), 7)
    ]
    with pytest.raises(InvalidPart):
        upload.complete([PartRef(1, _md5(b"new"))])
    assert leftover.exists()  # a refused complete changes nothing

    upload.complete([PartRef(1, _md5(b"current"))])
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
    bucket = _bucket(tmp_path)
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
    bucket = _bucket(tmp_path)
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
    bucket = _bucket(tmp_path)
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
    from mpuflask.storage import fsobject

    bucket = _bucket(tmp_path)
    checked: list[str] = []
    real_check = fsobject.check_manifest

    def check_manifest(manifest: dict[str, object], what: str) -> dict[str, object]:
        checked.append(what)
        return real_check(manifest, what)

    monkeypatch.setattr(fsobject, "check_manifest", check_manifest)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    info = upload.complete([PartRef(1, upload.upload_part(1, [b"one"]).etag)])
    assert checked == []
    assert bucket.head("k") == info
    assert len(checked) == 1


def test_a_link_temp_a_crash_left_is_replaced(tmp_path: Path) -> None:
    """``.link.tmp`` is made first and removed only if one is there: one a
    crash left between its symlink and its rename does not stop the part."""
    bucket = _bucket(tmp_path)
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
            {"file": f"00001.{_md5(b'a')}", "size": 1},
            {"file": f"00002.{_md5(b'bc')}", "size": 2},
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


def _linked_file(upload_dir: Path, number: int) -> Path:
    return upload_dir / os.readlink(upload_dir / f"{number:05d}")


def test_parts_of_an_upload_begun_before_sizes_were_named_still_count(
    tmp_path: Path,
) -> None:
    """Part files named ``NNNNN.<md5>`` (no size) take their size from
    ``stat``: an upload begun before an upgrade lists and completes."""
    bucket = _bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload_dir = tmp_path / "data" / "uploads" / upload_id
    for number, body in ((1, b"older"), (2, b"xy")):
        upload.upload_part(number, [body])
        named = _linked_file(upload_dir, number)
        old_name = named.name.rsplit(".", 1)[0]
        named.rename(upload_dir / old_name)
        (upload_dir / f"{number:05d}").unlink()
        os.symlink(old_name, upload_dir / f"{number:05d}")

    listed = bucket.resume_multipart_upload("k", upload_id).list_parts()
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (1, _md5(b"older"), 5),
        (2, _md5(b"xy"), 2),
    ]
    info = upload.complete([PartRef(1, _md5(b"older")), PartRef(2, _md5(b"xy"))])
    assert info.size == 7
    body = bucket.get("k")
    assert body is not None
    with body:
        assert body.read() == b"olderxy"


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_part_file_name_that_is_not_a_file_is_no_part(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """A directory, or a symlink to a file outside, planted under a part
    file's name is told by its type from the directory listing: never
    followed, listed or completed."""
    bucket = _bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload_dir = tmp_path / "data" / "uploads" / upload_id
    upload.upload_part(1, [b"one"])
    planted = upload_dir / f"00002.{_md5(b'two')}.3"
    if kind == "directory":
        planted.mkdir()
    else:
        (tmp_path / "outside").write_bytes(b"two")
        os.symlink(tmp_path / "outside", planted)
    os.symlink(planted.name, upload_dir / "00002")

    with caplog.at_level("ERROR"):
        listed = bucket.resume_multipart_upload("k", upload_id).list_parts()
        assert [p.part_number for p in listed] == [1]
        with pytest.raises(InvalidPart):
            upload.complete([PartRef(1, _md5(b"one")), PartRef(2, _md5(b"two"))])
    assert f"corrupt part 00002: {planted.name} is not a file" in caplog.text
    assert os.path.lexists(planted)  # a refused complete changes nothing


def test_a_part_whose_name_lies_about_its_size_is_not_completed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A listing takes a part's size from its file's name; a complete measures
    the file, so a name whose size is not the file's (renamed by hand, or a
    power cut of a store without durability kept the name and not the bytes)
    is a corrupt part: refused, never published with a size GET would not
    find (and never listed by the index), nor over the key's earlier version."""
    bucket = _bucket(tmp_path)
    earlier = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    first = bucket.resume_multipart_upload("k", earlier)
    first.complete([PartRef(1, first.upload_part(1, [b"earlier"]).etag)])
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload_dir = tmp_path / "data" / "uploads" / upload_id
    upload.upload_part(1, [b"one"])
    named = _linked_file(upload_dir, 1)
    lying = named.name.rsplit(".", 1)[0] + ".4"
    named.rename(upload_dir / lying)
    (upload_dir / "00001").unlink()
    os.symlink(lying, upload_dir / "00001")

    assert [(p.part_number, p.size) for p in upload.list_parts()] == [(1, 4)]
    with caplog.at_level("ERROR"), pytest.raises(InvalidPart):
        upload.complete([PartRef(1, _md5(b"one"))])
    assert f"corrupt part 00001: {lying} holds 3 bytes" in caplog.text
    # Refused: nothing changed, and the key's earlier version still stands.
    head = bucket.head("k")
    assert head is not None and head.size == 7
    assert [o.size for o in bucket.list_objects_page("", None, None, 10).objects] == [7]
    body = bucket.get("k")
    assert body is not None
    with body:
        assert body.read() == b"earlier"
    assert (upload_dir / lying).read_bytes() == b"one"


def test_names_that_only_look_like_parts_are_no_parts(tmp_path: Path) -> None:
    """PartFiles checks all names at once and, when one fails, each on its
    own: only exact ``NNNNN`` links and ``NNNNN.<md5>[.<size>]`` files count,
    whatever else sits beside them."""
    from mpuflask.storage.fsrecords import PartFiles

    md5 = _md5(b"x")
    good_links = ["00001", "00002", "00003"]
    good_files = [f"00001.{md5}.1", f"00002.{md5}", f"00003.{md5}.0"]
    look_alikes = [
        "0001",
        "000001",
        "0000a",
        "\u0660\u0660\u0660\u0660\u0661",  # Arabic-Indic digits
        f"00004.{md5}.01",
        f"00004.{md5.upper()}.1",
        f"00004.{md5}.1x",
        f"00004.{md5}.",
        f"00004.{md5[:-1]}.1",
        f"0004.{md5}.1",
        f"00004.{md5}.{'1' * 20}",
        f"00004.{md5}.1\n00005",
    ]
    for names in (good_links + good_files, good_links + good_files + look_alikes):
        directory = tmp_path / f"d{len(names)}"
        directory.mkdir()
        for name in names:
            (directory / name).write_bytes(b"x")
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            files = PartFiles(fd)
        finally:
            os.close(fd)
        assert files.links == good_links
        assert sorted(files.names) == sorted(names)
        assert {link: files._only.get(link) for link in good_links} == dict(
            zip(good_links, good_files, strict=True)
        )
        assert set(files._only) == set(good_links)


def _random_upload_dir(rng: random.Random, directory: Path) -> None:
    """Parts as a crash, a restore or a hand may leave them: sized and
    unsized names, sizes that lie, two files of one number, directories,
    FIFOs and symlinks under part names, links to anywhere, and junk."""
    md5s = [_md5(b"a"), _md5(b"b")]
    made: set[str] = set()

    def make(name: str, kind: str, size: int = 1, target: str = "x") -> None:
        if name in made:
            return
        made.add(name)
        path = directory / name
        if kind == "file":
            path.write_bytes(b"x" * size)
        elif kind == "dir":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            os.symlink(target, path)

    for number in (f"{n:05d}" for n in rng.sample(range(1, 9), rng.randint(0, 7))):
        files = []
        for _ in range(rng.choice([0, 1, 1, 1, 1, 2])):
            size = rng.randint(0, 4)
            suffix = rng.choice([f".{size}"] * 4 + ["", f".{size + 1}", f".0{size}"])
            name = f"{number}.{rng.choice(md5s)}{suffix}"
            kind = rng.choice(["file"] * 8 + ["dir", "fifo", "symlink"])
            make(name, kind, size, rng.choice(["/etc/hostname", name, "nowhere"]))
            files.append(name)
        if rng.random() < 0.85:
            targets = files or [f"{number}.{md5s[0]}.1"]
            make(
                number, "symlink", target=rng.choice([*targets, "../x", "upload.json"])
            )
        elif rng.random() < 0.5:
            make(number, rng.choice(["file", "dir"]))
    for junk in ("upload.json", ".link.tmp", "0000\u0661", "1234", "123456", "x" * 60):
        if rng.random() < 0.3:
            make(junk, rng.choice(["file", "dir", "symlink"]), target="00001")


def test_part_files_read_every_directory_as_name_by_name_would(tmp_path: Path) -> None:
    """PartFiles matches all names at once, and lists and measures all parts
    in one pass; on 300 random directories it finds what matching each name
    on its own finds, and listed() and measured() are None or what current()
    says part by part."""
    from mpuflask.storage.diskio import CorruptEntry
    from mpuflask.storage.fsrecords import PART_FILE
    from mpuflask.storage.fsrecords import PART_LINK
    from mpuflask.storage.fsrecords import PartFiles

    rng = random.Random(16)
    fast_paths = fast_listings = 0
    for case in range(300):
        directory = tmp_path / str(case)
        directory.mkdir()
        _random_upload_dir(rng, directory)
        names = os.listdir(directory)
        only: dict[str, str | None] = {}
        for name in names:
            if PART_FILE.fullmatch(name):
                only[name[:5]] = None if name[:5] in only else name
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            files = PartFiles(fd)
            assert files.links == sorted(n for n in names if PART_LINK.fullmatch(n))
            assert files._only == only
            outcomes: list[object] = []
            listings: list[object] = []
            for link in files.links:
                for measure, into in ((True, outcomes), (False, listings)):
                    try:
                        into.append(files.current(link, measured=measure))
                    except CorruptEntry as error:
                        into.append(error)
            measured = files.measured(files.links)
            listed = files.listed()
        finally:
            os.close(fd)
        if measured is not None:
            fast_paths += 1
            assert list(zip(*measured, strict=True)) == outcomes
        if listed is not None:
            fast_listings += 1
            assert list(zip(*listed, strict=True)) == listings
    assert 30 < fast_paths < 270  # both ways were taken, often
    assert 30 < fast_listings < 270
