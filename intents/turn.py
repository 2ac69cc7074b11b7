"""What a handler receives (Turn, SchoolTurn) and returns (Response), free of any transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from intents.domain import Directory, History, Speaker
from intents.kb import KnowledgeBase

# A slot's value: one record id, or the ENT profiles named (["Relative", "Student"]).
SlotValue = str | list[str]


@dataclass(frozen=True)
class SlotReading:
    """What the messages said of one slot: a value, candidates to choose from, or words that
    named nothing known (with the closest names)."""

    value: SlotValue | None = None
    candidates: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    # The words that named nothing known, when neither a value nor candidates were found.
    query: str | None = None
    # Typed in answer to a prompt for this slot, and named nothing the slot accepts.
    unanswered: bool = False
    # Someone named in full who is not (or no longer) part of the school.
    absent: str | None = None
    # The account of that person when it is still this school's, pre-deleted or deleted: it
    # is whom the message names, though no order can take them.
    removed: str | None = None


Slots = dict[str, SlotReading]


def slot_values(slots: Slots) -> dict[str, SlotValue]:
    """The slots that hold a value, or name a removed account of the school: what an
    evaluation or a log may show."""
    named = {name: r.value if r.value is not None else r.removed for name, r in slots.items()}
    return {name: value for name, value in named.items() if value is not None}


# -- button payloads: kept server side, behind an opaque id -----------------------------------
@dataclass(frozen=True)
class RunIntent:
    """Run an intent (a related topic, an offer, a fix, a « Vouliez-vous dire… » choice)."""

    intent: str
    slots: Slots = field(default_factory=dict)
    # The school an eRun picked for it.
    structure: str | None = None


@dataclass(frozen=True)
class FillSlot:
    """Answer the form that waits for this slot."""

    slot: str
    value: SlotValue


@dataclass(frozen=True)
class ConfirmChange:
    pending_id: str
    # One of a proposal's options: the arguments to carry out instead of the pending ones.
    args: dict[str, SlotValue] | None = None


@dataclass(frozen=True)
class CancelChange:
    pending_id: str


ButtonPayload = RunIntent | FillSlot | ConfirmChange | CancelChange


@dataclass(frozen=True)
class Choice:
    """A button before the core gives it an opaque id."""

    label: str
    payload: ButtonPayload


@dataclass
class Say:
    text: str
    choices: list[Choice] = field(default_factory=list)


@dataclass(frozen=True)
class Option:
    """One way to carry out a proposal, offered as its own confirmation button."""

    label: str
    args: dict[str, SlotValue]


@dataclass
class Proposal:
    """A change shown to the director, carried out only after « Confirmer » (or after one of
    its `options`, when there are several ways to do it)."""

    summary: str
    args: dict[str, SlotValue]
    targets: list[str]
    options: list[Option] = field(default_factory=list)


@dataclass
class Response:
    says: list[Say]
    proposal: Proposal | None = None
    # The slot that the next message should fill (a form waiting for a name…).
    awaiting: str | None = None
    # Set when a rule of the académie forbids the change: audited as refused.
    refusal: str | None = None
    targets: list[str] = field(default_factory=list)

    @classmethod
    def text(cls, text: str, choices: list[Choice] | None = None) -> Response:
        return cls([Say(text, choices or [])])


@dataclass
class Turn:
    """One message being handled: who, what was understood, and the tools to answer."""

    speaker: Speaker
    text: str
    intent: str
    confidence: float
    slots: Slots
    kb: KnowledgeBase
    today: date
    now: datetime
    private_chat: bool
    # What a how-to offers to do for a director: the action the question spoke of.
    offer: RunIntent | None = None

    def value(self, slot: str) -> SlotValue | None:
        reading = self.slots.get(slot)
        return reading.value if reading else None

    def reading(self, slot: str) -> SlotReading:
        return self.slots.get(slot) or SlotReading()

    def render(self, intent_id: str, **extra: object) -> str:
        return self.kb.render(intent_id, self.today, self.speaker.role.value, **extra)

    def see_also(self, intent_ids: list[str]) -> list[Choice]:
        return [Choice(self.kb.title(i), RunIntent(i)) for i in intent_ids if i in self.kb.entries]


@dataclass(kw_only=True)
class SchoolTurn(Turn):
    """A turn about one school the speaker may read or change: never without its directory."""

    directory: Directory
    structure_id: str
    # The audit log's memory of changes done (« déjà supprimé le … »), when there is one.
    history: History | None = None
