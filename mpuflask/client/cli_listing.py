"""The listing commands: ``mpuflask ls URL`` and ``mpuflask uploads URL``.

The URL's path is the key prefix (``http://host/photos/`` lists keys starting
with ``photos/``); with ``--prefix``, the URL is the server's root as is (a
server behind a proxy under a path). Every page is fetched, one request per
page, and printed as it arrives: one line per object on stdout (``--json``:
one JSON object per line), a count on stderr. A key with a character that
does not print is quoted as a shell reads it (``$'a\\nb'``), so a key cannot
forge lines of the listing, and no two keys print alike.
"""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING

import click

from .cli_options import connection_options
from .cli_options import make_client
from .cli_options import reporting
from .cli_options import server_url
from .urls import BadUrl
from .urls import split_listing_url

if TYPE_CHECKING:
    from .listing import ListedObject
    from .listing import OpenUpload

_PREFIX_OPTION = click.option(
    "--prefix",
    help="List keys starting with PREFIX; URL is then taken as the server's "
    "root as it is (for a server served under a path).",
)
_PAGE_OPTION = click.option(
    "--page-size",
    type=click.IntRange(1),
    help="Entries per request (default: the server's, 1,000 on mpuflask).",
)
_JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line."
)
_QUIET_OPTION = click.option("-q", "--quiet", is_flag=True, help="No count at the end.")


@click.command()
@click.argument("url", callback=server_url)
@_PREFIX_OPTION
@click.option(
    "-d",
    "--delimiter",
    help="Fold keys that go on past DELIMITER (after the prefix) into one "
    "'PRE' line each, as folders; usually '/'.",
)
@_PAGE_OPTION
@_JSON_OPTION
@_QUIET_OPTION
@connection_options
def ls(
    url: str,
    prefix: str | None,
    delimiter: str | None,
    page_size: int | None,
    as_json: bool,
    quiet: bool,
    token: str | None,
    headers: dict[str, str],
    retries: int,
) -> None:
    """List the objects under URL (http://host/[prefix]), every page of them.

    One line each: uploaded time (UTC), size in bytes, key; with
    --delimiter, 'PRE <prefix>' for each folded prefix.
    """
    root, prefix = _listing_url(url, prefix)
    client = make_client(token, headers, retries)
    objects = size = prefixes = 0
    with reporting(quiet=True):
        pages = client.list_pages(
            root, prefix=prefix, delimiter=delimiter, page_size=page_size
        )
        for page in pages:
            for folded in page.prefixes:
                prefixes += 1
                click.echo(
                    json.dumps({"prefix": folded})
                    if as_json
                    else f"{'':20}  {'PRE':>12}  {printable(folded)}"
                )
            for item in page.objects:
                objects, size = objects + 1, size + item.size
                click.echo(_object_json(item) if as_json else _object_line(item))
    if not quiet:
        folded_text = f", {_count(prefixes, 'prefix', 'prefixes')}" if delimiter else ""
        counted = _count(objects, "object", "objects")
        click.echo(f"{counted}, {_count(size, 'byte', 'bytes')}{folded_text}", err=True)


@click.command()
@click.argument("url", callback=server_url)
@_PREFIX_OPTION
@_PAGE_OPTION
@_JSON_OPTION
@_QUIET_OPTION
@connection_options
def uploads(
    url: str,
    prefix: str | None,
    page_size: int | None,
    as_json: bool,
    quiet: bool,
    token: str | None,
    headers: dict[str, str],
    retries: int,
) -> None:
    """List your unfinished uploads under URL (http://host/[prefix]).

    One line each: created, expires (UTC), uploadId, key. Discard one with
    'mpuflask abort http://host/KEY --upload-id ID'; the server also removes
    them once they expire.
    """
    root, prefix = _listing_url(url, prefix)
    client = make_client(token, headers, retries)
    count = 0
    with reporting(quiet=True):
        for upload in client.list_uploads(root, prefix=prefix, page_size=page_size):
            count += 1
            click.echo(_upload_json(upload) if as_json else _upload_line(upload))
    if not quiet:
        click.echo(_count(count, "open upload", "open uploads"), err=True)


def _listing_url(url: str, prefix: str | None) -> tuple[str, str]:
    """``(root, prefix)``; a URL naming no usable prefix is a usage error (2)."""
    try:
        return split_listing_url(url, prefix)
    except BadUrl as error:
        raise click.BadParameter(str(error), param_hint="'URL'") from None


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _object_line(item: ListedObject) -> str:
    return f"{_utc(item.uploaded)}  {item.size:>12}  {printable(item.key)}"


def _object_json(item: ListedObject) -> str:
    return json.dumps(
        {
            "key": item.key,
            "size": item.size,
            "etag": item.etag,
            "uploaded": _utc(item.uploaded),
            "httpMetadata": item.http_metadata,
        }
    )


def _upload_line(upload: OpenUpload) -> str:
    expires = _utc(upload.expires) if upload.expires else "-"
    return (
        f"{_utc(upload.created)}  {expires:20}  {printable(upload.upload_id)}  "
        f"{printable(upload.key)}"
    )


def _upload_json(upload: OpenUpload) -> str:
    return json.dumps(
        {
            "key": upload.key,
            "uploadId": upload.upload_id,
            "created": _utc(upload.created),
            "expires": _utc(upload.expires) if upload.expires else None,
        }
    )


def _utc(moment: datetime) -> str:
    """``2024-05-01T12:00:00Z`` (a time without a zone is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def printable(text: str) -> str:
    """``text`` as is, or quoted as a shell reads it, ``$'a\\nb'``, when a
    character does not print (a newline in a key) or it starts with ``$'``.

    Inside the quotes ``\\`` and ``'`` are escaped too, so no two keys print
    alike (``a\\nb`` with a backslash prints as is) and a key cannot forge
    lines; a quoted key pasted into a shell is the key (GNU ls does the same).
    """
    if text.isprintable() and not text.startswith("$'"):
        return text
    return "$'" + "".join(_escaped(c) for c in text) + "'"


def _escaped(character: str) -> str:
    if character in "\\'":
        return "\\" + character
    if character.isprintable():
        return character
    if "\x80" <= character <= "\xff":  # bash reads $'\xNN' as a raw byte
        return f"\\u{ord(character):04x}"
    return repr(character)[1:-1]
