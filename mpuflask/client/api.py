"""``Client``: the library's front door, one object holding what transfers share.

Example::

    from mpuflask.client import Client

    client = Client(token="s3cr3t", concurrency=8)
    result = client.upload("video.mp4", "https://mpu.example/videos/cat.mp4")
    client.download("https://mpu.example/videos/cat.mp4", "copy.mp4")
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

import requests

from ..rules import DEFAULT_MIN_PART_SIZE
from .actions import ObjectApi
from .download import DownloadResult
from .download import download_file
from .progress import Progress
from .retry import RetryPolicy
from .state import StateStore
from .transport import DEFAULT_TIMEOUT
from .transport import Transport
from .transport import UrlSigner
from .upload import UploadResult
from .upload import upload_file


class Client:
    """Uploads and downloads through the multipart API of mpuflask (or the Worker).

    ``token``: sent as ``Authorization: Bearer <token>``. ``url_signer``:
    ``(method, url) -> url`` for servers that take signed URLs instead.
    ``concurrency``: parts (or ranges) in flight at once; memory use is about
    ``concurrency`` x 256 KiB whatever the part size. ``state_dir``: where
    resume records live (default: see :mod:`mpuflask.client.state`).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
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
        return download_file(
            self.transport,
            url,
            path,
            part_size=part_size,
            min_part_size=min_part_size,
            concurrency=self.concurrency,
            progress=progress,
        )

    def abort(self, url: str, upload_id: str) -> None:
        """Discard an unfinished upload (and forget it if a record holds it)."""
        ObjectApi(self.transport, url).abort(upload_id)
        self.state.forget_upload(upload_id)
