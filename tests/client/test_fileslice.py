"""A part streams from the file: bounded reads, its MD5 on the way."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from requests.utils import super_len

from mpuflask.client import Cancelled
from mpuflask.client import SourceChanged
from mpuflask.client.fileslice import FileSlice
from mpuflask.client.fileslice import md5_of_range
from mpuflask.client.hashing import PartHasher
from mpuflask.client.hashing import etag_check
from tests.oracle import md5
from tests.oracle import multipart_etag

DATA = bytes(range(256)) * 40


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(DATA)
    return path


def test_reads_exactly_its_range_in_bounded_blocks(source: Path) -> None:
    seen: list[int] = []
    with FileSlice(source, 1000, 3000, on_read=seen.append) as part:
        blocks = []
        while block := part.read(512):
            blocks.append(block)
    assert b"".join(blocks) == DATA[1000:4000]
    assert max(len(b) for b in blocks) == 512
    assert sum(seen) == 3000
    assert part.md5_hex() == md5(DATA[1000:4000])


def test_requests_sends_the_slice_length_not_the_file_size(source: Path) -> None:
    with FileSlice(source, 100, 200) as part:
        assert super_len(part) == 200


def test_md5_of_range(source: Path) -> None:
    assert md5_of_range(source, 5, 10) == md5(DATA[5:15])


def test_cancel_stops_the_body_mid_stream(source: Path) -> None:
    cancel = threading.Event()
    with FileSlice(source, 0, 4000, cancel=cancel) as part:
        part.read(100)
        cancel.set()
        with pytest.raises(Cancelled):
            part.read(100)


def test_a_file_that_shrank_is_noticed(source: Path) -> None:
    with FileSlice(source, 0, len(DATA), cancel=None) as part:
        source.write_bytes(DATA[:100])
        with pytest.raises(SourceChanged):
            part.md5_hex()


@given(
    st.binary(max_size=5000),
    st.integers(1, 700),
    st.lists(st.integers(1, 900), min_size=1),
)
def test_part_hasher_cuts_where_the_parts_end(
    data: bytes, part_size: int, chunks: list[int]
) -> None:
    hasher = PartHasher(part_size)
    position = 0
    for size in chunks * (len(data) // sum(chunks) + 1):
        hasher.update(data[position : position + size])
        position += size
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    assert hasher.digests() == [md5(p) for p in parts]


@pytest.mark.parametrize(
    ("etag", "size", "part_size", "expected"),
    [
        (md5(b"x"), 1, None, (1, False)),
        (multipart_etag([]), 0, None, (1, True)),
        (multipart_etag([b"abc"]), 3, None, (3, True)),
        ("0" * 32 + "-3", 12 * 1024 * 1024, None, (5 * 1024 * 1024, True)),
        ("0" * 32 + "-2", 12 * 1024 * 1024, 6 * 1024 * 1024, (6 * 1024 * 1024, True)),
        ("0" * 32 + "-4", 12 * 1024 * 1024, 5 * 1024 * 1024, (None, True)),
        ("0" * 32 + "-2", 12 * 1024 * 1024, None, (None, True)),
        ("random-etag", 10, None, (None, True)),
    ],
)
def test_etag_check_finds_the_cut(
    etag: str, size: int, part_size: int | None, expected: tuple[int | None, bool]
) -> None:
    check = etag_check(etag, size, part_size)
    assert (check.part_size, check.multipart) == expected
