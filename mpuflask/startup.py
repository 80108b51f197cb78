"""Opening the store when the app starts: what stops it is one line.

A data directory that is a file, or that the server may not write; an s3
store that cannot reach its engine or find its credentials: each used to
stop every worker with a traceback (or, unwritable, to start and answer 500).
Here each becomes a :class:`~mpuflask.config.ConfigError` naming the setting
and the cause, which ``wsgi.py`` and gunicorn's settings check print as the
one line they print for any bad setting.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import Any

from .config import ConfigError
from .errors import ApiError
from .storage import Bucket
from .storage import diskio
from .storage import open_bucket


def open_store(config: Mapping[str, Any]) -> Bucket:
    """:func:`~mpuflask.storage.open_bucket`, its failures as one line."""
    spool = config["MPUFLASK_S3_SPOOL_DIR"]
    if config["MPUFLASK_STORE"] == "s3" and spool is not None:
        # Checked now: a missing one failed each chunked part with a 500.
        if not os.path.isdir(spool) or not diskio.may_write(spool):
            raise ConfigError(
                f"MPUFLASK_S3_SPOOL_DIR {spool!r} is not a directory the server "
                "may write; create it, or unset it to use the temp dir"
            )
    try:
        return open_bucket(config)
    except OSError as error:
        if config["MPUFLASK_STORE"] != "filesystem":
            raise ConfigError(f"the s3 store cannot start: {_cause(error)}") from None
        refusal = _data_dir_refusal(config["MPUFLASK_DATA_DIR"], error)
        raise ConfigError(refusal) from None


#: A key the start-up check asks the s3 engine about (any answer will do).
PROBE_KEY = "mpuflask-start-probe"


def check_store(config: Mapping[str, Any]) -> None:
    """What gunicorn's settings check runs once, before any worker: open the
    store; for an s3 store whose workers will sweep at start, ask the engine
    once too. Each worker would otherwise fail with the same error, and
    gunicorn's master can die of several failing at once with a traceback."""
    bucket = open_store(config)
    if config["MPUFLASK_STORE"] == "s3" and config["MPUFLASK_SWEEP_ON_START"]:
        try:
            bucket.head(PROBE_KEY)
        except ApiError as error:
            raise ConfigError(
                f"the s3 store cannot reach its bucket: {_cause(error)} "
                "(MPUFLASK_SWEEP_ON_START=false starts without asking)"
            ) from None


def sweep_at_start(bucket: Bucket, config: Mapping[str, Any]) -> None:
    """The start-up sweep (``MPUFLASK_SWEEP_ON_START``), its failures as one line."""
    try:
        bucket.sweep()
    except (OSError, ApiError) as error:
        raise ConfigError(
            f"the {config['MPUFLASK_STORE']} store failed its start-up sweep: "
            f"{_cause(error)} (MPUFLASK_SWEEP_ON_START=false starts "
            "without it)"
        ) from None


def _data_dir_refusal(root: str, error: OSError) -> str:
    path = os.path.abspath(root)
    where = "" if error.filename in (None, path, root) else f" ({error.filename})"
    if error.errno in (errno.EEXIST, errno.ENOTDIR) and not os.path.isdir(path):
        reason = "it, or a folder above it, is not a directory"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"the server may not write it{where}; give its user write access"
    else:
        reason = f"{error.strerror or error}{where}"
    return f"MPUFLASK_DATA_DIR {root!r} cannot be used: {reason}"


def _cause(error: BaseException) -> str:
    """What went wrong, as a phrase on one line: the engine's or the disk's
    own error, not the R2 error a store answers requests with for it."""
    found = error.__cause__ or error
    text = " ".join(str(found).split()) or type(found).__name__
    return text if len(text) <= 300 else text[:297] + "..."
