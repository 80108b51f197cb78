"""The resume record: found again for the same file and URL, never for another."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpuflask.client.state import StateStore
from mpuflask.client.state import UploadRecord
from mpuflask.client.state import default_state_dir

RECORD = UploadRecord("/data/a.bin", 10, 123, "http://h/k", "upload-1", 5)


def test_a_saved_record_is_found_for_the_same_file_and_url(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(RECORD)
    assert store.load("/data/a.bin", 10, 123, "http://h/k") == RECORD
    assert [p.suffix for p in tmp_path.iterdir()] == [".json"]


@pytest.mark.parametrize(
    "other",
    [
        ("/data/b.bin", 10, 123, "http://h/k"),
        ("/data/a.bin", 11, 123, "http://h/k"),
        ("/data/a.bin", 10, 124, "http://h/k"),
        ("/data/a.bin", 10, 123, "http://h/other"),
    ],
    ids=["path", "size", "mtime", "url"],
)
def test_another_file_version_or_url_has_no_record(
    tmp_path: Path, other: tuple[str, int, int, str]
) -> None:
    store = StateStore(tmp_path)
    store.save(RECORD)
    assert store.load(*other) is None


def test_delete_and_forget(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(RECORD)
    store.delete(RECORD)
    assert store.load("/data/a.bin", 10, 123, "http://h/k") is None
    store.save(RECORD)
    store.forget_upload("upload-1")
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_record_is_no_record(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    path = store.save(RECORD)
    path.write_text("{not json")
    assert store.load("/data/a.bin", 10, 123, "http://h/k") is None


def test_state_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MPUFLASK_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_state_dir() == tmp_path / "cache" / "mpuflask" / "uploads"
    monkeypatch.setenv("MPUFLASK_STATE_DIR", str(tmp_path / "explicit"))
    assert default_state_dir() == tmp_path / "explicit"
