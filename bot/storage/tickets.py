"""The eRun's side in the database: tickets, phrasings taught in chat, drafts of answers and
the question log.

Exactly once, by construction: every change of a ticket is one UPDATE … WHERE status is still
open (and the queue is the eRun's), with RETURNING: of two eRuns answering the same ticket, or
two instances notifying the same queue, one statement takes each row, the other none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from bot.core.ticket_records import (
    ANSWERED,
    CLOSED,
    OPEN,
    KnowledgeDraft,
    LearnedPhrasing,
    LoggedQuestionRow,
    NewTicket,
    QuestionOutcome,
    Reason,
    Resolution,
    Ticket,
)
from bot.storage.tables import (
    KnowledgeDraftRow,
    LearnedPhrasingRow,
    QuestionLogRow,
    Sessions,
    TicketRow,
    from_db_time,
    rows_affected,
    table_of,
    to_db_time,
)

_TICKETS = table_of(TicketRow)
_LEARNED = table_of(LearnedPhrasingRow)
_DRAFTS = table_of(KnowledgeDraftRow)
_LOG = table_of(QuestionLogRow)
# More open tickets than any circonscription has: /triage reads at most this many.
OPEN_READ_LIMIT = 5000


def _ticket(row: Any) -> Ticket:
    candidates = tuple((str(i), float(s)) for i, s in json.loads(row.candidates or "[]"))
    return Ticket(
        id=row.id,
        reason=Reason(row.reason),
        question=row.question,
        candidates=candidates,
        speaker_key=row.speaker_key,
        structure_id=row.structure_id,
        queue=row.queue,
        status=row.status,
        opened_at=from_db_time(row.opened_at),
        handled_at=from_db_time(row.handled_at) if row.handled_at else None,
        handled_by=row.handled_by,
        resolution=Resolution(row.resolution) if row.resolution else None,
        resolution_intent=row.resolution_intent,
    )


class TicketStore:
    """Tickets, taught phrasings, drafts and the question log."""

    def __init__(self, store: Sessions) -> None:
        self._store = store

    # -- tickets -------------------------------------------------------------------------
    def open(self, ticket: NewTicket) -> int:
        """Store a new open ticket; its id."""
        values = {
            "opened_at": to_db_time(ticket.opened_at),
            "reason": ticket.reason.value,
            "question": ticket.question,
            "candidates": json.dumps([list(c) for c in ticket.candidates]),
            "speaker_key": ticket.speaker_key,
            "structure_id": ticket.structure_id,
            "queue": ticket.queue,
            "status": OPEN,
            "notified": False,
        }
        with self._store.session() as session:
            result = session.execute(insert(_TICKETS).values(**values).returning(_TICKETS.c.id))
            return int(result.scalar_one())

    def open_in(self, queue: str, limit: int = OPEN_READ_LIMIT) -> list[Ticket]:
        """The queue's open tickets, oldest first."""
        query = (
            select(_TICKETS)
            .where(_TICKETS.c.queue == queue, _TICKETS.c.status == OPEN)
            .order_by(_TICKETS.c.id)
            .limit(limit)
        )
        with self._store.session() as session:
            return [_ticket(row) for row in session.execute(query)]

    def get(self, ids: Iterable[int]) -> list[Ticket]:
        """These tickets (those that still exist), by id."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        query = select(_TICKETS).where(_TICKETS.c.id.in_(wanted)).order_by(_TICKETS.c.id)
        with self._store.session() as session:
            return [_ticket(row) for row in session.execute(query)]

    def resolve(
        self,
        ids: Iterable[int],
        queue: str,
        resolution: Resolution,
        by: str,
        at: datetime,
        intent: str | None = None,
    ) -> list[Ticket]:
        """Handle the tickets still open in the eRun's queue, in one conditional UPDATE; the
        tickets this call took (a colleague may have handled the others meanwhile)."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        status = CLOSED if resolution == Resolution.CLOSED else ANSWERED
        statement = (
            update(_TICKETS)
            .where(_TICKETS.c.id.in_(wanted), _TICKETS.c.status == OPEN, _TICKETS.c.queue == queue)
            .values(
                status=status,
                handled_at=to_db_time(at),
                handled_by=by,
                resolution=resolution.value,
                resolution_intent=intent,
            )
            .returning(*_TICKETS.c)
        )
        with self._store.session() as session:
            return sorted((_ticket(row) for row in session.execute(statement)), key=_by_id)

    def reroute(self, ids: Iterable[int], speaker_key: str, structure_id: str, queue: str) -> int:
        """Send the speaker's still-open tickets to the queue of the school they named."""
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        statement = (
            update(_TICKETS)
            .where(
                _TICKETS.c.id.in_(wanted),
                _TICKETS.c.speaker_key == speaker_key,
                _TICKETS.c.status == OPEN,
            )
            .values(structure_id=structure_id, queue=queue, notified=False)
        )
        with self._store.session() as session:
            return rows_affected(session, statement)

    def take_unnotified(self, queue: str) -> list[Ticket]:
        """Mark the queue's open tickets not yet notified as notified, and return them: one
        notification per ticket across instances."""
        statement = (
            update(_TICKETS)
            .where(
                _TICKETS.c.queue == queue,
                _TICKETS.c.status == OPEN,
                _TICKETS.c.notified.is_(False),
            )
            .values(notified=True)
            .returning(*_TICKETS.c)
        )
        with self._store.session() as session:
            return sorted((_ticket(row) for row in session.execute(statement)), key=_by_id)

    def opened_since(self, queue: str, since: datetime) -> list[Ticket]:
        """The queue's tickets opened since that moment, whatever their status (/stats)."""
        query = (
            select(_TICKETS)
            .where(_TICKETS.c.queue == queue, _TICKETS.c.opened_at >= to_db_time(since))
            .order_by(_TICKETS.c.id)
        )
        with self._store.session() as session:
            return [_ticket(row) for row in session.execute(query)]

    def of_speaker(self, speaker_key: str) -> list[Ticket]:
        """The tickets the speaker opened, oldest first (an access request)."""
        query = select(_TICKETS).where(_TICKETS.c.speaker_key == speaker_key)
        with self._store.session() as session:
            return [_ticket(row) for row in session.execute(query.order_by(_TICKETS.c.id))]

    def erase_speaker(self, speaker_key: str) -> int:
        """Delete every ticket the speaker opened (/oublier); how many."""
        with self._store.session() as session:
            return rows_affected(
                session, delete(_TICKETS).where(_TICKETS.c.speaker_key == speaker_key)
            )

    # -- phrasings taught in chat --------------------------------------------------------
    def teach(self, texts: Sequence[str], intent: str, by: str, at: datetime) -> int:
        """Keep the phrasings as examples of the intent; how many were new."""
        with self._store.session() as session:
            known = set(
                session.scalars(select(_LEARNED.c.text).where(_LEARNED.c.intent == intent))
            )
        fresh = [t for t in dict.fromkeys(texts) if t not in known]
        if fresh:
            rows = [
                {
                    "text": text,
                    "intent": intent,
                    "taught_by": by,
                    "taught_at": to_db_time(at),
                    "exported": False,
                }
                for text in fresh
            ]
            with self._store.session() as session:
                session.execute(insert(_LEARNED), rows)
        return len(fresh)

    def learned(self) -> list[LearnedPhrasing]:
        """Every phrasing taught in chat, oldest first."""
        with self._store.session() as session:
            rows = session.execute(select(_LEARNED).order_by(_LEARNED.c.id))
            return [
                LearnedPhrasing(
                    r.id, r.text, r.intent, r.taught_by, from_db_time(r.taught_at), r.exported
                )
                for r in rows
            ]

    def learned_mark(self) -> tuple[int, int]:
        """How many taught phrasings there are and the latest id: what changes when an
        instance teaches (another instance then reloads them)."""
        with self._store.session() as session:
            count, latest = session.execute(
                select(func.count(), func.coalesce(func.max(_LEARNED.c.id), 0)).select_from(
                    _LEARNED
                )
            ).one()
            return int(count), int(latest)

    def mark_exported(self, ids: Iterable[int]) -> int:
        """The phrasings now written in knowledge/."""
        return self._mark_exported(_LEARNED, ids)

    def _mark_exported(self, table: Any, ids: Iterable[int]) -> int:
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        with self._store.session() as session:
            return rows_affected(
                session, update(table).where(table.c.id.in_(wanted)).values(exported=True)
            )

    # -- drafts ----------------------------------------------------------------------------
    def add_draft(self, question: str, answer: str, author: str, at: datetime) -> int:
        """Keep a new answer for review; its id."""
        values = {
            "question": question,
            "answer": answer,
            "author": author,
            "created_at": to_db_time(at),
            "exported": False,
        }
        with self._store.session() as session:
            result = session.execute(insert(_DRAFTS).values(**values).returning(_DRAFTS.c.id))
            return int(result.scalar_one())

    def drafts(self) -> list[KnowledgeDraft]:
        """Every draft, oldest first."""
        with self._store.session() as session:
            rows = session.execute(select(_DRAFTS).order_by(_DRAFTS.c.id))
            return [
                KnowledgeDraft(
                    r.id, r.question, r.answer, r.author, from_db_time(r.created_at), r.exported
                )
                for r in rows
            ]

    def mark_drafts_exported(self, ids: Iterable[int]) -> int:
        """The drafts now written for review."""
        return self._mark_exported(_DRAFTS, ids)

    # -- the question log ------------------------------------------------------------------
    def log_questions(
        self, questions: Sequence[tuple[datetime, str | None, QuestionOutcome, str | None]]
    ) -> None:
        """Count questions (when, intent, outcome, queue): no text, nothing personal."""
        rows = [
            {"at": to_db_time(at), "intent": intent, "outcome": outcome.value, "queue": queue}
            for at, intent, outcome, queue in questions
        ]
        if rows:
            with self._store.session() as session:
                session.execute(insert(_LOG), rows)

    def questions_since(self, queue: str | None, since: datetime) -> list[LoggedQuestionRow]:
        """The questions logged since that moment, in that queue (None: all)."""
        query = select(_LOG).where(_LOG.c.at >= to_db_time(since)).order_by(_LOG.c.id)
        if queue is not None:
            query = query.where(_LOG.c.queue == queue)
        with self._store.session() as session:
            return [
                LoggedQuestionRow(from_db_time(r.at), r.intent, QuestionOutcome(r.outcome))
                for r in session.execute(query)
            ]


def _by_id(ticket: Ticket) -> int:
    return ticket.id


def purge_tickets(session: Any, cut: datetime) -> tuple[int, int, int]:
    """Delete the tickets and logged questions older than the cut, and the taught phrasings
    already exported into knowledge/ (the files keep them): the counts."""
    moment = to_db_time(cut)
    tickets = rows_affected(session, delete(_TICKETS).where(_TICKETS.c.opened_at < moment))
    logged = rows_affected(session, delete(_LOG).where(_LOG.c.at < moment))
    learned = rows_affected(
        session,
        delete(_LEARNED).where(_LEARNED.c.exported.is_(True), _LEARNED.c.taught_at < moment),
    )
    return tickets, logged, learned
