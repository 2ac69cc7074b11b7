"""Where an order stands inside a message: at the start of a clause (after a sign, « et »,
« en attendant »…), or as a to-do (« compte à supprimer »); a participle or a clause with its
subject tells what happened and orders nothing."""

from __future__ import annotations

import pytest

from intents.nlu.clauses import ordered_clause
from tests.support import shared_kb_and_matcher


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("les élèves voient encore leur classe, bloque leurs comptes", "bloque leurs comptes"),
        ("on rouvrira en septembre, en attendant coupe l'accès", "coupe l acces"),
        ("Delcourt : compte à supprimer", "supprimer"),
        ("compte manuel Agnès Dhainaut à supprimer, elle est partie", "supprimer"),
        ("il est parti (retire son compte)", "retire son compte"),
        # A participle, accented or not, tells a state.
        ("mon compte, bloqué depuis hier, c'est normal", None),
        ("les comptes, bloques depuis juin, ça pose souci", None),
        # A clause with its subject tells what someone does.
        ("j'ai encore trois comptes à supprimer.", None),
        ("on a du mal à rattacher", None),
        # An infinitive inside a message goes with another verb, it orders nothing.
        ("la différence entre bloquer et pré-supprimer un compte", None),
        ("je voulais savoir, supprimer un groupe efface les messages", None),
        ("bonjour, les parents ne peuvent plus se connecter", None),
    ],
)
def test_an_order_opens_a_clause_or_is_a_to_do(text: str, order: str | None) -> None:
    assert ordered_clause(text, shared_kb_and_matcher()[0].lexicon) == order
