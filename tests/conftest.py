"""Fixtures: an app on a temporary data directory, and the user's steps."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from mpuflask import create_app

#: Parts in tests are small: the minimum part size is lowered to this.
MIN_PART = 1024


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def base_config(data_dir: Path) -> dict[str, Any]:
    """The settings every test app starts from (the store, small parts)."""
    return {
        "TESTING": True,
        "MPUFLASK_DATA_DIR": str(data_dir),
        "MPUFLASK_MIN_PART_SIZE": MIN_PART,
    }


@pytest.fixture
def make_app(base_config: dict[str, Any]) -> Callable[..., Flask]:
    """Build an app from ``base_config`` plus the settings a test names."""

    def make(**settings: Any) -> Flask:
        return create_app({**base_config, **settings})

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    yield make_app()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(joined).hexdigest()}-{len(parts)}"


def stored_files(data_dir: Path) -> dict[str, bytes]:
    """Every regular file under the data directory, by relative path."""
    found = {}
    for root, _, files in os.walk(data_dir):
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                found[str(path.relative_to(data_dir))] = path.read_bytes()
    return found


class Flow:
    """The steps a client takes, so a test states only what differs."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def create(self, key: str = "file.bin", **headers: str) -> str:
        response = self.client.post(f"/{key}?action=mpu-create", headers=headers)
        assert response.status_code == 200, response.text
        upload_id: str = response.json["uploadId"]  # type: ignore[index]
        return upload_id

    def put_part(
        self, upload_id: str, number: Any, data: bytes, key: str = "file.bin"
    ) -> TestResponse:
        return self.client.put(
            f"/{key}?action=mpu-uploadpart&uploadId={upload_id}&partNumber={number}",
            data=data,
        )

    def part(
        self, upload_id: str, number: int, data: bytes, key: str = "file.bin"
    ) -> dict[str, Any]:
        response = self.put_part(upload_id, number, data, key)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json  # type: ignore[assignment]
        return result

    def complete_raw(
        self, upload_id: str, parts: Any, key: str = "file.bin"
    ) -> TestResponse:
        return self.client.post(
            f"/{key}?action=mpu-complete&uploadId={upload_id}", json={"parts": parts}
        )

    def complete(self, upload_id: str, parts: Any, key: str = "file.bin") -> str:
        response = self.complete_raw(upload_id, parts, key)
        assert response.status_code == 200, response.text
        return response.headers["etag"]

    def abort(self, upload_id: str, key: str = "file.bin") -> TestResponse:
        return self.client.delete(f"/{key}?action=mpu-abort&uploadId={upload_id}")

    def get(self, key: str = "file.bin", **headers: str) -> TestResponse:
        return self.client.get(f"/{key}?action=get", headers=headers)

    def upload(self, parts: list[bytes], key: str = "file.bin", **headers: str) -> str:
        """A whole upload: create, every part, complete; returns the etag header."""
        upload_id = self.create(key, **headers)
        listed = [self.part(upload_id, n, data, key) for n, data in enumerate(parts, 1)]
        return self.complete(upload_id, listed, key)


@pytest.fixture
def flow(client: FlaskClient) -> Flow:
    return Flow(client)
