"""A receiver for mpuflask's webhook: check the signature, drop duplicates.

mpuflask delivers each event at least once, so the same event (same ``id``)
may come again after a crash or a lost answer. This receiver records the ids
it handled in SQLite, in the same transaction as its own work: an event is
handled once, and an event whose handling failed is answered 500 and comes
again later.

Run it::

    WEBHOOK_SECRET=s3cret flask --app examples.webhook_receiver run --port 9000
    MPUFLASK_WEBHOOK_URL=http://127.0.0.1:9000/hooks/mpuflask \\
      MPUFLASK_WEBHOOK_SECRET=s3cret gunicorn wsgi:app
    # then upload something: the receiver prints "object-published <key> <etag>"
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from flask import Flask
from flask import request

from mpuflask.events import SIGNATURE_HEADER
from mpuflask.events import InvalidSignature
from mpuflask.events import verify_webhook


def create_app(secret: str | None = None, database: str = "events.sqlite3") -> Flask:
    app = Flask(__name__)
    secret = secret or os.environ["WEBHOOK_SECRET"]
    db = sqlite3.connect(database, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS handled (id TEXT PRIMARY KEY)")
    lock = threading.Lock()

    @app.post("/hooks/mpuflask")
    def receive() -> tuple[str, int]:
        try:
            event = verify_webhook(
                request.get_data(), request.headers.get(SIGNATURE_HEADER), secret
            )
        except InvalidSignature as error:
            return f"refused: {error}\n", 400
        with lock, db:  # one transaction: handled once, or not at all
            new = db.execute(
                "INSERT OR IGNORE INTO handled (id) VALUES (?)", (event["id"],)
            ).rowcount
            if new:
                handle(event, db)  # raising rolls back: 500, delivered again
        return "", 204

    return app


def handle(event: dict[str, Any], db: sqlite3.Connection) -> None:
    """Your work: record the file, start a scan, tell a user."""
    print(event["type"], event["key"], event.get("etag", ""), flush=True)
