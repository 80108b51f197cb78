"""The WSGI entry point from a clone: ``gunicorn wsgi:app``.

The same app as ``mpuflask.wsgi:app``, which ``mpuflask serve`` serves once
the project is installed (a bad setting: one line, exit status 4).
"""

from mpuflask.wsgi import app as app
