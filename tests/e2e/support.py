"""Helpers for the end-to-end layer: a gunicorn to talk to, and a client for it.

Every test here starts its own ``gunicorn`` (``tests/servers.py``) on a data
directory under its ``tmp_path`` and talks to it over real sockets: the
``requests`` client for ordinary calls, ``http.client`` or a raw socket where
the request must reach the server exactly as written.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import stat
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from tests.oracle import md5
from tests.oracle import multipart_etag
from tests.servers import Server
from tests.servers import gunicorn_server

#: The seed Worker's own Python client, beside the repository.
SEED_CLIENT = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "seed" / "mpuscript.py"
)

MIB = 1024 * 1024

#: The periodic sweep's lock file, at the top of the data directory.
SWEEP_LOCK = "sweep.lock"
#: The listing index's folder (mpuflask/storage/fsindex.py).
INDEX = "index/"

#: R2's answer when an uploadId is unknown, finished or aborted.
NO_SUCH_UPLOAD = "{}: The specified multipart upload does not exist. (10024)"


@contextmanager
def serve(tmp_path: Path, workers: int = 4, **env: str) -> Iterator[Server]:
    """A gunicorn with ``workers`` processes and ``MPUFLASK_*`` settings ``env``."""
    with gunicorn_server(tmp_path, workers=workers, env=env) as server:
        yield server


def address(server: Server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def regular_files(root: Path) -> dict[str, int]:
    """Every regular file under ``root`` (symlinks not followed), with its size.

    A file the server's sweep removes between the listing and its ``stat``
    is left out, as if listed a moment later (a poll looks again).
    """
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                found[str(path.relative_to(root))] = info.st_size
    return found


def stored_files(data_dir: Path) -> dict[str, int]:
    """The store's files: every regular file but the periodic sweep's lock
    and the listing index (derived from the objects: tests/test_fsindex.py)."""
    files = regular_files(data_dir)
    files.pop(SWEEP_LOCK, None)
    return {name: size for name, size in files.items() if not name.startswith(INDEX)}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until the server's effect ``condition`` shows, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Api:
    """The Worker's API over ``requests``; one session per thread.

    Use it in a ``with`` block: closing its kept-alive connections before the
    server stops saves seconds of gunicorn's graceful shutdown.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            for session in self._sessions:
                for adapter in session.adapters.values():
                    if isinstance(adapter, HTTPAdapter):
                        # Session.close() clears the pool manager, but with
                        # the urllib3 installed here that leaves the pools'
                        # idle sockets open; gunicorn's stop would wait 2 s.
                        pools = adapter.poolmanager.pools
                        for pool_key in pools.keys():
                            if (pool := pools.get(pool_key)) is not None:
                                pool.close()
                session.close()
            self._sessions.clear()

    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def url(self, key: str) -> str:
        return self.server.url + quote(key, safe="/")

    def create(self, key: str, **headers: str) -> str:
        response = self.session.post(
            self.url(key), params={"action": "mpu-create"}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["key"] == key
        upload_id: str = response.json()["uploadId"]
        return upload_id

    def put_part(
        self, key: str, upload_id: str, number: int, body: Any
    ) -> requests.Response:
        return self.session.put(
            self.url(key),
            params={
                "action": "mpu-uploadpart",
                "uploadId": upload_id,
                "partNumber": str(number),
            },
            data=body,
        )

    def part(
        self, key: str, upload_id: str, number: int, data: bytes
    ) -> dict[str, Any]:
        """Upload one part and check the answer: its number and the MD5 etag."""
        response = self.put_part(key, upload_id, number, data)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert answer == {"partNumber": number, "etag": md5(data)}
        return answer

    def complete_raw(
        self, key: str, upload_id: str, parts: list[dict[str, Any]]
    ) -> requests.Response:
        return self.session.post(
            self.url(key),
            params={"action": "mpu-complete", "uploadId": upload_id},
            json={"parts": parts},
        )

    def complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> str:
        response = self.complete_raw(key, upload_id, parts)
        assert response.status_code == 200, response.text
        assert response.content == b""
        etag: str = response.headers["etag"]
        return etag

    def upload(self, key: str, parts: list[bytes]) -> str:
        """A whole upload, part after part; returns the object's etag header."""
        upload_id = self.create(key)
        listed = [
            self.part(key, upload_id, number, data)
            for number, data in enumerate(parts, 1)
        ]
        etag = self.complete(key, upload_id, listed)
        assert etag == f'"{multipart_etag(parts)}"'
        return etag

    def get(self, key: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(key), params={"action": "get"}, **kwargs)

    def delete(self, key: str) -> None:
        response = self.session.delete(self.url(key), params={"action": "delete"})
        assert response.status_code == 204, response.text
        assert response.content == b""

    def list_parts(self, key: str, upload_id: str) -> requests.Response:
        return self.session.get(
            self.url(key), params={"action": "mpu-listparts", "uploadId": upload_id}
        )

    def parts_stored(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """The upload's parts as mpu-listparts lists them."""
        response = self.list_parts(key, upload_id)
        assert response.status_code == 200, response.text
        parts: list[dict[str, Any]] = response.json()["parts"]
        return parts

    def assert_absent(self, key: str) -> None:
        response = self.get(key)
        assert (response.status_code, response.text) == (404, "Object Not Found")

    def assert_object(self, key: str, data: bytes, etag: str) -> None:
        """GET returns exactly ``data`` (compared by hash) with ``etag``."""
        response = self.get(key, stream=True)
        assert response.status_code == 200, response.text
        digest = hashlib.sha256()
        size = 0
        for chunk in response.iter_content(MIB):
            digest.update(chunk)
            size += len(chunk)
        assert size == len(data)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
        assert response.headers["etag"] == etag


def raw_request(
    server: Server,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    """Send ``target`` exactly as written (``http.client`` never normalises it)."""
    host, port = address(server)
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in {
            "Content-Length": str(len(body or b"")),
            **(headers or {}),
        }.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read(), response
    finally:
        connection.close()
