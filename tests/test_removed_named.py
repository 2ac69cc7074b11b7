"""Whom an order names when that person can no longer be taken: a removed account of the
school is still named (the evaluation and the logs see its id), a teacher of another school
is not; neither unlocks the order."""

from __future__ import annotations

import pytest

from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from intents.nlu.understanding import Understander
from tests.support import DEMO, DEMO_SCHOOL, shared_kb_and_matcher


@pytest.fixture(scope="module")
def store() -> Store:
    opened = Store.in_memory()
    import_school(opened, DEMO_SCHOOL)
    return opened


def _understander() -> Understander:
    kb, matcher = shared_kb_and_matcher()
    return Understander(kb, matcher, None, None)


@pytest.mark.parametrize(
    "text",
    ["détache bernard vanacker, il est parti à la retraite", "retire M. Vanacker de l'école"],
)
def test_a_removed_teacher_of_the_school_is_named_but_not_taken(store: Store, text: str) -> None:
    understood = _understander().understand(text, store.directory, DEMO)
    reading = understood.slots["teacher"]
    assert understood.intent == "action.detach_teacher"
    assert (reading.value, reading.absent) == (None, "Bernard Vanacker")
    assert understood.entities == {"teacher": "usr-t12"}


def test_a_teacher_of_another_school_is_named_by_no_id(store: Store) -> None:
    understood = _understander().understand("détache Marc Dubois", store.directory, DEMO)
    reading = understood.slots["teacher"]
    assert (reading.value, reading.absent) == (None, "Marc Dubois")
    assert "teacher" not in understood.entities
