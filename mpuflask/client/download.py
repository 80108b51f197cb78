"""Downloading an object: ranges in parallel into a temp file, verify, rename.

A one-byte ranged GET first learns the size and etag. The object is then
fetched in ranges cut where the upload cut its parts, each sent with
``If-Match`` so an object replaced mid-download is refused (412) rather than
mixed, and each range is hashed as it arrives. The file appears under its
name only once complete and verified (temp file beside it, fsync, rename);
:mod:`.target` says which file that is (a symlink's target; never a device).
A server without ranges (the original Worker) answers the first GET whole:
that one stream is the download.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import requests

from ..rules import DEFAULT_MIN_PART_SIZE
from ..rules import normalize_etag
from .errors import Cancelled
from .errors import ClientError
from .errors import ServerRefused
from .errors import TransferFailed
from .hashing import EtagCheck
from .hashing import PartHasher
from .hashing import etag_check
from .hashing import etag_verdict
from .parts import PartPlan
from .parts import choose_part_size
from .pool import run_all
from .pool import worker_pool
from .progress import NoProgress
from .progress import Progress
from .target import TEMP_SUFFIX
from .target import resolve_target
from .target import temp_prefix
from .transport import Transport
from .urls import display

T = TypeVar("T")

#: Bytes read from the socket at a time, per range: the memory one range costs.
READ_SIZE = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class DownloadResult:
    """What a download got: size, etag, and whether the etag was recomputed.

    ``warning``: when not verified, why, as one line for a person.
    """

    url: str
    path: Path
    size: int
    etag: str
    verified: bool
    warning: str | None = None


@dataclass(frozen=True)
class _Object:
    size: int
    etag: str


def download_file(
    transport: Transport,
    url: str,
    path: str | os.PathLike[str],
    *,
    part_size: int | None = None,
    min_part_size: int = DEFAULT_MIN_PART_SIZE,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> DownloadResult:
    """Download the object ``url`` to ``path``, replacing it atomically.

    ``part_size``: the one the object was uploaded with, if not the client's
    default; it lets a multipart etag be recomputed. A symlink ``path`` is
    written through; one that is not a regular file is refused
    (:class:`.target.BadTarget`). Raises a :class:`ClientError` (an
    ``OSError`` naming ``path`` for a local failure); on any failure ``path``
    is left as it was.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    target = resolve_target(path)
    progress = progress or NoProgress()
    fetch = _Fetch(transport, url, progress, part_size, min_part_size)
    try:
        fd, temp_name = tempfile.mkstemp(
            dir=target.parent, prefix=temp_prefix(target), suffix=TEMP_SUFFIX
        )
    except OSError as error:
        raise _naming(error, path) from None
    temp = Path(temp_name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 is not what a user expects
        with os.fdopen(fd, "r+b") as out:
            fetch.fd = out.fileno()
            digests = fetch.first()
            if fetch.ranged:
                digests = fetch.ranges(concurrency)
            found, check = fetch.found, fetch.check()
            progress.close()
            warning = _verify(check, digests, temp, found, fetch.ranged, fetch.sized)
            os.fsync(out.fileno())
        try:
            os.replace(temp, target)
        except OSError as error:  # a folder made at the target meanwhile, ...
            raise _naming(error, path) from None
        _fsync_dir(target.parent)
    except BaseException:
        fetch.cancel.set()
        progress.close()
        temp.unlink(missing_ok=True)
        raise
    return DownloadResult(
        url, Path(path), found.size, found.etag, warning is None, warning
    )


class _Fetch:
    """The GETs of one download, writing into one open temp file."""

    def __init__(
        self,
        transport: Transport,
        url: str,
        progress: Progress,
        part_size: int | None,
        min_part_size: int,
    ) -> None:
        self.transport = transport
        self.url = url
        self.shown = display(url)  # no password, no query (a signature)
        self.progress = progress
        self.part_size = part_size
        self.min_part_size = min_part_size
        self.cancel = threading.Event()
        self.fd = -1
        self.found = _Object(0, "")
        self.ranged = False
        self.whole = False
        self.sized = False

    def check(self) -> EtagCheck:
        """How the found object's etag can be recomputed."""
        found = self.found
        return etag_check(found.etag, found.size, self.part_size, self.min_part_size)

    def first(self) -> list[str] | None:
        """GET byte 0 to learn size and etag (``found``) and whether ranges work.

        A server that ignores Range, or an empty object (416 for byte 0),
        sends the whole body now: it is written and its part digests returned
        (None: the file is hashed afterwards).
        """

        def handle(response: requests.Response) -> list[str] | None:
            etag = normalize_etag(response.headers.get("etag", ""))
            if response.status_code == 416:
                return None
            if response.status_code == 206:
                self.found = _Object(content_range(response)[2], etag)
                self.ranged = True
                return None
            self.whole = True
            length = response.headers.get("Content-Length")
            if length is None:  # size unknown until the end: hash afterwards
                self.progress.start(None)
                self.found = _Object(self._write(response, 0, None, None), etag)
                return None
            self.found, self.sized = _Object(int(length), etag), True
            check = self.check()
            hasher = PartHasher(check.part_size or max(self.found.size, 1))
            self.progress.start(self.found.size)
            self._write(response, 0, self.found.size, hasher)
            return hasher.digests()

        digests = self._get(handle, {"Range": "bytes=0-0"}, ok=(200, 206, 416))
        if not self.ranged and not self.whole:
            digests = self._get(handle, {}, ok=(200,))  # the empty object, whole
        return digests

    def ranges(self, concurrency: int) -> list[str] | None:
        """Fetch in ranges; the part MD5s when ranges are the upload's parts."""
        found, check = self.found, self.check()
        self.progress.start(found.size)
        aligned = check.multipart and check.part_size is not None
        step = check.part_size if aligned and check.part_size else 0
        if not step:
            step = choose_part_size(found.size).part_size
        plan = PartPlan(found.size, step)
        # Ranges write into one descriptor that is closed after them: wait.
        with worker_pool(
            concurrency, self.cancel, "mpu-range", wait_on_interrupt=True
        ) as pool:
            tasks = [partial(self._range, *plan.span(n)) for n in plan.numbers()]
            digests = run_all(pool, self.cancel, tasks)
        return digests if aligned else None

    def _range(self, offset: int, length: int) -> str:
        """GET one range (If-Match the etag), write and hash it; its MD5."""
        found, end = self.found, offset + length - 1

        def handle(response: requests.Response) -> str:
            got = content_range(response)
            if got != (offset, end, found.size):
                raise ClientError(
                    f"{self.shown}: asked for bytes {offset}-{end}/{found.size}, "
                    f"got {response.headers.get('Content-Range')}"
                )
            hasher = PartHasher(length)
            self._write(response, offset, length, hasher)
            return hasher.digests()[0]

        headers = {"Range": f"bytes={offset}-{end}"}
        if found.etag:
            headers["If-Match"] = f'"{found.etag}"'
        try:
            return self._get(handle, headers, ok=(206,))
        except ServerRefused as error:
            if error.status != 412:
                raise
            raise ClientError(
                f"{self.shown} changed during the download (its etag is no longer "
                f"{found.etag}); run again"
            ) from None

    def _get(
        self,
        handle: Callable[[requests.Response], T],
        headers: dict[str, str],
        ok: Iterable[int],
    ) -> T:
        return self.transport.call(
            "GET",
            self.url,
            "get",
            handle,
            headers=headers,
            ok=ok,
            stream=True,
            cancel=self.cancel,
        )

    def _write(
        self,
        response: requests.Response,
        offset: int,
        length: int | None,
        hasher: PartHasher | None,
    ) -> int:
        """Stream the body to ``offset``; a failed try takes its bytes back."""
        written = 0
        try:
            for chunk in response.iter_content(READ_SIZE):
                if self.cancel.is_set():
                    raise Cancelled("download cancelled")
                if length is not None and written + len(chunk) > length:
                    raise TransferFailed(f"{self.shown}: more bytes than announced")
                _pwrite_all(self.fd, chunk, offset + written)
                if hasher is not None:
                    hasher.update(chunk)
                written += len(chunk)
                self.progress.update(len(chunk))
        except BaseException:
            self.progress.update(-written)
            raise
        if length is not None and written != length:
            raise TransferFailed(f"{self.shown}: {written} of {length} bytes came")
        return written


def content_range(response: requests.Response) -> tuple[int, int, int]:
    """``(first, last, total)`` of a 206's Content-Range."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None:
        raise ClientError("a 206 answer without a usable Content-Range")
    first, last, total = (int(g) for g in match.groups())
    return first, last, total


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def _verify(
    check: EtagCheck,
    digests: list[str] | None,
    temp: Path,
    found: _Object,
    ranged: bool,
    sized: bool,
) -> str | None:
    """Recompute the etag (from the digests, else reading the file back);
    None when it matched, else a warning (see :func:`etag_verdict`)."""
    if ranged:
        checked = "length and etag were checked across ranges"
    else:
        checked = "its length was checked" if sized else "nothing else was checked"

    def digests_of(part_size: int) -> list[str]:
        if digests is not None:
            return digests
        hasher = PartHasher(part_size)
        with temp.open("rb") as data:
            while block := data.read(8 * 1024 * 1024):
                hasher.update(block)
        return hasher.digests()

    return etag_verdict(check, found.etag, digests_of, checked, ranged or sized)


def _naming(error: OSError, path: str | os.PathLike[str]) -> OSError:
    """``error`` naming the file the user asked for, not the temp file."""
    return OSError(error.errno, error.strerror, os.fspath(path))


def _umask() -> int:
    """The process umask, read without changing it (Linux), else the usual 022."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some filesystems cannot open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
