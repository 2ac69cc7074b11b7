"""Classes as directors name them, on a school with double levels beside single ones (« CP »,
« CP-CE1 », « CE1 »): the class named whole is the one meant."""

from __future__ import annotations

import pytest

from intents.domain import SchoolClass
from intents.nlu.entities import EntityReader
from tests.support import shared_kb_and_matcher

CLASSES = [
    SchoolClass(id, "0597777X", name, level, 3)
    for id, name, level in [
        ("c-cp", "CP", "CP"),
        ("c-cpce1", "CP-CE1", "CP-CE1"),
        ("c-ce1", "CE1", "CE1"),
        ("c-ce2a", "CE2 A", "CE2"),
        ("c-ce2b", "CE2 B", "CE2"),
        ("c-cm1cm2", "CM1-CM2", "CM1-CM2"),
        ("c-cm2", "CM2", "CM2"),
    ]
]


@pytest.mark.parametrize(
    ("text", "value", "candidates"),
    [
        ("rattache M. Petit à la classe de CM1-CM2 svp", "c-cm1cm2", []),
        ("martin au cp-ce1", "c-cpce1", []),
        ("peux tu rattacher thomas martin au cp ce1", "c-cpce1", []),
        ("mets la PES sur les CM1/CM2", "c-cm1cm2", []),
        # A single level named alone is still that class, not the double one holding it.
        ("mets kevin en cm2", "c-cm2", []),
        ("rattache Mme Thomas au CP", "c-cp", []),
        ("rattache Mme Thomas au CE2 B", "c-ce2b", []),
        # A level two classes share: ask which.
        ("rattache Mme Thomas en CE2", None, ["c-ce2a", "c-ce2b"]),
    ],
)
def test_the_class_named_whole_is_the_one_meant(
    text: str, value: str | None, candidates: list[str]
) -> None:
    reader = EntityReader(shared_kb_and_matcher()[0].lexicon)
    found = reader.school_class(text, CLASSES)
    assert (found.value, sorted(found.candidates)) == (value, candidates)
