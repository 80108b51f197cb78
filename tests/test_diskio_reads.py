"""Records and manifests are read and written in as few system calls as can
be: every part upload reads its upload's record, every GET its manifest, every
create and complete writes one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mpuflask.storage import diskio


def _counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., object] = getattr(os, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, counted)
    return calls


@pytest.mark.parametrize("size", [0, 1, 300, 65536, 700_000])
def test_a_record_is_read_whole_with_one_stat_and_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    data = os.urandom(size)
    (tmp_path / "upload.json").write_bytes(data)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    preads = _counted(monkeypatch, "pread")
    fstats = _counted(monkeypatch, "fstat")
    try:
        assert diskio.read_file(fd, "upload.json") == data
    finally:
        os.close(fd)
    assert (len(preads), len(fstats)) == (1, 1)


def test_a_file_longer_than_its_stat_said_is_read_to_its_end(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "object.json"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for said in (0, 10, 65535, 199_999):
            assert diskio.read_metadata(fd, said) == data
    finally:
        os.close(fd)


def test_a_record_over_the_limit_is_corrupt_and_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "upload.json"
    path.write_bytes(b"{}")
    os.truncate(path, diskio.MAX_METADATA_BYTES + 1)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    preads = _counted(monkeypatch, "pread")
    try:
        with pytest.raises(diskio.CorruptEntry, match="over"):
            diskio.read_file(fd, "upload.json")
    finally:
        os.close(fd)
    assert preads == []


def test_a_write_replaces_a_leftover_temp_never_following_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp a crash (or a planted symlink) left is removed and made again,
    never written through; with none there, nothing is unlinked first."""
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    folder = tmp_path / "upload"
    folder.mkdir()
    os.symlink(outside, folder / ".upload.json.tmp")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    unlinks = _counted(monkeypatch, "unlink")
    try:
        diskio.write_file_atomic(fd, "upload.json", b"{}", durable=False)
        assert len(unlinks) == 1
        diskio.write_file_atomic(fd, "upload.json", b'{"a":1}', durable=False)
        assert len(unlinks) == 1
    finally:
        os.close(fd)
    assert outside.read_bytes() == b"keep"
    assert sorted(os.listdir(folder)) == ["upload.json"]
    assert (folder / "upload.json").read_bytes() == b'{"a":1}'
