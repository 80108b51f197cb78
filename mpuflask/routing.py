"""The seed Worker's ``switch (request.method) / switch (action)`` as a table.

Every request comes in through one URL rule that matches any path (a key is
any string, so Werkzeug must neither redirect ``//`` or a trailing slash nor
refuse a leading ``/``). :func:`dispatch` then picks the view from the
``(method, action)`` table that the blueprints fill with ``@bp.action``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

from flask import Blueprint
from flask import current_app
from flask import request
from flask.sansio.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.routing import BaseConverter

from .errors import ApiError
from .errors import InvalidObjectName
from .errors import MethodNotAllowed

ActionView = Callable[[str], ResponseReturnValue]
ViewT = TypeVar("ViewT", bound=ActionView)

#: The methods the Worker's switch knows (HEAD is ours, for ``get``).
KNOWN_METHODS = ("PUT", "POST", "GET", "HEAD", "DELETE")
ALL_METHODS = [*KNOWN_METHODS, "PATCH", "OPTIONS", "TRACE", "CONNECT"]

#: The R2 binding method behind each action, for error texts.
OPERATIONS = {
    "mpu-create": "createMultipartUpload",
    "mpu-uploadpart": "uploadPart",
    "mpu-complete": "completeMultipartUpload",
    "mpu-abort": "abortMultipartUpload",
    "mpu-listparts": "listParts",
    "get": "get",
    "delete": "delete",
    "list": "list",
    "mpu-list": "listMultipartUploads",
}
#: The actions served on ``/`` that list under a ``prefix``: for auth hooks and
#: signed URLs, the key such a request addresses is its prefix.
LISTING_ACTIONS = frozenset({"list", "mpu-list"})


class ActionBlueprint(Blueprint):
    """A blueprint whose views are chosen by ``(method, action)``, not by URL."""

    def action(self, method: str, name: str) -> Callable[[ViewT], ViewT]:
        """Register the decorated view for ``method`` + ``?action=name``."""

        def decorator(view: ViewT) -> ViewT:
            def register(state: BlueprintSetupState) -> None:
                state.app.extensions["mpuflask"].actions[(method, name)] = view

            self.record_once(register)
            return view

        return decorator


class AnyPathConverter(BaseConverter):
    """Matches any path, empty, with ``//``, a trailing ``/`` or a newline included.

    ``.*`` would stop at a line feed: a key with ``%0A`` or ``%0D`` would fall
    through to a 404 page.
    """

    regex = "[\\s\\S]*"
    part_isolating = False


def request_key() -> str:
    """The object key: the request path after its first ``/``, percent-decoded.

    Read from the WSGI environ (already percent-decoded, as latin-1) and decoded
    as UTF-8 strictly: a key that is not UTF-8 is refused, never mangled.
    """
    raw = str(request.environ.get("PATH_INFO", "")).encode("latin-1")
    try:
        path = raw.decode("utf-8")
    except UnicodeDecodeError:
        operation = OPERATIONS.get(request.args.get("action", ""), "get")
        raise InvalidObjectName(operation) from None
    return path[1:] if path.startswith("/") else path


def dispatch(**_: Any) -> ResponseReturnValue:
    """Route by method and ``action``, with the seed Worker's texts and order."""
    action = request.args.get("action")
    if action is None:
        raise ApiError("Missing action type")
    if request.method not in KNOWN_METHODS:
        raise MethodNotAllowed()
    actions: dict[tuple[str, str], ActionView] = current_app.extensions[
        "mpuflask"
    ].actions
    view = actions.get((request.method, action))
    if view is None:
        raise ApiError(f"Unknown action {action} for {request.method}")
    return view(request_key())
