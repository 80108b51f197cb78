"""Each action is a real endpoint of its blueprint (mpuflask/routing.py).

Flask picks the view from ``?action=``: ``request.endpoint`` names it,
``url_for`` builds the Worker's URL, and the Worker's own answers stay exact
for everything no action's rule takes (tests/test_routing.py has the texts).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask import request
from flask import url_for

from mpuflask import MpuFlask
from mpuflask.actions import ACTIONS
from mpuflask.actions import SERVICE_ACTIONS
from mpuflask.routing import ActionBlueprint
from mpuflask.routing import ActionRule

from .conftest import Flow
from .oracle import md5

#: Every action's endpoint, its blueprint, its methods, and its parameters.
ENDPOINTS = {
    "mpu-create": ("multipart.mpu_create", {"POST"}),
    "mpu-complete": ("multipart.mpu_complete", {"POST"}),
    "mpu-uploadpart": ("multipart.mpu_uploadpart", {"PUT"}),
    "get": ("objects.get", {"GET", "HEAD"}),
    "mpu-abort": ("multipart.mpu_abort", {"DELETE"}),
    "delete": ("objects.delete", {"DELETE"}),
    "mpu-listparts": ("multipart.mpu_listparts", {"GET"}),
    "health": ("service.health", {"GET", "HEAD"}),
    "metrics": ("service.metrics", {"GET", "HEAD"}),
}

#: Keys whose URLs are easy to get wrong: each must come back the same key.
KEYS = [
    "a/b c",
    "/lead",
    "//two",
    "trail/",
    "a//b",
    ".",
    "..",
    "a/../b",
    "x\ny",
    "café/ü",
    "static/app.css",
    "q?a=1&action=delete#frag",
    "100%",
    "+plus",
]


def test_the_app_routes_exactly_the_listed_actions(app: Flask) -> None:
    routed = {
        rule.action: (rule.endpoint, rule.methods)
        for rule in app.url_map.iter_rules()
        if isinstance(rule, ActionRule) and rule.action is not None
    }
    assert set(routed) == {*ACTIONS, *SERVICE_ACTIONS}
    assert routed == {action: ENDPOINTS[action] for action in routed}


@pytest.mark.parametrize("action", ACTIONS)
def test_request_endpoint_and_blueprint_name_the_action(
    app: Flask, action: str
) -> None:
    endpoint, methods = ENDPOINTS[action]
    for method in methods:
        with app.test_request_context(f"/k?action={action}", method=method):
            assert request.endpoint == endpoint
            assert request.blueprint == endpoint.partition(".")[0]
            assert request.view_args == {"key": "k"}


@pytest.mark.parametrize(
    ("url", "method"),
    [
        ("/k", "GET"),  # no action
        ("/k?action=junk", "GET"),  # an action nobody declares
        ("/k?action=mpu-create", "PUT"),  # a declared action, another method
        ("/k?action=mpu-listparts", "HEAD"),  # HEAD is only the object read's
        ("/k?action=get", "PATCH"),  # a method the Worker does not know
        ("/k?action=health", "GET"),  # a service action away from /
    ],
)
def test_the_rest_reaches_no_blueprint(app: Flask, url: str, method: str) -> None:
    with app.test_request_context(url, method=method):
        assert request.url_rule is not None
        assert request.endpoint == "mpuflask_unrouted"
        assert request.blueprint is None


@pytest.mark.parametrize("method", ["FOO", "M-SEARCH", "PROPFIND"])
def test_unknown_methods_get_the_workers_405(client: Any, method: str) -> None:
    response = client.open("/k?action=get", method=method)
    assert (response.status_code, response.text) == (405, "Method Not Allowed")
    assert response.headers["Allow"] == "PUT, POST, GET, DELETE"


def test_url_for_builds_the_workers_urls(app: Flask) -> None:
    with app.test_request_context():
        built = {
            "mpu-create": url_for("multipart.mpu_create", key="a/b c"),
            "mpu-uploadpart": url_for(
                "multipart.mpu_uploadpart", key="a/b c", uploadId="U", partNumber=3
            ),
            "mpu-complete": url_for(
                "multipart.mpu_complete", key="a/b c", uploadId="U"
            ),
            "mpu-abort": url_for("multipart.mpu_abort", key="a/b c", uploadId="U"),
            "mpu-listparts": url_for(
                "multipart.mpu_listparts", key="a/b c", uploadId="U"
            ),
            "get": url_for("objects.get", key="a/b c"),
            "delete": url_for("objects.delete", key="a/b c"),
            "health": url_for("service.health"),
            "metrics": url_for("service.metrics"),
        }
        external = url_for("objects.get", key="x", _external=True)
    assert built == {
        "mpu-create": "/a/b%20c?action=mpu-create",
        "mpu-uploadpart": "/a/b%20c?action=mpu-uploadpart&uploadId=U&partNumber=3",
        "mpu-complete": "/a/b%20c?action=mpu-complete&uploadId=U",
        "mpu-abort": "/a/b%20c?action=mpu-abort&uploadId=U",
        "mpu-listparts": "/a/b%20c?action=mpu-listparts&uploadId=U",
        "get": "/a/b%20c?action=get",
        "delete": "/a/b%20c?action=delete",
        "health": "/?action=health",
        "metrics": "/?action=metrics",
    }
    assert external == "http://localhost/x?action=get"


def _url(app: Flask, endpoint: str, **values: Any) -> str:
    with app.test_request_context():
        return url_for(endpoint, **values)


@pytest.mark.parametrize("key", KEYS)
def test_every_built_url_leads_back_to_its_key(
    app: Flask, flow: Flow, key: str
) -> None:
    """A whole upload through URLs from url_for: the key survives the trip."""
    client = flow.client
    created = client.post(_url(app, "multipart.mpu_create", key=key))
    assert created.status_code == 200, created.text
    assert created.json["key"] == key
    upload_id = created.json["uploadId"]
    part_url = _url(
        app, "multipart.mpu_uploadpart", key=key, uploadId=upload_id, partNumber=1
    )
    put = client.put(part_url, data=b"bytes")
    assert put.json == {"partNumber": 1, "etag": md5(b"bytes")}
    listed = client.get(
        _url(app, "multipart.mpu_listparts", key=key, uploadId=upload_id)
    )
    assert listed.json["key"] == key
    done = client.post(
        _url(app, "multipart.mpu_complete", key=key, uploadId=upload_id),
        json={"parts": [put.json]},
    )
    assert done.status_code == 200, done.text
    got = client.get(_url(app, "objects.get", key=key))
    assert (got.status_code, got.data) == (200, b"bytes")
    assert client.delete(_url(app, "objects.delete", key=key)).status_code == 204
    assert client.get(_url(app, "objects.get", key=key)).status_code == 404
    other = client.post(_url(app, "multipart.mpu_create", key=key)).json
    aborted = client.delete(
        _url(app, "multipart.mpu_abort", key=key, uploadId=other["uploadId"])
    )
    assert aborted.status_code == 204


def test_a_chunked_part_streams_through_its_endpoint(flow: Flow) -> None:
    upload_id = flow.create()
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        input_stream=io.BytesIO(b"chunked bytes"),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.json == {"partNumber": 1, "etag": md5(b"chunked bytes")}


# -- the hook home: MpuFlask ---------------------------------------------------------


def test_hooks_cannot_be_added_once_the_app_has_served(app: Flask) -> None:
    mpu = app.extensions["mpuflask"]
    assert mpu.authenticate(lambda req: None) is not None  # before: fine
    app.test_client().get("/?action=health")
    for register in (mpu.authenticate, mpu.validate_part, mpu.validate_complete):
        with pytest.raises(AssertionError, match="already handled its first request"):
            register(lambda info: None)


def test_one_mpuflask_per_app(app: Flask, base_config: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="already set up on this app"):
        MpuFlask(app)
    mpu = app.extensions["mpuflask"]
    other = Flask("other")
    other.config.update(base_config)
    with pytest.raises(RuntimeError, match="serves another app"):
        mpu.init_app(other)


def test_hooks_added_before_init_app_run_after_the_configured_ones(
    base_config: dict[str, Any], flow_for: Callable[[Flask], Flow]
) -> None:
    app = Flask("mine", static_folder=None)
    app.config.update(base_config, MPUFLASK_AUTH_TOKENS="t-1")
    mpu = MpuFlask()
    seen: list[str | None] = []

    @mpu.authenticate
    def anyone(req: Any) -> str:
        seen.append(req.headers.get("Authorization"))
        return "anyone"

    mpu.init_app(app)
    assert mpu.auth_hooks[-1] is anyone
    flow = flow_for(app)
    created = flow.client.post("/k?action=mpu-create", headers={"X-No": "token"})
    assert created.status_code == 200
    assert seen == [None]  # the token hook abstained, ours vouched
    refused = flow.client.post(
        "/k?action=mpu-create", headers={"Authorization": "Bearer wrong"}
    )
    assert refused.status_code == 401


# -- MpuFlask on a Flask app of one's own --------------------------------------------


@pytest.fixture
def flow_for() -> Callable[[Flask], Flow]:
    return lambda app: Flow(app.test_client())


def test_init_app_on_an_app_with_its_own_routes(
    tmp_path: Any, base_config: dict[str, Any], flow_for: Callable[[Flask], Flow]
) -> None:
    """Its routes keep answering requests without an action; keys stay keys."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.css").write_text("body {}")
    app = Flask("mine", static_folder=str(static))

    @app.route("/hello")
    def hello() -> str:
        return f"hello from {request.endpoint}"

    app.config.update(base_config)
    MpuFlask(app)
    flow = flow_for(app)
    client = flow.client
    assert client.get("/hello").text == "hello from hello"
    with client.get("/static/app.css") as served:
        assert served.text == "body {}"
    # With an action, the same paths are keys.
    flow.upload([b"a key under static/"], key="static/app.css")
    assert flow.get("static/app.css").data == b"a key under static/"
    assert flow.get("hello").status_code == 404
    # The Worker's answers for the rest.
    assert (client.post("/hello").status_code, client.post("/hello").text) == (
        400,
        "Missing action type",
    )
    assert client.get("/hello?action=junk").text == "Unknown action junk for GET"
    assert _url(app, "hello") == "/hello"
    assert _url(app, "static", filename="app.css") == "/static/app.css"
    assert _url(app, "objects.get", key="hello") == "/hello?action=get"


def test_blueprints_registered_first_keep_their_prefix(
    base_config: dict[str, Any], flow_for: Callable[[Flask], Flow]
) -> None:
    from mpuflask.blueprints import multipart
    from mpuflask.blueprints import objects

    app = Flask("mine", static_folder=None)
    app.config.update(base_config)
    app.register_blueprint(multipart.bp, url_prefix="/files")
    app.register_blueprint(objects.bp, url_prefix="/files")
    MpuFlask(app)
    flow = flow_for(app)
    flow.upload([b"prefixed"], key="files/k")
    assert _url(app, "objects.get", key="k") == "/files/k?action=get"
    assert flow.client.get("/files/k?action=get").data == b"prefixed"
    # Outside the prefix, no action's rule matches.
    assert flow.client.get("/k?action=get").text == "Unknown action get for GET"


def test_an_action_of_ones_own_is_one_decorator(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        MPUFLASK_AUTH_TOKENS='[{"token": "t-all"}, {"token": "t-get", "actions": ["get"]}]'
    )
    thumbs = ActionBlueprint("thumbs", __name__)

    @thumbs.action("thumbnail", methods=["GET"])
    def thumbnail(key: str) -> str:
        return f"a thumbnail of {key} for {request.endpoint}"

    app.register_blueprint(thumbs)
    client = app.test_client()
    url = _url(app, "thumbs.thumbnail", key="cat.png")
    assert url == "/cat.png?action=thumbnail"
    allowed = client.get(url, headers={"Authorization": "Bearer t-all"})
    assert allowed.text == "a thumbnail of cat.png for thumbs.thumbnail"
    assert client.get(url).status_code == 401
    limited = client.get(url, headers={"Authorization": "Bearer t-get"})
    assert (limited.status_code, limited.text) == (
        403,
        "Forbidden: this token may not use action thumbnail",
    )
    other = client.post(url, headers={"Authorization": "Bearer t-all"})
    assert other.text == "Unknown action thumbnail for POST"


def test_auth_runs_app_wide_but_for_public_endpoints(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(MPUFLASK_AUTH_TOKENS="t-1", MPUFLASK_WEB_UI=True)

    @app.route("/hello")
    def hello() -> str:
        return "hello"

    @app.route("/open")
    def open_to_all() -> str:
        return "open"

    app.extensions["mpuflask"].public_endpoints.add("open_to_all")
    client = app.test_client()
    assert client.get("/hello").status_code == 401
    assert client.get("/k").status_code == 401  # before "Missing action type"
    assert client.get("/open").text == "open"
    assert client.get("/?action=health").status_code == 200
    assert client.get("/").status_code == 200  # the upload page
    preflight = client.options(
        "/k?action=mpu-create", headers={"Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
