"""The jobs of the eRun's side: the batched notice of new tickets, and an answer delivered to
the person who asked (run by bot/core/job_runner.py, exactly once across instances)."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.core import jobs
from bot.core.job_session import sends, session_for
from bot.core.jobs import Delivery
from bot.core.session import Engine
from intents.domain import DirectoryFailure
from intents.french import count
from intents.handlers import registry
from intents.kb import escape
from intents.turn import Choice, RunIntent, Say

log = logging.getLogger(__name__)

# Questions quoted in one notice; /triage shows them all.
QUOTED = 5
QUOTE_CHARS = 300
# The button of the notice, answered in bot/core/erun.py.
TRIAGE_BUTTON = "erun.triage"


def quote(question: str) -> str:
    """A question as quoted back (escaped, shortened)."""
    short = question if len(question) <= QUOTE_CHARS else question[: QUOTE_CHARS - 1] + "…"
    return f"« {escape(short)} »"


def erun_speakers(engine: Engine, queue: str) -> list[tuple[str, str]]:
    """The linked chats (speaker key, login) of the eRuns of that circonscription."""
    directory = engine.services.directory
    found = []
    for link in engine.services.accounts.list_links():
        try:
            user = directory.user_by_login(link.login)
        except DirectoryFailure:  # the ENT knows no eRun (and reads nothing for a job)
            continue
        if user is None or not user.is_live or "ERUN" not in user.functions:
            continue
        home = directory.structure(user.home_structure) if user.home_structure else None
        if home is not None and home.circonscription == queue:
            found.append((link.speaker_key, link.login))
    return found


def notify_queue(engine: Engine, payload: jobs.NotifyQueue, now: datetime) -> list[Delivery]:
    """One message to each eRun of the queue about every ticket not yet notified."""
    fresh = engine.services.tickets.take_unnotified(payload.queue)
    if not fresh:
        return []
    eruns = erun_speakers(engine, payload.queue)
    if not eruns:
        log.warning(
            "%d ticket(s) in queue %r and no eRun linked to tell", len(fresh), payload.queue
        )
        return []
    lines = [f"• {quote(t.question)}" for t in fresh[:QUOTED]]
    if len(fresh) > QUOTED:
        lines.append(f"• … et {count(len(fresh) - QUOTED, 'autre')}")
    text = (
        f"🔔 {count(len(fresh), 'nouvelle question transmise', 'nouvelles questions transmises')}"
        f" pour la circonscription {escape(payload.queue)} :\n" + "\n".join(lines)
    )
    deliveries: list[Delivery] = []
    for speaker_key, login in eruns:
        session = session_for(engine, speaker_key, login, now)
        button = Choice("Trier les questions", RunIntent(TRIAGE_BUTTON))
        deliveries += sends(session, [Say(text, [button])])
    return deliveries


def answer_asker(engine: Engine, payload: jobs.AnswerAsker, now: datetime) -> list[Delivery]:
    """The eRun's answer, sent to the person who asked, their question quoted."""
    session = session_for(engine, payload.speaker_key, None, now)
    asked = quote(payload.question)
    if payload.reply is not None:
        text = (
            f"💬 <b>Réponse de l'eRun de votre circonscription</b> à votre question {asked} :"
            f"\n\n{escape(payload.reply)}"
        )
        return sends(session, [Say(text)])
    intent = payload.intent or ""
    spec = registry.spec(intent, session.kb.kind(intent) or "faq")
    if spec is None or intent not in session.kb.entries:
        log.error("answer to %s names an unknown intent %r", payload.speaker_key, intent)
        return []
    session.intent = intent
    response = spec.handler(session.turn(intent, "", {}))
    lead = Say(f"💬 L'eRun de votre circonscription a répondu à votre question {asked} :")
    return sends(session, [lead, *response.says])
