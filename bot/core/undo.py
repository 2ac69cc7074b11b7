"""« Annuler cette action »: after a detach, a pre-deletion or an attach, the change can be
given back for 10 minutes, as far as the ENT allows it (back in the school without its
classes and groups, out of the class, out of pre-deletion). The press runs once: it takes its
button out of the conversation state and writes it, conditioned on the version read, before
anything is done (as « Confirmer » does), then checks the rights again."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.messages import Outcome
from bot.core.rights import Verdict, may
from bot.core.session import Session
from intents.domain import Directory, DirectoryFailure, NotFound, User
from intents.kb import escape
from intents.registry import Permission
from intents.turn import Choice, Response, RunIntent, Say, SlotReading, Slots, SlotValue

log = logging.getLogger(__name__)

# The payload of the button (forms.press hands it to pressed()).
UNDO = "undo.run"
BUTTONS = (UNDO,)
LABEL = "Annuler cette action"
LIFETIME = timedelta(minutes=10)

# The directory's undo operation for each change that has one.
REATTACH = "reattach"
UNLINK = "unlink_class"
RESTORE = "restore"


# -- the offer, under a done change (bot/core/confirmation.confirm) ----------------------------
@dataclass(frozen=True)
class Undoable:
    """What a change's undo needs, read before the change: after a detach, the ENT no
    longer shows the account to the director."""

    operation: str
    users: tuple[User, ...]
    class_id: str = ""
    class_name: str = ""


def prepare(
    session: Session, intent: str, structure: str, args: dict[str, SlotValue]
) -> Undoable | None:
    """Before a change that has an undo, the accounts (and class) it is about; None for the
    others (no read)."""
    directory = session.services.directory
    if intent == "action.detach_teacher":
        user = directory.user(str(args.get("teacher", "")))
        return Undoable(REATTACH, (user,)) if user is not None else None
    if intent == "action.attach_teacher":
        user = directory.user(str(args.get("teacher", "")))
        class_id = str(args.get("class", ""))
        found = next((c for c in directory.classes(structure) if c.id == class_id), None)
        if user is None or found is None:
            return None
        return Undoable(UNLINK, (user,), class_id, found.name)
    if intent == "action.remove_manual_account":
        named = args.get("accounts") or args.get("account") or []
        ids = [named] if isinstance(named, str) else named
        users = tuple(u for i in ids if (u := directory.user(i)) is not None)
        return Undoable(RESTORE, users) if users else None
    return None


def offer(session: Session, structure: str, undoable: Undoable | None, response: Response) -> None:
    """Add « Annuler cette action » under a done change the ENT can undo (a deletion for good
    cannot be: nothing is offered for it)."""
    if undoable is None or response.refusal:
        return
    users = list(undoable.users)
    if undoable.operation == RESTORE:
        # Only a pre-deletion can be undone: an account deleted for good is gone.
        directory = session.services.directory
        now = [directory.user(u.id) for u in users if u.id in response.targets]
        users = [u for u in now if u is not None and u.pre_deleted and not u.deleted]
    if not users:
        return
    names = [u.full_name for u in users]
    slots: Slots = {
        "op": SlotReading(value=undoable.operation),
        "of": SlotReading(value=session.intent or ""),
        "users": SlotReading(value=[u.id for u in users]),
        "names": SlotReading(value=names),
        "at": SlotReading(value=session.now.isoformat()),
    }
    who = escape(", ".join(names))
    if undoable.operation == REATTACH:
        what = (
            f"remet {who} dans l'école, mais pas dans ses classes ni ses groupes : l'ENT ne "
            "les garde pas"
        )
    elif undoable.operation == UNLINK:
        slots["class"] = SlotReading(value=undoable.class_id)
        slots["class_name"] = SlotReading(value=undoable.class_name)
        what = f"retire {who} de la classe {escape(undoable.class_name)}"
    else:
        whose = "du compte" if len(users) == 1 else "des comptes"
        what = f"annule la pré-suppression {whose} de {who}"
    text = f"Une erreur ? Pendant 10 minutes, « {LABEL} » {what}."
    response.says.append(Say(text, [Choice(LABEL, RunIntent(UNDO, slots, structure))]))


# -- the press ---------------------------------------------------------------------------------
def pressed(session: Session, payload: RunIntent) -> Outcome:
    """« Annuler cette action »: claimed once, refused after 10 minutes or without the rights,
    carried out by the directory, audited as `undo.<intent>`."""
    slots = payload.slots
    of = _one(slots, "of")
    action = f"undo.{of}"
    session.intent, session.confidence = action, 1.0
    # The claim: of two presses at once, one writes the state without this button; the
    # other's conditional write fails (StateConflict) and its retry finds no button.
    for button_id, button in list(session.state.buttons.items()):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            if button.payload == payload:
                del session.state.buttons[button_id]
    session.state.last_buttons = [
        b for b in session.state.last_buttons if b in session.state.buttons
    ]
    session.save_state()
    structure = payload.structure
    users = _many(slots, "users")
    names = _many(slots, "names")
    try:
        at = datetime.fromisoformat(_one(slots, "at"))
    except ValueError:
        return _said(session, "Ce bouton n'est plus valide : rien n'a été modifié.")
    if session.now - at > LIFETIME:
        _audit(
            session, action, users, "refused", "annulation demandée après 10 minutes", structure
        )
        return _said(
            session,
            "Il est trop tard pour annuler cette action (plus de 10 minutes) : rien n'a été "
            "modifié. Si besoin, demandez la modification inverse par un nouveau message.",
        )
    session.reread_speaker()
    verdict = may(
        session.speaker, Permission.CHANGE_SCHOOL, structure, session.incoming.private_chat
    )
    if verdict != Verdict.ALLOWED or structure is None:
        _audit(session, action, users, "refused", "droits insuffisants à l'annulation", structure)
        return _said(
            session,
            "Vous n'avez plus les droits pour annuler cette action : rien n'a été modifié.",
        )
    operation = _one(slots, "op")
    done: list[str] = []
    try:
        for user_id in users:
            # One account at a time: those given back before a failure stay given back, on
            # the ENT (no rollback) as in the local copy, and are said so.
            with session.services.savepoint():
                _run(session.services.directory, operation, user_id, structure, slots)
            done.append(user_id)
    except (DirectoryFailure, NotFound) as failure:
        message = failure.message if isinstance(failure, DirectoryFailure) else str(failure)
        log.warning("undo of %s not carried out: %s", of, message)
        session.engine.understander.roster.forget()
        given_back = [n for u, n in zip(users, names, strict=False) if u in done]
        before = (
            f"Annulation faite pour {', '.join(given_back)}, mais pas pour la suite : "
            if given_back
            else ""
        )
        _audit(session, action, users, "failed", before + message, structure)
        return _said(session, f"⚠️ L'annulation n'a pas abouti. {escape(before)}{escape(message)}")
    except Exception:
        log.exception("undo of %s failed", of)
        _audit(session, action, users, "failed", "erreur technique", structure)
        return _said(
            session,
            "L'annulation a échoué à cause d'un problème technique. Vérifiez l'annuaire de "
            "l'école ; si besoin, demandez la modification inverse par un nouveau message ou "
            "contactez votre eRun.",
        )
    session.engine.understander.roster.forget()
    text = _done_text(operation, names, _one(slots, "class_name"))
    _audit(session, action, done, "done", text, structure)
    return _said(session, text)


def _run(directory: Directory, operation: str, user_id: str, structure: str, slots: Slots) -> None:
    """One account's undo, by the directory (the ENT's routes, or the local copy)."""
    if operation == REATTACH:
        directory.reattach_to_structure(user_id, structure)
    elif operation == UNLINK:
        directory.unlink_from_class(user_id, _one(slots, "class"))
    elif operation == RESTORE:
        directory.restore_user(user_id)
    else:
        raise ValueError(f"unknown undo operation {operation!r}")


def _done_text(operation: str, names: list[str], class_name: str) -> str:
    who = escape(", ".join(names))
    if operation == REATTACH:
        return (
            f"↩️ C'est annulé : {who} fait de nouveau partie de l'école. Ses classes et ses "
            "groupes ne sont pas rendus (l'ENT ne les garde pas) : refaites ces rattachements "
            "si besoin."
        )
    if operation == UNLINK:
        return f"↩️ C'est annulé : la classe {escape(class_name)} n'est plus celle de {who}."
    if len(names) > 1:
        return f"↩️ C'est annulé : les comptes de {who} ne sont plus en pré-suppression."
    return f"↩️ C'est annulé : le compte de {who} n'est plus en pré-suppression."


def _one(slots: Slots, name: str) -> str:
    reading = slots.get(name)
    value = reading.value if reading else None
    return value if isinstance(value, str) else ""


def _many(slots: Slots, name: str) -> list[str]:
    reading = slots.get(name)
    value = reading.value if reading else None
    return list(value) if isinstance(value, list) else []


def _said(session: Session, text: str) -> Outcome:
    """A reply that replaces the offer whose button was pressed."""
    return session.outcome([Say(text)], edits=True)


def _audit(
    session: Session,
    action: str,
    targets: list[str],
    outcome: str,
    detail: str,
    structure: str | None,
) -> None:
    session.audit(action, targets, outcome, detail, structure=structure)
