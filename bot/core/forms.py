"""Answers to what the assistant asked: a form waiting for a slot, and button presses."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.core import erun, privacy, reminders, tickets, undo
from bot.core.confirmation import cancel, confirm, lowered
from bot.core.messages import Outcome
from bot.core.pipeline import run_intent
from bot.core.session import Session, owner_tag
from bot.core.state import CANCEL_WORDS, Form
from intents.nlu.matcher import OUT_OF_SCOPE
from intents.nlu.normalize import fold
from intents.nlu.understanding import Understanding
from intents.turn import CancelChange, ConfirmChange, FillSlot, RunIntent, Say, SlotReading

FORM_LIFETIME = timedelta(minutes=30)


def continue_form(session: Session, form: Form, text: str) -> Outcome | None:
    """The typed answer to the form's question; None when the message is a request of its
    own (then the form is abandoned, said and audited: the latest message wins)."""
    state = session.state
    if session.now - form.at > FORM_LIFETIME:
        state.form = None
        return None
    if fold(text) in CANCEL_WORDS:
        state.form = None
        session.intent = "dialogue.cancel"
        return session.text("D'accord, j'abandonne cette demande. Rien n'a été modifié.")
    earlier = form.slots.get(form.awaiting) or SlotReading()
    filled = _picked(session, text) or _among_candidates(session, earlier, text)
    if filled is None:
        structure = session.structure_id()
        directory = session.services.directory if structure else None
        understander = session.engine.understander
        u = understander.understand(text, directory, structure)
        slot_value = understander.slots.fill(form.awaiting, text, directory, structure)
        if _stands_alone(u, answers_the_slot=slot_value is not None):
            state.form = None
            session.audit(form.intent, [], "superseded", "remplacée par un nouveau message")
            session.notices.append(
                f"J'abandonne la demande précédente : {lowered(session.kb.title(form.intent))}."
            )
            return None
        filled = slot_value or replace(earlier, value=None, query=text, unanswered=True)
    slots = dict(form.slots)
    slots[form.awaiting] = filled
    session.confidence = 1.0
    return run_intent(session, form.intent, text, slots)


def _stands_alone(u: Understanding, *, answers_the_slot: bool) -> bool:
    """A message that is a request or a question of its own, not an answer to the prompt."""
    if u.intent == OUT_OF_SCOPE or u.analysis is None:
        return False
    asked = u.analysis.cues.order or u.analysis.cues.howto or u.analysis.is_question
    return asked or (not answers_the_slot and u.confidence >= 0.7)


_ORDINALS = {
    "1": 0, "premier": 0, "premiere": 0, "1er": 0, "1ere": 0, "un": 0, "une": 0,
    "2": 1, "deuxieme": 1, "second": 1, "seconde": 1, "2e": 1, "2eme": 1, "deux": 1,
    "3": 2, "troisieme": 2, "3e": 2, "3eme": 2, "trois": 2,
    "4": 3, "quatrieme": 3, "4e": 3, "4eme": 3, "quatre": 3,
    "5": 4, "cinquieme": 4, "5e": 4, "5eme": 4, "cinq": 4,
}  # fmt: skip
_ORDINAL_FILLER = {"le", "la", "l", "c", "est", "plutot", "celle", "celui", "choix", "numero", "n"}


def _picked(session: Session, text: str) -> SlotReading | None:
    """« la première », « le 2 »: one of the options the prompt showed, by its position."""
    words = [w for w in fold(text).split() if w not in _ORDINAL_FILLER]
    if len(words) != 1 or words[0] not in _ORDINALS:
        return None
    options = [
        button.payload
        for button_id in session.state.last_buttons
        if (button := session.state.buttons.get(button_id)) is not None
        and isinstance(button.payload, FillSlot)
    ]
    position = _ORDINALS[words[0]]
    return SlotReading(value=options[position].value) if position < len(options) else None


def _among_candidates(session: Session, reading: SlotReading, text: str) -> SlotReading | None:
    """A name typed at « which one? »: matched against the candidates offered, first names
    included (« Julien » among the two Leroy)."""
    if not reading.candidates:
        return None
    words = {w for w in fold(text).split() if len(w) >= 3}
    if not words:
        return None
    directory = session.services.directory
    matching = []
    for candidate in reading.candidates:
        user = directory.user(candidate)
        if user is not None and words <= set(fold(user.full_name).split()):
            matching.append(candidate)
    return SlotReading(value=matching[0]) if len(matching) == 1 else None


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
    try:
        payload = stored.payload
    except (KeyError, TypeError, ValueError):  # a damaged stored button: as if expired
        session.intent = "button.unknown"
        return session.text("Ce bouton n'est plus valide. Reposez votre question si besoin.")
    match payload:
        case ConfirmChange(pending_id, args):
            return confirm(session, pending_id, args)
        case CancelChange(pending_id):
            return cancel(session, pending_id)
        case FillSlot(slot, value):
            form = session.state.form
            if form is None:
                return session.text("Cette demande n'est plus en cours. Reposez-la si besoin.")
            slots = dict(form.slots)
            slots[slot] = SlotReading(value=value)
            return run_intent(session, form.intent, "", slots)
        case RunIntent(intent, slots, structure) if intent in privacy.BUTTONS:
            return privacy.pressed(session, intent)
        case RunIntent(intent, slots, structure) if intent in erun.BUTTONS:
            return erun.pressed(session, intent, dict(slots))
        case RunIntent(intent, slots, structure) if intent in tickets.BUTTONS:
            return session.outcome([Say(tickets.pressed(session, intent, dict(slots)))])
        case RunIntent(intent, slots, structure) if intent in reminders.BUTTONS:
            return reminders.pressed(session, slots, structure)
        case RunIntent(intent) if intent in undo.BUTTONS:
            return undo.pressed(session, payload)
        case RunIntent(intent, slots, structure):
            if structure in session.speaker.structures:
                session.chosen_structure = structure
            return run_intent(session, intent, "", dict(slots))
