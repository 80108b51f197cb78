"""mpuflask.slotted.instances: many frozen records at once, equal to the
constructor's, and refused where an object could be left half made."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from mpuflask.rules import PartRef
from mpuflask.slotted import instances
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
