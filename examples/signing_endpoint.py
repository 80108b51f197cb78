"""A signing endpoint for the upload page's "Signed URLs from an endpoint" mode.

The page (mpuflask's own, at ``/``) never holds a credential in this mode. For
each request it is about to make it asks this endpoint::

    POST /sign   {"method": "PUT", "key": "alice/cat.mp4", "action": "mpu-uploadpart",
                  "uploadId": "...", "partNumber": 3}
    -> 200       {"url": "http://127.0.0.1:8000/alice/cat.mp4?action=mpu-uploadpart&...&X-Mpu-Signature=..."}

The endpoint decides *who* asks from its own session (a login form and a
signed session cookie here; your application's login in real life), decides
*whether* that user may make this request (here: only keys under
``<user>/``, only the page's actions), and signs a URL for exactly that
request with the secret mpuflask shares with it (``MPUFLASK_SIGNING_KEY``),
naming the user as the URL's identity: mpuflask then records the user as the
upload's owner, and only that user's URLs can continue it.

Run it beside mpuflask (docs/browser.md)::

    export MPUFLASK_SIGNING_KEY=$(openssl rand -hex 32)
    MPUFLASK_WEB_UI=true gunicorn wsgi:app      # the page: http://127.0.0.1:8000/
    MPUFLASK_URL=http://127.0.0.1:8000/ SIGNING_USERS='{"alice": "wonderland"}' \\
    SIGNING_SESSION_SECRET=$(openssl rand -hex 32) \\
        flask --app examples.signing_endpoint run --port 5001
    # log in at http://127.0.0.1:5001/login: it sends you to the page, set up.

The page is at another origin (another port here), so this app answers CORS
for that one origin, with credentials (its session cookie goes along). The
cookie is ``SameSite=Lax``: browsers send it to a fetch from the same *site*
(127.0.0.1 on another port; ``up.example.com`` from ``app.example.com``).
Across sites, serve this endpoint under the page's site (or behind the same
proxy), or use ``SameSite=None; Secure`` over HTTPS.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from mpuflask.signing import sign_url

#: What the page may ask to be signed: each action with its one method.
#: (No "delete": in this example users upload and read, they never delete.)
ALLOWED = {
    ("POST", "mpu-create"),
    ("PUT", "mpu-uploadpart"),
    ("GET", "mpu-listparts"),
    ("POST", "mpu-complete"),
    ("DELETE", "mpu-abort"),
    ("GET", "get"),
    ("HEAD", "get"),
}
#: The actions that name an upload, and the one that names a part.
NEEDS_UPLOAD_ID = {"mpu-uploadpart", "mpu-listparts", "mpu-complete", "mpu-abort"}

LOGIN_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in to upload</title></head>
<body><main><h1>Log in to upload</h1>{error}
<form method="post" action="/login">
<p><label for="user">User</label>
<input id="user" name="user" autocomplete="username"></p>
<p><label for="password">Password</label>
<input id="password" name="password" type="password"
 autocomplete="current-password"></p>
<p><button type="submit">Log in</button></p>
</form></main></body></html>
"""


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The endpoint; settings from ``config``, else from the environment.

    ``MPUFLASK_URL``: the mpuflask server as the browser reaches it (signed
    URLs point there, and its origin is the one allowed by CORS);
    ``MPUFLASK_SIGNING_KEY``: the secret shared with it; ``SIGNING_USERS``:
    JSON ``{"user": "password"}``; ``SIGNING_SESSION_SECRET``: signs the
    session cookie (random if unset: sessions then end with the process);
    ``SIGNING_EXPIRES_IN``: seconds a signed URL stays valid (900).
    """
    settings = dict(config if config is not None else os.environ)
    app = Flask(__name__)
    mpuflask_url = settings["MPUFLASK_URL"]
    app.config.update(
        MPUFLASK_URL=mpuflask_url,
        PAGE_ORIGIN="{0.scheme}://{0.netloc}".format(urlsplit(mpuflask_url)),
        SIGNING_KEY=settings["MPUFLASK_SIGNING_KEY"],
        USERS=json.loads(settings.get("SIGNING_USERS") or "{}"),
        EXPIRES_IN=int(settings.get("SIGNING_EXPIRES_IN") or 900),
        SECRET_KEY=settings.get("SIGNING_SESSION_SECRET") or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if not app.config["SIGNING_KEY"]:
        raise ValueError("MPUFLASK_SIGNING_KEY must be set (the server's secret)")

    @app.get("/login")
    def login_form() -> str:
        return LOGIN_FORM.format(error="")

    @app.post("/login")
    def login() -> ResponseReturnValue:
        user = request.form.get("user", "")
        password = request.form.get("password", "")
        known = current_app.config["USERS"].get(user)
        # Compare in constant time; an unknown user compares against a dummy.
        ok = hmac.compare_digest(
            (known or secrets.token_hex(16)).encode(), password.encode()
        )
        if known is None or not ok:
            return LOGIN_FORM.format(
                error="<p role='alert'>Wrong user or password.</p>"
            ), 401
        session.clear()
        session["user"] = user
        # To the upload page, with this endpoint filled in (the page reads #signer=).
        sign_at = url_for("sign", _external=True)
        return redirect(f"{current_app.config['MPUFLASK_URL']}#signer={quote(sign_at)}")

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return Response(status=204)

    @app.route("/sign", methods=["POST", "OPTIONS"])
    def sign() -> Response | tuple[Response, int]:
        if request.method == "OPTIONS":  # the CORS preflight; see after_request
            return Response(status=204)
        # 1. Who asks: our own session, never anything the request claims.
        user = session.get("user")
        if not user:
            return jsonify(error="log in first"), 401
        # 2. What is asked: a JSON body (a cross-origin form cannot send one
        #    without the CORS preflight this app grants only to the page).
        if not request.is_json:
            return jsonify(error="expected a JSON body"), 415
        asked = request.get_json(silent=True)
        if not isinstance(asked, dict):
            return jsonify(error="expected a JSON object"), 400
        method = asked.get("method")
        key = asked.get("key")
        action = asked.get("action")
        upload_id = asked.get("uploadId")
        part_number = asked.get("partNumber")
        if not isinstance(method, str) or not isinstance(action, str):
            return jsonify(error="method and action are required"), 400
        if (method, action) not in ALLOWED:
            return jsonify(error=f"{method} {action} is not allowed here"), 403
        if not isinstance(key, str) or not key:
            return jsonify(error="key is required"), 400
        # 3. Whether this user may: only keys under "<user>/".
        if not key.startswith(f"{user}/"):
            return jsonify(error=f"{user} may only use keys under '{user}/'"), 403
        if action in NEEDS_UPLOAD_ID:
            if not isinstance(upload_id, str) or not upload_id:
                return jsonify(error=f"{action} needs an uploadId"), 400
        else:
            upload_id = None
        if action == "mpu-uploadpart":
            # type() is int: JSON's true is a Python int too (isinstance).
            if type(part_number) is not int or not 1 <= part_number <= 10_000:
                return jsonify(error="partNumber must be an integer 1..10000"), 400
        else:
            part_number = None
        # 4. Sign exactly this request, for this user, for a short while. The
        #    signature binds every field whatever characters the key holds
        #    (docs/security.md), so checking the key's prefix is enough.
        url = sign_url(
            current_app.config["MPUFLASK_URL"],
            key,
            method=method,
            action=action,
            upload_id=upload_id,
            part_number=part_number,
            identity=user,
            secret=current_app.config["SIGNING_KEY"],
            expires_in=current_app.config["EXPIRES_IN"],
        )
        return jsonify(url=url)

    @app.after_request
    def cors(response: Response) -> Response:
        """Let the page's origin (only) call /sign with its cookie."""
        origin = request.headers.get("Origin")
        if request.path == "/sign" and origin == current_app.config["PAGE_ORIGIN"]:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        response.headers.add("Vary", "Origin")
        return response

    return app


if __name__ == "__main__":  # python -m examples.signing_endpoint (port 5001)
    create_app().run(host="127.0.0.1", port=5001)
