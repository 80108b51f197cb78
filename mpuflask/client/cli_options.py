"""What the client's commands share: options, argument checks, error lines.

Usage errors (a bad size, URL or header) are click's: exit 2 with the
command's usage. Every other failure is one line, ``Error: <what failed>
<where>: <why>; <what to try>``, exit 1. Only click is imported here at
first: ``requests`` (the ``client`` extra) is imported when a command runs.
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

from .headers import BadHeader
from .headers import check_token
from .headers import check_value
from .headers import collect
from .headers import parse_header
from .headers import read_header_file
from .urls import BadUrl
from .urls import check_object_url
from .urls import check_url

if TYPE_CHECKING:
    from .api import Client
    from .errors import ClientError
    from .errors import ServerRefused

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
AUTH_HINT = "give the credentials it expects: --token (or MPUFLASK_TOKEN) or -H"
#: What to try after a failure that may pass, per kind of command.
AGAIN = "run the same command again"
RESUME = "run the same command again (it resumes)"
NO_RESUME = (
    "standard input cannot be resumed: the upload was aborted, run the command "
    "again from the start"
)
#: The same for a FIFO, ``/dev/stdin`` or ``<(cmd)`` given as FILE.
PIPE_NO_RESUME = NO_RESUME.replace("standard input", "a pipe", 1)
#: A download to standard output, a FIFO or a device that failed: its reader
#: has some of the object's bytes, which no run can take back.
STREAM_AGAIN = (
    "what went out is not the whole object: discard it and run the command again"
)
_STREAMS = (NO_RESUME, PIPE_NO_RESUME, STREAM_AGAIN)


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


def parse_headers(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """``-H 'Name: value'`` (repeatable) and ``-H @FILE`` (one header a line)."""
    pairs: list[tuple[str, str]] = []
    try:
        for value in values:
            if value.startswith("@"):
                pairs += read_header_file(Path(value[1:]))
            else:
                pairs.append(parse_header(value))
        return collect(pairs)
    except BadHeader as error:
        raise click.BadParameter(str(error)) from None


def bearer_token(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """``--token`` (or ``MPUFLASK_TOKEN``) if a server could take it, else a
    usage error."""
    try:
        if value is not None:
            check_token(value)
    except BadHeader as error:
        raise click.BadParameter(str(error)) from None
    return value


def content_type_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """``--content-type`` if a header can carry it, else a usage error."""
    try:
        if value is not None:
            check_value("Content-Type", value)
    except BadHeader as error:
        raise click.BadParameter(str(error)) from None
    return value


def object_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An ``http(s)://host/key`` URL, else a usage error."""
    try:
        return check_object_url(value)
    except BadUrl as error:
        raise click.BadParameter(str(error)) from None


def object_urls(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Each an ``http(s)://host/key`` URL, else a usage error."""
    return tuple(object_url(ctx, param, value) for value in values)


def server_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An ``http(s)://host/[prefix]`` URL, else a usage error."""
    try:
        return check_url(value)
    except BadUrl as error:
        raise click.BadParameter(str(error)) from None


def connection_options(function: F) -> F:
    """Options every client command takes: credentials and retries."""
    options = [
        click.option(
            "--token",
            envvar="MPUFLASK_TOKEN",
            callback=bearer_token,
            help="Send 'Authorization: Bearer TOKEN' (env MPUFLASK_TOKEN).",
        ),
        click.option(
            "-H",
            "--header",
            "headers",
            multiple=True,
            metavar="'NAME: VALUE'",
            callback=parse_headers,
            help="Send this header with every request (repeatable), for "
            "example -H 'X-Api-Key: s3cret'. -H @FILE reads one header a "
            "line from FILE, keeping secrets out of ps and shell history.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 100),
            default=5,
            show_default=True,
            help="Retries per request after a connection error, timeout, 408, "
            "429 or 5xx (never after another 4xx).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def transfer_options(function: F) -> F:
    """Options every transfer command takes: parallelism and quiet."""
    options = [
        click.option(
            "-j",
            "--concurrency",
            type=click.IntRange(1, 256),
            default=4,
            show_default=True,
            help="Parts (or ranges) in flight at once.",
        ),
        click.option(
            "-q", "--quiet", is_flag=True, help="No progress, only warnings and errors."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return connection_options(function)


def part_size_options(function: F) -> F:
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


def make_client(
    token: str | None,
    headers: dict[str, str],
    retries: int,
    concurrency: int = 1,
    state_dir: Path | None = None,
) -> Client:
    """A Client, or a clear message if the ``client`` extra is not installed."""
    try:
        from .api import Client
        from .retry import RetryPolicy
    except ModuleNotFoundError as error:
        from .install import missing_dependency

        raise click.ClickException(missing_dependency(error.name)) from None
    if token is not None and any(n.lower() == "authorization" for n in headers):
        raise click.UsageError(
            "give either --token (or MPUFLASK_TOKEN) or an Authorization header "
            "(-H), not both"
        )
    return Client(
        token=token,
        headers=headers,
        concurrency=concurrency,
        retry=RetryPolicy(attempts=retries + 1),
        state_dir=state_dir,
    )


@contextmanager
def reporting(quiet: bool, *, again: str = AGAIN) -> Iterator[None]:
    """Client log lines to stderr; a failure becomes one line, exit 1; Ctrl-C
    exits 130, as documented (commands with more to say catch it first).

    ``again``: what running the command again does (:data:`AGAIN`,
    :data:`RESUME` for an upload of a file, :data:`NO_RESUME` for stdin,
    :data:`PIPE_NO_RESUME` for another pipe).
    """
    from .errors import ClientError

    logger = logging.getLogger("mpuflask.client")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield
    except ClientError as error:
        advice = what_to_try(error, again=again)
        message = f"{error}; {advice}" if advice else str(error)
        raise click.ClickException(message) from None
    except BrokenPipeError:  # standard output closed early (| head)
        _silence_stdout()
        sys.exit(141)  # quietly, with SIGPIPE's status, as other tools
    except OSError as error:  # a local file we cannot read or write
        raise click.ClickException(local_failure(error)) from None
    except KeyboardInterrupt:  # click would say "Aborted!" and exit 1
        exit_interrupted(f"{again} to finish")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: its flush at exit would fail again, loudly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def what_to_try(error: ClientError, *, again: str = AGAIN) -> str | None:
    """The next step for a failure, in the command line's own terms."""
    from .errors import ServerRefused
    from .errors import TransferFailed
    from .errors import VerificationFailed

    if isinstance(error, TransferFailed):
        return {
            "refused": "is the server running, at this host and port?",
            "dns": "check the host name in the URL",
            "connect": "check the URL's host and port, and the network",
            "connect-timeout": "check the host, the port and any firewall",
            "read-timeout": f"the server is slow or stuck; {again}, or with "
            "fewer parts at once (-j)",
            "tls": "check the server's certificate, or use http:// if it has no TLS",
        }.get(error.kind, f"check the network and the server's log; {again}")
    if isinstance(error, ServerRefused):
        advice = _refusal_advice(error, again)
        return advice or (again if again in _STREAMS else None)
    if isinstance(error, VerificationFailed):
        return f"{again}; if it happens again, the network or server changes bytes"
    return again if again in _STREAMS else None


def _refusal_advice(error: ServerRefused, again: str) -> str | None:
    status, action, text = error.status, error.action, error.text
    if status == 401:
        return AUTH_HINT + " 'Name: value'"
    if status == 403:
        return "the credentials given may not do this, or not on this key"
    if status == 400 and text.startswith("Unknown action"):
        return "this server does not have that action (an older mpuflask?)"
    if status == 404 and action == "get":
        return "no object has this key; mpuflask ls lists the keys stored"
    if status == 404:
        return "is this the mpuflask server's URL?"
    if status == 413:
        return "the server refuses requests this big: try a smaller --part-size"
    if status == 429 or status >= 500:
        return f"the server is failing or busy; see its log, or {again} later"
    return None


def local_failure(error: OSError) -> str:
    """An ``OSError`` on a local file, as ``<why>: <file>`` without ``[Errno N]``."""
    why = error.strerror or str(error)
    return f"{why}: {error.filename}" if error.filename else why


def exit_interrupted(hint: str) -> NoReturn:
    """Leave now on Ctrl-C: parts still in flight are abandoned, not awaited.

    ``os._exit`` because Python would otherwise join the transfer threads at
    exit, and a part waiting on a slow server may take minutes to answer.
    """
    click.echo(f"interrupted: {hint}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
