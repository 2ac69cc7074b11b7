"""The first decision on a message: unreadable, a button, a command, a form's answer, or a
question to understand."""

from __future__ import annotations

from bot.core import erun, tickets
from bot.core.confirmation import expire_stale, which_option
from bot.core.forms import continue_form, press
from bot.core.messages import Outcome
from bot.core.pipeline import understood
from bot.core.reminders import typed as typed_reminder
from bot.core.session import Session
from bot.core.slash import command

MAX_TEXT = 4000


def dispatch(session: Session) -> Outcome:
    """Route one incoming message to what answers it."""
    incoming = session.incoming
    if not incoming.private_chat and not incoming.addressed and incoming.press is None:
        return Outcome([])
    expire_stale(session)
    if incoming.unsupported:
        return session.text(
            "Je ne lis que les messages écrits : posez-moi votre question par écrit, "
            "par exemple « comment activer mon compte EduConnect ? »."
        )
    if incoming.press is not None:
        return press(session, incoming.press)
    text = (incoming.text or "").strip()
    if not text:
        return session.text(
            "Je n'ai reçu aucun texte. Écrivez votre question, par exemple "
            "« j'ai oublié mon mot de passe EduConnect »."
        )
    if len(text) > MAX_TEXT:
        return session.text(
            f"Votre message est trop long ({len(text)} caractères) : posez votre question "
            "en quelques phrases et je vous réponds."
        )
    if text.startswith("/"):
        return command(session, text)
    for answering in (erun.typed, tickets.awaited_answer):
        answered = answering(session, text)
        if answered is not None:
            return answered
    ambiguous = which_option(session, text)
    if ambiguous is not None:
        return ambiguous
    reminder = typed_reminder(session, text)
    if reminder is not None:
        return reminder
    if session.state.form is not None:
        answered = continue_form(session, session.state.form, text)
        if answered is not None:
            return answered
    return understood(session, text)
