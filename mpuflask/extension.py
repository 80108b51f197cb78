"""The per-app state mpuflask keeps in ``app.extensions["mpuflask"]``.

It holds the store, the ``(method, action)`` table and the hook lists; there is
no module-level mutable state, so two apps in one process never share hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

from flask import current_app

from .events.model import ABORTED
from .events.model import DELETED
from .events.model import EVENT_TYPES
from .events.model import EXPIRED
from .events.model import PUBLISHED
from .events.moments import AbortedHookT
from .events.moments import DeletedHookT
from .events.moments import EventHooks
from .events.moments import EventHookT
from .events.moments import ExpiredHookT
from .events.moments import PublishedHookT
from .hooks import AuthHook
from .hooks import CompleteValidator
from .hooks import PartValidator
from .observability import Metrics
from .routing import ActionView
from .storage import Bucket


@dataclass
class MpuFlask:
    """The store, the action table and the hooks of one app.

    Example::

        mpu = app.extensions["mpuflask"]

        @mpu.authenticate
        def api_key(req):
            if req.headers.get("X-Api-Key") != "s3cret":
                raise Unauthorized("unknown API key")
            return "the-app"        # the identity: owns the uploads it creates
    """

    bucket: Bucket
    metrics: Metrics
    actions: dict[tuple[str, str], ActionView] = field(default_factory=dict)
    auth_hooks: list[AuthHook] = field(default_factory=list)
    part_validators: list[PartValidator] = field(default_factory=list)
    complete_validators: list[CompleteValidator] = field(default_factory=list)
    #: Hooks called after the fact, from the event outbox (docs/hooks.md).
    event_hooks: EventHooks = field(default_factory=EventHooks)
    #: Refuse requests for which no auth hook returned an identity (401).
    #: Defaults to True as soon as any auth hook is configured.
    auth_required: bool | None = None

    def authenticate(self, hook: AuthHook) -> AuthHook:
        """Register an auth hook: ``(RequestInfo) -> identity | None``.

        Runs before every API request, in registration order, before any byte
        of the body is read. Return an identity to accept (later hooks are
        skipped), None to leave the decision to the next hook, or raise
        :class:`~mpuflask.errors.Unauthorized` / ``Forbidden`` to refuse.
        """
        self.auth_hooks.append(hook)
        return hook

    def validate_part(self, validator: PartValidator) -> PartValidator:
        """Register a part validator: ``(PartInfo) -> StreamCheck | None``.

        Called with the part's headers before its body is read; raise an
        :class:`~mpuflask.errors.ApiError` to refuse. Return an object with
        ``update(chunk)`` and ``finish()`` to see the body as it streams; if
        either raises, the part is discarded and the upload stays usable.
        """
        self.part_validators.append(validator)
        return validator

    def validate_complete(self, validator: CompleteValidator) -> CompleteValidator:
        """Register a completion validator: ``(CompleteInfo) -> None``.

        Runs on mpu-complete once the listed parts are known, before the object
        is published; raising leaves the upload as it was.
        """
        self.complete_validators.append(validator)
        return validator

    # -- events: after the fact, at least once (mpuflask.events) --------------

    def after_publish(self, hook: PublishedHookT) -> PublishedHookT:
        """Register a hook called with each :class:`~mpuflask.events.ObjectPublished`.

        Runs after the object is published, in the server's delivery loop,
        not in the request: it cannot change the client's answer. If it
        raises, it is called again later with the same event (same ``id``);
        make it idempotent. Example::

            @mpu.after_publish
            def index(event):
                db.upsert(event.key, etag=event.etag, size=event.size)
        """
        return self.event_hooks.add((PUBLISHED,), hook)

    def after_abort(self, hook: AbortedHookT) -> AbortedHookT:
        """Register a hook called with each :class:`~mpuflask.events.UploadAborted`."""
        return self.event_hooks.add((ABORTED,), hook)

    def after_expire(self, hook: ExpiredHookT) -> ExpiredHookT:
        """Register a hook called with each :class:`~mpuflask.events.UploadExpired`."""
        return self.event_hooks.add((EXPIRED,), hook)

    def after_delete(self, hook: DeletedHookT) -> DeletedHookT:
        """Register a hook called with each :class:`~mpuflask.events.ObjectDeleted`."""
        return self.event_hooks.add((DELETED,), hook)

    def after_event(self, hook: EventHookT) -> EventHookT:
        """Register a hook called with every event, whatever its type."""
        return self.event_hooks.add(EVENT_TYPES, hook)

    @property
    def requires_identity(self) -> bool:
        """Whether a request no hook vouched for is refused."""
        if self.auth_required is None:
            return bool(self.auth_hooks)
        return self.auth_required


def mpuflask() -> MpuFlask:
    """The extension state of the current app."""
    state: MpuFlask = current_app.extensions["mpuflask"]
    return state


def bucket() -> Bucket:
    """The current app's store."""
    return mpuflask().bucket
