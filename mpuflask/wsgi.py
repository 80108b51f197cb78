"""The WSGI entry point: ``mpuflask serve`` serves ``mpuflask.wsgi:app``.

Any WSGI server can take it too (``gunicorn mpuflask.wsgi:app``, where
``mpuflask serve`` adds the project's gunicorn settings); from a clone,
the top-level ``wsgi.py`` is this same app.
"""

from __future__ import annotations

import sys

from . import create_app
from .config import ConfigError
from .memory import limit_malloc_arenas

# Each gunicorn worker imports this module before its threads start.
limit_malloc_arenas()

try:
    app = create_app()
except ConfigError as error:
    # One line instead of a traceback, for `flask --app mpuflask.wsgi` and any
    # gunicorn without our settings (which check them before forking).
    # Status 4 is gunicorn's "App failed to load": the master stops rather
    # than restarting the worker.
    print(f"mpuflask: {error}", file=sys.stderr, flush=True)
    raise SystemExit(4) from None
