"""Serving mpuflask: its gunicorn settings and the ``mpuflask serve`` command.

Importing this package (or :mod:`.gunicorn_settings`) imports neither Flask
nor prometheus_client: gunicorn's master loads the settings, which must set
``PROMETHEUS_MULTIPROC_DIR`` before prometheus_client is first imported.
"""
