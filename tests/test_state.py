"""The typed conversation state and the one rights rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.messages import Menu
from bot.core.rights import Verdict, may
from bot.core.state import BUTTONS_KEPT, ConversationState, Form, PendingChange, StoredButton
from intents.domain import Role, Speaker
from intents.registry import Permission
from intents.turn import CancelChange, ConfirmChange, FillSlot, RunIntent, SlotReading

AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _full_state() -> ConversationState:
    state = ConversationState(
        pending=PendingChange(
            "ab12", "action.block", {"profiles": ["Relative"]}, ["u1"], "S", AT, "42:7"
        ),
        form=Form(
            "action.attach_teacher",
            "class",
            {
                "teacher": SlotReading(value="t1"),
                "class": SlotReading(candidates=("c1", "c2"), query="ce", unanswered=True),
                "account": SlotReading(absent="Bernard Vanacker", removed="t9", query="vanacker"),
            },
            AT,
        ),
        menu=Menu.DIRECTOR,
        last_topic="educonnect.activate",
    )
    for number, payload in enumerate(
        [
            RunIntent("educonnect.switch"),
            RunIntent("query.groups", {"group": SlotReading(suggestions=("g1",))}, "0590123A"),
            FillSlot("profiles", ["Relative", "Student"]),
            FillSlot("teacher", "t2"),
            ConfirmChange("ab12"),
            CancelChange("ab12"),
            ConfirmChange("ab12", {"profiles": ["Relative"], "keep": ["u1"]}),
        ]
    ):
        state.keep_button(f"tag.{number}", StoredButton(f"bouton {number}", payload))
    state.last_buttons = ["tag.4", "tag.5"]
    return state


def test_state_survives_its_serialisation() -> None:
    state = _full_state()
    assert ConversationState.from_json(state.to_json()) == state


def test_a_pending_change_stored_before_message_refs_is_still_read() -> None:
    data = _full_state().to_json()
    del data["pending"]["message"]
    pending = ConversationState.from_json(data).pending
    assert pending is not None and pending.message is None and pending.id == "ab12"


def test_an_empty_record_is_a_fresh_state() -> None:
    assert ConversationState.from_json({}) == ConversationState()


@pytest.mark.parametrize(
    "damaged",
    [
        {"pending": {"id": "x"}},
        {"form": "not a form"},
        {"buttons": {"a": {"label": "x", "payload": {"nothing": 1}}}},
        {"menu": "nonsense"},
        # The shape written before the state was typed.
        {"form": {"intent": "action.block", "entities": {}, "awaiting": "profiles", "at": "x"}},
    ],
)
def test_an_unreadable_part_is_dropped_not_fatal(damaged: dict) -> None:
    state = ConversationState.from_json({**_full_state().to_json(), **damaged})
    name = next(iter(damaged))
    assert getattr(state, name) == getattr(ConversationState(), name)
    assert state.last_topic == "educonnect.activate"


def test_only_the_latest_buttons_are_kept() -> None:
    state = ConversationState()
    for number in range(BUTTONS_KEPT + 5):
        state.keep_button(str(number), StoredButton("b", ConfirmChange("x")))
    assert len(state.buttons) == BUTTONS_KEPT
    assert "0" not in state.buttons and str(BUTTONS_KEPT + 4) in state.buttons


DIRECTOR = Speaker("k", "d", role=Role.DIRECTOR, structures=("A",))
ERUN = Speaker("k", "e", role=Role.ERUN, structures=("A", "B"))
PARENT = Speaker("k", "p", role=Role.PARENT, structures=("A",))


@pytest.mark.parametrize(
    ("speaker", "permission", "structure", "private", "verdict"),
    [
        (PARENT, Permission.ANYONE, None, False, Verdict.ALLOWED),
        (DIRECTOR, Permission.CHANGE_SCHOOL, "A", True, Verdict.ALLOWED),
        (DIRECTOR, Permission.CHANGE_SCHOOL, "A", False, Verdict.PRIVATE_ONLY),
        (DIRECTOR, Permission.CHANGE_SCHOOL, "B", True, Verdict.DENIED),
        (DIRECTOR, Permission.CHANGE_SCHOOL, None, True, Verdict.DENIED),
        (DIRECTOR, Permission.READ_SCHOOL, "A", True, Verdict.ALLOWED),
        (ERUN, Permission.READ_SCHOOL, "B", True, Verdict.ALLOWED),
        (ERUN, Permission.READ_SCHOOL, "C", True, Verdict.DENIED),
        (ERUN, Permission.CHANGE_SCHOOL, "A", True, Verdict.DENIED),
        (PARENT, Permission.READ_SCHOOL, "A", True, Verdict.DENIED),
        (PARENT, Permission.CHANGE_SCHOOL, "A", True, Verdict.DENIED),
    ],
)
def test_one_rights_rule(
    speaker: Speaker, permission: Permission, structure: str | None, private: bool, verdict: str
) -> None:
    assert may(speaker, permission, structure, private) == verdict
