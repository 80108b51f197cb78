"""Events: what happened to objects and uploads, delivered at least once.

Four types (:mod:`.model`): an object published, an upload aborted or
expired, an object deleted. The store records each one durably in the step
that makes it happen (its outbox), and one delivery loop per server hands
it to the event hooks and the built-in webhook (:mod:`.delivery`), again
until they take it. docs/hooks.md has the contract, the webhook's format and
how a receiver checks its signature (:func:`verify_webhook`).
"""

from __future__ import annotations

from .install import deliver_pending as deliver_pending
from .install import start_event_delivery as start_event_delivery
from .model import EVENT_TYPES as EVENT_TYPES
from .model import Event as Event
from .model import ObjectDeleted as ObjectDeleted
from .model import ObjectPublished as ObjectPublished
from .model import UploadAborted as UploadAborted
from .model import UploadExpired as UploadExpired
from .signature import SIGNATURE_HEADER as SIGNATURE_HEADER
from .signature import InvalidSignature as InvalidSignature
from .signature import sign_webhook as sign_webhook
from .signature import verify_webhook as verify_webhook
