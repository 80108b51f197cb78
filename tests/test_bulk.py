"""mpuflask.bulk: checks and records for 10,000 parts at once, each exactly
what doing it one by one gives; records refused where one could be left
half made."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mpuflask import rules
from mpuflask.bulk import all_match
from mpuflask.bulk import instances
from mpuflask.errors import ApiError
from mpuflask.rules import PartRef
from mpuflask.rules import parse_complete_body
from mpuflask.storage.base import UploadedPart


def test_instances_are_what_the_constructor_makes() -> None:
    numbers, etags, sizes = [3, 1, 2], ["c" * 32, "a" * 32, "b" * 32], [0, 5, 7]
    made = instances(UploadedPart, part_number=numbers, etag=etags, size=sizes)
    expected = list(map(UploadedPart, numbers, etags, sizes))
    assert made == expected
    assert [hash(part) for part in made] == [hash(part) for part in expected]
    assert [repr(part) for part in made] == [repr(part) for part in expected]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].size = 1  # type: ignore[misc]
    refs = instances(PartRef, etag=["e"], part_number=[9])
    assert refs == [PartRef(9, "e")]
    assert instances(PartRef, part_number=[], etag=[]) == []


def test_instances_refuse_what_would_leave_a_slot_unset() -> None:
    with pytest.raises(ValueError, match=r"PartRef: give exactly the fields"):
        instances(PartRef, part_number=[1])
    with pytest.raises(ValueError, match=r"PartRef: give exactly the fields"):
        instances(PartRef, part_number=[1], etag=["e"], size=[1])
    with pytest.raises(ValueError, match=r"PartRef: columns of different lengths"):
        instances(PartRef, part_number=[1, 2], etag=["e"])

    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            raise AssertionError("never skipped")

    with pytest.raises(ValueError, match=r"Checked: give exactly the fields"):
        instances(Checked, value=[1])


def test_all_match_is_each_text_matched_on_its_own() -> None:
    hex32 = re.compile(r"[0-9a-f]{32}")
    rng = random.Random(33)
    pieces: list[object] = ["a" * 32, "0" * 32, "A" * 32, "a" * 31, "", "a" * 32 + "/"]
    pieces += ["/".join(["b" * 32] * 2), 7, None, "é" * 32]
    for _ in range(500):
        texts = [rng.choice(pieces) for _ in range(rng.randrange(0, 5))]
        expected = all(isinstance(t, str) and hex32.fullmatch(t) for t in texts)
        assert all_match(hex32, texts) is expected, texts


def test_usual_complete_lists_read_as_entry_by_entry() -> None:
    """parse_complete_body reads the usual list in bulk; on 2,000 random lists
    (bools, floats, strings, out-of-range numbers, upper-case or short etags,
    entries that are not objects) it answers exactly what reading each entry
    on its own (rules._parsed_refs) answers: the same refs or the same error."""
    rng = random.Random(34)
    numbers: list[object] = [1, 2, 3, 10000, 0, 10001, -1, True, 1.0, 2.5, "3", None]
    etags: list[object] = ["a" * 32, "b" * 32, '"' + "c" * 32 + '"', "D" * 32, "a", 5]
    for _ in range(2000):
        items: list[object] = []
        for _ in range(rng.randrange(0, 4)):
            if rng.random() < 0.05:
                items.append(rng.choice([[], "part", None, 3]))
                continue
            entry: dict[str, object] = {}
            if rng.random() < 0.95:
                entry["partNumber"] = rng.choice(numbers[:4] * 6 + numbers)
            if rng.random() < 0.95:
                entry["etag"] = rng.choice(etags[:2] * 6 + etags)
            items.append(entry)
        bulk = _outcome(parse_complete_body, {"parts": items})
        assert bulk == _outcome(_entry_by_entry, items), items


def _entry_by_entry(items: list[Any]) -> list[PartRef]:
    refs = rules._parsed_refs(items)
    refs.sort(key=lambda ref: ref.part_number)
    rules.check_part_order(refs)
    return refs


def _outcome(read: Callable[[Any], list[PartRef]], body: Any) -> object:
    try:
        return read(body)
    except ApiError as error:
        return (type(error), error.code, error.text)
