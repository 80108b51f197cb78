"""No request path leads outside the data directory, through the real HTTP stack.

The requests go out byte for byte as written here (``http.client`` neither
normalises nor re-encodes a path), so gunicorn and the app see ``..``,
``//``, ``%2e`` and ``%00`` exactly as an attacker would send them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.servers import Server

from ..oracle import md5
from ..oracle import multipart_etag
from .support import NO_SUCH_UPLOAD
from .support import SWEEP_LOCK
from .support import raw_request
from .support import serve

INVALID_NAME = "{}: The specified object name is not valid. (10020)"

#: Raw request paths that are ordinary keys, and the key each one names.
ACCEPTED = {
    "/../../etc/x": "../../etc/x",
    "/%2e%2e/%2e%2e/x": "../../x",
    "/%2E%2E%2F%2E%2E%2Fy": "../../y",
    "//abs": "/abs",
    "///etc/passwd": "//etc/passwd",
    "/a/./b/../c": "a/./b/../c",
    "/%00nul": "\x00nul",
    "/%2F..%2F..%2Fz": "/../../z",
    "/..": "..",
    "/.": ".",
    "/%2F": "/",
    "/..%5C..%5Cwin": "..\\..\\win",
    "/a%20b": "a b",
}

#: Raw request paths that are refused, with the exact answer to mpu-create.
REFUSED = {
    "/": INVALID_NAME.format("createMultipartUpload"),
    "/%ff": INVALID_NAME.format("createMultipartUpload"),
    # Overlong UTF-8 for "..": not UTF-8 at all, so not a key.
    "/%C0%AE%C0%AE/x": INVALID_NAME.format("createMultipartUpload"),
    "/" + "a" * 1025: INVALID_NAME.format("createMultipartUpload"),
}

#: Store areas; nothing else may appear in the data directory (but the lock).
AREAS = {"uploads", "staging", "objects", "trash", "tmp", "owners"}


def _text(body: bytes) -> str:
    return body.decode("utf-8")


def _upload(server: Server, path: str, key: str, data: bytes) -> str:
    """create, one part, complete, all at the raw ``path``; returns the etag."""
    status, body, _ = raw_request(server, "POST", f"{path}?action=mpu-create")
    assert status == 200, (path, body)
    created = json.loads(body)
    assert created["key"] == key
    upload_id = created["uploadId"]

    target = f"{path}?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    status, body, _ = raw_request(server, "PUT", target, data)
    assert (status, json.loads(body)) == (200, {"partNumber": 1, "etag": md5(data)})

    complete = json.dumps({"parts": [{"partNumber": 1, "etag": md5(data)}]})
    status, body, response = raw_request(
        server,
        "POST",
        f"{path}?action=mpu-complete&uploadId={upload_id}",
        complete.encode(),
        {"Content-Type": "application/json"},
    )
    assert (status, body) == (200, b""), (path, body)
    etag = response.getheader("etag")
    assert etag == f'"{multipart_etag([data])}"'
    return etag


def _snapshot(directory: Path) -> set[str]:
    return {entry.name for entry in directory.iterdir()}


@pytest.mark.e2e
def test_no_key_escapes_the_data_dir(tmp_path: Path) -> None:
    # A directory beside ours: the first place a "../x" key would land.
    neighbours = _snapshot(tmp_path.parent)
    with serve(tmp_path, MPUFLASK_MIN_PART_SIZE="1024") as server:
        data_dir = server.data_dir
        stored = {}
        for path, key in ACCEPTED.items():
            data = os.urandom(3000) + path.encode()
            stored[path] = (data, _upload(server, path, key, data))

        for path, text in REFUSED.items():
            status, body, _ = raw_request(server, "POST", f"{path}?action=mpu-create")
            assert (status, _text(body)) == (400, text), path

        # Reads of files outside the store are just absent keys.
        for path in (
            "/../../../../../../etc/passwd",
            "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/a/c",  # not a/./b/../c normalised
            "/../data/objects",
            "/../" + server.log.name,
        ):
            status, body, _ = raw_request(server, "GET", f"{path}?action=get")
            assert (status, _text(body)) == (404, "Object Not Found"), path

        # An uploadId is never a path either.
        for upload_id in ("..", "../../objects", "..%2F..%2Fobjects", "%2e%2e"):
            target = f"/x?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
            status, body, _ = raw_request(server, "PUT", target, b"part")
            assert (status, _text(body)) == (
                400,
                NO_SUCH_UPLOAD.format("uploadPart"),
            ), upload_id
            target = f"/x?action=mpu-abort&uploadId={upload_id}"
            assert raw_request(server, "DELETE", target)[:2] == (204, b""), upload_id

        # Deleting "../data"-like keys removes those keys, nothing of the store.
        for path in ("/..", "/../data", "/%2e%2e/data/objects", "//"):
            status, body, _ = raw_request(server, "DELETE", f"{path}?action=delete")
            assert (status, body) == (204, b""), path
        for gone in ("/..", "/%2F"):  # "//" is the key "/", as "/%2F" is
            stored.pop(gone)
            status, body, _ = raw_request(server, "GET", f"{gone}?action=get")
            assert (status, _text(body)) == (404, "Object Not Found"), gone

        # Every other object is intact, each under its own key.
        for path, (data, etag) in stored.items():
            status, body, response = raw_request(server, "GET", f"{path}?action=get")
            assert (status, body) == (200, data), path
            assert response.getheader("etag") == etag

    # The server wrote only into its data directory, and its log beside it.
    assert _snapshot(tmp_path) == {data_dir.name, server.log.name}
    assert _snapshot(tmp_path.parent) == neighbours
    assert _snapshot(data_dir) - {SWEEP_LOCK} <= AREAS
    for directory, subdirs, names in os.walk(data_dir):
        for name in subdirs + names:
            path = Path(directory, name)
            assert path.resolve().is_relative_to(data_dir.resolve()), path
