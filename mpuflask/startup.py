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
from .storage import open_bucket


def open_store(config: Mapping[str, Any]) -> Bucket:
    """:func:`~mpuflask.storage.open_bucket`, its failures as one line."""
    spool = config.get("MPUFLASK_S3_SPOOL_DIR")
    if config["MPUFLASK_STORE"] == "s3" and spool is not None:
        # Checked now: a missing one failed each chunked part with a 500.
        if not os.path.isdir(spool) or not os.access(spool, os.W_OK | os.X_OK):
            raise ConfigError(
                f"MPUFLASK_S3_SPOOL_DIR {spool!r} is not a directory the server "
                "may write; create it, or unset it to use the temp dir"
            )
    try:
        return open_bucket(config)
    except OSError as error:
        if config["MPUFLASK_STORE"] != "filesystem":
            raise ConfigError(f"the s3 store cannot start: {_reason(error)}") from None
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
            cause = _reason(error.__cause__ or error)
            raise ConfigError(
                f"the s3 store cannot reach its bucket: {cause} "
                "(MPUFLASK_SWEEP_ON_START=false starts without asking)"
            ) from None


def sweep_at_start(bucket: Bucket, config: Mapping[str, Any]) -> None:
    """The start-up sweep (``MPUFLASK_SWEEP_ON_START``), its failures as one line."""
    try:
        bucket.sweep()
    except (OSError, ApiError) as error:
        cause = error.__cause__ if isinstance(error, ApiError) else error
        raise ConfigError(
            f"the {config['MPUFLASK_STORE']} store failed its start-up sweep: "
            f"{_reason(cause or error)} (MPUFLASK_SWEEP_ON_START=false starts "
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


def _reason(error: BaseException) -> str:
    """An error as a phrase on one line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
