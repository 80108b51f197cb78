"""mpuflask.jsontext writes what json.dumps writes (compact, non-ASCII kept)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mpuflask.jsontext import compact
from mpuflask.jsontext import quoted
from mpuflask.jsontext import with_array

ODD = ['"quoted"', "back\\slash", "\u00e9\n\u2028\x00\x7f", "", "\ud800"]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(
    "head", [{}, {"key": ODD[0]}, {"k\u00e9y": 1, "b": None, "c": [1, "x"]}]
)
@pytest.mark.parametrize("count", [0, 1, 3])
def test_with_array_is_json_dumps_of_the_whole(
    head: dict[str, Any], count: int
) -> None:
    entries = [{"n": n, "s": ODD[n % len(ODD)]} for n in range(count)]
    items = (f'{{"n":{e["n"]},"s":{quoted(e["s"])}}}' for e in entries)
    assert with_array(head, 'li\u00e9"st', items) == _dumps(
        {**head, 'li\u00e9"st': entries}
    )


def test_compact_is_json_dumps() -> None:
    assert compact({"a": ODD, "b": 1.5}) == _dumps({"a": ODD, "b": 1.5})
