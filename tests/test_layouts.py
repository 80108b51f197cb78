"""A version's layout is parsed once per manifest text, never trusted further.

The filesystem store keeps large versions' layouts (mpuflask/storage/
fslayouts.py) so a small range of a 10,000-part object does not parse 600 KB
of JSON each time. The data directory is not trusted, so a layout is found
again only by the manifest's exact bytes: an edited manifest, even one of
the same length, is read afresh and checked, and a tampered one is absent
(404, logged), exactly as with no cache at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mpuflask.storage import fslayouts
from mpuflask.storage.fslayouts import LayoutCache

from .conftest import MIN_PART
from .conftest import Flow

pytestmark = pytest.mark.filesystem_only("the filesystem store's manifests")


@pytest.fixture
def app(make_app: Any) -> Flask:
    """An app whose store keeps every manifest, however small."""
    app: Flask = make_app(PROPAGATE_EXCEPTIONS=False)
    app.extensions["mpuflask"].bucket.layouts = LayoutCache(keep_from=0)
    return app


@pytest.fixture
def flow(app: Flask) -> Flow:
    return Flow(app.test_client())


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The manifests read_layout parsed, by name, in order."""
    seen: list[str] = []
    real = fslayouts.read_layout

    def counted(data: bytes, what: str) -> fslayouts.Layout:
        seen.append(what)
        return real(data, what)

    monkeypatch.setattr(fslayouts, "read_layout", counted)
    return seen


def _manifest_path(data_dir: Path, key: str = "file.bin") -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return data_dir / "objects" / digest[:2] / digest / "object.json"


def test_a_version_is_parsed_once_and_read_alike(flow: Flow, parses: list[str]):
    parts = [bytes([65 + n]) * MIN_PART for n in range(3)] + [b"tail"]
    flow.upload(parts)
    whole = b"".join(parts)
    for _ in range(3):
        assert flow.get().data == whole
        ranged = flow.client.get(
            "/file.bin?action=get", headers={"Range": "bytes=1000-2100"}
        )
        assert (ranged.status_code, ranged.data) == (206, whole[1000:2101])
    assert len(parses) == 1
    # A new version is parsed afresh.
    flow.upload([b"fresh"])
    assert flow.get().data == b"fresh"
    assert len(parses) == 2


@pytest.mark.parametrize("same_length", [True, False])
def test_a_manifest_edited_after_it_was_kept_is_read_afresh(
    flow: Flow, data_dir: Path, parses: list[str], same_length: bool, caplog
) -> None:
    """Kept, then tampered with (a part's size, the object's size): absent,
    logged, as without a cache; the same length is no disguise."""
    flow.upload([b"a" * MIN_PART, b"tail"])
    assert flow.get().data == b"a" * MIN_PART + b"tail"
    path = _manifest_path(data_dir)
    text = path.read_text()
    manifest = json.loads(text)
    manifest["parts"][1]["size"] = 3 if same_length else 30
    manifest["size"] = MIN_PART + manifest["parts"][1]["size"]
    edited = json.dumps(manifest, separators=(",", ":"))
    assert (len(edited) == len(text)) is same_length
    path.write_text(edited)
    with caplog.at_level(logging.ERROR):
        got = flow.get()
    assert (got.status_code, got.text) == (404, "Object Not Found")
    assert "corrupt" in caplog.text
    assert len(parses) == 2
    path.write_text(text)  # put back: served again, from what is kept
    assert flow.get().data == b"a" * MIN_PART + b"tail"
    assert len(parses) == 2


def test_a_bad_manifest_is_never_kept(
    flow: Flow, data_dir: Path, parses: list[str], caplog
) -> None:
    flow.upload([b"four"])
    path = _manifest_path(data_dir)
    path.write_text(json.dumps({**json.loads(path.read_text()), "size": "4"}))
    with caplog.at_level(logging.ERROR):
        assert flow.get().status_code == 404
        assert flow.get().status_code == 404
    assert len(parses) == 2  # refused each time, never kept


def test_layouts_kept_are_bounded_least_recently_used_out() -> None:
    cache = LayoutCache(kept_bytes=3 * 700, keep_from=500)
    texts = [_manifest_text(n) for n in range(4)]
    assert all(500 <= len(text) <= 700 for text in texts)
    for text in texts[:3]:
        cache.layout(text, "m")
    cache.layout(texts[0], "m")  # used: now the most recent
    cache.layout(texts[3], "m")  # over the bound: the least recent goes
    kept = list(cache._layouts)
    assert kept == [texts[2], texts[0], texts[3]]
    assert cache._total == sum(map(len, kept)) <= cache.kept_bytes
    small = _manifest_text(9, parts=1)
    assert len(small) < 500
    cache.layout(small, "m")
    assert small not in cache._layouts
    nothing = LayoutCache(kept_bytes=0)
    nothing.layout(texts[0], "m")
    assert not nothing._layouts


def _manifest_text(seed: int, parts: int = 7) -> bytes:
    """A manifest as complete writes it, of ``parts`` parts of 4 bytes."""
    files = [
        {"file": f"{n:05d}.{hashlib.md5(bytes([seed, n])).hexdigest()}.4", "size": 4}
        for n in range(1, parts + 1)
    ]
    manifest = {
        "key": f"k{seed}",
        "upload_id": f"u{seed}",
        "etag": "e",
        "size": 4 * parts,
        "uploaded": "2026-12-04T00:00:00+00:00",
        "http_metadata": {},
        "parts": files,
    }
    return json.dumps(manifest, separators=(",", ":")).encode()
