"""Counting the questions met for /stats, and the queue (circonscription) of a school."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from bot.core.services import Services
from bot.core.ticket_records import QuestionOutcome
from bot.settings import Settings
from intents.domain import DirectoryFailure


def default_queue(services: Services, settings: Settings) -> str:
    """The queue of questions whose school is unknown (TICKET_DEFAULT_QUEUE)."""
    if settings.ticket_default_queue:
        return settings.ticket_default_queue
    schools = services.directory.structures()
    return schools[0].circonscription if schools else "académie"


def queue_for(services: Services, settings: Settings, structure_id: str | None) -> str:
    """The circonscription of that school, else the default queue."""
    try:
        structure = services.directory.structure(structure_id) if structure_id else None
    except DirectoryFailure:  # the ENT reads nothing without someone's token
        structure = None
    if structure is not None and structure.circonscription:
        return structure.circonscription
    return default_queue(services, settings)


@dataclass(frozen=True)
class MetQuestion:
    """A question met, waiting in memory to be counted in the question log (no text)."""

    at: datetime
    intent: str | None
    outcome: QuestionOutcome
    structure_id: str | None


class QuestionCounter:
    """Questions met by this process, written to the log in one statement now and then:
    counting them does not add a write to every message (two round trips per message). A
    process killed loses at most the last few seconds of counts, never a person's data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[MetQuestion] = []

    def add(self, met: MetQuestion) -> None:
        """Count it at the next flush."""
        with self._lock:
            self._waiting.append(met)

    def flush(self, services: Services, settings: Settings) -> int:
        """Write the waiting counts (their queue resolved once per school); how many."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        if not waiting:
            return 0
        try:
            queues = {
                school: queue_for(services, settings, school)
                for school in {m.structure_id for m in waiting}
            }
            with services.transaction():
                services.tickets.log_questions(
                    [(m.at, m.intent, m.outcome, queues[m.structure_id]) for m in waiting]
                )
        except Exception:
            with self._lock:  # kept for the next flush
                self._waiting = waiting + self._waiting
            raise
        return len(waiting)
