"""Personal data: the notice at /start, /privacy, and /oublier (erase what is kept of the
speaker, after one confirmation button, exactly once)."""

from __future__ import annotations

import logging
import secrets

from bot.core.confirmation import withdraw
from bot.core.messages import Outcome
from bot.core.session import Session
from bot.core.state import ConversationState
from bot.settings import Settings
from intents.domain import Speaker
from intents.french import count
from intents.kb import escape
from intents.turn import Choice, RunIntent, Say

log = logging.getLogger(__name__)

# The payloads of the two buttons of /oublier: pressed, they come to pressed() (forms.press).
FORGET = "privacy.forget"
KEEP = "privacy.keep"
BUTTONS = (FORGET, KEEP)
FORGET_LABEL = "Effacer mes données"
KEEP_LABEL = "Ne rien effacer"

NOTICE = (
    "🔒 Je garde l'état de notre conversation ({days} jours au plus sans message) et, si vous "
    "reliez votre compte ENT, cette liaison. /privacy pour le détail, /oublier pour les "
    "effacer."
)

DETAIL = """<b>Vos données personnelles</b>

Ce que l'assistant garde, pourquoi et combien de temps :
• <b>L'état de notre conversation</b> (boutons affichés, question ou demande en attente, \
dernier sujet), rangé sous votre identifiant Telegram : pour continuer la conversation d'un \
message à l'autre. Effacé après {days} jours sans message.
• <b>La liaison avec votre compte ENT</b>, si vous avez envoyé /connexion : pour savoir qui \
vous êtes et ce que vous pouvez faire (direction, eRun). Gardée tant que le compte est relié ; \
/deconnexion ou /oublier la retire. Avec la connexion à l'ENT, les jetons que l'ENT donne \
sont gardés chiffrés, pour agir avec vos droits ; retirés de même.
• <b>Les questions transmises à l'eRun</b> (quand je ne sais pas répondre, ou à votre \
demande) : leur texte, où numéros de téléphone, adresses e-mail et INE sont masqués, votre \
école si elle est connue, l'heure et la suite donnée, pour qu'une personne vous réponde ici. \
Effacées après {days} jours.
• <b>Les codes de connexion erronés</b> (identifiant Telegram et heure) : pour arrêter qui \
essaierait de deviner un code. Effacés après {days} jours, comme les codes de connexion \
utilisés ou expirés (dont seule une empreinte est gardée).
• <b>Le journal des actions de la direction</b> (qui a demandé, confirmé, annulé quelle \
modification de l'annuaire, et quand) : pour retracer chaque changement de l'annuaire de \
l'école. Gardé {audit_days} jours.
• <b>L'annuaire de l'école</b>, importé de l'ENT (alimentation ONDE / AAF) : noms, profils, \
classes, groupes et état des comptes, seulement ce dont l'assistant se sert (ni date de \
naissance, ni lien entre parents et enfants). Remplacé à chaque import.

<b>Vos droits</b> (accès, rectification, effacement, opposition) :
• /oublier efface tout de suite l'état de la conversation, la liaison, les questions \
transmises et les codes erronés. \
Le journal de la direction est gardé, votre identifiant Telegram y est remplacé par un \
pseudonyme.
• Pour une copie de ce qui est gardé sur votre compte, une rectification ou toute question : \
{contact}. Le responsable de traitement est l'académie."""

PROMPT = """Voulez-vous que j'efface ce que je garde de vous ?
{items}

Le journal des actions de la direction est gardé ({audit_days} jours, pour retracer les \
modifications de l'annuaire) : votre identifiant Telegram y sera remplacé par un pseudonyme. \
<b>L'effacement est définitif.</b>"""


def notice(settings: Settings) -> str:
    """The one or two lines shown at /start."""
    return NOTICE.format(days=settings.retention_days)


def detail(settings: Settings) -> str:
    """The /privacy text: what is stored, why, how long, whom to ask, and /oublier."""
    return DETAIL.format(
        days=settings.retention_days,
        audit_days=settings.audit_retention_days,
        contact=escape(settings.privacy_contact),
    )


def with_notice(session: Session, outcome: Outcome) -> Outcome:
    """The /start answer followed by the privacy notice, as a message of its own."""
    outcome.replies.extend(session.outcome([Say(notice(session.engine.settings))]).replies)
    return outcome


def show(session: Session) -> Outcome:
    """/privacy."""
    session.intent = "privacy.notice"
    return session.text(detail(session.engine.settings))


def ask_to_forget(session: Session) -> Outcome:
    """/oublier: say what would be erased, and erase nothing before the button is pressed."""
    session.intent = "privacy.forget_ask"
    if not session.incoming.private_chat:
        return session.text(
            "Pour effacer vos données, écrivez-moi <code>/oublier</code> en message privé."
        )
    pending = " et la demande qui attend votre confirmation" if session.state.pending else ""
    items = [f"• l'état de notre conversation{pending} ;"]
    linked = session.services.accounts.login_for(session.incoming.speaker_key)
    if linked:
        items.append(f"• la liaison avec votre compte ENT « {escape(linked)} » ;")
    items.append("• les codes de connexion erronés envoyés depuis cette conversation.")
    text = PROMPT.format(
        items="\n".join(items), audit_days=session.engine.settings.audit_retention_days
    )
    return session.text(
        text, [Choice(FORGET_LABEL, RunIntent(FORGET)), Choice(KEEP_LABEL, RunIntent(KEEP))]
    )


def pressed(session: Session, payload: str) -> Outcome:
    """One of the two buttons of /oublier."""
    if payload == FORGET:
        return forget(session)
    session.intent = "privacy.keep"
    for button_id, button in list(session.state.buttons.items()):
        if isinstance(button.payload, RunIntent) and button.payload.intent in BUTTONS:
            del session.state.buttons[button_id]
    return session.outcome([Say("D'accord : rien n'a été effacé.")], edits=True)


def forget(session: Session) -> Outcome:
    """Erase the speaker's conversation state, account link and failed link attempts, keep
    the audit log under a pseudonym, and say what was done."""
    session.intent = "privacy.forget"
    key = session.incoming.speaker_key
    # Claimed first, like a confirmation: the stored state (which holds this button) is
    # deleted on condition that it is still the version read. Of two presses at once, one
    # deletes it; the other's delete finds nothing (StateConflict), and its retry from the
    # fresh state finds no button: the erasure runs once and is said once.
    session.forgotten = True
    session.save_state()
    pending = session.state.pending
    if pending is not None:
        # Its end is audited like any abandoned change, then pseudonymised with the rest.
        withdraw(session, pending)
    erased = session.services.accounts.erase_speaker(key)
    # The reminders: pending jobs withdrawn (their rows go with the daily purge), and the
    # weekly reminder's opt-in.
    reminders = session.services.jobs.cancel_owned(key, session.now)
    weekly = session.services.jobs.opt_out(key)
    # The questions handed to the eRun, with their texts (answered or not).
    tickets = session.services.tickets.erase_speaker(key)
    transport = key.split(":", 1)[0] if ":" in key else "inconnu"
    pseudonym = f"{transport}:anonyme-{secrets.token_hex(4)}"
    kept = session.services.audit.pseudonymise(key, pseudonym)
    session.engine.identities.forget(key)
    session.speaker = Speaker(key=key)
    session.state = ConversationState()
    log.info("a speaker's data was erased (/oublier)")
    lines = [
        "C'est fait. J'ai effacé :",
        "• l'état de notre conversation"
        + (" et la demande qui attendait votre confirmation (annulée)" if pending else "")
        + " ;",
    ]
    if erased.login:
        lines.append(
            f"• la liaison avec le compte ENT « {escape(erased.login)} » : cette conversation "
            "n'est plus reliée à aucun compte ;"
        )
    else:
        lines.append("• aucune liaison avec un compte ENT (il n'y en avait pas) ;")
    if reminders or weekly:
        lines.append(
            f"• vos rappels : {reminders} rappel(s) prévu(s)"
            + (", et le rappel du lundi (/rappels)" if weekly else "")
            + " ;"
        )
    if tickets:
        lines.append(
            f"• {count(tickets, 'question transmise', 'questions transmises')} à l'eRun, "
            "avec leur texte ;"
        )
    lines.append(f"• {_attempts(erased.failed_attempts)}.")
    if kept:
        lines.append(
            f"\nGardé : {kept} entrée(s) du journal des actions de la direction, pour retracer "
            f"les modifications de l'annuaire ({session.engine.settings.audit_retention_days} "
            f"jours) ; votre identifiant Telegram y est remplacé par « {escape(pseudonym)} »."
        )
    return session.outcome([Say("\n".join(lines))], edits=True)


def _attempts(count: int) -> str:
    """« 2 codes de connexion erronés », in French."""
    if count == 0:
        return "aucun code de connexion erroné (il n'y en avait pas)"
    if count == 1:
        return "1 code de connexion erroné"
    return f"{count} codes de connexion erronés"
