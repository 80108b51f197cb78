"""The master's checks before any worker starts, for ``on_starting``.

What gunicorn was given (binds, worker and thread counts) is read here, and
mpuflask's own settings are checked in a forked child, so the master imports
neither mpuflask's app nor the configured hook modules: workers started later
(``kill -HUP``) still load the code as it is then. Nothing here imports
prometheus_client (see :mod:`mpuflask.serving`).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def listening_problem(cfg: Any) -> str | None:
    """Why a server with gunicorn's config ``cfg`` could not serve, or None.

    A port out of range gave a 45-line traceback; ``-w 0`` or
    ``--threads 0`` listened, accepted connections and never answered.
    """
    for address in cfg.bind:
        problem = bind_problem(address)
        if problem:
            return problem
    for name in ("workers", "threads"):
        if getattr(cfg, name) < 1:
            return f"--{name} must be at least 1, not {getattr(cfg, name)}"
    return None


def bind_problem(address: str) -> str | None:
    """Why gunicorn could not listen on ``address`` (a port out of range
    gave a 45-line traceback), or None."""
    if address.startswith(("unix:", "fd://")):
        return None
    _, colon, port = address.removeprefix("tcp://").rpartition(":")
    if colon and not port.endswith("]"):
        if not (port.isascii() and port.isdigit() and int(port) <= 65535):
            return f"cannot listen on {address!r}: the port must be 0 to 65535"
    return None


def settings_verdict(cfg: Any) -> str:
    """The child's verdict: "auth" or "open" if valid, else "error <line>".

    The child runs as the workers will (``--user``/``--group``): it opens the
    store, so what it makes in the data directory is theirs, and whether they
    may write there is asked as them.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: load the settings as create_app will, and say
        try:
            if (cfg.uid, cfg.gid) != (os.geteuid(), os.getegid()):
                from gunicorn.util import set_owner_process  # type: ignore[import-untyped]

                set_owner_process(cfg.uid, cfg.gid, initgroups=cfg.initgroups)
            from mpuflask.config import ConfigError
            from mpuflask.config import auth_configured
            from mpuflask.config import load_settings

            try:
                settings = load_settings()
                # A data dir that is a file, or not ours to write; an engine
                # that cannot be reached: one line here, not a traceback from
                # each worker.
                from mpuflask.startup import check_store

                check_store(settings)
                verdict = "auth" if auth_configured(settings) else "open"
            except ConfigError as error:
                verdict = f"error {error}"
        except BaseException as error:  # any failure at all, as one line
            verdict = f"error checking the settings failed: {error!r}"
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(write_end, verdict.encode("utf-8", "replace"))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        verdict = pipe.read().decode("utf-8", "replace")
    os.waitpid(pid, 0)
    return verdict or "error the settings check died"
