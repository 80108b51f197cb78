"""A read of the filesystem store checks the part files it sends, and only those.

An object of 10,000 parts used to cost a ``stat`` of every part file on every
HEAD, 304 and 100-byte range (31 ms in process), because the whole version was
checked against its files when it was opened. Now the manifest is checked when
a version is opened (every field, every part's name and size), and a part
file is checked (a regular file of the version, of the manifest's size)
before the first byte of a response that sends from it. What a response does
not send from is not looked at: a HEAD and a 304 answer from the manifest.
The index, which lists what a whole GET finds, still checks every file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from .conftest import MIN_PART
from .conftest import Flow

pytestmark = pytest.mark.filesystem_only("counts the store's system calls")

PARTS = [bytes([65 + n]) * MIN_PART for n in range(4)] + [b"tail"]
WHOLE = b"".join(PARTS)


def _version_dir(data_dir: Path, key: str = "file.bin") -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return data_dir / "objects" / digest[:2] / digest


def _part_files(data_dir: Path) -> list[str]:
    manifest = json.loads((_version_dir(data_dir) / "object.json").read_text())
    return [part["file"] for part in manifest["parts"]]


def _entries(data_dir: Path) -> dict[str, bytes | str]:
    """The version directory's entries: a file's bytes, a link's target."""
    return {
        path.name: os.readlink(path) if path.is_symlink() else path.read_bytes()
        for path in _version_dir(data_dir).iterdir()
    }


@contextmanager
def _stats_of_part_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The part files ``os.stat`` is called on inside the block."""
    calls: list[str] = []
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if isinstance(path, str) and path[:5].isdigit():
            calls.append(path)
        return real_stat(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "stat", stat)
        yield calls


@pytest.fixture
def flow(make_app: Any) -> Flow:
    return Flow(make_app(PROPAGATE_EXCEPTIONS=False).test_client())


def test_head_and_304_check_no_part_file(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    etag = flow.upload(PARTS)
    with _stats_of_part_files(monkeypatch) as stats:
        head = flow.client.head("/file.bin?action=get")
        not_modified = flow.get(**{"If-None-Match": etag})
    assert (head.status_code, head.headers["Content-Length"]) == (200, str(len(WHOLE)))
    assert not_modified.status_code == 304
    assert stats == []


def test_a_range_checks_only_the_parts_it_sends(
    flow: Flow, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow.upload(PARTS)
    files = _part_files(data_dir)
    with _stats_of_part_files(monkeypatch) as stats:
        inside = flow.get(Range=f"bytes={MIN_PART + 5}-{MIN_PART + 9}")
    assert (inside.status_code, inside.data) == (206, b"B" * 5)
    assert stats == [files[1]]

    with _stats_of_part_files(monkeypatch) as stats:
        across = flow.get(Range=f"bytes={2 * MIN_PART - 1}-{3 * MIN_PART}")
    assert (across.status_code, across.data) == (206, b"B" + b"C" * MIN_PART + b"D")
    assert stats == files[1:4]

    with _stats_of_part_files(monkeypatch) as stats:
        several = flow.get(Range="bytes=0-0,-2")
    assert several.status_code == 206
    assert stats == [files[0], files[4]]

    with _stats_of_part_files(monkeypatch) as stats:
        whole = flow.get()
    assert (whole.status_code, whole.data) == (200, WHOLE)
    assert stats == files


def test_a_bad_part_file_fails_what_sends_from_it(
    flow: Flow, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A part file cut short: a response that would send from it is 404 (and
    logged) before its first byte; one that sends only other parts is served
    whole; HEAD answers from the manifest."""
    etag = flow.upload(PARTS)
    before = _entries(data_dir)
    bad = _version_dir(data_dir) / _part_files(data_dir)[2]
    bad.write_bytes(b"CC")
    with caplog.at_level(logging.ERROR):
        whole = flow.get()
        touching = flow.get(Range=f"bytes={2 * MIN_PART}-{2 * MIN_PART}")
        several = flow.get(Range=f"bytes=0-0,{2 * MIN_PART + 1}-{2 * MIN_PART + 1}")
    for answer in (whole, touching, several):
        assert (answer.status_code, answer.text) == (404, "Object Not Found")
    assert f"part file {bad.name} is not the part listed" in caplog.text

    first = flow.get(Range="bytes=0-3")
    assert (first.status_code, first.data) == (206, b"AAAA")
    tail = flow.get(Range="bytes=-4")
    assert (tail.status_code, tail.data) == (206, b"tail")
    head = flow.client.head("/file.bin?action=get")
    assert (head.status_code, head.headers["etag"]) == (200, etag)
    # Nothing was repaired, moved or removed by the reads.
    assert _entries(data_dir) == {**before, bad.name: b"CC"}


def test_a_missing_part_file_keeps_the_object_out_of_a_rebuilt_index(
    make_app: Any, flow: Flow, data_dir: Path
) -> None:
    """The index lists what a whole GET finds: every file is checked there."""
    flow.upload(PARTS)
    good = flow.upload([b"fine"], key="good")
    (_version_dir(data_dir) / _part_files(data_dir)[4]).unlink()
    shutil.rmtree(data_dir / "index")
    app: Flask = make_app()
    answer = app.test_client().get("/?action=list").json
    assert answer is not None
    assert [(item["key"], item["etag"]) for item in answer["objects"]] == [
        ("good", good.strip('"'))
    ]


@pytest.mark.parametrize("where", [0, 1, 2])
@pytest.mark.parametrize("planted", ["missing", "fifo", "directory", "bytes"])
def test_a_damaged_empty_part_fails_a_whole_get_and_the_index(
    make_app: Any, flow: Flow, data_dir: Path, where: int, planted: str
) -> None:
    """A manifest listing a part of 0 bytes (found by a review): no range
    sends from its file, but a whole GET and the index check it, as before."""
    flow.upload([b"a" * MIN_PART, b"tail"])
    folder = _version_dir(data_dir)
    manifest = json.loads((folder / "object.json").read_text())
    name = "00009.d41d8cd98f00b204e9800998ecf8427e.0"
    manifest["parts"].insert(where, {"file": name, "size": 0})
    (folder / "object.json").write_text(json.dumps(manifest))
    if planted == "fifo":
        os.mkfifo(folder / name)
    elif planted == "directory":
        (folder / name).mkdir()
    elif planted == "bytes":
        (folder / name).write_bytes(b"x")
    before = {path.name: path.lstat().st_mode for path in folder.iterdir()}
    whole = flow.get()
    assert (whole.status_code, whole.text) == (404, "Object Not Found")
    tail = flow.get(Range="bytes=-4")
    assert (tail.status_code, tail.data) == (206, b"tail")
    shutil.rmtree(data_dir / "index")
    answer = make_app().test_client().get("/?action=list").json
    assert answer is not None
    assert answer["objects"] == []
    # The reads and the rebuild left the damaged version as it was.
    assert {path.name: path.lstat().st_mode for path in folder.iterdir()} == before
