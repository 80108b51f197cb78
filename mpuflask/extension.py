"""mpuflask as a Flask extension, and the one home of its hooks.

``MpuFlask(app)`` (or ``mpu = MpuFlask()`` then ``mpu.init_app(app)``) makes
a Flask app the Worker's API: it reads the settings, opens the store, gives
the app action routing (:mod:`mpuflask.routing`), registers the blueprints and
the app-wide before-request hooks, and keeps itself in
``app.extensions["mpuflask"]``.

It is also where hooks live: each moment's ordered list, the decorators that
add to it (refused once the app has served a request, as Flask's own setup
methods are), the built-in and configured hooks loaded from the settings, and
the code that runs them. One ``MpuFlask`` per app, and nothing module-level,
so two apps in one process never share hooks.

Before a view runs, Flask calls, in this order (app-wide hooks first, then
those of the view's blueprint):

1. ``observability`` starts the request's id and timer;
2. :func:`mpuflask.cors.answer_preflight` answers a CORS preflight (204);
3. :meth:`MpuFlask.authenticate_request` runs the auth hooks;
4. on the multipart blueprint, ``check_part_headers`` refuses a part on its
   headers (mpu-uploadpart only), running the part validators' header stage;
5. the view: one store call; ``errors.py`` renders whatever it raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from flask import Flask
from flask import g
from flask import request

from .afterwards import install_after_answer
from .auth import bearer_tokens
from .auth import signed_urls
from .blueprints.listing import bp as listing_bp
from .blueprints.multipart import bp as multipart_bp
from .blueprints.objects import bp as objects_bp
from .blueprints.service import bp as service_bp
from .config import load_app_config
from .cors import answer_preflight
from .cors import install_cors
from .current import AppMpu
from .current import current_identity
from .current import current_request_info
from .deadlines import install_deadlines
from .environheaders import content_length
from .errors import Unauthorized
from .errors import register_error_handlers
from .events.install import install_events
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
from .hooks import AuthHookT
from .hooks import CompleteInfo
from .hooks import CompleteValidator
from .hooks import CompleteValidatorT
from .hooks import PartInfo
from .hooks import PartValidator
from .hooks import PartValidatorT
from .hooks import StreamCheck
from .hooks import refusals_counted_as
from .hooks import request_info
from .observability import Metrics
from .observability import install_observability
from .observability import make_metrics
from .routing import install_action_routing
from .sendfile import SendfileMiddleware
from .startup import open_store
from .startup import sweep_at_start
from .storage import Bucket
from .storage import PublishCheck
from .storage import UploadedPart
from .sweeper import gc_command
from .validators import allowed_content_types
from .validators import checksum_sha256
from .validators import content_md5
from .validators import max_object_size
from .validators import max_parts
from .validators import only_unsent_checksums
from .webui import bp as webui_bp


class MpuFlask:
    """The Worker's API on a Flask app, with its store and its hooks.

    Example::

        app = create_app()                  # or: MpuFlask(my_app)
        mpu = app.extensions["mpuflask"]

        @mpu.authenticate
        def api_key(req):
            if req.headers.get("X-Api-Key") != "s3cret":
                raise Unauthorized("unknown API key")
            return "the-app"        # the identity: owns the uploads it creates
    """

    bucket: Bucket
    metrics: Metrics

    def __init__(self, app: Flask | None = None) -> None:
        self.app: Flask | None = None
        self.auth_hooks: list[AuthHook] = []
        self.part_validators: list[PartValidator] = []
        self.complete_validators: list[CompleteValidator] = []
        #: Hooks called after the fact, from the event outbox (docs/hooks.md);
        #: run by the delivery loop (mpuflask/events/), loaded by install_events.
        self.event_hooks = EventHooks()
        #: Refuse requests for which no auth hook returned an identity (401).
        #: None: yes as soon as any auth hook is registered.
        self.auth_required: bool | None = None
        #: Endpoints served without running the auth hooks.
        self.public_endpoints = {"service.health", "service.metrics", "webui.page"}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set up the API on ``app``: settings, store, routing, blueprints, hooks.

        The ``MPUFLASK_*`` settings already in ``app.config`` are read over
        the environment and the defaults (README.md lists them); the routes
        the app already has keep answering requests without an ``action``.
        """
        if "mpuflask" in app.extensions:
            raise RuntimeError("mpuflask is already set up on this app")
        if self.app is not None:
            raise RuntimeError("this MpuFlask serves another app: make one per app")
        load_app_config(app)
        self.app = app
        self.bucket = open_store(app.config)
        self.metrics = make_metrics(self.bucket)
        install_after_answer(app, self.bucket)
        self._load_hooks(app.config)
        install_events(app, self)
        if app.config["MPUFLASK_SWEEP_ON_START"]:
            # After install_events: the expiries it finds are events.
            sweep_at_start(self.bucket, app.config)
        app.extensions["mpuflask"] = self
        install_action_routing(app)
        install_observability(app, self.metrics)
        app.before_request(answer_preflight)
        app.before_request(self.authenticate_request)
        for blueprint in (multipart_bp, objects_bp, listing_bp, service_bp):
            # The user may have registered one already (with a url_prefix, say).
            if app.blueprints.get(blueprint.name) is not blueprint:
                app.register_blueprint(blueprint)
        if app.config["MPUFLASK_WEB_UI"]:
            app.register_blueprint(webui_bp)
        # Inside the deadlines' middleware, which looks for gunicorn's own
        # start_response (its force_close).
        app.wsgi_app = SendfileMiddleware(app.wsgi_app)  # type: ignore[method-assign]
        ours = [bp.name for bp in (multipart_bp, objects_bp, listing_bp, service_bp)]
        install_deadlines(app, frozenset(ours))
        register_error_handlers(app, frozenset(ours))
        install_cors(app)
        app.cli.add_command(gc_command)

    # -- registering hooks -------------------------------------------------------

    def authenticate(self, hook: AuthHookT) -> AuthHookT:
        """Register an auth hook: ``(RequestInfo) -> identity | None``.

        Runs before every API request, in registration order, before any byte
        of the body is read. Return an identity to accept (later hooks are
        skipped), None to leave the decision to the next hook, or raise
        :class:`~mpuflask.errors.Unauthorized` / ``Forbidden`` to refuse.
        """
        self._check_setup_finished("authenticate")
        self.auth_hooks.append(hook)
        return hook

    def validate_part(self, validator: PartValidatorT) -> PartValidatorT:
        """Register a part validator: ``(PartInfo) -> StreamCheck | None``.

        Called with the part's headers before its body is read; raise an
        :class:`~mpuflask.errors.ApiError` to refuse. Return an object with
        ``update(chunk)`` and ``finish()`` to see the body as it streams; if
        either raises, the part is discarded and the upload stays usable.
        """
        self._check_setup_finished("validate_part")
        self.part_validators.append(validator)
        return validator

    def validate_complete(self, validator: CompleteValidatorT) -> CompleteValidatorT:
        """Register a completion validator: ``(CompleteInfo) -> None``.

        Runs on mpu-complete once the listed parts are known, before the object
        is published; raising leaves the upload as it was.
        """
        self._check_setup_finished("validate_complete")
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
        self._check_setup_finished("after_publish")
        return self.event_hooks.add((PUBLISHED,), hook)

    def after_abort(self, hook: AbortedHookT) -> AbortedHookT:
        """Register a hook called with each :class:`~mpuflask.events.UploadAborted`."""
        self._check_setup_finished("after_abort")
        return self.event_hooks.add((ABORTED,), hook)

    def after_expire(self, hook: ExpiredHookT) -> ExpiredHookT:
        """Register a hook called with each :class:`~mpuflask.events.UploadExpired`."""
        self._check_setup_finished("after_expire")
        return self.event_hooks.add((EXPIRED,), hook)

    def after_delete(self, hook: DeletedHookT) -> DeletedHookT:
        """Register a hook called with each :class:`~mpuflask.events.ObjectDeleted`."""
        self._check_setup_finished("after_delete")
        return self.event_hooks.add((DELETED,), hook)

    def after_event(self, hook: EventHookT) -> EventHookT:
        """Register a hook called with every event, whatever its type."""
        self._check_setup_finished("after_event")
        return self.event_hooks.add(EVENT_TYPES, hook)

    def _check_setup_finished(self, name: str) -> None:
        """Refuse a hook once the app has served a request, as Flask does.

        Worker threads already serve with the lists as they are; a late
        change would apply to some requests and not others.
        """
        if self.app is not None and self.app._got_first_request:
            raise AssertionError(
                f"The setup method '{name}' can no longer be called on mpuflask."
                " The app has already handled its first request; register hooks"
                " before it serves (in the app factory, or by configuration)."
            )

    def _load_hooks(self, config: Mapping[str, Any]) -> None:
        """Put the hooks the settings name ahead of any added in code.

        Auth: bearer tokens, signed URLs, then ``MPUFLASK_AUTH_HOOKS``. Part
        validators: content types, checksums, then
        ``MPUFLASK_PART_VALIDATORS``. Completion validators: object size,
        part count, then ``MPUFLASK_COMPLETE_VALIDATORS``. config.py has
        already parsed the tokens and imported the dotted names.
        """
        auth: list[AuthHook] = []
        if config["MPUFLASK_AUTH_TOKENS"]:
            auth.append(bearer_tokens(list(config["MPUFLASK_AUTH_TOKENS"])))
        if config["MPUFLASK_SIGNING_KEY"]:
            auth.append(signed_urls(str(config["MPUFLASK_SIGNING_KEY"])))
        auth.extend(config["MPUFLASK_AUTH_HOOKS"])
        parts: list[PartValidator] = []
        types = config["MPUFLASK_PART_CONTENT_TYPES"]
        if types:
            listed = types.split(",") if isinstance(types, str) else list(types)
            parts.append(allowed_content_types(listed))
        if config["MPUFLASK_VERIFY_CHECKSUMS"]:
            parts.extend([content_md5, checksum_sha256])
        parts.extend(config["MPUFLASK_PART_VALIDATORS"])
        completes: list[CompleteValidator] = []
        if config["MPUFLASK_MAX_OBJECT_SIZE"]:
            completes.append(max_object_size(int(config["MPUFLASK_MAX_OBJECT_SIZE"])))
        if config["MPUFLASK_MAX_PARTS"]:
            completes.append(max_parts(int(config["MPUFLASK_MAX_PARTS"])))
        completes.extend(config["MPUFLASK_COMPLETE_VALIDATORS"])
        self.auth_hooks[:0] = auth
        self.part_validators[:0] = parts
        self.complete_validators[:0] = completes
        if config["MPUFLASK_AUTH_REQUIRED"] is not None:
            self.auth_required = bool(config["MPUFLASK_AUTH_REQUIRED"])

    # -- running hooks -----------------------------------------------------------

    @property
    def requires_identity(self) -> bool:
        """Whether a request no hook vouched for is refused."""
        if self.auth_required is None:
            return bool(self.auth_hooks)
        return self.auth_required

    def authenticate_request(self) -> None:
        """App-wide before-request hook: run the auth hooks; the first identity wins.

        Runs before any view and before any byte of a body is read; keeps the
        identity as ``g.mpuflask_identity`` (:func:`~mpuflask.current.current_identity`)
        and the request as the hooks saw it as ``g.mpuflask_request``.
        """
        if request.endpoint in self.public_endpoints:
            return
        identity = None
        if not self.auth_hooks and not self.requires_identity:
            # Nothing below would run or refuse (the default: no auth).
            g.mpuflask_identity = identity
            return
        with refusals_counted_as("authenticate"):
            if self.auth_hooks:
                # Made only for hooks to see: without them nobody may ask
                # (current_request_info makes it then).
                req = request_info()
                g.mpuflask_request = req
                for hook in self.auth_hooks:
                    identity = hook(req)
                    if identity is not None:
                        break
            if identity is None and self.requires_identity:
                raise Unauthorized(
                    "Unauthorized: send 'Authorization: Bearer <token>'"
                    " or use a signed URL"
                )
        g.mpuflask_identity = identity

    def part_checks(self, upload_id: str, part_number: int) -> list[StreamCheck]:
        """Run the part validators on this part's headers; return their stream
        checks. The :class:`~mpuflask.hooks.PartInfo` they see is made only if
        one will look at it: every part upload passes here."""
        if not self.part_validators or only_unsent_checksums(
            self.part_validators, request.environ
        ):
            return []
        part = PartInfo(
            request=current_request_info(),
            identity=current_identity(),
            upload_id=upload_id,
            part_number=part_number,
            content_length=content_length(request.environ),
            # request.content_type, which looks the header up twice.
            content_type=request.environ.get("CONTENT_TYPE"),
        )
        with refusals_counted_as("validate_part"):
            return [
                check
                for validator in self.part_validators
                if (check := validator(part)) is not None
            ]

    def publish_check(self, upload_id: str) -> PublishCheck | None:
        """The completion validators, as the check the store runs (None: none).

        The store calls it inside its critical section with exactly the parts
        it is about to publish, so a racing part upload cannot slip by.
        """
        if not self.complete_validators:
            return None
        validators = list(self.complete_validators)
        req, identity = current_request_info(), current_identity()

        def check(parts: Sequence[UploadedPart]) -> None:
            done = CompleteInfo(req, identity, upload_id, tuple(parts))
            with refusals_counted_as("validate_complete"):
                for validator in validators:
                    validator(done)

        return check


def _promise(mpu: MpuFlask) -> AppMpu:
    """Unused at run time: mypy checks here that MpuFlask is what views expect."""
    return mpu
