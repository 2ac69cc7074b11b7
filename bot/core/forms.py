"""Answers to what the assistant asked: a form waiting for a slot, and button presses."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.core.confirmation import cancel, confirm
from bot.core.messages import Outcome
from bot.core.pipeline import run_intent
from bot.core.session import Session, owner_tag
from bot.core.state import CANCEL_WORDS, Form
from intents.nlu.matcher import OUT_OF_SCOPE
from intents.nlu.normalize import fold
from intents.turn import CancelChange, ConfirmChange, FillSlot, RunIntent, SlotReading

FORM_LIFETIME = timedelta(minutes=30)


def continue_form(session: Session, form: Form, text: str) -> Outcome | None:
    """The typed answer to the form's question; None when the message is about something else."""
    state = session.state
    if session.now - form.at > FORM_LIFETIME:
        state.form = None
        return None
    if fold(text) in CANCEL_WORDS:
        state.form = None
        session.intent = "dialogue.cancel"
        return session.text("D'accord, j'abandonne cette demande. Rien n'a été modifié.")
    structure = session.structure_id()
    directory = session.services.directory if structure else None
    understander = session.engine.understander
    filled = understander.fill_slot(form.awaiting, text, directory, structure)
    if filled is None:
        # Not a value for the slot: maybe another question altogether.
        u = understander.understand(text, directory, structure)
        if u.intent not in (OUT_OF_SCOPE, form.intent) and u.confidence >= 0.7:
            state.form = None
            return None
        earlier = form.slots.get(form.awaiting) or SlotReading()
        filled = replace(earlier, value=None, query=text, unanswered=True)
    slots = dict(form.slots)
    slots[form.awaiting] = filled
    session.confidence = 1.0
    return run_intent(session, form.intent, text, slots)


def press(session: Session, button_id: str) -> Outcome:
    """A button of an earlier reply, known by its opaque id or the label of a latest one."""
    stored = session.state.button(button_id)
    if stored is None:
        session.intent = "button.unknown"
        tag = button_id.split(".", 1)[0] if "." in button_id else None
        if tag is not None and tag != owner_tag(session.incoming.speaker_key):
            return session.text(
                "Ce bouton a été proposé à quelqu'un d'autre : seule la personne qui a fait la "
                "demande peut y répondre."
            )
        return session.text(
            "Ce bouton n'est plus valide (demande expirée ou déjà traitée). Reposez votre "
            "question si besoin."
        )
    session.confidence = 1.0
    match stored.payload:
        case ConfirmChange(pending_id):
            return confirm(session, pending_id)
        case CancelChange(pending_id):
            return cancel(session, pending_id)
        case FillSlot(slot, value):
            form = session.state.form
            if form is None:
                return session.text("Cette demande n'est plus en cours. Reposez-la si besoin.")
            slots = dict(form.slots)
            slots[slot] = SlotReading(value=value)
            return run_intent(session, form.intent, "", slots)
        case RunIntent(intent, slots, structure):
            if structure in session.speaker.structures:
                session.chosen_structure = structure
            return run_intent(session, intent, "", dict(slots))
