"""``Client``: the library's front door, one object holding what transfers share.

Example::

    from mpuflask.client import Client

    client = Client(token="s3cr3t", concurrency=8)
    result = client.upload("video.mp4", "https://mpu.example/videos/cat.mp4")
    client.download("https://mpu.example/videos/cat.mp4", "copy.mp4")
    for item in client.list_objects("https://mpu.example/", prefix="videos/"):
        print(item.key, item.size)
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import requests

from ..rules import DEFAULT_MIN_PART_SIZE
from .actions import NO_SUCH_UPLOAD
from .actions import ObjectApi
from .download import DownloadResult
from .download import download_file
from .download_stream import download_stream
from .errors import ClientError
from .errors import ServerRefused
from .listing import ListedObject
from .listing import ObjectPage
from .listing import OpenUpload
from .listing import object_pages
from .listing import open_uploads
from .progress import Progress
from .retry import RetryPolicy
from .state import StateStore
from .stream import upload_stream
from .transport import DEFAULT_TIMEOUT
from .transport import Transport
from .transport import UrlSigner
from .upload import UploadResult
from .upload import upload_file
from .urls import check_object_url
from .urls import check_url
from .urls import display


class Client:
    """Uploads and downloads through the multipart API of mpuflask (or the Worker).

    ``token``: sent as ``Authorization: Bearer <token>``. ``headers``: sent
    with every request (``{"X-Api-Key": "..."}`` for a header-based auth
    hook). ``url_signer``: ``(method, url) -> url`` for servers that take
    signed URLs instead. A URL that is not ``http(s)://host/...`` raises
    :class:`.urls.BadUrl` before anything is sent.
    ``concurrency``: parts (or ranges) in flight at once; memory use is about
    ``concurrency`` x 256 KiB whatever the part size. ``state_dir``: where
    resume records live (default: see :mod:`mpuflask.client.state`).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        url_signer: UrlSigner | None = None,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        state_dir: Path | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.transport = Transport(
            token=token,
            headers=headers,
            url_signer=url_signer,
            retry=retry,
            timeout=timeout,
            session=session,
            pool_size=concurrency + 2,
        )
        self.state = StateStore(state_dir)

    def upload(
        self,
        path: str | os.PathLike[str],
        url: str,
        *,
        part_size: int | None = None,
        min_part_size: int = DEFAULT_MIN_PART_SIZE,
        resume: bool = True,
        content_type: str | None = None,
        progress: Progress | None = None,
    ) -> UploadResult:
        """Upload a file to the object ``url``, resuming an earlier interrupted run.

        ``part_size``: default the smallest whole MiB >= ``min_part_size`` that
        keeps within 10,000 parts. ``content_type``: default guessed from the
        file name (none sent if unknown). ``resume=False`` neither reads nor
        writes a resume record.
        """
        check_object_url(url)
        if content_type is None:
            content_type = mimetypes.guess_type(os.fspath(path))[0]
        headers = {"Content-Type": content_type} if content_type else None
        return upload_file(
            self.transport,
            path,
            url,
            part_size=part_size,
            min_part_size=min_part_size,
            concurrency=self.concurrency,
            state=self.state if resume else None,
            headers=headers,
            progress=progress,
        )

    def download(
        self,
        url: str,
        path: str | os.PathLike[str],
        *,
        part_size: int | None = None,
        min_part_size: int = DEFAULT_MIN_PART_SIZE,
        progress: Progress | None = None,
    ) -> DownloadResult:
        """Download the object ``url`` to ``path`` (atomically, etag checked).

        ``part_size``/``min_part_size``: as given to the upload, when not the
        defaults, so the multipart etag can be recomputed.
        """
        check_object_url(url)
        return download_file(
            self.transport,
            url,
            path,
            part_size=part_size,
            min_part_size=min_part_size,
            concurrency=self.concurrency,
            progress=progress,
        )

    def download_stream(
        self,
        url: str,
        out: BinaryIO,
        *,
        name: str = "-",
        part_size: int | None = None,
        min_part_size: int = DEFAULT_MIN_PART_SIZE,
        progress: Progress | None = None,
    ) -> DownloadResult:
        """Write the object ``url`` to ``out`` (``sys.stdout.buffer``, a pipe)
        in order, as one GET resumed where a lost connection stopped.

        The etag is checked after the bytes went out: a
        :class:`VerificationFailed` then means they were not the object's.
        ``name`` is what ``out`` is, for the result. See :mod:`.download_stream`.
        """
        check_object_url(url)
        return download_stream(
            self.transport,
            url,
            out,
            name=name,
            part_size=part_size,
            min_part_size=min_part_size,
            progress=progress,
        )

    def upload_stream(
        self,
        stream: BinaryIO,
        url: str,
        *,
        part_size: int | None = None,
        min_part_size: int = DEFAULT_MIN_PART_SIZE,
        content_type: str | None = None,
        progress: Progress | None = None,
    ) -> UploadResult:
        """Upload all a binary stream gives (``sys.stdin.buffer``), size unknown.

        Parts of ``part_size`` (default ``min_part_size``) are read as parts
        finish, at most ``concurrency`` held in memory. Not resumable: on any
        failure the upload is aborted. See :mod:`.stream`.
        """
        check_object_url(url)
        return upload_stream(
            self.transport,
            stream,
            url,
            part_size=part_size,
            min_part_size=min_part_size,
            concurrency=self.concurrency,
            headers={"Content-Type": content_type} if content_type else None,
            progress=progress,
        )

    def abort(self, url: str, upload_id: str) -> None:
        """Discard an unfinished upload (and forget it if a record holds it).

        The server answers mpu-abort with 204 for any id (idempotent, as R2),
        so the upload is looked up first: a mistyped key or id would
        otherwise be "aborted", and the record of the real upload forgotten.
        Raises :class:`ClientError` if no such upload is open at ``url``.
        """
        api = ObjectApi(self.transport, check_object_url(url))
        try:
            api.list_parts(upload_id)
        except ServerRefused as error:
            if error.r2_code == NO_SUCH_UPLOAD:
                raise ClientError(
                    f"no upload {upload_id} is open at {display(url)}: it was "
                    "finished, aborted or expired, or the key or id is mistyped; "
                    "nothing was aborted"
                ) from None
            # A server (or a token) without mpu-listparts: abort unchecked.
        api.abort(upload_id)
        self.state.forget_upload(upload_id)

    def delete(self, url: str) -> None:
        """Delete the object at ``url`` (the server answers 204 whether or not
        it existed)."""
        ObjectApi(self.transport, check_object_url(url)).delete()

    def list_pages(
        self,
        root: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[ObjectPage]:
        """The pages of the object listing of the server at ``root``.

        ``root``: the server's URL (``http://host:8000/``). With a
        ``delimiter`` (``"/"``), keys that go on past it after ``prefix`` are
        folded into each page's ``prefixes``, as folders. ``page_size``: keys
        per request (the server's default if None).
        """
        return object_pages(
            self.transport,
            check_url(root),
            prefix=prefix,
            delimiter=delimiter,
            page_size=page_size,
        )

    def list_objects(
        self, root: str, *, prefix: str = "", page_size: int | None = None
    ) -> Iterator[ListedObject]:
        """Every object whose key starts with ``prefix``, in key order."""
        for page in self.list_pages(root, prefix=prefix, page_size=page_size):
            yield from page.objects

    def list_uploads(
        self, root: str, *, prefix: str = "", page_size: int | None = None
    ) -> Iterator[OpenUpload]:
        """The caller's unfinished uploads whose key starts with ``prefix``."""
        return open_uploads(
            self.transport, check_url(root), prefix=prefix, page_size=page_size
        )
