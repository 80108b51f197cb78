"""What the upload tests share: the source file, and the object read back."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from tests.client.conftest import PART
from tests.client.conftest import URL
from tests.client.conftest import write_file
from tests.client.wsgi_adapter import BASE

SIZE = 10 * PART + 123  # 11 parts, the last short


def source_file(tmp_path: Path) -> tuple[Path, bytes]:
    """An 11-part file in ``tmp_path`` and its bytes (a test's ``source``)."""
    path = tmp_path / "source.bin"
    return path, write_file(path, SIZE)


def stored(app: Flask, url: str = URL, **headers: str) -> bytes:
    path = url.replace(BASE, "/") + "?action=get"
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.data


def parts_of(data: bytes) -> list[bytes]:
    return [data[i : i + PART] for i in range(0, len(data), PART)]
