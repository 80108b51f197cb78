"""The WSGI entry point: ``gunicorn wsgi:app`` (settings in gunicorn.conf.py)."""

import sys

from mpuflask import create_app
from mpuflask.config import ConfigError
from mpuflask.memory import limit_malloc_arenas

# Each gunicorn worker imports this module before its threads start.
limit_malloc_arenas()

try:
    app = create_app()
except ConfigError as error:
    # One line instead of a traceback, for `flask --app wsgi` and any gunicorn
    # without our gunicorn.conf.py (which checks the settings before forking).
    # Status 4 is gunicorn's "App failed to load": the master stops rather
    # than restarting the worker.
    print(f"mpuflask: {error}", file=sys.stderr, flush=True)
    raise SystemExit(4) from None
