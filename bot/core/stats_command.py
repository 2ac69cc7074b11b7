"""/stats for an eRun: the questions of their circonscription over 7 and 30 days, as a
table and a small chart (rendered by bot/core/stats.py)."""

from __future__ import annotations

from datetime import timedelta

from bot.core import erun
from bot.core.messages import Outcome
from bot.core.session import Session
from bot.core.stats import LoggedQuestion, TicketTiming, build_report

WINDOW = timedelta(days=30)


def show(session: Session) -> Outcome:
    """/stats: refused to anyone but an eRun (the module's one gate, erun.allowed)."""
    session.intent = "erun.stats"
    refused = erun.allowed(session)
    if refused is not None:
        return refused
    # This process's latest counts first (other instances write theirs every few seconds).
    session.engine.questions.flush(session.services, session.engine.settings)
    queue = erun.queue(session)
    since = session.now - WINDOW
    store = session.services.tickets
    questions = [
        LoggedQuestion(q.at, q.intent, q.outcome.value)
        for q in store.questions_since(queue, since)
    ]
    timings = [
        TicketTiming(
            t.opened_at,
            t.handled_at,
            t.resolution.value if t.resolution else None,
            t.question,
            t.top_candidate,
        )
        for t in store.opened_since(queue, since)
    ]
    titles = {intent: session.kb.title(intent) for intent in session.kb.entries}
    report = build_report(questions, timings, session.now, intent_titles=titles)
    outcome = session.text(report.text)
    outcome.replies[-1].image = report.chart_png
    return outcome
