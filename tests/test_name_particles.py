"""The small words of compound last names (« D'Almeida », « Van de Velde ») name nobody on
their own: a message holds them for other reasons (« l'intervenante d'anglais »)."""

from __future__ import annotations

import pytest

from intents.domain import User
from intents.nlu.entities import EntityReader
from tests.support import shared_kb_and_matcher


def _teacher(id: str, first: str, last: str) -> User:
    return User(
        id,
        first.lower(),
        first,
        last,
        "Teacher",
        "AAF1D",
        True,
        False,
        ("S",),
        "S",
        (),
        (),
        None,
        None,
    )


TEACHERS = [
    _teacher("t-almeida", "Isabelle", "D'Almeida"),
    _teacher("t-velde", "Antoine", "Van de Velde"),
    _teacher("t-wattez", "Laurent", "Wattez"),
    _teacher("t-fontaine", "Lucie", "Fontaine"),
]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("supprime le compte de l'intervenante d'anglais", None),
        ("Laurent a la classe de CP A, tu peux l'y rattacher ?", "t-wattez"),
        ("rattache mme d'almeida au ce1", "t-almeida"),
        ("rattache almeida au ce1", "t-almeida"),
        ("rattache van de velde au cm1", "t-velde"),
        ("mets velde en cm1", "t-velde"),
        ("la classe de Mme Fontaine", "t-fontaine"),
    ],
)
def test_a_particle_alone_names_nobody(text: str, value: str | None) -> None:
    reader = EntityReader(shared_kb_and_matcher()[0].lexicon)
    found = reader.person(text, TEACHERS)
    assert (found.value, found.candidates) == (value, [])
