"""The upload page's steps its tests share: open it, choose a file, wait for the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FINISHED = (
    "#upload-form:is([data-state=done], [data-state=failed], [data-state=cancelled])"
)


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("html[data-ready=true]")


def choose(page: Any, path: Path, key: str | None = None, concurrency: int = 4) -> None:
    page.get_by_label("File").set_input_files(str(path))
    if key is not None:
        upload_key(page).fill(key)
    page.get_by_label("Parts sent at once").fill(str(concurrency))


def finish(page: Any) -> str:
    """Wait until the upload ends; its final state (done, failed, cancelled)."""
    page.wait_for_selector(FINISHED)
    state: str = page.get_attribute("#upload-form", "data-state")
    return state


def upload_key(page: Any) -> Any:
    return page.get_by_label("Key", exact=True)
