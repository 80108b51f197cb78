"""Every malformed, empty or unknown setting in the environment stops start-up
with one line naming it, before anything is stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .config_support import IMPORTABLE
from .config_support import refused


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "MPUFLASK_WEB_UI",
            "maybe",
            "MPUFLASK_WEB_UI must be true or false (or 1/0, yes/no, on/off), not 'maybe'",
        ),
        (
            "MPUFLASK_DURABLE",
            "",
            "MPUFLASK_DURABLE is set but empty; unset it or give it a value",
        ),
        (
            "MPUFLASK_AUTH_HOOK",
            "examples.hooks.api_key:require_api_key",
            "unknown setting MPUFLASK_AUTH_HOOK in the environment; did you mean MPUFLASK_AUTH_HOOKS?",
        ),
        (
            "MPUFLASK_SIGNING_KEYS",
            "s3cret",
            "unknown setting MPUFLASK_SIGNING_KEYS in the environment; did you mean MPUFLASK_SIGNING_KEY?",
        ),
        (
            "mpuflask_auth_tokens",
            "t0k",
            "unknown setting mpuflask_auth_tokens in the environment; did you mean MPUFLASK_AUTH_TOKENS?",
        ),
        (
            "MPUFLASK_TOKEN",
            "t0k",
            "unknown setting MPUFLASK_TOKEN in the environment; it is the client's token (mpuflask upload --token): did you mean MPUFLASK_AUTH_TOKENS?",
        ),
        (
            "MPUFLASK_PART_MAX_BYTES",
            "10",
            "unknown setting MPUFLASK_PART_MAX_BYTES in the environment; it was removed: MPUFLASK_MAX_PART_SIZE is the one limit on a part's size",
        ),
        (
            "MPUFLASK_ZZZ",
            "1",
            "unknown setting MPUFLASK_ZZZ in the environment; README.md lists every setting",
        ),
        (
            "MPUFLASK_SIGNING_KEY",
            "",
            "MPUFLASK_SIGNING_KEY is set but empty; unset it or give it a value",
        ),
        (
            "MPUFLASK_AUTH_TOKENS",
            "",
            "MPUFLASK_AUTH_TOKENS is set but empty; unset it or give it a value",
        ),
        (
            "MPUFLASK_AUTH_TOKENS",
            "  ",
            "MPUFLASK_AUTH_TOKENS is set but empty; unset it or give it a value",
        ),
        (
            "MPUFLASK_S3_SECRET_ACCESS_KEY",
            "",
            "MPUFLASK_S3_SECRET_ACCESS_KEY is set but empty; unset it or give it a value",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "",
            "MPUFLASK_AUTH_HOOKS is set but empty; unset it or give it a value",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "nowhere.auth:api_key",
            "MPUFLASK_AUTH_HOOKS cannot import 'nowhere.auth:api_key' (No module named 'nowhere'); "
            + IMPORTABLE,
        ),
        (
            "MPUFLASK_PART_VALIDATORS",
            "tests.config_support:no_hook, tests.nowhere:check",
            "MPUFLASK_PART_VALIDATORS cannot import 'tests.nowhere:check' (No module named 'tests.nowhere'); "
            + IMPORTABLE,
        ),
        (
            "MPUFLASK_COMPLETE_VALIDATORS",
            "tests.config_support:missing",
            "MPUFLASK_COMPLETE_VALIDATORS names 'tests.config_support:missing', but module 'tests.config_support' has no attribute 'missing'",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "tests.config_support:NOT_CALLABLE",
            "MPUFLASK_AUTH_HOOKS names 'tests.config_support:NOT_CALLABLE', which is not callable",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "api_key",
            "MPUFLASK_AUTH_HOOKS has 'api_key', which is not a dotted path like package.module:function",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "tests.config_support:no_hook,",
            "MPUFLASK_AUTH_HOOKS has an empty item (a stray comma?)",
        ),
        (
            "MPUFLASK_MIN_PART_SIZE",
            "1e3",
            "MPUFLASK_MIN_PART_SIZE must be an integer from 1 to 10^15, not '1e3'",
        ),
        (
            "MPUFLASK_MIN_PART_SIZE",
            "\u00b2",
            "MPUFLASK_MIN_PART_SIZE must be an integer from 1 to 10^15, not '\u00b2'",
        ),
        (
            "MPUFLASK_CHUNK_SIZE",
            "0",
            "MPUFLASK_CHUNK_SIZE must be an integer from 1 to 67108864, not '0'",
        ),
        (
            "MPUFLASK_CHUNK_SIZE",
            " 1024",
            "MPUFLASK_CHUNK_SIZE must be an integer from 1 to 67108864, not ' 1024'",
        ),
        (
            "MPUFLASK_UPLOAD_TTL",
            "9" * 5000,
            "MPUFLASK_UPLOAD_TTL must be an integer from 1 to 10^9, not '"
            + "9" * 56
            + "...'",
        ),
        (
            "MPUFLASK_MAX_PARTS",
            "10001",
            "MPUFLASK_MAX_PARTS must be an integer from 0 to 10000, not '10001'",
        ),
        (
            "MPUFLASK_MAX_OPEN_UPLOADS",
            "-1",
            "MPUFLASK_MAX_OPEN_UPLOADS must be an integer from 0 to 10^15, not '-1'",
        ),
        (
            "MPUFLASK_SWEEP_INTERVAL",
            "nan",
            "MPUFLASK_SWEEP_INTERVAL must be 0 or a number of seconds from 0.1 to 10^9 (like 600 or 0.5), not 'nan'",
        ),
        (
            # A sweep every microsecond in every worker: half a core and a
            # megabyte of log lines every 5 s, before.
            "MPUFLASK_SWEEP_INTERVAL",
            "0.000001",
            "MPUFLASK_SWEEP_INTERVAL must be 0 or a number of seconds from 0.1 to 10^9 (like 600 or 0.5), not '0.000001'",
        ),
        (
            "MPUFLASK_STORE",
            "tape",
            "MPUFLASK_STORE must be filesystem or s3, not 'tape'",
        ),
        (
            "MPUFLASK_LOG_FORMAT",
            "xml",
            "MPUFLASK_LOG_FORMAT must be json or text, not 'xml'",
        ),
        (
            "MPUFLASK_S3_STAGE_UPLOADS",
            "maybe",
            "MPUFLASK_S3_STAGE_UPLOADS must be auto, or true or false (or 1/0, yes/no, on/off), not 'maybe'",
        ),
        (
            "MPUFLASK_CORS_ORIGINS",
            "app.example",
            "MPUFLASK_CORS_ORIGINS has 'app.example', which is not an origin like https://app.example (scheme://host[:port], no path) or *",
        ),
        (
            "MPUFLASK_PART_CONTENT_TYPES",
            "image/png,,image/jpeg",
            "MPUFLASK_PART_CONTENT_TYPES has an empty item (a stray comma?)",
        ),
        (
            "MPUFLASK_PART_CONTENT_TYPES",
            "png",
            "MPUFLASK_PART_CONTENT_TYPES has 'png', which is not a media type like"
            " image/png, or image/* for any image",
        ),
        # Found by an operator's hunt: each of these passed the check and then
        # answered 500 on every request, or crashed or hung the worker.
        (
            "MPUFLASK_SEND_TIMEOUT",
            "10000000000",
            "MPUFLASK_SEND_TIMEOUT must be an integer from 0 to 10^9, not '10000000000'",
        ),
        (
            "MPUFLASK_BODY_TIMEOUT",
            "10000000000",
            "MPUFLASK_BODY_TIMEOUT must be an integer from 1 to 10^9, not '10000000000'",
        ),
        (
            "MPUFLASK_UPLOAD_TTL",
            "300000000000",
            "MPUFLASK_UPLOAD_TTL must be an integer from 1 to 10^9, not '300000000000'",
        ),
        (
            "MPUFLASK_MAX_COMPLETE_BODY",
            "1000000000000000",
            "MPUFLASK_MAX_COMPLETE_BODY must be an integer from 1 to 67108864, "
            "not '1000000000000000'",
        ),
        (
            "MPUFLASK_PART_CONTENT_TYPES",
            "image/pn*",
            "MPUFLASK_PART_CONTENT_TYPES has 'image/pn*', which is not a media type"
            " like image/png, or image/* for any image",
        ),
        (
            "MPUFLASK_CORS_ORIGINS",
            "https://*.example.com",
            "MPUFLASK_CORS_ORIGINS has 'https://*.example.com', which is not an"
            " origin like https://app.example (scheme://host[:port], no path) or *",
        ),
        (
            "MPUFLASK_CORS_ORIGINS",
            "https://app.example.com$",
            "MPUFLASK_CORS_ORIGINS has 'https://app.example.com$', which is not an"
            " origin like https://app.example (scheme://host[:port], no path) or *",
        ),
        (
            "MPUFLASK_SIGNING_KEY",
            "ab\udcffcd",
            "MPUFLASK_SIGNING_KEY holds a byte that is not UTF-8 text; write it in UTF-8",
        ),
        (
            "MPUFLASK_WEBHOOK_SECRET",
            "s\udce9cret",
            "MPUFLASK_WEBHOOK_SECRET holds a byte that is not UTF-8 text; write it in"
            " UTF-8",
        ),
        (
            "MPUFLASK_DATA_DIR",
            "/srv/data ",
            "MPUFLASK_DATA_DIR has spaces before or after it, '/srv/data '; remove them",
        ),
    ],
)
def test_bad_environment_stops_start_up_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    assert refused(tmp_path, monkeypatch, {name: value}) == line
