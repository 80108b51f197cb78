"""gunicorn settings from a clone: mpuflask's own, from the package.

Run: ``gunicorn wsgi:app`` (this file is picked up from the working directory).
Every setting is in ``mpuflask/serving/gunicorn_settings.py``, explained where
it is set, and overridable with ``GUNICORN_<NAME>`` or gunicorn's flags; once
installed, ``mpuflask serve`` serves with the same settings from anywhere.
"""

from mpuflask.serving.gunicorn_settings import *  # noqa: F403
