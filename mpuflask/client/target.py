"""Where a download writes: the regular file a path leads to, or a stream.

A download renames a finished temp file over its target, so the target is
the old file or the whole new one. That is right only for a regular file: a
rename would put a regular file in place of a device (``/dev/null``), a FIFO,
a socket or a folder, or of the symlink the user meant to write through.
So a symlink is followed to the file it names (as ``curl -o`` writes through
one), the temp file goes beside that file, and a target that exists but is
not a regular file is refused before any request.

The command line writes to the others that take bytes in order, as one
stream (:mod:`.download_stream`): ``-`` (standard output), a FIFO and a
character device, opened for writing, never created, emptied or replaced.
A block device (a disk) is refused: one typo would overwrite a disk.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import ClientError

#: What ``tempfile.mkstemp`` adds around the prefix: 8 random characters,
#: then the suffix.
TEMP_SUFFIX = ".download"
_RANDOM = 8
_HASH = 16


class BadTarget(ClientError):
    """The path given cannot take a download: a folder, a socket, a disk; for
    :func:`resolve_target` (a file download) anything but a regular file."""


def streams_to(file: str, path: Path) -> bool:
    """Whether a download to FILE goes out as one stream, in order: FILE is
    ``-``, or ``path`` leads (through links) to a FIFO or a character device.

    A block device is a :class:`BadTarget`; anything else is for
    :func:`resolve_target` to take or refuse.
    """
    if file == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if stat.S_ISBLK(mode):
        raise BadTarget(
            f"{file!r} is a block device (a disk): a download does not write "
            f"disks; if that is what you mean: mpuflask download URL - | dd "
            f"of={file}"
        )
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def open_stream(path: Path) -> BinaryIO:
    """``path`` (a FIFO or character device) opened for writing, never made
    or emptied; a FIFO's open waits for its reader, as ``cat > fifo`` does.
    BadTarget if it is no longer one of those."""
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        os.close(fd)
        raise BadTarget(f"{str(path)!r} changed while it was opened: run again")
    return os.fdopen(fd, "wb")


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
