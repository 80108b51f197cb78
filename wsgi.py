"""The WSGI entry point: ``gunicorn wsgi:app`` (settings in gunicorn.conf.py)."""

import sys

from mpuflask import create_app
from mpuflask.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line instead of a traceback, for `flask --app wsgi` and any gunicorn
    # without our gunicorn.conf.py (which checks the settings before forking).
    # Status 4 is gunicorn's "App failed to load": the master stops rather
    # than restarting the worker.
    print(f"mpuflask: {error}", file=sys.stderr, flush=True)
    raise SystemExit(4) from None
