"""The filesystem store's names and metadata files, checked as they are read.

Everything the store reads back from its data directory was written by the
store, but the directory may have been touched since (a restored backup,
another program, an operator's mistake). So every name and every field is
checked before it is used: a part file name must be ``NNNNN.<md5>.<size>`` (or
``NNNNN.<md5>``, from before sizes were named) and is only
ever resolved inside its own directory, an upload id is URL-safe base64, and
records and manifests must have exactly the types the store writes. Anything
else raises :class:`~.diskio.CorruptEntry`: the entry is treated as corrupt,
never followed or served.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from datetime import datetime
from typing import Any
from typing import cast

from ..bulk import all_match
from ..rules import UNSENDABLE_HEADER_TEXT
from .base import HTTP_METADATA_HEADERS
from .base import HttpMetadata
from .base import UploadInfo
from .diskio import CorruptEntry

UPLOAD_RECORD = "upload.json"
MANIFEST = "object.json"
#: An upload id as create mints them (secrets.token_urlsafe).
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: The symlink naming part N's current bytes.
PART_LINK = re.compile(r"[0-9]{5}")
#: A part's bytes: ``NNNNN.<md5>.<size>``, its number, the hex MD5 of its
#: content (its etag) and its size in bytes, so that listing and complete
#: need no ``stat`` per part. Files of uploads begun before sizes were named
#: are ``NNNNN.<md5>``: still read, their size from ``stat``.
PART_FILE = re.compile(r"[0-9]{5}\.[0-9a-f]{32}(?:\.(?:0|[1-9][0-9]{0,18}))?")
#: Where the size starts in a part file name that holds one.
_SIZE_AT = 39


def load_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse a record or manifest: a JSON object, or CorruptEntry."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise CorruptEntry(f"{what}: not JSON") from None
    if not isinstance(value, dict):
        raise CorruptEntry(f"{what}: not a JSON object")
    return value


def check_record(record: dict[str, Any], upload_id: str) -> dict[str, Any]:
    """An upload's ``upload.json``, as create writes it, or CorruptEntry."""
    what = f"{UPLOAD_RECORD} of upload {upload_id}"
    if record.get("upload_id") != upload_id:
        raise CorruptEntry(f"{what}: names another upload")
    if not isinstance(record.get("key"), str):
        raise CorruptEntry(f"{what}: key is not a string")
    owner = record.get("owner")
    if owner is not None and not isinstance(owner, str):
        raise CorruptEntry(f"{what}: owner is not a string")
    _check_time(record, "created", what)
    _check_time(record, "expires", what)
    _check_headers(record, what)
    return record


def check_manifest(manifest: dict[str, Any], what: str) -> dict[str, Any]:
    """An object's ``object.json``, as complete writes it, or CorruptEntry."""
    for field in ("key", "etag"):
        if not isinstance(manifest.get(field), str):
            raise CorruptEntry(f"{what}: {field} is not a string")
    upload_id = manifest.get("upload_id")
    if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
        raise CorruptEntry(f"{what}: upload_id is not an upload id")
    _check_time(manifest, "uploaded", what)
    _check_headers(manifest, what)
    parts = manifest.get("parts")
    if not isinstance(parts, list):
        raise CorruptEntry(f"{what}: parts is not a list")
    # One pass per field over 10,000 parts, not ten calls per part.
    try:
        names = [part["file"] for part in parts]
        sizes = [part["size"] for part in parts]
    except (KeyError, TypeError):
        raise CorruptEntry(f"{what}: a part is not a file and a size") from None
    if not all_match(PART_FILE, names):
        name = next(
            n for n in names if not isinstance(n, str) or not PART_FILE.fullmatch(n)
        )
        raise CorruptEntry(f"{what}: part file {name!r} is not a part's name")
    if sizes and (not set(map(type, sizes)) <= {int} or min(sizes) < 0):
        size = next(n for n in sizes if type(n) is not int or n < 0)
        raise CorruptEntry(f"{what}: size {size!r} is not a byte count")
    if _size(manifest.get("size"), what) != sum(sizes):
        raise CorruptEntry(f"{what}: size is not the sum of its parts")
    return manifest


def part_file_name(link: str, md5: str, size: int) -> str:
    """The name of a part file: ``NNNNN.<md5>.<size>`` (see :data:`PART_FILE`)."""
    return f"{link}.{md5}.{size}"


def part_etag(name: str) -> str:
    """The etag (hex MD5) of the part a checked part file name holds."""
    return name[6:38]


def part_etags(names: list[str]) -> list[str]:
    """:func:`part_etag` of each checked name, in one pass."""
    return [name[6:38] for name in names]


def named_size(name: str) -> int | None:
    """The size a checked part file name holds; None for ``NNNNN.<md5>``."""
    return int(name[_SIZE_AT:]) if len(name) > _SIZE_AT else None


def named_sizes(names: list[str]) -> list[int] | None:
    """:func:`named_size` of each checked name, in one pass; None if any
    holds no size."""
    if min(map(len, names), default=_SIZE_AT + 1) <= _SIZE_AT:
        return None
    return [int(name[_SIZE_AT:]) for name in names]


def part_file(dir_fd: int, link: str) -> tuple[str, int] | None:
    """The file part link ``link`` names in ``dir_fd``, and its size.

    None if there is no such link. The target is only ever a name of this
    directory (``NNNNN.<md5>[.<size>]`` of the same number), and a regular file: a link
    to anywhere else is corrupt and is neither followed nor stat'ed.
    """
    try:
        target = os.readlink(link, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError:  # EINVAL: not a symlink
        raise CorruptEntry(f"part link {link}: not a symlink") from None
    if not PART_FILE.fullmatch(target) or not target.startswith(f"{link}."):
        raise CorruptEntry(f"corrupt part link {link} -> {target!r}")
    return target, _checked_size(dir_fd, target, f"corrupt part link {link}")


def _checked_size(dir_fd: int, name: str, what: str) -> int:
    """:func:`_part_size`, and the size ``name`` holds must be it."""
    size = _part_size(dir_fd, name, what)
    if named_size(name) not in (None, size):
        raise CorruptEntry(f"{what}: {name} holds {size} bytes")
    return size


def _part_size(dir_fd: int, name: str, what: str) -> int:
    """The size of part file ``name``: a regular file, never followed."""
    try:
        found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise CorruptEntry(f"{what}: {name} is missing") from None
    if not stat.S_ISREG(found.st_mode):
        raise CorruptEntry(f"{what}: {name} is not a file")
    return found.st_size


def _matching(pattern: re.Pattern[str], names: list[str]) -> list[str]:
    """The ``names`` that ``pattern`` matches whole (usually all of them)."""
    if all_match(pattern, names):
        return names
    return [name for name in names if pattern.fullmatch(name)]


class PartFiles:
    """An upload directory's part links and files, from one ``scandir``.

    Made under the upload's lock, so no part changes meanwhile. Part N's
    file is normally the only ``NNNNN.<md5>.<size>`` of its number, and then
    it is the one link N names: no ``readlink`` is needed (a complete or a
    listing of 10,000 parts saves 10,000 system calls), and as its size is
    in its name, a listing needs no ``stat`` either. Where a crash left two
    files of one number, the link decides, checked by :func:`part_file`.
    Either way only a regular file of this directory is ever used.
    """

    def __init__(self, dir_fd: int) -> None:
        self._dir_fd = dir_fd
        # scandir, not listdir: each entry's type comes with its name (d_type),
        # so telling a regular file from anything else costs no system call.
        with os.scandir(dir_fd) as listing:
            entries = list(listing)
        #: Every name the directory held (nothing changes under the lock).
        self.names = [entry.name for entry in entries]
        links = _matching(PART_LINK, [name for name in self.names if len(name) == 5])
        files = _matching(PART_FILE, [name for name in self.names if len(name) >= 38])
        numbers = [name[:5] for name in files]
        #: Each number's one file; None for a number with more than one.
        self._only: dict[str, str | None] = dict(zip(numbers, files, strict=True))
        if len(self._only) < len(files):
            for number, count in Counter(numbers).items():
                if count > 1:
                    self._only[number] = None
        #: Part file names planted (or damaged) as anything but a regular file.
        #: Only names long enough to be one are asked: where a filesystem
        #: gives no type with the name, each answer is an lstat.
        self._not_files = {
            entry.name
            for entry in entries
            if len(entry.name) >= 38 and not entry.is_file(follow_symlinks=False)
        }
        links.sort()
        self.links = links
        self._linked = set(links)

    def current(self, link: str, measured: bool = False) -> tuple[str, int] | None:
        """Part ``link``'s file and size; None if there is no such part.

        The size is the one the file's name holds, with no ``stat`` (a
        listing), or, with ``measured`` or for a file named without one, the
        file's own, checked against its name (a complete publishes it: it
        must be what a GET will find). Raises CorruptEntry where
        :func:`part_file` would, or for a name whose size is not the file's.
        """
        only = self._only.get(link)
        if only is None or link not in self._linked:
            return part_file(self._dir_fd, link)
        if only in self._not_files:
            raise CorruptEntry(f"corrupt part {link}: {only} is not a file")
        size = named_size(only)
        if size is not None and not measured:
            return only, size
        return only, _checked_size(self._dir_fd, only, f"corrupt part {link}")

    def listed(self) -> tuple[list[str], list[int]] | None:
        """:meth:`current` of every link, in one pass, as two columns: the
        files and their sizes, in the order of :attr:`links` (a listing of
        10,000 parts: a third less time than one call per link). None when
        any part is not the usual one regular file of its number whose name
        holds its size, for :meth:`current` to tell part by part."""
        names = self._usual(self.links)
        if names is None:
            return None
        sizes = named_sizes(names)
        return None if sizes is None else (names, sizes)

    def measured(self, links: list[str]) -> tuple[list[str], list[int]] | None:
        """:meth:`current` with ``measured`` for every link, in one pass each
        for names, ``stat`` and checks (a complete of 10,000 parts: a third
        cheaper than one call per part), as two columns: the files and their
        sizes. None when any part is not the usual one regular file of its
        number (whose size, where its name holds one, is that), for
        :meth:`current` to tell which and why, part by part."""
        names = self._usual(links)
        if names is None:
            return None
        dir_fd = self._dir_fd
        regular = stat.S_ISREG
        try:
            # Only the sizes are kept (-1: not a regular file), not 10,000
            # stat results, which would wake the garbage collector.
            found = (
                os.stat(name, dir_fd=dir_fd, follow_symlinks=False) for name in names
            )
            sizes = [each.st_size if regular(each.st_mode) else -1 for each in found]
        except OSError:
            return None
        named = named_sizes(names)
        if named is None:  # names from before sizes were named: each on its own
            if any(
                [
                    named_size(name) not in (None, size)
                    for name, size in zip(names, sizes, strict=True)
                ]
            ):
                return None
        elif named != sizes:
            return None
        if -1 in sizes:
            return None
        return names, sizes

    def _usual(self, links: list[str]) -> list[str] | None:
        """Each link's one file, where every link has one, and it is its
        number's only file and no directory, symlink or the like; else None."""
        picked = list(map(self._only.get, links))
        if (
            None in picked
            or not self._linked.issuperset(links)
            or not self._not_files.isdisjoint(picked)
        ):
            return None
        return cast(list[str], picked)


def upload_info(record: dict[str, Any]) -> UploadInfo:
    """The UploadInfo a checked record describes."""
    return UploadInfo(
        key=record["key"],
        upload_id=record["upload_id"],
        created=datetime.fromisoformat(record["created"]),
        expires=datetime.fromisoformat(record["expires"]),
        http_metadata=HttpMetadata(record["http_metadata"]),
        owner=record.get("owner"),
    )


def _check_time(fields: dict[str, Any], name: str, what: str) -> None:
    value = fields.get(name)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    # A naive time cannot be compared with the store's clock (a TypeError).
    if parsed is None or parsed.tzinfo is None:
        raise CorruptEntry(f"{what}: {name} is not an ISO 8601 time with a zone")


def _check_headers(fields: dict[str, Any], what: str) -> None:
    """R2's metadata headers only, with values that can go into a response."""
    headers = fields.get("http_metadata")
    if not isinstance(headers, dict) or not all(
        name in HTTP_METADATA_HEADERS
        and isinstance(value, str)
        and not UNSENDABLE_HEADER_TEXT.search(value)
        for name, value in headers.items()
    ):
        raise CorruptEntry(f"{what}: http_metadata is not R2's metadata headers")


def _size(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise CorruptEntry(f"{what}: size {value!r} is not a byte count")
    return value
