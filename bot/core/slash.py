"""Slash commands: the table's intents, /start deep links, linking an account, /annuler."""

from __future__ import annotations

from bot.core import erun, privacy, reminders, stats_command
from bot.core.commands import Builtin, command_named
from bot.core.confirmation import withdraw
from bot.core.messages import Button, Outcome
from bot.core.pipeline import run_intent
from bot.core.services import EntSignIn
from bot.core.session import Session
from bot.storage.accounts import AccountError
from intents.domain import Role, Speaker
from intents.kb import escape

DEEP_LINK_ALIASES = {
    "educonnect": "educonnect.activate",
    "activer": "educonnect.activate",
    "motdepasse": "educonnect.forgot_credentials",
    "identifiants": "accounts.identifiers",
    "pocket": "mobile.one_pocket",
    "application": "mobile.one_pocket",
    "rentree": "accounts.rentree",
    "aide": "dialogue.help",
}


def command(session: Session, text: str) -> Outcome:
    """A message that starts with « / »."""
    head, _, rest = text[1:].partition(" ")
    rest = rest.strip()
    found = command_named(head)
    if found is None:
        name = head.split("@", 1)[0]
        return session.text(
            f"Je ne connais pas la commande /{escape(name[:30])}. Tapez /aide pour voir ce que "
            "je sais faire."
        )
    session.confidence = 1.0
    if found.builtin == Builtin.START:
        return start(session, rest)
    if found.builtin == Builtin.LINK:
        return link(session, rest)
    if found.builtin == Builtin.UNLINK:
        return unlink(session)
    if found.builtin == Builtin.CANCEL:
        return cancel_all(session)
    if found.builtin == Builtin.PRIVACY:
        return privacy.show(session)
    if found.builtin == Builtin.FORGET:
        return privacy.ask_to_forget(session)
    if found.builtin == Builtin.REMINDERS:
        return reminders.weekly(session, rest)
    if found.builtin == Builtin.TRIAGE:
        return erun.show_triage(session)
    if found.builtin == Builtin.STATS:
        return stats_command.show(session)
    assert found.intent is not None
    slots = {}
    if session.kb.kind(found.intent) in ("action", "query"):
        speaker = session.speaker
        structure = session.structure_id() if speaker.role in (Role.DIRECTOR, Role.ERUN) else None
        slots = session.engine.understander.slots.read(
            found.intent, rest, session.services.directory if structure else None, structure
        )
        session.entities = {n: r.value for n, r in slots.items() if r.value is not None}
    return run_intent(session, found.intent, rest, slots)


def start(session: Session, payload: str) -> Outcome:
    """/start, with an optional deep-link topic (t.me/<bot>?start=educonnect)."""
    key = payload.strip().lower()
    intent = DEEP_LINK_ALIASES.get(key) or key.replace("-", "_").replace("_", ".", 1)
    entry = session.kb.entries.get(intent)
    if entry is not None and entry.answer:
        return privacy.with_notice(session, run_intent(session, intent, "", {}))
    return privacy.with_notice(session, run_intent(session, "dialogue.greet", "", {}))


def link(session: Session, code: str) -> Outcome:
    """/connexion CODE: tie this chat to a directory account."""
    session.intent = "account.link"
    if not session.incoming.private_chat:
        return session.text(
            "Envoyez votre code de connexion en message privé, jamais dans un groupe."
        )
    sign_in = session.engine.sign_in
    if sign_in is not None:
        return _sign_in_to_the_ent(session, sign_in)
    if not code:
        return session.text(
            "Envoyez le code reçu de votre eRun ainsi : <code>/connexion CODE</code>."
        )
    key = session.incoming.speaker_key
    try:
        login = session.services.accounts.redeem(key, code.strip(), session.now)
    except AccountError as error:  # its message is written for the user, in French
        return session.text(escape(str(error)))
    identities = session.engine.identities
    identities.forget(key)
    session.speaker = identities.speaker(key, login, fresh=True)
    name = escape(session.speaker.display_name or login)
    if session.speaker.role == Role.DIRECTOR:
        structure_id = session.structure_id()
        structure = session.services.directory.structure(structure_id) if structure_id else None
        school = structure.name if structure else ""
        return session.text(
            f"Bienvenue {name} : votre compte est relié, directeur ou directrice de "
            f"<b>{escape(school)}</b>. Dites par exemple « où en est l'école pour la "
            "rentrée ? » ou « bloque les parents ». Tapez /aide pour tout voir."
        )
    return session.text(f"Bienvenue {name} : votre compte est relié.")


def _sign_in_to_the_ent(session: Session, sign_in: EntSignIn) -> Outcome:
    """With the ENT's directory: a button to the ENT's own sign-in page (OAuth2); the
    assistant then acts with the person's own rights in the ENT."""
    url = sign_in.start(session.incoming.speaker_key)
    outcome = session.text(
        "Pour relier votre compte, connectez-vous à l'ENT avec le bouton ci-dessous (lien "
        "valable 10 minutes, pour vous seul). L'assistant agira ensuite avec vos propres "
        "droits dans l'ENT ; <code>/deconnexion</code> les lui retire."
    )
    outcome.replies[-1].buttons.append(Button("Se connecter à l'ENT", "ent-sign-in", url=url))
    return outcome


def unlink(session: Session) -> Outcome:
    """/deconnexion: untie this chat from its account."""
    session.intent = "account.unlink"
    key = session.incoming.speaker_key
    sign_in = session.engine.sign_in
    signed_out = sign_in.unlink(key) if sign_in is not None else False
    if not session.services.accounts.unlink(key) and not signed_out:
        return session.text("Aucun compte n'était relié à cette conversation.")
    session.state.pending = None
    session.state.form = None
    session.engine.identities.forget(key)
    session.speaker = Speaker(key=key)
    return session.text("Votre compte n'est plus relié à l'assistant. À bientôt !")


def cancel_all(session: Session) -> Outcome:
    """/annuler: drop the pending change or the form waiting for an answer."""
    state = session.state
    session.intent = "dialogue.cancel"
    if state.erun_task is not None or state.question_wanted is not None:
        state.erun_task = state.question_wanted = None
        return session.text("D'accord, j'abandonne : rien n'a été envoyé.")
    if state.pending is not None:
        withdraw(session, state.pending)
        return session.text("C'est annulé : rien n'a été modifié.")
    if state.form is not None:
        state.form = None
        return session.text("D'accord, j'abandonne cette demande.")
    return session.text("Il n'y avait rien en cours à annuler.")
