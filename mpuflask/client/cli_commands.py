"""The client's commands: ``mpuflask upload``, ``download`` and ``abort``.

Registered on the ``mpuflask`` group in :mod:`mpuflask.cli`. Only click is
imported here at first; ``requests`` (the ``client`` extra) is imported when a
command runs, so a server-only install still has a working ``mpuflask``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import NoReturn
from typing import TypeVar

import click

if TYPE_CHECKING:
    from .api import Client

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
}
_SIZE = re.compile(r"\s*(\d+)\s*([a-zA-Z]*)\s*")


def parse_size(
    ctx: click.Context, param: click.Parameter, value: str | int | None
) -> int | None:
    """A size such as ``100MiB``, ``5M`` (binary), ``8MB`` (decimal) or ``1048576``."""
    if value is None or isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise click.BadParameter(f"{value!r} is not a size like 100MiB, 5M or 1048576")
    return int(match.group(1)) * _UNITS[unit]


def _shared_options(function: F) -> F:
    """Options every transfer command takes."""
    options = [
        click.option(
            "--token",
            envvar="MPUFLASK_TOKEN",
            help="Send 'Authorization: Bearer TOKEN' (env MPUFLASK_TOKEN).",
        ),
        click.option(
            "-j",
            "--concurrency",
            type=click.IntRange(1, 256),
            default=4,
            show_default=True,
            help="Parts (or ranges) in flight at once.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 100),
            default=5,
            show_default=True,
            help="Retries per request after a connection error, timeout, 408, "
            "429 or 5xx (never after another 4xx).",
        ),
        click.option(
            "-q", "--quiet", is_flag=True, help="No progress, only warnings and errors."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _part_size_options(function: F) -> F:
    options = [
        click.option(
            "--part-size",
            metavar="SIZE",
            callback=parse_size,
            type=str,
            help="Part size (default: the smallest whole MiB >= the minimum "
            "that keeps within 10,000 parts).",
        ),
        click.option(
            "--min-part-size",
            metavar="SIZE",
            callback=parse_size,
            type=str,
            default="5MiB",
            show_default=True,
            help="The server's minimum part size, if it was lowered.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _make_client(
    token: str | None,
    concurrency: int,
    retries: int,
    state_dir: Path | None = None,
) -> Client:
    """A Client, or a clear message if the ``client`` extra is not installed."""
    try:
        from .api import Client
        from .retry import RetryPolicy
    except ModuleNotFoundError as error:
        raise click.ClickException(
            f"the mpuflask client needs {error.name}: pip install 'mpuflask[client]'"
        ) from None
    return Client(
        token=token,
        concurrency=concurrency,
        retry=RetryPolicy(attempts=retries + 1),
        state_dir=state_dir,
    )


@contextmanager
def _reporting(quiet: bool) -> Iterator[None]:
    """Client log lines to stderr; a failure becomes a one-line error, exit 1."""
    from .errors import ClientError

    logger = logging.getLogger("mpuflask.client")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield
    except (ClientError, OSError) as error:  # OSError: a file we cannot read/write
        raise click.ClickException(str(error)) from None
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _exit_interrupted(hint: str) -> NoReturn:
    """Leave now on Ctrl-C: parts still in flight are abandoned, not awaited.

    ``os._exit`` because Python would otherwise join the transfer threads at
    exit, and a part waiting on a slow server may take minutes to answer.
    """
    click.echo(f"interrupted: {hint}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("url")
@_part_size_options
@_shared_options
@click.option("--content-type", help="Stored with the object (default: from the name).")
@click.option(
    "--no-resume",
    is_flag=True,
    help="Neither resume an earlier run nor keep a record to resume this one.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MPUFLASK_STATE_DIR",
    help="Where resume records live (default ~/.cache/mpuflask/uploads).",
)
def upload(
    file: Path,
    url: str,
    part_size: int | None,
    min_part_size: int,
    token: str | None,
    concurrency: int,
    retries: int,
    quiet: bool,
    content_type: str | None,
    no_resume: bool,
    state_dir: Path | None,
) -> None:
    """Upload FILE to the object URL (http://host/key), in parallel parts.

    Run the same command again after an interruption: only the parts the
    server does not hold are sent.
    """
    from .progress import progress_for

    client = _make_client(token, concurrency, retries, state_dir)
    with _reporting(quiet):
        try:
            result = client.upload(
                file,
                url,
                part_size=part_size,
                min_part_size=min_part_size,
                resume=not no_resume,
                content_type=content_type,
                progress=progress_for(f"upload {file.name}", quiet=quiet),
            )
        except KeyboardInterrupt:
            _exit_interrupted("run the same command again to resume")
    checked = "verified" if result.verified else "not verified"
    click.echo(
        f'uploaded {file} to {url}: etag "{result.etag}" ({checked}), '
        f"{result.parts} parts of {result.part_size} bytes, "
        f"{result.parts_resumed} already on the server"
    )


@click.command()
@click.argument("url")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_part_size_options
@_shared_options
def download(
    url: str,
    file: Path,
    part_size: int | None,
    min_part_size: int,
    token: str | None,
    concurrency: int,
    retries: int,
    quiet: bool,
) -> None:
    """Download the object URL to FILE in parallel ranges, replacing FILE atomically."""
    from .progress import progress_for

    client = _make_client(token, concurrency, retries)
    with _reporting(quiet):
        try:
            result = client.download(
                url,
                file,
                part_size=part_size,
                min_part_size=min_part_size,
                progress=progress_for(f"download {file.name}", quiet=quiet),
            )
        except KeyboardInterrupt:
            _exit_interrupted(f"{file} was left as it was")
    if not result.verified:
        click.echo(
            f'warning: etag "{result.etag}" not recomputed (unknown part size; '
            "give --part-size); length and etag were checked across ranges",
            err=True,
        )
    click.echo(f'downloaded {url} to {file}: {result.size} bytes, etag "{result.etag}"')


@click.command()
@click.argument("url")
@click.option("--upload-id", required=True, help="The uploadId to discard.")
@click.option("--token", envvar="MPUFLASK_TOKEN", help="Bearer token.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MPUFLASK_STATE_DIR",
    help="Where resume records live (the record of this upload is removed).",
)
def abort(url: str, upload_id: str, token: str | None, state_dir: Path | None) -> None:
    """Discard the unfinished upload UPLOAD_ID of the object URL."""
    client = _make_client(token, 1, 5, state_dir)
    with _reporting(quiet=True):
        client.abort(url, upload_id)
    click.echo(f"aborted upload {upload_id} of {url}")
