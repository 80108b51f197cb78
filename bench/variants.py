"""mpuflask with a proposed change applied in the benchmark's process only.

For measuring a proposal before anyone edits ``mpuflask/``: each callable here
is mpuflask's app (``create_app()``, as ``wsgi:app``) with one change patched in
when gunicorn loads it, inside that gunicorn's processes only. Compare with::

    python bench/server_bench.py --ours-app bench.variants:pread_app
    python bench/server_bench.py --ours-app bench.variants:sendfile_app

* ``pread_app``: ``FilesystemObjectBody.read(n)`` is one ``os.pread`` into a new
  ``bytes`` instead of ``io.RawIOBase.read`` (a ``bytearray``, ``readinto``,
  then a copy into ``bytes``): one memory copy less per byte served.
* ``arena2_app``: the worker calls ``mallopt(M_ARENA_MAX, 2)`` before building
  the app (what a ``post_fork`` hook in gunicorn.conf.py could do): its 16
  threads share 2 malloc arenas instead of one each, so the MiB-sized buffers
  freed by one request are reused by the next instead of kept per arena.
* ``fsync_unlocked_app``: ``upload_part`` fsyncs the upload's directory after
  releasing the upload's lock (through a second descriptor of the directory
  opened under the lock) instead of while holding it, so the parts of one
  upload no longer queue behind each other's directory fsync. The app's store
  opens its uploads as a subclass (``FilesystemBucket.upload_class``) that
  overrides ``sync_part``, the store's named point for that fsync: no store
  code is copied.
* ``sendfile_app``: a full ``200`` GET of a stored object, under gunicorn and
  without TLS, is sent part file by part file with ``socket.sendfile`` once the
  headers are out (through the WSGI ``write`` callable); anything else (ranges,
  304/412, HEAD, other servers) is served as today.
"""

from __future__ import annotations

import bisect
import ctypes
import io
import os
import socket
import ssl
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from wsgiref.types import StartResponse
from wsgiref.types import WSGIApplication
from wsgiref.types import WSGIEnvironment

from mpuflask import create_app
from mpuflask.storage.base import UploadedPart
from mpuflask.storage.filesystem import FilesystemBucket
from mpuflask.storage.fsobject import FilesystemObjectBody
from mpuflask.storage.fsupload import FilesystemUpload


def _pread(self: FilesystemObjectBody, size: int | None = -1) -> bytes:
    """Up to ``size`` bytes of the current part from the position, one copy."""
    if size is None or size < 0:
        return self.readall()
    if self._position >= self._size or size == 0:
        return b""
    index = bisect.bisect_right(self._starts, self._position) - 1
    data = os.pread(self._part_fd(index), size, self._position - self._starts[index])
    self._position += len(data)
    return data


def _send_parts(self: FilesystemObjectBody, sock: socket.socket) -> int:
    """Send every part file, whole and in order, with sendfile(2)."""
    sent = 0
    for index in range(len(self._files)):
        with io.FileIO(self._part_fd(index), "rb", closefd=False) as part:
            end = (
                self._starts[index + 1] if index + 1 < len(self._starts) else self._size
            )
            sent += sock.sendfile(part, 0, end - self._starts[index])
    self._position = self._size
    return sent


class _Sent:
    """The (empty) WSGI iterable once the body went out by sendfile."""

    def __init__(self, close: Callable[[], None]) -> None:
        self.close = close

    def __iter__(self) -> Iterator[bytes]:
        return iter(())


def _sendfile_middleware(app: WSGIApplication) -> WSGIApplication:
    def middleware(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def remember(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen["status"] = status
            seen["write"] = start_response(status, headers, exc_info)
            return seen["write"]

        result = app(environ, remember)
        body = getattr(result, "filelike", None)
        sock = environ.get("gunicorn.socket")
        if (
            isinstance(body, FilesystemObjectBody)
            and environ["REQUEST_METHOD"] == "GET"
            and seen.get("status", "").startswith("200")
            and isinstance(sock, socket.socket)
            and not isinstance(sock, ssl.SSLSocket)
            and body.tell() == 0
        ):
            seen["write"](b"")  # the status line and headers, now
            _send_parts(body, sock)
            return _Sent(result.close)  # type: ignore[attr-defined]
        return result

    return middleware


def _pread_app() -> WSGIApplication:
    FilesystemObjectBody.read = _pread  # type: ignore[assignment,method-assign]
    return create_app()


def _arena2_app() -> WSGIApplication:
    m_arena_max = -8  # from glibc's malloc.h
    if not ctypes.CDLL(None).mallopt(m_arena_max, 2):
        raise RuntimeError("mallopt(M_ARENA_MAX) failed (not glibc?)")
    return create_app()


class _FsyncUnlockedUpload(FilesystemUpload):
    """``upload_part`` with the directory fsync after the upload's lock is released.

    The store calls :meth:`sync_part` under the lock; here it only opens a new
    descriptor of the directory (a new open file description: the flock is not
    shared with it, so closing the store's descriptor releases the lock), and
    the fsync runs once the store's ``upload_part`` has returned, before the
    part is acknowledged.
    """

    def upload_part(
        self, part_number: int, chunks: Iterable[bytes], length: int | None = None
    ) -> UploadedPart:
        self._unsynced: list[int] = []
        try:
            part = super().upload_part(part_number, chunks, length)
            for fd in self._unsynced:
                os.fsync(fd)  # the part is durable before we answer
            return part
        finally:
            for fd in self._unsynced:
                os.close(fd)

    def sync_part(self, dir_fd: int) -> None:
        self._unsynced.append(os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd))


def _app_with_uploads(upload_class: type[FilesystemUpload]) -> WSGIApplication:
    """mpuflask's app whose filesystem store opens uploads as ``upload_class``."""
    flask_app = create_app()
    store = flask_app.extensions["mpuflask"].bucket
    if not isinstance(store, FilesystemBucket):
        raise RuntimeError("this variant changes the filesystem store only")
    store.upload_class = upload_class  # this app's store, no other
    return flask_app


def _fsync_unlocked_app() -> WSGIApplication:
    return _app_with_uploads(_FsyncUnlockedUpload)


def _sendfile_app() -> WSGIApplication:
    flask_app = create_app()
    flask_app.wsgi_app = _sendfile_middleware(flask_app.wsgi_app)  # type: ignore[method-assign,assignment]
    return flask_app


def __getattr__(name: str) -> WSGIApplication:
    """Build a variant only when gunicorn asks for it (they patch differently)."""
    builders = {
        "pread_app": _pread_app,
        "arena2_app": _arena2_app,
        "fsync_unlocked_app": _fsync_unlocked_app,
        "sendfile_app": _sendfile_app,
    }
    if name not in builders:
        raise AttributeError(name)
    app = builders[name]()
    globals()[name] = app
    return app
