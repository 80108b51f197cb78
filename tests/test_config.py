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
from mpuflask.config import load_settings
from mpuflask.config import settings_table
from mpuflask.signing import sign_command

from .config_support import ANONYMOUS_401
from .config_support import JSONISH
from .config_support import ROOT
from .config_support import S3_STORE
from .config_support import no_hook
from .conftest import MIN_PART
from .conftest import Flow

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
        "MPUFLASK_AUTH_HOOKS": "tests.config_support:no_hook",
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
