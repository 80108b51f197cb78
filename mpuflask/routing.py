"""The seed Worker's ``switch (request.method) / switch (action)`` as URL rules.

The Worker routes on the method and the ``action`` query parameter; Werkzeug
matches a rule on the path alone. So the action takes part in matching this
way: :class:`ActionMap` matches every request on an *internal* path, its
action followed by its raw path, ``/<action><path>``, and every
:class:`ActionRule` is written with its action in front::

    PUT /videos/cat.mp4?action=mpu-uploadpart&uploadId=U&partNumber=3
        is matched as  /mpu-uploadpart/videos/cat.mp4
        by the rule    /mpu-uploadpart/<key:key>  ->  multipart.mpu_uploadpart

``print(app.url_map)`` shows these rules. The request itself is not changed
(``request.path`` is still ``/videos/cat.mp4``). Because Flask picks the view:

* ``request.endpoint`` names the action's view and ``request.blueprint`` its
  blueprint, so ``@bp.before_request``, ``after_request`` and
  ``errorhandler`` run for exactly that blueprint's actions;
* ``url_for("multipart.mpu_uploadpart", key="a/b c", uploadId=U,
  partNumber=3)`` builds the Worker's URL
  ``/a/b%20c?action=mpu-uploadpart&uploadId=U&partNumber=3``
  (:meth:`ActionRule.build` takes the action back out of the path);
* whatever no rule takes (no action: ``/-<path>``; an action no rule
  declares: ``/?<path>``; a declared action with another method; a method the
  Worker does not know) falls through to one catch-all rule whose view,
  :func:`unrouted`, answers the Worker's own texts and statuses.

A key is any string: the raw path after its first ``/``, percent-decoded, with
``//``, a trailing ``/``, a newline or ``static/`` just characters. The map
never merges slashes or redirects, and :class:`KeyConverter` matches anything.
Adding an action is one decorator: ``@bp.action("name", methods=["GET"])`` on
an :class:`ActionBlueprint`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar
from urllib.parse import parse_qsl
from urllib.parse import quote

from flask import Blueprint
from flask import request
from flask.sansio.app import App
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import ImmutableDict
from werkzeug.routing import BaseConverter
from werkzeug.routing import Map
from werkzeug.routing import MapAdapter
from werkzeug.routing import Rule
from werkzeug.routing import RuleFactory
from werkzeug.wrappers import Request

from .errors import ApiError
from .errors import MethodNotAllowed
from .keypath import key_path

ViewT = TypeVar("ViewT", bound=Callable[..., ResponseReturnValue])

#: The methods the Worker's switch knows (HEAD is ours, for ``get``).
KNOWN_METHODS = ("PUT", "POST", "GET", "HEAD", "DELETE")

#: The internal path's first segment when the query has no ``action``...
NO_ACTION = "-"
#: ...and when it names one that no rule declares.
OTHER_ACTION = "?"

#: The catch-all rule's endpoint (app-level: no blueprint's hooks run for it).
UNROUTED = "mpuflask_unrouted"

_ACTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class KeyConverter(BaseConverter):
    """``<key:key>``: any string, empty, with ``//``, ``/`` at either end or a newline.

    ``.*`` would stop at a line feed (a key with ``%0A`` would fall to a 404),
    and Werkzeug's ``path`` converter refuses a leading ``/``.
    """

    regex = r"[\s\S]*"
    part_isolating = False

    def to_url(self, value: Any) -> str:
        """Percent-encode ``value`` so that a server decodes it to the same key."""
        return key_path(str(value))


def path_key(environ: Mapping[str, Any]) -> str:
    """The raw path after its first ``/``, percent-decoded, as the map sees it.

    A WSGI server hands ``PATH_INFO`` over as latin-1 text of the decoded
    bytes; bytes that are not UTF-8 are kept as surrogates, which
    :func:`mpuflask.rules.check_key` refuses (10020), never mangled.
    """
    raw = str(environ.get("PATH_INFO", "")).encode("latin-1")
    path = raw.decode("utf-8", "surrogateescape")
    return path[1:] if path.startswith("/") else path


def query_action(environ: Mapping[str, Any]) -> str | None:
    """The request's ``action`` parameter, read as ``request.args`` reads it."""
    req = environ.get("werkzeug.request")
    if isinstance(req, Request):
        return req.args.get("action")
    query = (
        str(environ.get("QUERY_STRING", "")).encode("latin-1").decode(errors="replace")
    )
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "action":
            return value
    return None


class ActionRule(Rule):
    """A URL rule that also matches on ``?action=``, and builds it back.

    ``ActionRule("/<key:key>", action="get", methods=["GET", "HEAD"])`` is
    the rule ``/get/<key:key>``. Without ``action`` it matches requests that
    have none (``/-/...``): that is what every ordinary Flask route becomes in
    an mpuflask app. An action rule answers only the methods it lists: GET
    does not bring HEAD with it, as Werkzeug's rules otherwise do, since the
    Worker knows HEAD for no action (we add it where it means the object read).
    """

    def __init__(
        self, string: str, *, action: str | None = None, **options: Any
    ) -> None:
        if action is not None and not _ACTION_NAME.fullmatch(action):
            raise ValueError(f"not an action name: {action!r}")
        if not string.startswith("/"):
            raise ValueError(f"urls must start with a leading slash: {string!r}")
        self.action = action
        self.path_rule = string
        methods = options.get("methods")
        head_listed = methods is not None and "HEAD" in {m.upper() for m in methods}
        super().__init__(f"/{self.token}{string}", **options)
        if action is not None and not head_listed and self.methods is not None:
            self.methods.discard("HEAD")

    @property
    def token(self) -> str:
        """The internal path's first segment for this rule."""
        return NO_ACTION if self.action is None else self.action

    def get_empty_kwargs(self) -> Mapping[str, Any]:
        return {
            **super().get_empty_kwargs(),
            "action": self.action,
            "merge_slashes": self.merge_slashes,
        }

    def empty(self) -> ActionRule:
        return type(self)(self.path_rule, **self.get_empty_kwargs())

    def build(
        self, values: Mapping[str, Any], append_unknown: bool = True
    ) -> tuple[str, str] | None:
        """The public URL: the token out of the path, ``action=`` first in the query."""
        if self.action is not None:
            values = {name: v for name, v in values.items() if name != "action"}
        built = super().build(values, append_unknown)
        if built is None:
            return None
        domain, url = built
        path, _, query = url.partition("?")
        path = path.removeprefix(f"/{self.token}") or "/"
        if self.action is not None:
            query = f"action={quote(self.action)}" + (f"&{query}" if query else "")
        return domain, f"{path}?{query}" if query else path


class ActionMap(Map):
    """A URL map that matches each request on ``/<action><raw path>``.

    It never merges slashes and never redirects to add one: a key is any
    string, and a redirect would show the internal path.
    """

    default_converters = ImmutableDict({**Map.default_converters, "key": KeyConverter})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.actions: set[str] = set()
        kwargs["merge_slashes"] = False
        kwargs["strict_slashes"] = False
        super().__init__(*args, **kwargs)

    def add(self, rulefactory: RuleFactory) -> None:
        """Add rules, and learn the actions they declare."""
        for rule in rulefactory.get_rules(self):
            super().add(rule)
            if isinstance(rule, ActionRule) and rule.action is not None:
                self.actions.add(rule.action)

    def internal_path(self, environ: Mapping[str, Any]) -> str:
        """``/<token>/<key>``: the path this map matches a request on."""
        action = query_action(environ)
        if action is None:
            token = NO_ACTION
        elif action in self.actions:
            token = action
        else:
            token = OTHER_ACTION
        return f"/{token}/{path_key(environ)}"

    def bind_to_environ(
        self,
        environ: Any,
        server_name: str | None = None,
        subdomain: str | None = None,
    ) -> MapAdapter:
        adapter = super().bind_to_environ(
            environ, server_name=server_name, subdomain=subdomain
        )
        if isinstance(environ, Request):
            environ = environ.environ
        adapter.path_info = self.internal_path(environ)
        return adapter


def unrouted(**_: Any) -> ResponseReturnValue:
    """The catch-all: the Worker's answers when no action's rule matched.

    In the Worker's order: ``Missing action type`` (no ``action``), 405 with
    ``Allow`` for a method its switch does not know, else ``Unknown action
    <a> for <METHOD>`` (an unknown action, or a known one with another method).
    """
    action = request.args.get("action")
    if action is None:
        raise ApiError("Missing action type")
    if request.method not in KNOWN_METHODS:
        raise MethodNotAllowed()
    raise ApiError(f"Unknown action {action} for {request.method}")


def install_action_routing(app: App) -> None:
    """Give ``app`` an :class:`ActionMap` and :class:`ActionRule`, keeping its rules.

    Idempotent. An app made by :func:`mpuflask.create_app` has no rules yet;
    a user's own app may (Flask's static route, the user's routes), so they
    are re-added as rules without an action: they keep answering requests
    that carry no ``action``. We swap rather than refuse so that
    ``MpuFlask(app)`` works on any Flask app, whatever it registered first.
    The catch-all rule takes every method (``methods=None``), so even an
    unknown method gets the Worker's 405 rather than Werkzeug's.
    """
    if isinstance(app.url_map, ActionMap):
        return
    old = app.url_map
    new = ActionMap(
        default_subdomain=old.default_subdomain,
        redirect_defaults=old.redirect_defaults,
        sort_parameters=old.sort_parameters,
        sort_key=old.sort_key,
        host_matching=old.host_matching,
    )
    new.converters.update(
        (name, converter)
        for name, converter in old.converters.items()
        if name not in new.converters
    )
    for rule in _copies(old.iter_rules()):
        new.add(rule)
    new.add(Rule("/<key:path>", endpoint=UNROUTED, strict_slashes=False))
    app.url_map = new
    # Flask passes a rule's options by keyword, as ActionRule takes them.
    app.url_rule_class = ActionRule  # type: ignore[assignment]
    app.view_functions[UNROUTED] = unrouted


def _copies(rules: Iterable[Rule]) -> Iterable[ActionRule]:
    """Each rule as an action-less :class:`ActionRule` of the same settings."""
    for rule in rules:
        options = dict(rule.get_empty_kwargs())
        options["strict_slashes"] = False
        copy = ActionRule(rule.rule, **options)
        copy.provide_automatic_options = getattr(  # type: ignore[attr-defined]
            rule, "provide_automatic_options", False
        )
        yield copy


class ActionBlueprint(Blueprint):
    """A blueprint whose views are actions: ``@bp.action("get", methods=["GET"])``."""

    def action(
        self,
        name: str,
        *,
        methods: Iterable[str],
        rule: str = "/<key:key>",
        **options: Any,
    ) -> Callable[[ViewT], ViewT]:
        """Route ``?action=name`` with one of ``methods`` on ``rule`` to the view.

        The endpoint is the view's name, as with ``@bp.route``; the view gets
        the key as ``key``. Example::

            @bp.action("mpu-listparts", methods=["GET"])
            def mpu_listparts(key: str) -> Response: ...
        """

        def decorator(view: ViewT) -> ViewT:
            self.add_url_rule(
                rule,
                view_func=view,
                methods=list(methods),
                action=name,
                provide_automatic_options=False,
                **options,
            )
            return view

        return decorator

    def register(self, app: App, options: dict[str, Any]) -> None:
        """Register on ``app``, giving it action routing first if it has none."""
        install_action_routing(app)
        super().register(app, options)
