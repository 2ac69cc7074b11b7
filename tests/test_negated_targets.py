"""What a director says not to touch is no target: the clause saying so is left out before the
names, groups and profiles are read (« ne bloque pas les élèves, seulement les parents »)."""

from __future__ import annotations

import pytest

from intents.nlu.entities import EntityReader
from tests.support import shared_kb_and_matcher


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("ne bloque pas les élèves, seulement les parents", "les parents"),
        ("pas besoin de débloquer les parents pour l'instant, juste les élèves", "les élèves"),
        ("bloque les parents, pas les élèves", "bloque les parents"),
        # An exception stays: the action reads it (« tous les enseignants sauf… »).
        ("mets tous les enseignants dans le groupe GAR sauf thomas petit", None),
        ("je ne veux pas détacher Lucie Fontaine ; par contre Hugo Lambert", "Hugo Lambert"),
        ("n'y touche pas à la chorale, supprime l'APE 2021", "supprime l'APE 2021"),
        # A negation stating a fact, not refusing an order: nothing is left out.
        ("les parents ne peuvent pas se connecter, débloque les", None),
        ("supprime le compte de Duhamel, elle ne vient plus", None),
        # Nothing would remain: the message is read whole.
        ("ne bloque pas les parents", None),
    ],
)
def test_what_not_to_touch_is_left_out(text: str, read: str | None) -> None:
    affirmed = EntityReader.affirmed(text)
    if read is None:
        assert affirmed == text
    else:
        assert " ".join(affirmed.replace(",", " ").split()) == read


@pytest.mark.parametrize(
    ("text", "profiles"),
    [
        ("ne bloque pas les élèves, seulement les parents", ["Relative"]),
        ("bloque tout le monde sauf les élèves", ["Relative"]),
        ("débloque les élèves mais pas les parents", ["Student"]),
        ("bloque les parents et les élèves", ["Relative", "Student"]),
        # Told not to touch everyone named: the message is read whole, as before.
        ("ne bloque pas les parents", ["Relative"]),
    ],
)
def test_the_profiles_targeted(text: str, profiles: list[str]) -> None:
    reader = EntityReader(shared_kb_and_matcher()[0].lexicon)
    assert reader.target_profiles(text) == profiles
