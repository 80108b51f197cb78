"""The resume record: which upload a file is going into, kept between runs.

One small JSON file per (file path, size, mtime, URL) in a user cache
directory: ``$MPUFLASK_STATE_DIR``, else ``$XDG_CACHE_HOME/mpuflask/uploads``,
else ``~/.cache/mpuflask/uploads``. Not beside the file: its folder may be
read-only or shared, and a stray ``.mpu`` file there would surprise. A file
that changed (size or mtime) gets a new key, so it is never resumed into an
upload of its old bytes. The record holds only the uploadId and the part size;
which parts arrived is asked of the server (``mpu-listparts``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path

VERSION = 1


@dataclass(frozen=True)
class UploadRecord:
    """An upload in progress: enough to find it again after a crash."""

    path: str
    size: int
    mtime_ns: int
    url: str
    upload_id: str
    part_size: int

    @property
    def key(self) -> str:
        return record_key(self.path, self.size, self.mtime_ns, self.url)


def record_key(path: str, size: int, mtime_ns: int, url: str) -> str:
    """A file name for the record of this file version going to this URL."""
    identity = json.dumps([VERSION, path, size, mtime_ns, url])
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def default_state_dir() -> Path:
    """Where records live unless the caller says otherwise (see module doc)."""
    if explicit := os.environ.get("MPUFLASK_STATE_DIR"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mpuflask" / "uploads"


class StateStore:
    """Records in one directory, written by temp file + rename (never torn)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else default_state_dir()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(
        self, path: str, size: int, mtime_ns: int, url: str
    ) -> UploadRecord | None:
        """The record for this file version and URL, or None (absent or unreadable)."""
        try:
            data = json.loads(
                self._path(record_key(path, size, mtime_ns, url)).read_text()
            )
            if data.pop("version") != VERSION:
                return None
            return UploadRecord(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def save(self, record: UploadRecord) -> Path:
        """Write ``record`` atomically; returns its file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self._path(record.key)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump({"version": VERSION, **asdict(record)}, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return target

    def delete(self, record: UploadRecord) -> None:
        """Forget ``record`` (the upload completed, was aborted or is gone)."""
        self._path(record.key).unlink(missing_ok=True)

    def forget_upload(self, upload_id: str) -> None:
        """Delete whichever records name ``upload_id`` (after an explicit abort)."""
        for path in self.directory.glob("*.json"):
            try:
                if json.loads(path.read_text()).get("upload_id") == upload_id:
                    path.unlink(missing_ok=True)
            except (OSError, ValueError, AttributeError):
                continue
