"""« Confirmer » and « Annuler »: a pending change runs exactly once across processes (claimed
by a conditional write of the conversation state), after rights are checked again, in one
transaction with its audit entry."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from bot.core.messages import ActionOutcome, Outcome
from bot.core.reminders import after_done
from bot.core.rights import Verdict, may
from bot.core.session import Session
from bot.core.state import CONFIRM_WORDS, PendingChange
from bot.core.undo import offer as offer_undo
from bot.core.undo import prepare as prepare_undo
from intents.domain import DirectoryFailure
from intents.handlers import registry
from intents.kb import escape
from intents.nlu.normalize import fold
from intents.registry import Permission
from intents.turn import CancelChange, ConfirmChange, Say, SlotValue

log = logging.getLogger(__name__)

PENDING_LIFETIME = timedelta(minutes=10)


def lowered(title: str) -> str:
    """A title inside a sentence, as HTML: its first letter only lowered (« GAR » stays)."""
    return escape(title[:1].lower() + title[1:])


def _said(session: Session, text: str) -> Outcome:
    """A reply that replaces the message whose button was pressed."""
    return session.outcome([Say(text)], edits=True)


def confirm(
    session: Session, pending_id: str, args: dict[str, SlotValue] | None = None
) -> Outcome:
    """Carry out the pending change (with the `args` of the option chosen, if any), if it is
    still the one shown and still allowed."""
    pending = session.state.pending
    if pending is None or pending.id != pending_id:
        session.intent = "confirmation.stale"
        return _said(
            session,
            "Cette demande n'est plus en attente : elle a déjà été traitée, annulée ou "
            "remplacée. Rien de plus n'a été modifié.",
        )
    # Claim it: forget it and write the state, conditioned on the version read. Of several
    # processes pressing at once, one wins; the others' write fails (StateConflict), so they
    # handle the press again from the fresh state, find it gone and say so above. The claim,
    # the change and its audit entry commit together (Assistant.handle's transaction): a
    # process dying in between leaves the change pending, never done without its entry.
    session.state.pending = None
    session.save_state()
    intent = pending.intent
    session.intent, session.confidence = intent, 1.0
    if session.now - pending.at > PENDING_LIFETIME:
        _audit(session, pending, ActionOutcome.EXPIRED, "confirmation après 10 minutes")
        return _said(
            session,
            "Cette demande a expiré (plus de 10 minutes) : rien n'a été modifié. "
            "Redemandez-la si besoin.",
        )
    session.reread_speaker()
    spec = registry.spec(intent, "action")
    executor = registry.executor_for(intent)
    permission = spec.permission if spec else Permission.CHANGE_SCHOOL
    verdict = may(session.speaker, permission, pending.structure, session.incoming.private_chat)
    if spec is None or executor is None or verdict != Verdict.ALLOWED:
        _audit(session, pending, ActionOutcome.REFUSED, "droits insuffisants à l'exécution")
        return _said(
            session,
            "Vous n'avez plus les droits pour faire cette modification : rien n'a été modifié.",
        )
    turn = session.school_turn(intent, "", {}, pending.structure)
    chosen = pending.args if args is None else args
    try:
        # Undone alone on failure: the claim and the « failed » entry still commit.
        with session.services.savepoint():
            # What « Annuler cette action » will need, read before the change.
            undoable = prepare_undo(session, intent, pending.structure, chosen)
            response = executor(turn, chosen)
    except DirectoryFailure as failure:
        # The directory said why (the ENT refused, or did not do it). On the ENT nothing is
        # rolled back: only what the directory knows is said, never « rien n'a été modifié ».
        log.warning("change %s not carried out: %s", intent, failure.message)
        session.engine.understander.roster.forget()
        _audit(session, pending, ActionOutcome.FAILED, failure.message)
        return _said(session, f"⚠️ La modification n'a pas abouti. {escape(failure.message)}")
    except Exception:
        log.exception("change %s failed and was rolled back", intent)
        _audit(session, pending, ActionOutcome.FAILED, "erreur technique, annulé")
        return _said(
            session,
            "La modification a échoué à cause d'un problème technique : rien n'a été "
            "modifié. Réessayez plus tard ou contactez votre eRun.",
        )
    session.engine.understander.roster.forget()
    targets = response.targets or pending.targets
    if response.refusal:
        _audit(session, pending, ActionOutcome.REFUSED, response.refusal, targets)
    else:
        said = response.says[0].text if response.says else ""
        _audit(session, pending, ActionOutcome.DONE, said, targets)
        # The reminder offered after a block, the next day's GAR check: in this transaction.
        after_done(session, intent, pending.structure, response)
        # « Annuler cette action », for 10 minutes, where the ENT can give it back.
        offer_undo(session, pending.structure, undoable, response)
    return session.outcome(response, edits=True)


def cancel(session: Session, pending_id: str) -> Outcome:
    """Drop the pending change (« Annuler »)."""
    pending = session.state.pending
    session.intent = "confirmation.cancel"
    if pending is None or pending.id != pending_id:
        return _said(session, "Cette demande n'est plus en attente.")
    withdraw(session, pending)
    return _said(session, "C'est annulé : rien n'a été modifié.")


def expire_stale(session: Session) -> None:
    """A confirmation left unanswered for 10 minutes ends with the next message or press
    (the assistant has no timer): audited, said in one line, its buttons voided by the
    caller. Its own buttons pressed (or « oui » typed) are left to confirm() and cancel()."""
    pending = session.state.pending
    if pending is None or session.now - pending.at <= PENDING_LIFETIME:
        return
    pressed = session.incoming.press
    stored = session.state.button(pressed) if pressed is not None else None
    try:
        payload = stored.payload if stored is not None else None
    except (KeyError, TypeError, ValueError):  # a damaged stored button presses nothing
        payload = None
    if isinstance(payload, ConfirmChange | CancelChange) and payload.pending_id == pending.id:
        return
    session.state.pending = None
    _audit(session, pending, ActionOutcome.EXPIRED, "non confirmée dans les 10 minutes")
    session.notices.append(
        f"La demande en attente a expiré sans confirmation : "
        f"{lowered(session.kb.title(pending.intent))}. Rien n'a été modifié."
    )


def which_option(session: Session, text: str) -> Outcome | None:
    """« oui » to a proposal offering several ways to confirm: which way is not guessed."""
    pending = session.state.pending
    if pending is None or fold(text) not in CONFIRM_WORDS:
        return None
    labels = []
    # All kept buttons, not only the latest: another question may have been answered since.
    for button in session.state.buttons.values():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            payload = button.payload
            if isinstance(payload, ConfirmChange) and payload.pending_id == pending.id:
                labels.append(button.label)
    if len(labels) < 2:
        return None
    session.intent, session.confidence = "confirmation.which", 1.0
    quoted = [f"« {escape(label)} »" for label in labels]
    choices = ", ".join(quoted[:-1]) + " ou " + quoted[-1]
    return session.text(f"Précisez votre choix : {choices}. « Annuler » ne modifie rien.")


def withdraw(session: Session, pending: PendingChange) -> None:
    """The user gave up the pending change: forget it, and say so in the audit."""
    session.state.pending = None
    _audit(session, pending, ActionOutcome.CANCELLED, "annulé par l'utilisateur")


def _audit(
    session: Session,
    pending: PendingChange,
    outcome: ActionOutcome,
    detail: str,
    targets: list[str] | None = None,
) -> None:
    """Write the pending change's audit entry, and note on the session how the change ended
    (Assistant.handle puts it on the Outcome, which the channel counts: /metrics)."""
    session.ended = outcome
    session.audit(
        pending.intent,
        targets or pending.targets,
        outcome.value,
        detail,
        structure=pending.structure,
    )
