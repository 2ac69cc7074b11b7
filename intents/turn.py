"""What a handler receives (Turn) and returns (Response), free of any transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from intents.domain import Speaker
from intents.kb import KnowledgeBase

if TYPE_CHECKING:
    from intents.domain import Directory


@dataclass(frozen=True)
class Choice:
    """A button before the core gives it an opaque id; payload is kept server side."""

    label: str
    payload: dict[str, Any]


@dataclass
class Say:
    text: str
    choices: list[Choice] = field(default_factory=list)


@dataclass
class Proposal:
    """A change shown to the director, carried out only after « Confirmer »."""

    summary: str
    args: dict[str, Any]
    targets: list[str]


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
    entities: dict[str, Any]
    kb: KnowledgeBase
    today: date
    now: datetime
    directory: Directory | None = None
    structure_id: str | None = None
    private_chat: bool = True

    def render(self, intent_id: str, **extra: object) -> str:
        return self.kb.render(intent_id, self.today, **extra)

    def see_also(self, intent_ids: list[str]) -> list[Choice]:
        return [
            Choice(self.kb.title(i), {"intent": i}) for i in intent_ids if i in self.kb.entries
        ]
