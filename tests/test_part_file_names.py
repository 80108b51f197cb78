"""Which names in an upload's directory are parts (issue 16): exact ``NNNNN``
links and ``NNNNN.<md5>[.<size>]`` files, nothing else. Part files named
before sizes were (no size: measured), names that are not files, names that
lie about their size, look-alikes, and PartFiles' one pass over a directory
checked against matching name by name on random directories."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from mpuflask.errors import InvalidPart
from mpuflask.rules import PartRef
from mpuflask.storage.base import HttpMetadata

from .part_files_support import fs_bucket
from .part_files_support import md5_hex


def _linked_file(upload_dir: Path, number: int) -> Path:
    return upload_dir / os.readlink(upload_dir / f"{number:05d}")


def test_parts_of_an_upload_begun_before_sizes_were_named_still_count(
    tmp_path: Path,
) -> None:
    """Part files named ``NNNNN.<md5>`` (no size) take their size from
    ``stat``: an upload begun before an upgrade lists and completes."""
    bucket = fs_bucket(tmp_path)
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
        (1, md5_hex(b"older"), 5),
        (2, md5_hex(b"xy"), 2),
    ]
    info = upload.complete([PartRef(1, md5_hex(b"older")), PartRef(2, md5_hex(b"xy"))])
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
    bucket = fs_bucket(tmp_path)
    upload_id = bucket.create_multipart_upload("k", HttpMetadata({})).upload_id
    upload = bucket.resume_multipart_upload("k", upload_id)
    upload_dir = tmp_path / "data" / "uploads" / upload_id
    upload.upload_part(1, [b"one"])
    planted = upload_dir / f"00002.{md5_hex(b'two')}.3"
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
            upload.complete([PartRef(1, md5_hex(b"one")), PartRef(2, md5_hex(b"two"))])
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
    bucket = fs_bucket(tmp_path)
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
        upload.complete([PartRef(1, md5_hex(b"one"))])
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

    md5 = md5_hex(b"x")
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
    md5s = [md5_hex(b"a"), md5_hex(b"b")]
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
