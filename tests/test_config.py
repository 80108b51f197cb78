"""Configuration: one declared schema, read the same from the environment and code.

Every bad setting stops ``create_app`` with a :class:`ConfigError` whose text
is the one line an operator sees, before anything is stored. Secrets and
token lists are text, never JSON-decoded; booleans take one set of words;
unknown names are refused with the closest valid one.
"""

from __future__ import annotations

import io
import re
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from mpuflask import create_app
from mpuflask.auth import Token
from mpuflask.config import READ_ELSEWHERE
from mpuflask.config import READ_ELSEWHERE_PREFIX
from mpuflask.config import SETTINGS
from mpuflask.config import ConfigError
from mpuflask.config import load_settings
from mpuflask.config import settings_table
from mpuflask.signing import sign_command

from .conftest import MIN_PART
from .conftest import Flow

ROOT = Path(__file__).resolve().parent.parent

ANONYMOUS_401 = "Unauthorized: send 'Authorization: Bearer <token>' or use a signed URL"
IMPORTABLE = (
    "the module must be importable from the server's working directory or installed"
)

#: What a test that sets MPUFLASK_S3_* needs beside (they are refused alone).
S3_STORE = {"MPUFLASK_STORE": "s3", "MPUFLASK_S3_BUCKET": "b"}

#: Values a JSON decoder turns into something else than the text.
JSONISH = ["0", "null", "false", "1e3", "true", "12345"]


def no_hook(req: Any) -> None:
    """An auth hook that abstains: importable by dotted path in these tests."""
    return None


NOT_CALLABLE = 42


def refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str] | None = None,
    **mapping: Any,
) -> str:
    """The one line ``create_app`` refuses these settings with (nothing stored)."""
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    with pytest.raises(ConfigError) as raised:
        create_app({"MPUFLASK_DATA_DIR": str(data_dir), **mapping})
    assert not data_dir.exists()
    message = str(raised.value)
    assert "\n" not in message
    return message


# -- the findings of issue 10 -------------------------------------------------


@pytest.mark.parametrize("secret", [*JSONISH, '"quoted"', " spaced "])
def test_signing_key_is_the_text_mpuflask_sign_uses(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("MPUFLASK_SIGNING_KEY", secret)
    app = make_app()
    assert app.config["MPUFLASK_SIGNING_KEY"] == secret
    client = app.test_client()
    anonymous = client.post("/k?action=mpu-create")
    assert (anonymous.status_code, anonymous.text) == (401, ANONYMOUS_401)
    result = CliRunner(env={"MPUFLASK_SIGNING_KEY": secret}).invoke(
        sign_command,
        ["http://localhost/k", "--method", "POST", "--action", "mpu-create"],
    )
    assert result.exit_code == 0, result.output
    signed = client.post(result.output.strip().removeprefix("http://localhost"))
    assert signed.status_code == 200, signed.text


@pytest.mark.parametrize("token", JSONISH)
def test_token_list_is_text(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("MPUFLASK_AUTH_TOKENS", token)
    client = make_app().test_client()
    anonymous = client.post("/k?action=mpu-create")
    assert (anonymous.status_code, anonymous.text) == (401, ANONYMOUS_401)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.post("/k?action=mpu-create", headers=bearer).status_code == 200


@pytest.mark.parametrize("value", ["no", "off", "False", "0", "NO", "Off", "false"])
def test_web_ui_off_words_keep_the_page_off(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MPUFLASK_WEB_UI", value)
    app = make_app()
    assert app.config["MPUFLASK_WEB_UI"] is False
    response = app.test_client().get("/")
    assert (response.status_code, response.text) == (400, "Missing action type")


@pytest.mark.parametrize("value", ["yes", "on", "True", "1", "TRUE", "On"])
def test_web_ui_on_words_turn_the_page_on(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MPUFLASK_WEB_UI", value)
    app = make_app()
    assert app.config["MPUFLASK_WEB_UI"] is True
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"


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
            "tests.test_config:no_hook, tests.nowhere:check",
            "MPUFLASK_PART_VALIDATORS cannot import 'tests.nowhere:check' (No module named 'tests.nowhere'); "
            + IMPORTABLE,
        ),
        (
            "MPUFLASK_COMPLETE_VALIDATORS",
            "tests.test_config:missing",
            "MPUFLASK_COMPLETE_VALIDATORS names 'tests.test_config:missing', but module 'tests.test_config' has no attribute 'missing'",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "tests.test_config:NOT_CALLABLE",
            "MPUFLASK_AUTH_HOOKS names 'tests.test_config:NOT_CALLABLE', which is not callable",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "api_key",
            "MPUFLASK_AUTH_HOOKS has 'api_key', which is not a dotted path like package.module:function",
        ),
        (
            "MPUFLASK_AUTH_HOOKS",
            "tests.test_config:no_hook,",
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


@pytest.mark.parametrize(
    ("value", "line"),
    [
        (
            "12345,",
            "MPUFLASK_AUTH_TOKENS entry 2 is empty (a stray comma?)",
        ),
        (
            "good, bad token",
            "MPUFLASK_AUTH_TOKENS entry 2 has a token with characters a bearer token cannot carry (RFC 6750: letters, digits and - . _ ~ + /, then = padding)",
        ),
        (
            '{"token": "x"}',
            "MPUFLASK_AUTH_TOKENS entry 1 has a token with characters a bearer token cannot carry (RFC 6750: letters, digits and - . _ ~ + /, then = padding)",
        ),
        (
            "tok, tok",
            "MPUFLASK_AUTH_TOKENS entries 1 and 2 have the same token",
        ),
        (
            '[{"token": "a", }]',
            "MPUFLASK_AUTH_TOKENS is not a valid JSON list of tokens (Expecting property name enclosed in double quotes at line 1 column 17)",
        ),
        (
            "[" * 100_000,
            "MPUFLASK_AUTH_TOKENS is not a valid JSON list of tokens (nested too deeply)",
        ),
        (
            "[]",
            "MPUFLASK_AUTH_TOKENS is set but empty; unset it or give it a value",
        ),
        (
            "[12345]",
            'MPUFLASK_AUTH_TOKENS entry 1 must be an object like {"token": "..."} or a string, not a number',
        ),
        (
            '[{"token": 12345}]',
            "MPUFLASK_AUTH_TOKENS entry 1 has a token that is a number, not a string",
        ),
        (
            '[{"identity": "alice"}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has no "token"',
        ),
        (
            '[{"token": ""}]',
            "MPUFLASK_AUTH_TOKENS entry 1 has an empty token",
        ),
        (
            '[{"token": "a", "prefx": "alice/"}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has an unknown field "prefx" (did you mean "prefix"?)',
        ),
        (
            '[{"token": "a", "identity": ""}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has an "identity" that is not a non-empty string',
        ),
        (
            '[{"token": "a", "prefix": null}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has a "prefix" that is not a string',
        ),
        (
            '[{"token": "a", "actions": "get"}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has "actions" that are not a list of action names',
        ),
        (
            '[{"token": "a", "actions": []}]',
            'MPUFLASK_AUTH_TOKENS entry 1 has an empty "actions" list (leave it out to allow every action)',
        ),
        (
            '[{"token": "a", "actions": ["get", "gett"]}]',
            "MPUFLASK_AUTH_TOKENS entry 1 has an unknown action 'gett' (known: delete, get, list, mpu-abort, mpu-complete, mpu-create, mpu-list, mpu-listparts, mpu-uploadpart)",
        ),
    ],
)
def test_bad_token_list_names_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, line: str
) -> None:
    message = refused(tmp_path, monkeypatch, {"MPUFLASK_AUTH_TOKENS": value})
    assert message == line


def test_a_refused_secret_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = refused(tmp_path, monkeypatch, MPUFLASK_SIGNING_KEY=12345)
    assert message == "MPUFLASK_SIGNING_KEY must be text, not a value of type int"
    message = refused(tmp_path, monkeypatch, MPUFLASK_AUTH_TOKENS="s3cret, s3 cret")
    assert "s3" not in message


@pytest.mark.parametrize(
    ("mapping", "line"),
    [
        (
            {"MPUFLASK_AUTH_TOKEN": "t0k"},
            "unknown setting MPUFLASK_AUTH_TOKEN in the create_app mapping; did you mean MPUFLASK_AUTH_TOKENS?",
        ),
        (
            {"MPUFLASK_SIGNING_KYE": "k"},
            "unknown setting MPUFLASK_SIGNING_KYE in the create_app mapping; did you mean MPUFLASK_SIGNING_KEY?",
        ),
        (
            {"MPUFLASK_WEB_UI": 1},
            "MPUFLASK_WEB_UI must be true or false (or 1/0, yes/no, on/off), not 1",
        ),
        (
            {"MPUFLASK_WEB_UI": None},
            "MPUFLASK_WEB_UI must be true or false (or 1/0, yes/no, on/off), not None",
        ),
        (
            {"MPUFLASK_MIN_PART_SIZE": True},
            "MPUFLASK_MIN_PART_SIZE must be an integer from 1 to 10^15, not True",
        ),
        (
            {"MPUFLASK_MIN_PART_SIZE": 1024.0},
            "MPUFLASK_MIN_PART_SIZE must be an integer from 1 to 10^15, not 1024.0",
        ),
        (
            {"MPUFLASK_S3_SECRET_ACCESS_KEY": 123},
            "MPUFLASK_S3_SECRET_ACCESS_KEY must be text, not a value of type int",
        ),
        (
            {"MPUFLASK_AUTH_TOKENS": [{"token": "a", "identity": 7}]},
            'MPUFLASK_AUTH_TOKENS entry 1 has an "identity" that is not a non-empty string',
        ),
        (
            {"MPUFLASK_AUTH_TOKENS": 12345},
            "MPUFLASK_AUTH_TOKENS must be text or a list of tokens, not a value of type int",
        ),
        (
            {"MPUFLASK_AUTH_HOOKS": ["tests.test_config:no_hook", 42]},
            "MPUFLASK_AUTH_HOOKS has 42, which is neither a dotted path nor a callable",
        ),
        (
            {"MPUFLASK_MIN_PART_SIZE": 2048, "MPUFLASK_MAX_PART_SIZE": "1024"},
            "MPUFLASK_MIN_PART_SIZE (2048) is larger than MPUFLASK_MAX_PART_SIZE (1024)",
        ),
        (
            {"MPUFLASK_STORE": "s3"},
            "MPUFLASK_STORE=s3 needs MPUFLASK_S3_BUCKET (a bucket name)",
        ),
        (
            {"MPUFLASK_S3_STATE_PREFIX": "state"},
            "MPUFLASK_S3_STATE_PREFIX must end in / and be at most 256 characters, not 'state'",
        ),
        (
            {"MPUFLASK_S3_ADDRESSING_STYLE": "dns"},
            "MPUFLASK_S3_ADDRESSING_STYLE must be auto, path or virtual, not 'dns'",
        ),
        (
            # Only from code (no environment variable holds a NUL): a bare
            # ValueError from the store, before.
            {"MPUFLASK_DATA_DIR": "/srv/a\x00b"},
            "MPUFLASK_DATA_DIR holds a NUL character, which no path can hold",
        ),
    ],
)
def test_bad_mapping_stops_start_up_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapping: dict[str, Any], line: str
) -> None:
    assert refused(tmp_path, monkeypatch, **mapping) == line


def test_an_environment_error_is_found_even_when_code_sets_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = refused(
        tmp_path, monkeypatch, {"MPUFLASK_DURABLE": "ja"}, MPUFLASK_DURABLE=True
    )
    assert line.startswith("MPUFLASK_DURABLE must be true or false")


# -- what is accepted ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [(word, True) for word in ("true", "TRUE", "1", "yes", "Yes", "on", "ON")]
    + [(word, False) for word in ("false", "False", "0", "no", "NO", "off", "Off")],
)
def test_booleans_take_one_set_of_words(text: str, value: bool) -> None:
    for name in ("MPUFLASK_DURABLE", "MPUFLASK_WEB_UI", "MPUFLASK_VERIFY_CHECKSUMS"):
        assert load_settings(environ={name: text})[name] is value
    stage = load_settings(environ={**S3_STORE, "MPUFLASK_S3_STAGE_UPLOADS": text})
    assert stage["MPUFLASK_S3_STAGE_UPLOADS"] is value
    required = load_settings(environ={"MPUFLASK_AUTH_REQUIRED": text})
    assert required["MPUFLASK_AUTH_REQUIRED"] is value


def test_environment_text_and_python_values_give_the_same_settings() -> None:
    environ = {
        **S3_STORE,
        "MPUFLASK_MIN_PART_SIZE": "2048",
        "MPUFLASK_MAX_PARTS": "0",
        "MPUFLASK_SWEEP_INTERVAL": "0.2",
        "MPUFLASK_DURABLE": "off",
        "MPUFLASK_S3_STAGE_UPLOADS": "auto",
        "MPUFLASK_CORS_ORIGINS": "https://a.example, http://localhost:5173",
        "MPUFLASK_PART_CONTENT_TYPES": "image/png,image/jpeg",
        "MPUFLASK_AUTH_HOOKS": "tests.test_config:no_hook",
        "MPUFLASK_MAX_OPEN_UPLOADS": "0",
    }
    mapping: dict[str, Any] = {
        **S3_STORE,
        "MPUFLASK_MIN_PART_SIZE": 2048,
        "MPUFLASK_MAX_PARTS": 0,
        "MPUFLASK_SWEEP_INTERVAL": 0.2,
        "MPUFLASK_DURABLE": False,
        "MPUFLASK_S3_STAGE_UPLOADS": "auto",
        "MPUFLASK_CORS_ORIGINS": ["https://a.example", "http://localhost:5173"],
        "MPUFLASK_PART_CONTENT_TYPES": ["image/png", "image/jpeg"],
        "MPUFLASK_AUTH_HOOKS": [no_hook],
        "MPUFLASK_MAX_OPEN_UPLOADS": 0,
    }
    from_text = load_settings(environ=environ)
    assert from_text == load_settings(mapping, environ={})
    assert from_text["MPUFLASK_AUTH_HOOKS"] == (no_hook,)
    assert from_text["MPUFLASK_CORS_ORIGINS"] == (
        "https://a.example",
        "http://localhost:5173",
    )


def test_token_forms() -> None:
    listed = load_settings(
        environ={
            "MPUFLASK_AUTH_TOKENS": '[{"token": "t-a", "identity": "alice", '
            '"prefix": "alice/", "actions": ["get"]}, "t-b"]'
        }
    )["MPUFLASK_AUTH_TOKENS"]
    assert [(t.secret, t.identity, t.prefix, t.actions) for t in listed] == [
        ("t-a", "alice", "alice/", {"get"}),
        ("t-b", f"token:{sha256(b't-b').hexdigest()[:12]}", "", None),
    ]
    plain = load_settings(environ={"MPUFLASK_AUTH_TOKENS": "0, null ,1e3"})
    assert [t.secret for t in plain["MPUFLASK_AUTH_TOKENS"]] == ["0", "null", "1e3"]
    made = Token("t-c", "carol")
    from_code = load_settings({"MPUFLASK_AUTH_TOKENS": [made, "t-d"]}, environ={})
    assert from_code["MPUFLASK_AUTH_TOKENS"][0] is made


def test_names_other_programs_read_are_left_alone() -> None:
    settings = load_settings(
        environ={
            "MPUFLASK_STATE_DIR": "/tmp/x",
            "MPUFLASK_URL": "http://127.0.0.1:8000/",
            "MPUFLASK_TEST_S3_ENDPOINT": "http://127.0.0.1:7480",
            "MPUFLASK_BIG_BROWSER_TEST": "1",
        }
    )
    assert "MPUFLASK_URL" not in settings


def test_max_open_uploads_is_declared() -> None:
    assert load_settings(environ={})["MPUFLASK_MAX_OPEN_UPLOADS"] == 1000


def test_other_keys_of_the_mapping_reach_the_app(tmp_path: Path) -> None:
    app = create_app({"MPUFLASK_DATA_DIR": tmp_path, "TESTING": True, "MYCO_KEYS": 1})
    assert (app.config["TESTING"], app.config["MYCO_KEYS"]) == (True, 1)
    assert app.config["MPUFLASK_DATA_DIR"] == str(tmp_path)  # a Path is taken


def test_one_part_size_limit_on_both_kinds_of_body(
    make_app: Any, stored_state: Any
) -> None:
    app: Flask = make_app(MPUFLASK_MIN_PART_SIZE=5, MPUFLASK_MAX_PART_SIZE=10)
    flow = Flow(app.test_client())
    upload_id = flow.create()
    before = stored_state()
    text = "uploadPart: Your proposed upload exceeds the maximum allowed object size. (100100)"
    response = flow.put_part(upload_id, 1, b"x" * 11)
    assert (response.status_code, response.text) == (400, text)
    response = flow.client.put(
        f"/file.bin?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1",
        input_stream=io.BytesIO(b"x" * 11),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert (response.status_code, response.text) == (400, text)
    assert stored_state() == before
    assert flow.put_part(upload_id, 1, b"x" * 10).status_code == 200
    assert MIN_PART > 10  # the limit above is lowered for this test only


# -- one schema, documented where operators look ----------------------------------


def test_every_setting_has_one_type_default_and_doc() -> None:
    names = [setting.name for setting in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.name.startswith("MPUFLASK_")
        assert setting.doc and "|" not in setting.doc and "\n" not in setting.doc
        if setting.default is None or setting.default == ():
            assert setting.default_text == "unset"
        else:  # the default as the table shows it reads back as the default
            environ = {setting.name: setting.default_text}
            if setting.name.startswith("MPUFLASK_S3_"):
                environ.update(S3_STORE)
            if setting.name.startswith("MPUFLASK_WEBHOOK_"):
                environ["MPUFLASK_WEBHOOK_URL"] = "http://127.0.0.1:9/hook"
            assert load_settings(environ=environ)[setting.name] == setting.default


def test_readme_table_is_the_schema() -> None:
    readme = (ROOT / "README.md").read_text()
    table = settings_table()
    assert table in readme, (
        "README.md's settings table differs from mpuflask/config.py; paste:\n" + table
    )
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in table


def test_every_name_the_code_and_docs_use_is_declared() -> None:
    """A setting read or documented anywhere is in the schema (or is the client's)."""
    known = {setting.name for setting in SETTINGS} | set(READ_ELSEWHERE)
    known.add("MPUFLASK_TOKEN")  # the client's (docs/client.md)
    sources = [ROOT / "gunicorn.conf.py", ROOT / "wsgi.py", ROOT / "README.md"]
    sources += sorted((ROOT / "docs").glob("*.md"))
    sources += sorted((ROOT / "examples").rglob("*.py"))
    sources += [
        path
        for path in sorted((ROOT / "mpuflask").rglob("*.py"))
        if "client" not in path.parts and path.name != "config.py"
    ]
    for path in sources:
        for line in path.read_text().splitlines():
            if "unknown setting" in line:
                continue  # an example of the error a typo gets
            for name in re.findall(r"MPUFLASK_[A-Z0-9_]*[A-Z0-9]", line):
                if not name.startswith(READ_ELSEWHERE_PREFIX):
                    assert name in known, f"{path.relative_to(ROOT)} names {name}"


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {"MPUFLASK_S3_BUCKET": "b", "MPUFLASK_S3_ENDPOINT": "http://s3.local"},
            "MPUFLASK_S3_BUCKET is set but MPUFLASK_STORE is filesystem; set"
            " MPUFLASK_STORE=s3 to use the s3 store, or unset the MPUFLASK_S3_*"
            " settings",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_ACCESS_KEY_ID": "x"},
            "MPUFLASK_S3_ACCESS_KEY_ID and MPUFLASK_S3_SECRET_ACCESS_KEY go together:"
            " set both, or neither (boto3's usual sources)",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_ENDPOINT": "ab"},
            "MPUFLASK_S3_ENDPOINT must be an http:// or https:// URL with a host,"
            " not 'ab'",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_ENDPOINT": "https://AK:SK@s3.local"},
            "MPUFLASK_S3_ENDPOINT must not hold a user name or password"
            " (user:password@host): it would be sent as the host name; leave it"
            " out (the keys go in MPUFLASK_S3_ACCESS_KEY_ID and"
            " MPUFLASK_S3_SECRET_ACCESS_KEY)",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_BUCKET": "b "},
            "MPUFLASK_S3_BUCKET has spaces before or after it, 'b '; remove them",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_SPOOL_DIR": "/nonexistent/spool"},
            "MPUFLASK_S3_SPOOL_DIR '/nonexistent/spool' is not a directory the server"
            " may write; create it, or unset it to use the temp dir",
        ),
        (
            {**S3_STORE, "MPUFLASK_S3_MAX_CONNECTIONS": "1000000000000000"},
            "MPUFLASK_S3_MAX_CONNECTIONS must be an integer from 1 to 4096, not"
            " '1000000000000000'",
        ),
    ],
)
def test_settings_that_cannot_work_together_stop_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], line: str
) -> None:
    """An operator's hunt: s3 settings without the s3 store were ignored (each
    machine kept a store of its own); half a key pair, an endpoint that is no
    URL and a huge pool failed at start with a 100-line traceback, or hung."""
    assert refused(tmp_path, monkeypatch, environ) == line


def test_a_media_type_family_admits_its_subtypes(make_app: Any) -> None:
    """``image/*`` was accepted and then matched literally: image/png was refused."""
    client = make_app(MPUFLASK_PART_CONTENT_TYPES="image/*,text/csv").test_client()
    upload_id = client.post("/k?action=mpu-create").json["uploadId"]
    url = f"/k?action=mpu-uploadpart&uploadId={upload_id}&partNumber=1"
    for given, status in [
        ("image/png", 200),
        ("IMAGE/webp; q=1", 200),
        ("text/csv", 200),
        ("text/plain", 415),
        ("imagex/png", 415),
        (None, 415),  # none sent: application/octet-stream
    ]:
        headers = {} if given is None else {"Content-Type": given}
        answer = client.put(url, data=b"x", headers=headers)
        assert answer.status_code == status, (given, answer.text)
