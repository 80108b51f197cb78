"""The leanest WSGI app that does mpuflask's byte work: the benchmark's yardstick.

A raw WSGI callable (no Flask, no Werkzeug) answering the same URLs as mpuflask,
so the same client drives both:

* ``POST /<key>?action=mpu-create``: makes ``uploads/<id>/``, answers the id;
* ``PUT  ...?action=mpu-uploadpart``: streams the body to ``uploads/<id>/<n>`` in
  bounded chunks (``MPUFLASK_CHUNK_SIZE``) while computing its MD5, renames it
  ``<n>.<md5>`` (so listparts can answer the etags), answers it;
* ``GET  ...?action=mpu-listparts``: lists and stats the part files;
* ``POST ...?action=mpu-complete``: the naive approach, it *copies* the listed
  part files, in order, into one object file (``copy_file_range``, the cheapest
  copy Linux offers), then deletes the parts;
* ``GET  ...?action=get``: the object file through ``environ["wsgi.file_wrapper"]``,
  so gunicorn answers it with ``sendfile(2)``; one ``Range: bytes=a-b`` is
  served the same way from offset ``a`` (206);
* ``DELETE ...?action=delete``: unlinks the object.

Durability (``LEAN_DURABLE``, default ``1``) is our store's default: every file
written is fsynced before the answer (each part; the object file), and the
object's directory after the object is renamed into place. ``LEAN_DURABLE=0``
skips all fsyncs.

No validation, locking, crash safety or error handling beyond what the
benchmark needs: it is a lower bound on the cost of the bytes, not a server.
Run it with ``gunicorn -c gunicorn.conf.py bench.lean_app:app``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from urllib.parse import parse_qs
from wsgiref.types import StartResponse
from wsgiref.types import WSGIEnvironment

DATA_DIR = os.path.abspath(os.environ.get("MPUFLASK_DATA_DIR", "./data"))
DURABLE = os.environ.get("LEAN_DURABLE", "1") == "1"
CHUNK_SIZE = int(os.environ.get("MPUFLASK_CHUNK_SIZE", 1 << 20))

UPLOADS = os.path.join(DATA_DIR, "uploads")
OBJECTS = os.path.join(DATA_DIR, "objects")
os.makedirs(UPLOADS, exist_ok=True)
os.makedirs(OBJECTS, exist_ok=True)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI entry point: dispatch on (method, action)."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = query.get("action", [""])[0]
    method = environ["REQUEST_METHOD"]
    key = environ.get("PATH_INFO", "/")[1:]
    if method == "PUT" and action == "mpu-uploadpart":
        return _upload_part(environ, start_response, query)
    if method == "GET" and action == "get":
        return _get(environ, start_response, key)
    if method == "POST" and action == "mpu-create":
        upload_id = secrets.token_urlsafe(24)
        os.mkdir(os.path.join(UPLOADS, upload_id))
        return _json(start_response, {"key": key, "uploadId": upload_id})
    if method == "GET" and action == "mpu-listparts":
        return _list_parts(start_response, key, query)
    if method == "POST" and action == "mpu-complete":
        return _complete(environ, start_response, key, query)
    if method == "DELETE" and action == "delete":
        try:
            os.unlink(_object_path(key))
        except FileNotFoundError:
            pass
        start_response("204 No Content", [])
        return []
    start_response("400 Bad Request", [("Content-Type", "text/plain")])
    return [b"Unknown action"]


def _upload_part(
    environ: WSGIEnvironment, start_response: StartResponse, query: dict[str, list[str]]
) -> Iterable[bytes]:
    upload_id = query["uploadId"][0]
    part_number = int(query["partNumber"][0])
    declared = environ.get("CONTENT_LENGTH")
    # No Content-Length: a chunked body (gunicorn decodes it), read to its end.
    remaining = int(declared) if declared else None
    stream = environ["wsgi.input"]
    digest = hashlib.md5(usedforsecurity=False)
    path = os.path.join(UPLOADS, upload_id, f"{part_number:05d}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while remaining is None or remaining > 0:
            chunk = stream.read(
                CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            )
            if not chunk:
                if remaining is None:
                    break
                raise ConnectionError("client went away mid-part")
            if remaining is not None:
                remaining -= len(chunk)
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        if DURABLE:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(path, f"{path}.{digest.hexdigest()}")
    return _json(
        start_response, {"partNumber": part_number, "etag": digest.hexdigest()}
    )


def _complete(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    key: str,
    query: dict[str, list[str]],
) -> Iterable[bytes]:
    upload_dir = os.path.join(UPLOADS, query["uploadId"][0])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    parts = json.loads(environ["wsgi.input"].read(length))["parts"]
    target = _object_path(key)
    temp = f"{target}.{secrets.token_hex(8)}.tmp"
    out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for part in parts:
            name = f"{part['partNumber']:05d}.{part['etag']}"
            src = os.open(os.path.join(upload_dir, name), os.O_RDONLY)
            try:
                _copy_all(src, out, os.fstat(src).st_size)
            finally:
                os.close(src)
        if DURABLE:
            os.fsync(out)
    finally:
        os.close(out)
    os.rename(temp, target)
    if DURABLE:
        dir_fd = os.open(OBJECTS, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    shutil.rmtree(upload_dir)
    md5s = b"".join(bytes.fromhex(part["etag"]) for part in parts)
    etag = f'"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"'
    start_response("200 OK", [("etag", etag), ("Content-Length", "0")])
    return []


def _list_parts(
    start_response: StartResponse, key: str, query: dict[str, list[str]]
) -> Iterable[bytes]:
    upload_id = query["uploadId"][0]
    upload_dir = os.path.join(UPLOADS, upload_id)
    parts = []
    for name in sorted(os.listdir(upload_dir)):
        number, _, etag = name.partition(".")
        size = os.stat(os.path.join(upload_dir, name)).st_size
        parts.append({"partNumber": int(number), "etag": etag, "size": size})
    return _json(start_response, {"key": key, "uploadId": upload_id, "parts": parts})


def _copy_all(src: int, dst: int, count: int) -> None:
    """Append ``count`` bytes of ``src`` to ``dst``: in the kernel where it can."""
    try:
        while count > 0:
            copied = os.copy_file_range(src, dst, count)
            if copied == 0:
                raise OSError("part file shrank while being copied")
            count -= copied
    except OSError as error:
        if error.errno not in (
            errno.ENOSYS,
            errno.EXDEV,
            errno.EINVAL,
            errno.EOPNOTSUPP,
        ):
            raise
        # No copy_file_range here (old kernel, other filesystem): read and write.
        while chunk := os.read(src, CHUNK_SIZE):
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst, view) :]


def _get(
    environ: WSGIEnvironment, start_response: StartResponse, key: str
) -> Iterable[bytes]:
    try:
        file = open(_object_path(key), "rb")  # closed by the server
    except FileNotFoundError:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Object Not Found"]
    size = os.fstat(file.fileno()).st_size
    status, headers = "200 OK", [("Content-Type", "application/octet-stream")]
    spec = environ.get("HTTP_RANGE", "").removeprefix("bytes=")
    if spec:
        first, _, last = spec.partition("-")
        start, stop = int(first), min(int(last) + 1, size)
        file.seek(start)  # gunicorn sends from the file's position
        status = "206 Partial Content"
        headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{size}"))
        size = stop - start
    headers.append(("Content-Length", str(size)))
    start_response(status, headers)
    wrapper: Iterable[bytes] = environ["wsgi.file_wrapper"](file, CHUNK_SIZE)
    return wrapper


def _object_path(key: str) -> str:
    return os.path.join(OBJECTS, hashlib.sha256(key.encode()).hexdigest())


def _json(start_response: StartResponse, value: dict[str, object]) -> Iterable[bytes]:
    body = json.dumps(value, separators=(",", ":")).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
