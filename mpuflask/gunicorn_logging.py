"""gunicorn's logger, minus the access-log work nobody reads.

gunicorn builds every request's access-log fields (a dict of some 20 atoms,
headers included) as soon as any logging configuration is given, and
``gunicorn.conf.py`` gives one (``logconfig_dict``) for the app's JSON lines;
the ``gunicorn.access`` logger then drops the record, since the app writes its
own access line. This logger skips the work unless ``gunicorn.access`` would
write at INFO (``GUNICORN_ACCESSLOG`` set). ``gunicorn.conf.py`` names it as
``logger_class``.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger  # type: ignore[import-untyped]


class Logger(_GunicornLogger):  # type: ignore[misc]
    """gunicorn's Logger whose ``access`` returns at once when nothing is written."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)
