"""Where a download writes: the regular file a path leads to, and a temp name.

A download renames a finished temp file over its target, so the target is
the old file or the whole new one. That is right only for a regular file: a
rename would put a regular file in place of a device (``/dev/null``), a FIFO,
a socket or a folder, or of the symlink the user meant to write through.
So a symlink is followed to the file it names (as ``curl -o`` writes through
one), the temp file goes beside that file, and a target that exists but is
not a regular file is refused before any request.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .errors import ClientError

#: What ``tempfile.mkstemp`` adds around the prefix: 8 random characters,
#: then the suffix.
TEMP_SUFFIX = ".download"
_RANDOM = 8
_HASH = 16


class BadTarget(ClientError):
    """The path given cannot take a download (a folder, device, FIFO, ``-``)."""


def check_target(file: str, path: Path) -> Path:
    """``path`` (the command line's FILE, made ``path``) as :func:`resolve_target`.

    ``-`` is refused rather than written as a file named ``-``: the ranges
    arrive in any order, so a download cannot stream to standard output.
    """
    if file == "-":
        raise BadTarget(
            "'-' (standard output) is not supported: a download is written in "
            "parallel ranges to a file; give a file name (./- for a file named -)"
        )
    return resolve_target(path)


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The regular file a download to ``path`` replaces: ``path`` or its link's target.

    Raises :class:`BadTarget` when that exists and is not a regular file, or
    when a symlink leads nowhere a file can be made.
    """
    given = Path(path)
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    link = f"{str(given)!r} (a symbolic link) leads to" if target != given else ""
    try:
        mode = os.stat(given).st_mode
    except FileNotFoundError:
        if link and not target.parent.is_dir():
            raise BadTarget(
                f"{link} {str(target)!r}, in a folder that does not exist"
            ) from None
        return target
    except OSError as error:  # a symlink loop, a folder we may not search
        raise BadTarget(f"{str(given)!r}: {error.strerror}") from None
    if stat.S_ISREG(mode):
        return target
    what = _kind(mode)
    named = f"{link} {what}" if link else f"{str(given)!r} is {what}"
    raise BadTarget(
        f"{named}, not a regular file: a download only replaces regular files"
    )


def temp_prefix(target: Path) -> str:
    """``.<name>.`` for the temp file beside ``target``, cut to fit the name limit.

    ``.<name>.<random>.download`` is 19 bytes longer than the name: a name
    near the limit (255 bytes on most filesystems) keeps its start and gains
    a hash of the whole, ``.<start>~<hash>.``, so two long names differ.
    """
    name = target.name
    limit = _name_max(target.parent) - _RANDOM - len(TEMP_SUFFIX)
    prefix = f".{name}."
    if len(os.fsencode(prefix)) <= limit:
        return prefix
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:_HASH]
    head = name
    while head and len(os.fsencode(f".{head}~{digest}.")) > limit:
        head = head[:-1]
    return f".{head}~{digest}."


def _name_max(directory: Path) -> int:
    """The longest file name (bytes) ``directory``'s filesystem takes; else 255."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "an unknown kind of file"
