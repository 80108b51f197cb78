"""mpuflask.client: upload and download big files through the multipart API.

Parallel, streamed, resumable, retried and verified transfers, against
mpuflask or the original Worker, and listings of what a server holds. Start
with :class:`Client`; the command line is ``mpuflask upload|download|abort|
ls|uploads|rm`` (docs/client.md).

The client needs ``requests`` (the ``client`` extra); a server install does
not have it, so names are imported on first use and a missing dependency is
reported then, with the command that installs it here (:mod:`.install`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from .api import Client as Client
    from .download import DownloadResult as DownloadResult
    from .errors import Cancelled as Cancelled
    from .errors import ClientError as ClientError
    from .errors import ServerRefused as ServerRefused
    from .errors import SourceChanged as SourceChanged
    from .errors import TransferFailed as TransferFailed
    from .errors import VerificationFailed as VerificationFailed
    from .listing import BadListing as BadListing
    from .listing import ListedObject as ListedObject
    from .listing import ObjectPage as ObjectPage
    from .listing import OpenUpload as OpenUpload
    from .parts import PartPlan as PartPlan
    from .parts import choose_part_size as choose_part_size
    from .progress import LineProgress as LineProgress
    from .progress import NoProgress as NoProgress
    from .progress import Progress as Progress
    from .retry import RetryPolicy as RetryPolicy
    from .transport import UrlSigner as UrlSigner
    from .upload import UploadResult as UploadResult
    from .urls import BadUrl as BadUrl

#: public name -> the module of this package that defines it
_EXPORTS = {
    "Client": "api",
    "DownloadResult": "download",
    "Cancelled": "errors",
    "ClientError": "errors",
    "ServerRefused": "errors",
    "SourceChanged": "errors",
    "TransferFailed": "errors",
    "VerificationFailed": "errors",
    "BadListing": "listing",
    "ListedObject": "listing",
    "ObjectPage": "listing",
    "OpenUpload": "listing",
    "PartPlan": "parts",
    "choose_part_size": "parts",
    "LineProgress": "progress",
    "NoProgress": "progress",
    "Progress": "progress",
    "RetryPolicy": "retry",
    "UrlSigner": "transport",
    "UploadResult": "upload",
    "BadUrl": "urls",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562), so importing the package is free."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as error:
        if error.name in {"requests", "urllib3"}:
            from .install import missing_dependency

            raise ImportError(missing_dependency(error.name)) from error
        raise
    return getattr(module, name)
