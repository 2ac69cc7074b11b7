"""A speaker's conversation state, typed, and its one serialisation to and from the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.messages import Menu
from intents.nlu.normalize import fold
from intents.turn import (
    ButtonPayload,
    CancelChange,
    ConfirmChange,
    FillSlot,
    RunIntent,
    SlotReading,
    Slots,
    SlotValue,
)

log = logging.getLogger(__name__)

# Typed answers to « Confirmer / Annuler » (folded: lower case, no accents or punctuation).
CONFIRM_WORDS = {
    "oui", "ok", "okay", "vas y", "go", "confirme", "confirmer", "je confirme", "c est bon",
    "d accord", "oui vas y", "oui merci", "valide", "allez y", "oui confirme",
}  # fmt: skip
CANCEL_WORDS = {
    "non", "annule", "annuler", "stop", "laisse tomber", "non merci", "abandonne",
    "pas maintenant", "non annule", "surtout pas", "rien",
}  # fmt: skip

# Only the most recent buttons stay valid; older ones answer "expired".
BUTTONS_KEPT = 40
# Far more than the updates of one speaker that can be in flight or retried at once.
HANDLED_UPDATES_KEPT = 32


@dataclass
class PendingChange:
    """A change proposed to the director, waiting for « Confirmer »."""

    id: str
    intent: str
    args: dict[str, SlotValue]
    targets: list[str]
    structure: str
    at: datetime
    # The channel's reference of the message that carried « Confirmer / Annuler », once the
    # channel has said it (Assistant.delivered): those buttons are taken away when it ends.
    message: str | None = None


@dataclass
class Form:
    """An action waiting for one slot, with what earlier messages already said."""

    intent: str
    awaiting: str
    slots: Slots
    at: datetime


@dataclass
class ErunTask:
    """What an eRun's next message is for: the reply to send (`reply`), words to find a
    topic by (`search`), or a new answer for the base (`draft`), about these tickets."""

    kind: str
    tickets: list[int]
    at: datetime


@dataclass
class Handover:
    """Tickets just opened for this speaker whose school is asked (« De quelle école… »)."""

    tickets: list[int]
    at: datetime


class StoredButton:
    """A button shown earlier; its payload is read from storage only when it is used, since a
    conversation keeps up to BUTTONS_KEPT of them and a message uses at most one."""

    __slots__ = ("label", "_payload", "_stored")

    def __init__(
        self,
        label: str,
        payload: ButtonPayload | None = None,
        *,
        stored: dict[str, Any] | None = None,
    ) -> None:
        if payload is None and stored is None:
            raise ValueError("a button needs a payload")
        self.label = label
        self._payload = payload
        self._stored = stored

    @property
    def payload(self) -> ButtonPayload:
        if self._payload is None:
            assert self._stored is not None
            self._payload = _read_payload(self._stored)
        return self._payload

    def to_json(self) -> dict[str, Any]:
        stored = self._stored if self._payload is None else _payload_out(self._payload)
        return {"label": self.label, "payload": stored}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredButton):
            return NotImplemented
        return (self.label, self.payload) == (other.label, other.payload)

    def __repr__(self) -> str:
        return f"StoredButton({self.label!r})"


@dataclass
class ConversationState:
    """Everything the assistant remembers of one speaker between two messages."""

    pending: PendingChange | None = None
    form: Form | None = None
    # Opaque button id → what it does; insertion order is age.
    buttons: dict[str, StoredButton] = field(default_factory=dict)
    # The ids of the buttons of the latest reply that had some.
    last_buttons: list[str] = field(default_factory=list)
    menu: Menu = Menu.PUBLIC
    # The last topic answered, for follow-ups.
    last_topic: str | None = None
    # Telegram's ids of this speaker's latest updates handled. An update delivered again (a
    # webhook retried after its 200 was lost, or given to two instances) is then recognised
    # and not answered twice; it is recorded by the same conditional write as the state, so
    # of two instances handling it at once, one fails its write and finds it handled.
    handled_updates: list[int] = field(default_factory=list)
    # The eRun's side (bot/core/tickets.py, bot/core/erun.py).
    erun_task: ErunTask | None = None
    school_asked: Handover | None = None
    # The school a speaker without an account named (structure id), for their next tickets.
    school: str | None = None
    # « Je veux parler à quelqu'un » without a question: the next message is the question.
    question_wanted: datetime | None = None

    def first_delivery(self, update_id: int) -> bool:
        """Record the update as handled; False when it already was."""
        if update_id in self.handled_updates:
            return False
        self.handled_updates = [*self.handled_updates, update_id][-HANDLED_UPDATES_KEPT:]
        return True

    def button(self, pressed: str) -> StoredButton | None:
        """The button pressed, by its opaque id, or by the label of one of the latest buttons
        (a person types « Confirmer »; a script replays a conversation by labels)."""
        found = self.buttons.get(pressed)
        if found is not None:
            return found
        by_label = self._latest_labelled(pressed)
        return self.buttons[by_label] if by_label else None

    def _latest_labelled(self, label: str) -> str | None:
        """The id of the latest button with that label (any case): the one place labels are
        resolved, for a label typed (Telegram, console) or pressed by name (scripts)."""
        wanted = label.strip().casefold()
        for button_id in self.last_buttons:
            candidate = self.buttons.get(button_id)
            if candidate is not None and candidate.label.casefold() == wanted:
                return button_id
        return None

    def typed_press(self, text: str) -> str | None:
        """The button a typed message stands for: « oui » / « non » while a change waits for
        confirmation, or the label of one of the latest buttons."""
        folded = fold(text)
        if self.pending is not None and folded in CONFIRM_WORDS | CANCEL_WORDS:
            wanted = (
                ConfirmChange(self.pending.id)
                if folded in CONFIRM_WORDS
                else CancelChange(self.pending.id)
            )
            for button_id, button in self.buttons.items():
                if button.payload == wanted:
                    return button_id
        return self._latest_labelled(text)

    def keep_button(self, button_id: str, button: StoredButton) -> None:
        self.buttons[button_id] = button
        while len(self.buttons) > BUTTONS_KEPT:
            self.buttons.pop(next(iter(self.buttons)))

    # -- serialisation: the only place that knows the stored shape --------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "pending": _pending_out(self.pending) if self.pending else None,
            "form": _form_out(self.form) if self.form else None,
            "buttons": {i: b.to_json() for i, b in self.buttons.items()},
            "last_buttons": self.last_buttons,
            "menu": self.menu.value,
            "last_topic": self.last_topic,
            "handled_updates": self.handled_updates,
            "erun_task": _task_out(self.erun_task) if self.erun_task else None,
            "school_asked": _handover_out(self.school_asked) if self.school_asked else None,
            "school": self.school,
            "question_wanted": self.question_wanted.isoformat() if self.question_wanted else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationState:
        """The stored state; a part that cannot be read (older format, damage) is dropped."""
        state = cls()
        for name, read in (
            ("pending", _read_pending),
            ("form", _read_form),
            ("buttons", _read_buttons),
            ("last_buttons", _read_ids),
            ("menu", Menu),
            ("last_topic", _read_optional_str),
            ("handled_updates", _read_update_ids),
            ("erun_task", _read_task),
            ("school_asked", _read_handover),
            ("school", _read_optional_str),
            ("question_wanted", datetime.fromisoformat),
        ):
            if data.get(name) is None:
                continue
            try:
                setattr(state, name, read(data[name]))
            except (KeyError, TypeError, ValueError):
                log.warning("dropped an unreadable %s from a stored conversation", name)
        return state


def _pending_out(pending: PendingChange) -> dict[str, Any]:
    return {
        "id": pending.id,
        "intent": pending.intent,
        "args": pending.args,
        "targets": pending.targets,
        "structure": pending.structure,
        "at": pending.at.isoformat(),
        "message": pending.message,
    }


def _read_pending(data: dict[str, Any]) -> PendingChange:
    return PendingChange(
        id=str(data["id"]),
        intent=str(data["intent"]),
        args={str(k): _read_value(v) for k, v in dict(data["args"]).items()},
        targets=_read_ids(data["targets"]),
        structure=str(data["structure"]),
        at=datetime.fromisoformat(data["at"]),
        message=_read_optional_str(data.get("message")),
    )


def _task_out(task: ErunTask) -> dict[str, Any]:
    return {"kind": task.kind, "tickets": task.tickets, "at": task.at.isoformat()}


def _read_task(data: dict[str, Any]) -> ErunTask:
    return ErunTask(str(data["kind"]), _read_update_ids(data["tickets"]), _read_at(data))


def _handover_out(handover: Handover) -> dict[str, Any]:
    return {"tickets": handover.tickets, "at": handover.at.isoformat()}


def _read_handover(data: dict[str, Any]) -> Handover:
    return Handover(_read_update_ids(data["tickets"]), _read_at(data))


def _read_at(data: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(data["at"]))


def _form_out(form: Form) -> dict[str, Any]:
    return {
        "intent": form.intent,
        "awaiting": form.awaiting,
        "slots": _slots_out(form.slots),
        "at": form.at.isoformat(),
    }


def _read_form(data: dict[str, Any]) -> Form:
    return Form(
        intent=str(data["intent"]),
        awaiting=str(data["awaiting"]),
        slots=_read_slots(data["slots"]),
        at=datetime.fromisoformat(data["at"]),
    )


def _slots_out(slots: Slots) -> dict[str, Any]:
    return {
        name: {
            "value": r.value,
            "candidates": list(r.candidates),
            "suggestions": list(r.suggestions),
            "query": r.query,
            "unanswered": r.unanswered,
            "absent": r.absent,
            "removed": r.removed,
        }
        for name, r in slots.items()
    }


def _read_slots(data: dict[str, Any]) -> Slots:
    return {
        str(name): SlotReading(
            value=None if r.get("value") is None else _read_value(r["value"]),
            candidates=tuple(_read_ids(r.get("candidates", []))),
            suggestions=tuple(_read_ids(r.get("suggestions", []))),
            query=_read_optional_str(r.get("query")),
            unanswered=bool(r.get("unanswered", False)),
            absent=_read_optional_str(r.get("absent")),
            removed=_read_optional_str(r.get("removed")),
        )
        for name, r in dict(data).items()
    }


def _payload_out(payload: ButtonPayload) -> dict[str, Any]:
    match payload:
        case RunIntent(intent, slots, structure):
            return {
                "run": intent,
                "slots": _slots_out(slots),
                "structure": structure,
            }
        case FillSlot(slot, value):
            return {"fill": slot, "value": value}
        case ConfirmChange(pending_id, None):
            return {"confirm": pending_id}
        case ConfirmChange(pending_id, args):
            return {"confirm": pending_id, "args": args}
        case CancelChange(pending_id):
            return {"cancel": pending_id}


def _read_payload(data: dict[str, Any]) -> ButtonPayload:
    if "run" in data:
        return RunIntent(
            str(data["run"]),
            _read_slots(data.get("slots") or {}),
            _read_optional_str(data.get("structure")),
        )
    if "fill" in data:
        return FillSlot(str(data["fill"]), _read_value(data["value"]))
    if "confirm" in data:
        args = data.get("args")
        return ConfirmChange(
            str(data["confirm"]),
            None if args is None else {str(k): _read_value(v) for k, v in dict(args).items()},
        )
    if "cancel" in data:
        return CancelChange(str(data["cancel"]))
    raise ValueError("unknown button payload")


_PAYLOAD_KINDS = {"run", "fill", "confirm", "cancel"}


def _read_buttons(data: dict[str, Any]) -> dict[str, StoredButton]:
    buttons = {}
    for button_id, button in dict(data).items():
        stored = button["payload"]
        if not isinstance(stored, dict) or not _PAYLOAD_KINDS & stored.keys():
            raise ValueError("unknown button payload")
        buttons[str(button_id)] = StoredButton(str(button["label"]), stored=stored)
    return buttons


def _read_value(value: Any) -> SlotValue:
    if isinstance(value, str):
        return value
    return _read_ids(value)


def _read_ids(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return [str(v) for v in value]


def _read_update_ids(value: Any) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise TypeError("expected a list of ids")
    return list(value)


def _read_optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
