"""Configuration: one declared schema, then ``MPUFLASK_*`` environment, then code.

Every setting is one :class:`Setting` in :data:`SETTINGS`: its name, its type,
its default and one doc line (README.md's table is generated from them). Keys
keep their ``MPUFLASK_`` prefix inside ``app.config`` (Flask's
``from_prefixed_env`` would strip it).

Values are read strictly and the same way from both sources: text (every
environment variable, and strings in the ``create_app`` mapping) by the
setting's type, never as JSON; Python values of the right type (``int``,
``bool``, a list) as they are. Anything else stops start-up with a
:class:`ConfigError` whose text is one line naming the setting: an unknown
``MPUFLASK_*`` name (with the closest real one), a word that is not a boolean,
a set-but-empty value, a token list or hook path that cannot be used.

Why our own code (this schema, the types in setting_types.py and the token
list in tokens.py, ~450 lines without the table) and not pydantic-settings:
for 36 flat settings a dependency buys little, and its defaults are what this
module exists to refuse: list values JSON-decoded from the environment, lax
booleans (``t``, ``y``), unknown names ignored, multi-line error reports.
Here every message is one exact, tested line, a secret is never echoed, and
hook paths are imported in the same pass.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

from . import setting_types as types
from .events.model import EVENT_TYPES
from .rules import DEFAULT_MAX_PART_SIZE
from .rules import DEFAULT_MIN_PART_SIZE
from .rules import MIB
from .setting_hooks import HOOKS
from .tokens import parse_tokens

PREFIX = "MPUFLASK_"
S3_PREFIX = "MPUFLASK_S3_"


class ConfigError(ValueError):
    """A setting that stops start-up; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class Setting:
    """One setting: its type, its default and what it does."""

    name: str
    kind: types.Kind
    default: Any
    doc: str

    @property
    def default_text(self) -> str:
        """The default as an operator would write it ("unset" for none)."""
        if self.default is None or self.default == ():
            return "unset"
        return self.kind.show(self.default)


TOKENS = types.Kind("tokens (docs/hooks.md)", parse_tokens)
_ints = types.integer

SETTINGS: tuple[Setting, ...] = (
    # -- storage --
    Setting("MPUFLASK_STORE", types.choice("filesystem", "s3"), "filesystem",
            "which store: the embedded filesystem one, or s3 (docs/scale-out.md)"),
    Setting("MPUFLASK_DATA_DIR", types.PATH, "./data",
            "where the filesystem store keeps uploads and objects"),
    Setting("MPUFLASK_DURABLE", types.BOOLEAN, True,
            "fsync parts, manifests and directories before answering"),
    Setting("MPUFLASK_MIN_PART_SIZE", _ints(1), DEFAULT_MIN_PART_SIZE,
            "bytes; every part but the last is at least this big (R2: 5 MiB)"),
    Setting("MPUFLASK_MAX_PART_SIZE", _ints(1), DEFAULT_MAX_PART_SIZE,
            "bytes; a larger part is refused (100100), on Content-Length or "
            "as it is read (R2: 5 GiB)"),
    Setting("MPUFLASK_UPLOAD_TTL", _ints(1, types.SECONDS_MAX), 7 * 24 * 3600,
            "seconds; unfinished uploads expire this long after creation "
            "(R2: 7 days)"),
    Setting("MPUFLASK_MAX_OPEN_UPLOADS", _ints(0), 1000,
            "open uploads per identity; 0 = unlimited"),
    Setting("MPUFLASK_CHUNK_SIZE", _ints(1, 64 * MIB), 1 * MIB,
            "bytes read from a request body or a stored file at a time"),
    Setting("MPUFLASK_BODY_TIMEOUT", _ints(1, types.SECONDS_MAX), 60,
            "seconds; a request body whose client sends nothing for this long "
            "is cut off (408)"),
    Setting("MPUFLASK_BODY_MIN_RATE", _ints(0), 4096,
            "bytes/s; a body slower than this over MPUFLASK_BODY_RATE_WINDOW "
            "of waiting is cut off (408); 0 = no floor"),
    Setting("MPUFLASK_BODY_RATE_WINDOW", _ints(1, types.SECONDS_MAX), 60,
            "seconds of waiting for a body over which MPUFLASK_BODY_MIN_RATE "
            "is averaged"),
    Setting("MPUFLASK_SEND_TIMEOUT", _ints(0, types.SECONDS_MAX), 60,
            "seconds each response write (up to MPUFLASK_CHUNK_SIZE) may take "
            "before the connection is closed; 0 = no limit"),
    Setting("MPUFLASK_MAX_COMPLETE_BODY", _ints(1, 64 * MIB), 2 * MIB,
            "bytes; the largest mpu-complete body (10,000 parts need ~700 KB)"),
    Setting("MPUFLASK_SWEEP_ON_START", types.BOOLEAN, True,
            "sweep crash leftovers and expired uploads when the app starts"),
    Setting("MPUFLASK_SWEEP_INTERVAL", types.seconds(0.1, or_zero=True), 600,
            "seconds between sweeps in each gunicorn worker, one at a time; "
            "0 = never"),
    # -- auth (docs/hooks.md) --
    Setting("MPUFLASK_AUTH_TOKENS", TOKENS, (),
            'bearer tokens: `tok1,tok2`, or a JSON list of `{"token", '
            '"identity", "prefix", "actions"}`; unset: no token auth'),
    Setting("MPUFLASK_SIGNING_KEY", types.optional(types.SECRET), None,
            "the secret of signed URLs (`mpuflask sign`); unset: none accepted"),
    Setting("MPUFLASK_AUTH_HOOKS", HOOKS, (),
            "more auth hooks, comma-separated `package.module:function`"),
    Setting("MPUFLASK_AUTH_REQUIRED", types.optional(types.BOOLEAN), None,
            "refuse (401) requests no auth hook vouched for; unset: yes as "
            "soon as any auth is configured"),
    # -- validators (docs/hooks.md) --
    Setting("MPUFLASK_PART_VALIDATORS", HOOKS, (),
            "part validators, comma-separated `package.module:function`"),
    Setting("MPUFLASK_COMPLETE_VALIDATORS", HOOKS, (),
            "completion validators, comma-separated `package.module:function`"),
    Setting("MPUFLASK_PART_CONTENT_TYPES", types.MEDIA_TYPES, (),
            "refuse parts with another Content-Type (415), e.g. "
            "`image/png,image/jpeg`, or `image/*` for any image; unset: any"),
    Setting("MPUFLASK_VERIFY_CHECKSUMS", types.BOOLEAN, True,
            "verify Content-MD5 and x-amz-checksum-sha256 when a part sends them"),
    Setting("MPUFLASK_MAX_OBJECT_SIZE", _ints(0), 0,
            "bytes; refuse a complete whose object would be larger (413); "
            "0 = no limit"),
    Setting("MPUFLASK_MAX_PARTS", _ints(0, 10_000), 0,
            "refuse a complete of more parts; 0 = no limit (R2: 10,000)"),
    # -- events (docs/hooks.md) --
    Setting("MPUFLASK_EVENT_HOOKS", HOOKS, (),
            "event hooks, comma-separated `package.module:function`, each "
            "called with every event, after the fact, at least once"),
    Setting("MPUFLASK_WEBHOOK_URL",
            types.optional(types.url("MPUFLASK_WEBHOOK_SECRET signs every delivery")),
            None,
            "POST every event here as JSON, at least once; unset: no webhook"),
    Setting("MPUFLASK_WEBHOOK_SECRET", types.optional(types.SECRET), None,
            "HMAC-SHA256 key of the webhook's X-Mpuflask-Signature; unset: "
            "events go unsigned (logged at start-up)"),
    Setting("MPUFLASK_WEBHOOK_EVENTS", types.some_of(*EVENT_TYPES), EVENT_TYPES,
            "the event types the webhook gets"),
    Setting("MPUFLASK_WEBHOOK_TIMEOUT", types.seconds(0.1), 10,
            "seconds the webhook waits for the receiver's answer"),
    Setting("MPUFLASK_EVENT_RETRY_MAX", types.seconds(1), 300,
            "seconds; the longest wait between two tries of an event's "
            "delivery (events are never dropped)"),
    # -- browsers --
    Setting("MPUFLASK_WEB_UI", types.BOOLEAN, False,
            "serve the upload page at GET / (docs/browser.md)"),
    Setting("MPUFLASK_CORS_ORIGINS", types.ORIGINS, (),
            "browser origins allowed cross-origin, e.g. `https://a.example,"
            "https://b.example`, or `*`; unset: none"),
    # -- logs (read by gunicorn.conf.py) --
    Setting("MPUFLASK_LOG_FORMAT", types.choice("json", "text"), "json",
            "log lines under gunicorn: one JSON object each, or text for humans"),
    # -- the s3 store (docs/scale-out.md); unset: boto3's usual sources --
    Setting("MPUFLASK_S3_ENDPOINT",
            types.optional(types.url("the keys go in MPUFLASK_S3_ACCESS_KEY_ID and "
                                     "MPUFLASK_S3_SECRET_ACCESS_KEY")),
            None,
            "the engine's URL, e.g. `https://<account>.r2.cloudflarestorage.com`"),
    Setting("MPUFLASK_S3_BUCKET", types.optional(types.TEXT), None,
            "the bucket, required with `MPUFLASK_STORE=s3`; it must exist"),
    Setting("MPUFLASK_S3_REGION", types.optional(types.TEXT), None,
            "signing region: `auto` for R2, the bucket's region for AWS"),
    Setting("MPUFLASK_S3_ACCESS_KEY_ID", types.optional(types.TEXT), None,
            "the engine's access key id"),
    Setting("MPUFLASK_S3_SECRET_ACCESS_KEY", types.optional(types.SECRET), None,
            "the engine's secret access key"),
    Setting("MPUFLASK_S3_ADDRESSING_STYLE", types.choice("auto", "path", "virtual"),
            "auto", "how the bucket goes into the engine's URLs"),
    Setting("MPUFLASK_S3_STATE_PREFIX", types.STATE_PREFIX, ".mpuflask/",
            "upload records live under this prefix; keys there are refused"),
    Setting("MPUFLASK_S3_STAGE_UPLOADS", types.AUTO_OR_BOOLEAN, "auto",
            "parts on a staging key, copied at complete (Ceph needs it); "
            "auto: probe once"),
    Setting("MPUFLASK_S3_SPOOL_DIR", types.optional(types.PATH), None,
            "where chunked part bodies wait before going up; unset: the "
            "temp dir"),
    Setting("MPUFLASK_S3_MAX_CONNECTIONS", _ints(1, 4096), 64,
            "connections to the engine per process (at least gunicorn's threads)"),
    Setting("MPUFLASK_S3_MAX_ATTEMPTS", _ints(1, 100), 3,
            "tries per engine request (botocore's standard retries)"),
    Setting("MPUFLASK_S3_ORPHAN_GRACE", types.seconds(0), 900,
            "seconds before the sweep takes an upload without a record, or a "
            "staging object nobody references, for a crash leftover"),
    Setting("MPUFLASK_S3_COMPLETE_LEASE", types.seconds(0), 30,
            "seconds a complete holds its claim on an upload before another "
            "request may take over and finish it (renewed while it works)"),
)  # fmt: skip

BY_NAME = {setting.name: setting for setting in SETTINGS}

#: Read by the project's other programs (the client, an example, the test
#: suite), not by the server: its environment may hold them.
READ_ELSEWHERE = ("MPUFLASK_STATE_DIR", "MPUFLASK_URL", "MPUFLASK_BIG_BROWSER_TEST")
READ_ELSEWHERE_PREFIX = "MPUFLASK_TEST_"

#: Names refused with a hint rather than a guess.
HINTS = {
    "MPUFLASK_TOKEN": "it is the client's token (mpuflask upload --token): "
    "did you mean MPUFLASK_AUTH_TOKENS?",
    "MPUFLASK_PART_MAX_BYTES": "it was removed: MPUFLASK_MAX_PART_SIZE is the "
    "one limit on a part's size",
}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    source: str = "the create_app mapping",
) -> dict[str, Any]:
    """Every setting's value: defaults, then ``environ``, then ``overrides``.

    ``environ`` defaults to ``os.environ``; keys of ``overrides`` that are not
    ``MPUFLASK_*`` (Flask's own, ``TESTING``) are left out. Hook paths are
    imported here. Raises :class:`ConfigError` at the first problem.
    """
    environ = os.environ if environ is None else environ
    given = [(name, environ[name], "the environment") for name in sorted(environ)]
    for name, value in (overrides or {}).items():
        given.append((name, value, source))
    ours = [item for item in given if _is_ours(item[0], item[2])]
    for name, _, source in ours:
        if name not in BY_NAME:
            raise ConfigError(f"unknown setting {name} in {source}; {_hint(name)}")
    values = {setting.name: setting.default for setting in SETTINGS}
    for name, value, _ in ours:
        try:
            values[name] = BY_NAME[name].kind.parse(value)
        except ValueError as error:
            raise ConfigError(f"{name} {error}") from None
    _check_together(values, {name for name, _, _ in ours})
    return values


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config`` from the schema, the environment and ``overrides``."""
    values = load_settings(overrides)
    app.config.update(
        (key, value)
        for key, value in (overrides or {}).items()
        if not _is_ours(key, "the create_app mapping")
    )
    app.config.update(values)


def load_app_config(app: Flask) -> None:
    """Fill ``app.config`` for ``MpuFlask(app)``, unless :func:`load_config` did.

    A user's own app may already hold some ``MPUFLASK_*`` values: they are
    read as the ``create_app`` mapping is, over the environment and defaults.
    """
    if all(setting.name in app.config for setting in SETTINGS):
        return
    given = {key: value for key, value in app.config.items() if _is_ours(key, "")}
    app.config.update(load_settings(given, source="app.config"))


def auth_configured(settings: Mapping[str, Any]) -> bool:
    """Whether the settings turn on any auth (gunicorn warns when none is)."""
    return bool(
        settings["MPUFLASK_AUTH_TOKENS"]
        or settings["MPUFLASK_SIGNING_KEY"]
        or settings["MPUFLASK_AUTH_HOOKS"]
    )


def settings_table() -> str:
    """README.md's table of every setting (tests/test_config.py checks it)."""
    lines = ["| setting | type | default | meaning |", "| --- | --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.default_text
        default = default if default == "unset" else f"`{default}`"
        lines.append(
            f"| `{setting.name}` | {setting.kind.description} | {default} "
            f"| {setting.doc} |"
        )
    return "\n".join(lines) + "\n"


def _is_ours(name: Any, source: str) -> bool:
    """Whether ``name`` is for the server to read (case-blind: a typo too)."""
    if not isinstance(name, str) or not name.upper().startswith(PREFIX):
        return False
    if source == "the environment" and (
        name in READ_ELSEWHERE or name.startswith(READ_ELSEWHERE_PREFIX)
    ):
        return False
    return True


def _hint(name: str) -> str:
    """The closest setting to a misspelt ``name`` (difflib), or where to look."""
    if name in HINTS:
        return HINTS[name]
    wanted = name.upper().removeprefix(PREFIX)
    suffixes = [setting.name.removeprefix(PREFIX) for setting in SETTINGS]
    close = difflib.get_close_matches(wanted, suffixes, n=1, cutoff=0.6)
    if close:
        return f"did you mean {PREFIX}{close[0]}?"
    return "README.md lists every setting"


def _check_together(values: Mapping[str, Any], given: set[str]) -> None:
    """Rules between settings (``given``: the names an operator set)."""
    smallest = values["MPUFLASK_MIN_PART_SIZE"]
    largest = values["MPUFLASK_MAX_PART_SIZE"]
    if smallest > largest:
        raise ConfigError(
            f"MPUFLASK_MIN_PART_SIZE ({smallest}) is larger than "
            f"MPUFLASK_MAX_PART_SIZE ({largest})"
        )
    s3_given = sorted(name for name in given if name.startswith(S3_PREFIX))
    if values["MPUFLASK_STORE"] != "s3" and s3_given:
        # Each machine would keep its own local store, believing it shared.
        raise ConfigError(
            f"{s3_given[0]} is set but MPUFLASK_STORE is "
            f"{values['MPUFLASK_STORE']}; set MPUFLASK_STORE=s3 to use the s3 "
            "store, or unset the MPUFLASK_S3_* settings"
        )
    webhook_given = sorted(
        name
        for name in given
        if name.startswith("MPUFLASK_WEBHOOK_") and name != "MPUFLASK_WEBHOOK_URL"
    )
    if webhook_given and values["MPUFLASK_WEBHOOK_URL"] is None:
        # A webhook's secret, events or timeout would do nothing, silently.
        raise ConfigError(
            f"{webhook_given[0]} is set but MPUFLASK_WEBHOOK_URL is not: set the "
            "URL to deliver events to, or unset the MPUFLASK_WEBHOOK_* settings"
        )
    if values["MPUFLASK_STORE"] == "s3" and values["MPUFLASK_S3_BUCKET"] is None:
        raise ConfigError("MPUFLASK_STORE=s3 needs MPUFLASK_S3_BUCKET (a bucket name)")
    key_id = values["MPUFLASK_S3_ACCESS_KEY_ID"] is not None
    if key_id != (values["MPUFLASK_S3_SECRET_ACCESS_KEY"] is not None):
        raise ConfigError(
            "MPUFLASK_S3_ACCESS_KEY_ID and MPUFLASK_S3_SECRET_ACCESS_KEY go "
            "together: set both, or neither (boto3's usual sources)"
        )
