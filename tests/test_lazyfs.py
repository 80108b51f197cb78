"""The lazy disk's rules (tests/powerloss/lazyfs.py), one per test, without FUSE.

Each test makes changes through the model, cuts the power and looks at what
the rebuilt directory holds. The same disk through a real FUSE mount is in
test_lazyfs_fuse.py.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.lazyfs_support import tree
from tests.powerloss.lazyfs import BLOCK
from tests.powerloss.lazyfs import RENAME_EXCHANGE
from tests.powerloss.lazyfs import RENAME_NOREPLACE
from tests.powerloss.lazyfs import LazyDisk


def write(disk: LazyDisk, rel: str, data: bytes, sync: bool = False) -> None:
    """Create (or replace the content of) ``rel`` with ``data``; fsync if asked."""
    flags = os.O_WRONLY | os.O_TRUNC
    if os.path.lexists(disk.path(rel)):
        fd = disk.open(rel, flags)
    else:
        fd = disk.create(rel, flags | os.O_CREAT)
    try:
        disk.write(fd, data, 0)
        if sync:
            disk.fsync_file(fd)
    finally:
        disk.release(fd)


def fsync_file(disk: LazyDisk, rel: str) -> None:
    fd = disk.open(rel, os.O_RDONLY)
    disk.fsync_file(fd)
    disk.release(fd)


@pytest.fixture
def disk(tmp_path: Path) -> LazyDisk:
    return LazyDisk(tmp_path / "store")


def after_cut(
    disk: LazyDisk, rng: random.Random | None = None
) -> dict[str, bytes | str]:
    disk.cut(rng)
    return tree(disk.live)


# -- data ---------------------------------------------------------------------------


def test_a_file_written_and_never_synced_is_gone(disk: LazyDisk) -> None:
    write(disk, "f", b"data")
    assert tree(disk.live) == {"f": b"data"}  # live: plain pass-through
    assert after_cut(disk) == {}


def test_a_synced_file_whose_directory_was_not_synced_is_gone(disk: LazyDisk) -> None:
    write(disk, "f", b"data", sync=True)
    assert after_cut(disk) == {}


def test_a_name_synced_without_its_data_comes_back_empty(disk: LazyDisk) -> None:
    write(disk, "f", b"data")
    disk.fsync_dir("")
    assert after_cut(disk) == {"f": b""}


def test_data_and_name_synced_survive(disk: LazyDisk) -> None:
    write(disk, "f", b"data", sync=True)
    disk.fsync_dir("")
    assert after_cut(disk) == {"f": b"data"}


def test_what_was_there_at_the_start_is_durable(tmp_path: Path) -> None:
    (tmp_path / "store" / "live" / "d").mkdir(parents=True)
    (tmp_path / "store" / "live" / "d" / "f").write_bytes(b"old")
    os.symlink("f", tmp_path / "store" / "live" / "d" / "l")
    disk = LazyDisk(tmp_path / "store")
    assert after_cut(disk) == {"d": "/", "d/f": b"old", "d/l": "-> f"}


def test_an_overwrite_not_synced_is_undone_block_by_block(disk: LazyDisk) -> None:
    old = bytes(range(256)) * (3 * BLOCK // 256) + b"tail"
    write(disk, "f", old, sync=True)
    disk.fsync_dir("")
    fd = disk.open("f", os.O_WRONLY)
    disk.write(fd, b"X" * 10, BLOCK - 5)  # across blocks 0 and 1
    disk.write(fd, b"more", len(old))  # past the synced size
    disk.release(fd)
    assert after_cut(disk) == {"f": old}


def test_a_truncate_not_synced_is_undone(disk: LazyDisk) -> None:
    old = os.urandom(2 * BLOCK + 100)
    write(disk, "f", old, sync=True)
    disk.fsync_dir("")
    disk.truncate(10, rel="f")
    fd = disk.open("f", os.O_WRONLY)
    disk.write(fd, b"new", 3 * BLOCK)
    disk.release(fd)
    assert after_cut(disk) == {"f": old}


def test_open_with_o_trunc_then_fsync_keeps_the_new_bytes(disk: LazyDisk) -> None:
    write(disk, "f", b"old old old", sync=True)
    disk.fsync_dir("")
    write(disk, "f", b"new", sync=True)
    assert after_cut(disk) == {"f": b"new"}


# -- names ----------------------------------------------------------------------------


def test_a_rename_whose_directory_was_not_synced_is_undone(disk: LazyDisk) -> None:
    write(disk, "a", b"A", sync=True)
    write(disk, "b", b"B", sync=True)
    disk.fsync_dir("")
    disk.rename("a", "b")  # replaces b
    assert tree(disk.live) == {"b": b"A"}
    assert after_cut(disk) == {"a": b"A", "b": b"B"}


def test_a_rename_across_directories_is_atomic(disk: LazyDisk) -> None:
    for name in ("src", "dst"):
        disk.mkdir(name)
    disk.fsync_dir("")
    write(disk, "src/f", b"bytes", sync=True)
    disk.fsync_dir("src")
    disk.rename("src/f", "dst/f")
    disk.fsync_dir("dst")  # only the destination: the whole rename is durable
    assert after_cut(disk) == {"src": "/", "dst": "/", "dst/f": b"bytes"}


def test_fsync_of_the_source_directory_also_makes_a_rename_whole(
    disk: LazyDisk,
) -> None:
    for name in ("src", "dst"):
        disk.mkdir(name)
    disk.fsync_dir("")
    write(disk, "src/f", b"bytes", sync=True)
    disk.fsync_dir("src")
    disk.rename("src/f", "dst/f")
    disk.fsync_dir("src")
    assert after_cut(disk) == {"src": "/", "dst": "/", "dst/f": b"bytes"}


def test_a_file_made_in_tmp_and_renamed_needs_only_the_destination_synced(
    disk: LazyDisk,
) -> None:
    for name in ("tmp", "d"):
        disk.mkdir(name)
    disk.fsync_dir("")
    write(disk, "tmp/x", b"part", sync=True)
    write(disk, "tmp/other", b"unrelated", sync=True)
    disk.rename("tmp/x", "d/x")
    disk.fsync_dir("d")
    # The create of tmp/x persists with the rename; tmp/other stays unsynced.
    assert after_cut(disk) == {"tmp": "/", "d": "/", "d/x": b"part"}


def test_an_entry_moved_twice_lands_once(disk: LazyDisk) -> None:
    for name in ("a", "b", "c"):
        disk.mkdir(name)
    disk.fsync_dir("")
    disk.mkdir("a/sub")
    disk.fsync_dir("a")
    disk.rename("a/sub", "b/sub")
    disk.rename("b/sub", "c/sub")
    disk.fsync_dir("c")
    assert after_cut(disk) == {"a": "/", "b": "/", "c": "/", "c/sub": "/"}


def test_exchange_is_atomic_and_undone_unless_synced(disk: LazyDisk) -> None:
    for name in ("x", "y"):
        disk.mkdir(name)
        write(disk, f"{name}/id", name.encode(), sync=True)
        disk.fsync_dir(name)
    disk.fsync_dir("")
    disk.rename("x", "y", RENAME_EXCHANGE)
    assert tree(disk.live)["x/id"] == b"y"
    assert after_cut(disk) == {"x": "/", "x/id": b"x", "y": "/", "y/id": b"y"}


def test_exchange_synced_stays_swapped(disk: LazyDisk) -> None:
    for name in ("x", "y"):
        disk.mkdir(name)
        write(disk, f"{name}/id", name.encode(), sync=True)
        disk.fsync_dir(name)
    disk.fsync_dir("")
    disk.rename("x", "y", RENAME_EXCHANGE)
    disk.fsync_dir("")
    assert after_cut(disk) == {"x": "/", "x/id": b"y", "y": "/", "y/id": b"x"}


def test_exchange_and_noreplace_refuse_as_renameat2_does(disk: LazyDisk) -> None:
    write(disk, "a", b"A")
    write(disk, "b", b"B")
    with pytest.raises(FileNotFoundError):
        disk.rename("a", "missing", RENAME_EXCHANGE)
    with pytest.raises(FileExistsError):
        disk.rename("a", "b", RENAME_NOREPLACE)
    disk.rename("a", "c", RENAME_NOREPLACE)
    assert tree(disk.live) == {"b": b"B", "c": b"A"}


def test_an_unlink_not_synced_is_undone_with_the_bytes(disk: LazyDisk) -> None:
    write(disk, "f", b"keep me", sync=True)
    disk.fsync_dir("")
    fd = disk.open("f", os.O_RDONLY)
    disk.unlink("f")
    assert disk.stat(fd=fd)["st_nlink"] == 0  # live callers see it unlinked
    disk.release(fd)
    assert tree(disk.live) == {}
    assert after_cut(disk) == {"f": b"keep me"}


def test_an_unlink_synced_is_durable(disk: LazyDisk) -> None:
    write(disk, "f", b"x", sync=True)
    disk.fsync_dir("")
    disk.unlink("f")
    disk.fsync_dir("")
    assert disk.limbo_files() == 0  # nothing kept for it any more
    assert after_cut(disk) == {}


def test_a_replaced_file_comes_back_when_the_rename_is_undone(
    disk: LazyDisk,
) -> None:
    write(disk, "f", b"old", sync=True)
    disk.fsync_dir("")
    write(disk, ".f.tmp", b"new", sync=True)
    disk.rename(".f.tmp", "f")
    assert after_cut(disk) == {"f": b"old"}


def test_mkdir_needs_its_parent_synced_and_its_entries_need_itself(
    disk: LazyDisk,
) -> None:
    disk.mkdir("d")
    write(disk, "d/f", b"x", sync=True)
    disk.fsync_dir("d")
    assert after_cut(disk) == {}  # d's entry in the root was never synced


def test_a_synced_mkdir_is_empty_until_the_directory_is_synced(
    disk: LazyDisk,
) -> None:
    disk.mkdir("d")
    disk.fsync_dir("")
    write(disk, "d/f", b"x", sync=True)
    assert after_cut(disk) == {"d": "/"}


def test_rmdir_not_synced_is_undone_with_the_durable_entries(
    disk: LazyDisk,
) -> None:
    disk.mkdir("d")
    disk.fsync_dir("")
    write(disk, "d/f", b"x", sync=True)
    disk.fsync_dir("d")
    disk.unlink("d/f")
    disk.rmdir("d")
    assert after_cut(disk) == {"d": "/", "d/f": b"x"}


def test_symlinks_come_back_with_their_target_or_not_at_all(
    disk: LazyDisk,
) -> None:
    disk.symlink("target-1", "kept")
    disk.fsync_dir("")
    disk.symlink("target-2", "lost")
    disk.symlink("target-3", ".tmp")
    disk.rename(".tmp", "kept")  # the atomic link swap the store does
    assert tree(disk.live) == {"kept": "-> target-3", "lost": "-> target-2"}
    assert after_cut(disk) == {"kept": "-> target-1"}


def test_hard_links_are_entries_like_any_other(disk: LazyDisk) -> None:
    write(disk, "a", b"same", sync=True)
    disk.fsync_dir("")
    disk.link("a", "b")
    disk.unlink("a")
    assert after_cut(disk) == {"a": b"same"}


def test_the_store_s_part_commit_survives_once_its_directory_is_synced(
    disk: LazyDisk,
) -> None:
    """What FilesystemUpload.upload_part does, replacing part 1, then a cut."""
    for name in ("tmp", "u"):
        disk.mkdir(name)
    disk.fsync_dir("")
    write(disk, "u/00001.old", b"old", sync=True)
    disk.symlink("00001.old", "u/00001")
    disk.fsync_dir("u")
    write(disk, "tmp/r", b"new", sync=True)
    disk.rename("tmp/r", "u/00001.new")
    disk.symlink("00001.new", "u/.link.tmp")
    disk.rename("u/.link.tmp", "u/00001")
    disk.unlink("u/00001.old")
    disk.fsync_dir("u")
    assert after_cut(disk) == {
        "tmp": "/",
        "u": "/",
        "u/00001": "-> 00001.new",
        "u/00001.new": b"new",
    }


def test_after_a_cut_the_disk_refuses_everything(disk: LazyDisk) -> None:
    disk.cut()
    with pytest.raises(OSError, match="the power is off"):
        disk.mkdir("d")


# -- write-back: a random part of the unsynced state reached the disk ------------------


def test_write_back_keeps_a_prefix_of_the_changes_in_their_order(
    tmp_path: Path,
) -> None:
    """Names created in order: whatever survives is the first k of them."""
    seen = set()
    for seed in range(30):
        disk = LazyDisk(tmp_path / f"store-{seed}")
        for index in range(6):
            disk.mkdir(f"d{index}")
        survivors = sorted(after_cut(disk, random.Random(seed)))
        assert survivors == [f"d{index}" for index in range(len(survivors))]
        seen.add(len(survivors))
    assert len(seen) > 3  # really random


def test_write_back_bytes_are_synced_live_or_a_block_mix(tmp_path: Path) -> None:
    old = b"o" * (3 * BLOCK)
    new = b"n" * (4 * BLOCK)
    outcomes = set()
    for seed in range(40):
        disk = LazyDisk(tmp_path / f"store-{seed}")
        write(disk, "f", old, sync=True)
        disk.fsync_dir("")
        fd = disk.open("f", os.O_WRONLY)
        disk.write(fd, new, 0)
        disk.release(fd)
        data = after_cut(disk, random.Random(seed))["f"]
        assert isinstance(data, bytes)
        blocks = [data[i : i + BLOCK] for i in range(0, len(data), BLOCK)]
        assert len(data) in (len(old), len(new))
        for index, block in enumerate(blocks):
            assert block in (old[:BLOCK], new[:BLOCK], bytes(BLOCK)), index
            if index * BLOCK >= len(old):
                assert block in (new[:BLOCK], bytes(BLOCK))
        outcomes.add(data)
    assert old in outcomes and new in outcomes and len(outcomes) > 3
