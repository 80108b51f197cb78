"""``mpuflask serve``: gunicorn with mpuflask's settings, from any directory.

The same as ``gunicorn -c python:mpuflask.serving.gunicorn_settings
mpuflask.wsgi:app`` followed by your options: gunicorn's whole command line
applies (``-b``, ``-w``, ``--threads``, ``--log-level``, an APP_MODULE of
your own), on top of the project's settings. Only ``-c/--config`` is refused:
it would replace those settings instead of adding to them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import click
from gunicorn.app.wsgiapp import WSGIApplication  # type: ignore[import-untyped]

#: gunicorn's configuration: the settings module inside the package.
SETTINGS = "python:mpuflask.serving.gunicorn_settings"

USAGE = """%(prog)s [gunicorn options] [APP_MODULE]

Serves mpuflask (mpuflask.wsgi:app, or APP_MODULE) with gunicorn and
mpuflask's gunicorn settings (mpuflask/serving/gunicorn_settings.py): the
DeadlineWorker, 64 threads, loopback on port 8000 unless -b says otherwise.
Each option below overrides the setting of the same name; so does
GUNICORN_<NAME> in the environment (GUNICORN_BIND, GUNICORN_WORKERS, ...)."""


class ServeApplication(WSGIApplication):  # type: ignore[misc]
    """gunicorn's own application, reading ``args`` instead of ``sys.argv``."""

    def __init__(self, args: list[str]) -> None:
        self.gunicorn_args = args
        super().__init__(USAGE, prog="mpuflask serve")

    def load_config(self) -> None:
        # gunicorn parses sys.argv; it is swapped only while it does, so that
        # a re-exec (SIGUSR2) runs the real command line, `mpuflask serve ...`.
        saved = sys.argv
        sys.argv = [saved[0], *self.gunicorn_args]
        try:
            super().load_config()
        finally:
            sys.argv = saved

    def init(
        self, parser: argparse.ArgumentParser, opts: argparse.Namespace, args: Any
    ) -> None:
        if opts.config is not None:
            parser.error(
                "-c/--config would replace mpuflask's gunicorn settings; give "
                "gunicorn's options directly, or run gunicorn -c YOUR_FILE "
                "mpuflask.wsgi:app (YOUR_FILE may start with "
                "'from mpuflask.serving.gunicorn_settings import *')"
            )
        opts.config = SETTINGS
        super().init(parser, opts, args)


@click.command(
    "serve",
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(gunicorn_args: tuple[str, ...]) -> None:
    """Serve mpuflask with gunicorn and its settings (gunicorn's options apply).

    Example: mpuflask serve -b 0.0.0.0:8000 -w 4. See `mpuflask serve --help`.
    """
    ServeApplication(list(gunicorn_args)).run()
