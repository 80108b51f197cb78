"""What the configuration tests share: the refusal helper and importable hooks.

The hooks here are named by dotted path in the settings under test
(``tests.config_support:no_hook``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mpuflask import create_app
from mpuflask.config import ConfigError

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
