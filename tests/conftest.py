"""Fixtures: an app on each store, and the user's steps.

Every test that builds an app runs twice: on the filesystem store (a temporary
data directory) and on the s3 store (a fresh bucket of the engine in
``tests/s3/engine.py``, skipped with the reason when no engine answers).
"""

from __future__ import annotations

import inspect
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

from .oracle import md5

#: Parts in tests are small: the minimum part size is lowered to this.
MIN_PART = 1024

#: The stores every app-building test runs on.
STORES = ("filesystem", "s3")


class AnswerSentClient(FlaskClient):
    """Flask's test client, closing each answer as a WSGI server does once sent.

    Werkzeug's test client never closes a response, so the clean-up a request
    leaves for after its answer (:mod:`mpuflask.afterwards`) would never run.
    Every answer but a GET's is closed here, once read: gunicorn closes it
    after its last byte. A GET's body stays open until the test closes it, as
    it would while a slow client reads it (tests/test_slow_clients.py).
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        if response.request.method != "GET":
            response.make_sequence()
            response.close()
        return response


# Every app a test builds (pytest-flask's ``client`` included) uses it.
Flask.test_client_class = AnswerSentClient


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "filesystem_only(reason): runs on the filesystem store only, for reason",
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    """Which store the test's apps use; s3 runs skip where they cannot apply."""
    if request.param == "s3":
        marker = request.node.get_closest_marker("filesystem_only")
        if marker is not None:
            pytest.skip(f"filesystem store only: {marker.args[0]}")
        if "data_dir" in inspect.signature(request.function).parameters:
            pytest.skip("filesystem store only: looks at its files (asks for data_dir)")
    return str(request.param)


@pytest.fixture(scope="session")
def s3_engine() -> Any:
    """The S3 engine (probed once), or skip every s3 test with the reason."""
    from .s3.engine import probe

    found = probe(MIN_PART)
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture
def s3_bucket(s3_engine: Any) -> Iterator[str]:
    """A fresh, empty bucket, emptied and deleted after the test."""
    bucket: str = s3_engine.new_bucket()
    yield bucket
    s3_engine.drop_bucket(bucket)


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """Where the s3 store spools chunked part bodies in tests."""
    path = tmp_path / "spool"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def base_config(
    store: str, data_dir: Path, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """The settings every test app starts from (the store, small parts)."""
    config: dict[str, Any] = {
        "TESTING": True,
        "MPUFLASK_DATA_DIR": str(data_dir),
        "MPUFLASK_MIN_PART_SIZE": MIN_PART,
    }
    if store == "s3":
        engine = request.getfixturevalue("s3_engine")
        config.update(engine.settings(request.getfixturevalue("s3_bucket")))
        config["MPUFLASK_S3_SPOOL_DIR"] = str(request.getfixturevalue("spool_dir"))
    return config


@pytest.fixture
def stored_state(
    store: str, data_dir: Path, request: pytest.FixtureRequest
) -> Callable[[], dict[str, bytes]]:
    """What the test's store holds now, by name: compare before and after.

    Filesystem: every file under the data directory. S3: every object, open
    upload and part of the test's bucket (a part as its MD5 and size: S3 does
    not give back a part's bytes).
    """
    if store == "s3":
        engine = request.getfixturevalue("s3_engine")
        bucket = request.getfixturevalue("s3_bucket")
        return lambda: dict(engine.state(bucket))
    return lambda: stored_files(data_dir)


@pytest.fixture
def temp_files(
    store: str, data_dir: Path, request: pytest.FixtureRequest
) -> Callable[[], list[Path]]:
    """The store's temporary files (part bodies being received) left now."""
    folder = data_dir / "tmp"
    if store == "s3":
        folder = request.getfixturevalue("spool_dir")
    return lambda: sorted(folder.iterdir())


def holds(state: dict[str, bytes], data: bytes) -> bool:
    """Whether a :func:`stored_state` snapshot still holds ``data`` somewhere.

    In a file or object, or as a whole part (shown by MD5 on S3).
    """
    from .s3.engine import part_entry

    entry = part_entry(md5(data), len(data))
    return any(data in value or value == entry for value in state.values())


@pytest.fixture
def make_app(base_config: dict[str, Any]) -> Callable[..., Flask]:
    """Build an app from ``base_config`` plus the settings a test names."""

    def make(**settings: Any) -> Flask:
        return create_app({**base_config, **settings})

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    yield make_app()


def stored_files(data_dir: Path) -> dict[str, bytes]:
    """Every regular file under the data directory, by relative path.

    But the listing index (``index/``): SQLite rewrites its files as it reads
    (WAL and shared memory), and it is derived from the objects, which are
    here (its truth to them: tests/test_fsindex.py, tests/test_listing.py).
    """
    found = {}
    for root, _, files in os.walk(data_dir):
        for name in files:
            path = Path(root, name)
            relative = str(path.relative_to(data_dir))
            if not path.is_symlink() and not relative.startswith("index/"):
                found[relative] = path.read_bytes()
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
