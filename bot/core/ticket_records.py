"""The records of the eRun's side, shared by the core and the storage (no SQL here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Reason(StrEnum):
    """Why a question was handed to a person."""

    OUT_OF_SCOPE = "out_of_scope"
    # A « Vouliez-vous dire… » whose suggestions did not fit.
    UNRESOLVED = "unresolved"
    HUMAN = "human"
    THUMBS_DOWN = "thumbs_down"


class Resolution(StrEnum):
    """How an eRun handled a ticket."""

    REPLY = "reply"
    FAQ = "faq"
    DRAFT = "draft"
    CLOSED = "closed"


class QuestionOutcome(StrEnum):
    """How the assistant met a question (what /stats counts)."""

    ANSWERED = "answered"
    SUGGESTED = "suggested"
    DECLINED = "declined"
    HANDED = "handed"


OPEN = "open"
ANSWERED = "answered"
CLOSED = "closed"


@dataclass(frozen=True)
class NewTicket:
    """A question to hand over; `question` is already masked."""

    reason: Reason
    question: str
    candidates: tuple[tuple[str, float], ...]
    speaker_key: str
    structure_id: str | None
    queue: str
    opened_at: datetime


@dataclass(frozen=True)
class Ticket:
    """A stored ticket."""

    id: int
    reason: Reason
    question: str
    candidates: tuple[tuple[str, float], ...]
    speaker_key: str
    structure_id: str | None
    queue: str
    status: str
    opened_at: datetime
    handled_at: datetime | None = None
    handled_by: str | None = None
    resolution: Resolution | None = None
    resolution_intent: str | None = None

    @property
    def top_candidate(self) -> str | None:
        """The intent the assistant found nearest, if any."""
        return self.candidates[0][0] if self.candidates else None


@dataclass(frozen=True)
class LearnedPhrasing:
    """A phrasing taught in chat."""

    id: int
    text: str
    intent: str
    taught_by: str
    taught_at: datetime
    exported: bool


@dataclass(frozen=True)
class KnowledgeDraft:
    """A new answer written from the chat, for review."""

    id: int
    question: str
    answer: str
    author: str
    created_at: datetime
    exported: bool


@dataclass(frozen=True)
class LoggedQuestionRow:
    """A question of the log: when, which intent, how it was met."""

    at: datetime
    intent: str | None
    outcome: QuestionOutcome
