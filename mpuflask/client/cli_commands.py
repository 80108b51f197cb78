"""The client's transfer commands: ``mpuflask upload``, ``download``, ``abort``, ``rm``.

Registered on the ``mpuflask`` group in :mod:`mpuflask.cli`; the listings
(``ls``, ``uploads``) are in :mod:`.cli_listing`, shared options in
:mod:`.cli_options`. Only click is imported here at first; ``requests`` (the
``client`` extra) is imported when a command runs, so a server-only install
still has a working ``mpuflask``.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import BinaryIO

import click

from .cli_options import NO_RESUME
from .cli_options import PIPE_NO_RESUME
from .cli_options import RESUME
from .cli_options import STREAM_AGAIN
from .cli_options import connection_options
from .cli_options import content_type_option
from .cli_options import exit_interrupted
from .cli_options import make_client
from .cli_options import object_url
from .cli_options import object_urls
from .cli_options import part_size_options
from .cli_options import reporting
from .cli_options import transfer_options
from .urls import BadUrl
from .urls import base_name
from .urls import display

if TYPE_CHECKING:
    from .api import Client
    from .download import DownloadResult


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.argument("url", callback=object_url)
@part_size_options
@transfer_options
@click.option(
    "--content-type",
    callback=content_type_option,
    help="Stored with the object (default: from the name).",
)
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
    file: str,
    url: str,
    part_size: int | None,
    min_part_size: int,
    token: str | None,
    headers: dict[str, str],
    retries: int,
    concurrency: int,
    quiet: bool,
    content_type: str | None,
    no_resume: bool,
    state_dir: Path | None,
) -> None:
    """Upload FILE to the object URL (http://host/key), in parallel parts.

    Run the same command again after an interruption: only the parts the
    server does not hold are sent. FILE '-' reads standard input, part by
    part, until it ends (at most -j parts in memory; no resume: a failed or
    interrupted run is aborted and must start over).
    """
    from .progress import progress_for

    streamed = _is_stream(file)
    _check_part_size(file, part_size, min_part_size, streamed)
    client = make_client(token, headers, retries, concurrency, state_dir)
    if streamed:
        _upload_stream(client, file, url, part_size, min_part_size, content_type, quiet)
        return
    source = Path(file)
    with reporting(quiet, again=RESUME):
        try:
            result = client.upload(
                source,
                url,
                part_size=part_size,
                min_part_size=min_part_size,
                resume=not no_resume,
                content_type=content_type,
                progress=progress_for(f"upload {source.name}", quiet=quiet),
            )
        except KeyboardInterrupt:
            exit_interrupted("run the same command again to resume")
    checked = "verified" if result.verified else "not verified"
    click.echo(
        f'uploaded {source} to {display(url)}: etag "{result.etag}" ({checked}), '
        f"{result.parts} parts of {result.part_size} bytes, "
        f"{result.parts_resumed} already on the server"
    )


def _is_stream(file: str) -> bool:
    """``-``, or a path to no regular file: a pipe (``/dev/stdin``, ``<(cmd)``,
    a FIFO) or a device, read as it comes. Its size says nothing (a pipe's is
    0: taken as a file, it uploaded an empty object over the key)."""
    if file == "-":
        return True
    try:
        return not stat.S_ISREG(os.stat(file).st_mode)
    except OSError:  # gone since click looked: opening it will say why
        return False


def _check_part_size(
    file: str, part_size: int | None, min_part_size: int, streamed: bool
) -> None:
    """A part size R2's rules refuse for this input is a usage error (exit 2)."""
    from .errors import ClientError
    from .parts import choose_part_size
    from .parts import stream_part_size

    try:
        if streamed:  # any size may come: the part size must suit many parts
            stream_part_size(part_size, min_part_size)
        else:
            choose_part_size(
                Path(file).stat().st_size, part_size, min_part_size=min_part_size
            )
    except ClientError as error:
        raise click.BadParameter(str(error), param_hint="'--part-size'") from None


def _upload_stream(
    client: Client,
    file: str,
    url: str,
    part_size: int | None,
    min_part_size: int,
    content_type: str | None,
    quiet: bool,
) -> None:
    """``upload - URL`` (or a pipe's path): part by part, until it ends."""
    from .progress import progress_for

    again = NO_RESUME if file == "-" else PIPE_NO_RESUME
    if file == "-":
        name, label = "standard input", "stdin"
        if not quiet and sys.stdin.isatty():
            click.echo("reading standard input (end it with Ctrl-D)", err=True)
    else:
        name = label = file
    with reporting(quiet, again=again):
        try:
            with _opened(file) as source:
                result = client.upload_stream(
                    source,
                    url,
                    part_size=part_size,
                    min_part_size=min_part_size,
                    content_type=content_type,
                    progress=progress_for(f"upload {label}", quiet=quiet),
                )
        except KeyboardInterrupt:
            exit_interrupted(again)
    checked = "verified" if result.verified else "not verified"
    click.echo(
        f'uploaded {name} to {display(url)}: etag "{result.etag}" ({checked}), '
        f"{result.size} bytes in {result.parts} parts of {result.part_size} bytes"
    )


@contextmanager
def _opened(file: str) -> Iterator[BinaryIO]:
    """Standard input (left open), or ``file`` opened for reading."""
    if file == "-":
        yield sys.stdin.buffer
        return
    from .errors import ClientError

    try:
        source = open(file, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise ClientError(f"cannot read {file}: {error.strerror}") from None
    with source:
        yield source


@click.command()
@click.argument("url", callback=object_url)
@click.argument("file", type=click.Path(path_type=str))
@part_size_options
@transfer_options
def download(
    url: str,
    file: str,
    part_size: int | None,
    min_part_size: int,
    token: str | None,
    headers: dict[str, str],
    retries: int,
    concurrency: int,
    quiet: bool,
) -> None:
    """Download the object URL to FILE in parallel ranges, replacing FILE atomically.

    FILE may be a folder (an existing one, or any path ending in '/'): the
    file is then named after the key's last part. FILE '-' (standard output),
    a FIFO or a device such as /dev/null gets the bytes as one stream, in
    order; its etag is checked after they went out (exit 1 if they were not
    the object's).
    """
    from .progress import progress_for

    target = download_target(url, file)
    client = make_client(token, headers, retries, concurrency)
    if target is None:
        _download_stream(client, url, file, part_size, min_part_size, quiet)
        return
    with reporting(quiet):
        try:
            result = client.download(
                url,
                target,
                part_size=part_size,
                min_part_size=min_part_size,
                progress=progress_for(f"download {target.name}", quiet=quiet),
            )
        except KeyboardInterrupt:
            exit_interrupted(f"{target} was left as it was")
    _downloaded(url, str(target), result)


def _download_stream(
    client: Client,
    url: str,
    file: str,
    part_size: int | None,
    min_part_size: int,
    quiet: bool,
) -> None:
    """``download URL FILE`` to standard output, a FIFO or a device: every
    line but the bytes goes to stderr."""
    from .progress import progress_for
    from .target import open_stream

    shown = "standard output" if file == "-" else file
    with reporting(quiet, again=STREAM_AGAIN):
        try:
            out = sys.stdout.buffer if file == "-" else open_stream(Path(file))
            try:
                result = client.download_stream(
                    url,
                    out,
                    name=file,
                    part_size=part_size,
                    min_part_size=min_part_size,
                    progress=progress_for(f"download to {shown}", quiet=quiet),
                )
            finally:
                if out is not sys.stdout.buffer:
                    out.close()
        except KeyboardInterrupt:
            exit_interrupted(f"what {shown} got so far is not the whole object")
    _downloaded(url, shown, result, err=True)


def _downloaded(
    url: str, where: str, result: DownloadResult, err: bool = False
) -> None:
    """The last lines of a download: its warning (stderr), then what it got
    (stderr too for a stream: its stdout may be the bytes)."""
    if result.warning:
        click.echo(f"warning: {result.warning}", err=True)
    click.echo(
        f"downloaded {display(url)} to {where}: {result.size} bytes, "
        f'etag "{result.etag}"',
        err=err,
    )


def download_target(url: str, file: str) -> Path | None:
    """The file a download writes: FILE, or FILE/<the key's base name>; None
    when FILE takes a stream (``-``, a FIFO, a device: see .target).

    A usage error (exit 2) when the folder to write in does not exist, or the
    target is no regular file and takes no stream (a folder, a socket, a disk).
    """
    from .target import BadTarget
    from .target import resolve_target
    from .target import streams_to

    try:
        if streams_to(file, Path(file)):
            return None
        path = _download_path(url, file)
        resolve_target(path)
    except BadTarget as error:
        raise click.BadParameter(str(error), param_hint="'FILE'") from None
    return path


def _download_path(url: str, file: str) -> Path:
    path = Path(file)
    if file.endswith(("/", os.sep)) or path.is_dir():
        if not path.is_dir():
            raise click.BadParameter(
                f"the folder {file!r} does not exist", param_hint="'FILE'"
            )
        try:
            return path / base_name(url)
        except BadUrl as error:
            raise click.BadParameter(str(error), param_hint="'FILE'") from None
    if not path.parent.is_dir():
        raise click.BadParameter(
            f"the folder {str(path.parent)!r} does not exist", param_hint="'FILE'"
        )
    return path


@click.command()
@click.argument("url", callback=object_url)
@click.option("--upload-id", required=True, help="The uploadId to discard.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MPUFLASK_STATE_DIR",
    help="Where resume records live (the record of this upload is removed).",
)
@connection_options
def abort(
    url: str,
    upload_id: str,
    state_dir: Path | None,
    token: str | None,
    headers: dict[str, str],
    retries: int,
) -> None:
    """Discard the unfinished upload UPLOAD_ID of the object URL.

    'mpuflask uploads URL' lists the open uploads and their ids.
    """
    client = make_client(token, headers, retries, state_dir=state_dir)
    with reporting(quiet=True):
        client.abort(url, upload_id)
    click.echo(f"aborted upload {upload_id} of {display(url)}")


@click.command()
@click.argument("url", nargs=-1, required=True, callback=object_urls)
@connection_options
def rm(
    url: tuple[str, ...], token: str | None, headers: dict[str, str], retries: int
) -> None:
    """Delete the objects at the URLs (http://host/key ...).

    The server answers the same whether or not an object was there.
    """
    client = make_client(token, headers, retries)
    with reporting(quiet=True):
        for one in url:
            client.delete(one)
            click.echo(f"deleted {display(one)}")
