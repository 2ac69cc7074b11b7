"""Handing a question to a person: the ticket (masked), its queue (the circonscription of the
asker's school, else the default queue), the asker told in one line, the eRun notified.

Four things open a ticket: a message answered out of scope, a « Vouliez-vous dire… » whose
suggestions did not fit, an explicit request for a person (dialogue.human), and a 👎 on an
answer. eRuns handle them in bot/core/erun.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.core import jobs
from bot.core.masking import mask_personal_data
from bot.core.messages import Outcome
from bot.core.question_counter import MetQuestion, queue_for
from bot.core.session import Session
from bot.core.state import Handover
from bot.core.ticket_records import NewTicket, QuestionOutcome, Reason
from intents.domain import Role
from intents.kb import escape
from intents.nlu.analysis import OUT_OF_SCOPE, Analysis
from intents.nlu.normalize import fold
from intents.turn import Choice, RunIntent, SlotReading

# Button pseudo-intents of the asker's side (answered in bot/core/forms.press).
HELPFUL = "ticket.helpful"
NOT_HELPFUL = "ticket.not_helpful"
NONE_FITS = "ticket.none_fits"
BUTTONS = (HELPFUL, NOT_HELPFUL, NONE_FITS)
# A question shorter than this is no question (« ok », « ??? »): nobody is bothered with it.
MIN_WORDS = 2
# « je veux parler à quelqu'un » is a request alone; a message this long holds the question.
QUESTION_WORDS = 10
# « De quelle école s'agit-il ? » waits this long for its answer.
SCHOOL_ANSWER_LIFETIME = timedelta(minutes=30)
HANDED_LINE = (
    "📨 Je transmets votre question à l'eRun de votre circonscription : une personne vous "
    "répondra ici."
)
SCHOOL_QUESTION = (
    "De quelle école s'agit-il ? Donnez son nom et sa ville (par exemple « école Jean Jaurès "
    "à Lille ») : votre question ira à l'eRun de sa circonscription."
)


def worth_a_person(text: str) -> bool:
    """Enough words to be a question a person can answer."""
    return len([w for w in fold(text).split() if any(c.isalpha() for c in w)]) >= MIN_WORDS


def may_hand_over(session: Session) -> bool:
    """Tickets come from people the eRun serves, in a private chat (never from an eRun)."""
    return session.incoming.private_chat and session.speaker.role != Role.ERUN


def known_school(session: Session) -> str | None:
    """The asker's school: their account's, else the one they named in this conversation."""
    speaker = session.speaker
    if speaker.structures:
        return speaker.structures[0]
    return session.state.school


def queue_of(session: Session, structure_id: str | None) -> str:
    """The circonscription of that school, else the default queue."""
    return queue_for(session.services, session.engine.settings, structure_id)


def candidates_of(analysis: Analysis | None, kept: int = 3) -> tuple[tuple[str, float], ...]:
    """The assistant's best in-scope candidates, with their scores."""
    if analysis is None:
        return ()
    ranked = [c for c in analysis.ranking if c.intent != OUT_OF_SCOPE][:kept]
    return tuple((c.intent, round(float(c.confidence), 3)) for c in ranked)


def hand_over(
    session: Session,
    reason: Reason,
    question: str,
    candidates: Sequence[tuple[str, float]] = (),
) -> str:
    """Open a ticket for the speaker's question and say so, in French (one line, or two when
    the school is asked); the eRun is notified by a job, batched per minute."""
    school = known_school(session)
    queue = queue_of(session, school)
    ticket_id = session.services.tickets.open(
        NewTicket(
            reason=reason,
            question=mask_personal_data(question.strip())[:1000],
            candidates=tuple(candidates),
            speaker_key=session.incoming.speaker_key,
            structure_id=school,
            queue=queue,
            opened_at=session.now,
        )
    )
    session.question_outcome = QuestionOutcome.HANDED
    schedule_notification(session, queue)
    if school is None and session.state.school_asked is None:
        session.state.school_asked = Handover([ticket_id], session.now)
        return f"{HANDED_LINE}\n\n{SCHOOL_QUESTION}"
    return HANDED_LINE


def schedule_notification(session: Session, queue: str) -> None:
    """At most one message a minute per queue: the job of the coming minute gathers every
    ticket opened until it runs (one row per queue and minute, whichever instance asks)."""
    due = session.now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    key = f"notify:{queue}:{due.isoformat(timespec='minutes')}"
    jobs.schedule(session.services, jobs.NotifyQueue(queue), key, due, session.now)


def school_answer(session: Session, text: str) -> str | None:
    """The answer to « De quelle école s'agit-il ? »: the tickets go to that school's
    circonscription and the school is remembered. None when the message names no school
    (it is then read as a message of its own, and the question is not asked again)."""
    asked = session.state.school_asked
    if asked is None:
        return None
    session.state.school_asked = None
    if session.now - asked.at > SCHOOL_ANSWER_LIFETIME:
        return None
    structure = session.school_named(text, anywhere=True)
    if structure is None:
        return None
    session.state.school = structure.id
    moved = session.services.tickets.reroute(
        asked.tickets, session.incoming.speaker_key, structure.id, structure.circonscription
    )
    if moved:
        schedule_notification(session, structure.circonscription)
    session.intent = "ticket.school"
    session.confidence = 1.0
    return (
        f"Merci : votre question est transmise à l'eRun de la circonscription "
        f"{escape(structure.circonscription)} ({escape(structure.name)}). Il vous répondra ici."
    )


def feedback_choices(question: str, intent: str, confidence: float) -> list[Choice]:
    """👍 / 👎 under an answer; 👎 hands the question (carried by the button) to a person."""
    slots = {
        "question": SlotReading(value=mask_personal_data(question)[:1000]),
        "candidates": SlotReading(value=[f"{intent}={confidence:.3f}"]),
    }
    return [Choice("👍", RunIntent(HELPFUL, slots)), Choice("👎", RunIntent(NOT_HELPFUL, slots))]


def none_fits_choice(question: str, analysis: Analysis | None) -> Choice:
    """The way out of a « Vouliez-vous dire… » whose suggestions do not fit."""
    slots = {
        "question": SlotReading(value=mask_personal_data(question)[:1000]),
        "candidates": SlotReading(value=[f"{i}={s:.3f}" for i, s in candidates_of(analysis)]),
    }
    return Choice("Aucune de ces réponses", RunIntent(NONE_FITS, slots))


def pressed(session: Session, intent: str, slots: dict[str, SlotReading]) -> str:
    """A 👍, a 👎 or « Aucune de ces réponses »: the text of the reply."""
    session.intent = intent
    question = slots.get("question", SlotReading()).value
    scored = slots.get("candidates", SlotReading()).value
    text = question if isinstance(question, str) else ""
    candidates = _read_candidates(scored if isinstance(scored, list) else [])
    if intent == HELPFUL:
        return "Merci pour votre retour !"
    if not may_hand_over(session):
        return "Merci pour votre retour."
    reason = Reason.THUMBS_DOWN if intent == NOT_HELPFUL else Reason.UNRESOLVED
    lead = "Merci pour votre retour. " if intent == NOT_HELPFUL else ""
    return lead + hand_over(session, reason, text or "(question non conservée)", candidates)


def _read_candidates(values: Sequence[str]) -> list[tuple[str, float]]:
    found = []
    for value in values:
        intent, _, score = value.partition("=")
        try:
            found.append((intent, float(score)))
        except ValueError:
            continue
    return found


def awaited_answer(session: Session, text: str) -> Outcome | None:
    """The answer to what the assistant just asked the asker: the school of their question,
    or the question itself after « je veux parler à quelqu'un »; None otherwise."""
    school = school_answer(session, text)
    if school is not None:
        return session.text(school)
    wanted = session.state.question_wanted
    if wanted is None:
        return None
    session.state.question_wanted = None
    if session.now - wanted > SCHOOL_ANSWER_LIFETIME or not may_hand_over(session):
        return None
    session.intent, session.confidence = "dialogue.human", 1.0
    return session.text(hand_over(session, Reason.HUMAN, text))


def ask_for_person(session: Session, text: str) -> str | None:
    """After « je veux parler à quelqu'un »: the question handed over when the message holds
    one, else asked for. None where no ticket is opened (group chat, an eRun)."""
    if not may_hand_over(session):
        return None
    if len(fold(text).split()) >= QUESTION_WORDS:
        return hand_over(session, Reason.HUMAN, text)
    session.state.question_wanted = session.now
    return (
        "Quelle est votre question ? Écrivez-la ici en quelques phrases : je la transmets à "
        "l'eRun de votre circonscription, qui vous répondra ici."
    )


def met_question(session: Session) -> MetQuestion | None:
    """What /stats will count of this message, if it was a question."""
    outcome = session.question_outcome
    if outcome is None:
        return None
    intent = session.intent if session.intent not in (None, OUT_OF_SCOPE) else None
    return MetQuestion(session.now, intent, outcome, known_school(session))
