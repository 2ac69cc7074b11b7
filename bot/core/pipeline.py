"""From an understood message to the handler's reply: rights, forms and proposals."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace

from bot.core import tickets
from bot.core.confirmation import lowered
from bot.core.messages import Outcome
from bot.core.rights import Verdict, may
from bot.core.session import Session
from bot.core.state import Form, PendingChange
from bot.core.ticket_records import QuestionOutcome, Reason
from intents.domain import Role
from intents.handlers import registry
from intents.kb import escape
from intents.nlu.matcher import OUT_OF_SCOPE, Analysis
from intents.nlu.understanding import Understanding
from intents.registry import Permission
from intents.turn import (
    CancelChange,
    Choice,
    ConfirmChange,
    Response,
    RunIntent,
    Say,
    Slots,
)

CONFIRM_LABEL = "Confirmer"
CANCEL_LABEL = "Annuler"
LINK_HINT = (
    "Pour que l'assistant agisse sur l'annuaire de votre école, la direction demande un code à "
    "son eRun puis l'envoie ici en privé : <code>/connexion CODE</code>."
)
ENT_LINK_HINT = (
    "Pour que l'assistant agisse sur l'annuaire de votre école, la direction se connecte à "
    "l'ENT ici, en privé, avec <code>/connexion</code> : il agit alors avec ses propres droits."
)
SCHOOL_KINDS = ("action", "query")
FOLLOW_UP = re.compile(r"^\s*(?:et|mais|sinon|puis)\b", re.IGNORECASE)
HUMAN = "dialogue.human"
FALLBACK_TOPICS = ("educonnect.activate", "educonnect.forgot_credentials", "accounts.rentree")


def understood(session: Session, text: str) -> Outcome:
    """A typed message read on its own: intent, slots, then the handler."""
    speaker = session.speaker
    if speaker.role == Role.ERUN and len(speaker.structures) > 1:
        named = session.school_named(text)
        session.chosen_structure = named.id if named else None
    structure = session.structure_id() if speaker.role in (Role.DIRECTOR, Role.ERUN) else None
    directory = session.services.directory if structure else None
    understander = session.engine.understander
    u = understander.understand(text, directory, structure)
    last = session.state.last_topic
    if last is not None and FOLLOW_UP.match(text) and not u.questions:
        # « et pour les débloquer ? » is read after the topic just answered.
        entry = session.kb.entries[last]
        context = entry.context or entry.title
        after = understander.understand(text, directory, structure, topic=context)
        if after.intent != OUT_OF_SCOPE and (
            u.intent == OUT_OF_SCOPE or after.confidence > u.confidence
        ):
            u = after
    session.intent, session.confidence = u.intent, u.confidence
    session.entities = u.entities
    if u.intent == OUT_OF_SCOPE:
        return out_of_scope(session, u.analysis, text)
    if u.ambiguous:
        return did_you_mean(session, u, text)
    session.question_outcome = QuestionOutcome.ANSWERED
    elsewhere = _another_school(session, u, text)
    if elsewhere is not None:
        return elsewhere
    if u.questions:
        # Several questions: each answered, in the order asked.
        outcomes = [run_intent(session, topic, text, {}) for topic in u.questions]
        session.intent = u.intent
        merged = outcomes[0]
        for more in outcomes[1:]:
            merged.replies.extend(more.replies)
        return merged
    return run_intent(session, u.intent, text, u.slots, offer=u.offer)


def _another_school(session: Session, u: Understanding, text: str) -> Outcome | None:
    """A director who asks about another school than their own is told why nothing is done
    (« il est reparti à Pasteur » about a teacher of the school is no such request)."""
    intent = u.intent
    if session.speaker.role != Role.DIRECTOR or session.kb.kind(intent) not in SCHOOL_KINDS:
        return None
    if any(r.value is not None for name, r in u.slots.items() if name != "profiles"):
        return None
    named = session.school_named(text, anywhere=True)
    if named is None or named.id in session.speaker.structures:
        return None
    session.audit(intent, [], "refused", f"autre école : {named.id}")
    return session.text(
        f"Vous êtes à la direction de votre école seulement : je n'agis ni ne lis l'annuaire "
        f"de « {escape(named.name)} ». C'est sa direction qui peut le faire, ou l'eRun de sa "
        "circonscription qui peut le consulter."
    )


def run_intent(
    session: Session, intent: str, text: str, slots: Slots, *, offer: RunIntent | None = None
) -> Outcome:
    """Check the speaker's rights once, then run the handler of that intent."""
    session.intent = intent
    spec = registry.spec(intent, session.kb.kind(intent) or "faq")
    if spec is None:
        return out_of_scope(session, None)
    structure = session.structure_id()
    verdict = may(session.speaker, spec.permission, structure, session.incoming.private_chat)
    entry = session.kb.entries.get(intent)
    if (
        verdict == Verdict.DENIED
        and session.speaker.role in (Role.PUBLIC, Role.PARENT)
        and entry is not None
        and entry.families
    ):
        # « qu'est-ce qu'il me reste à faire pour la rentrée ? » from a parent: their steps.
        return run_intent(session, entry.families, text, {})
    if verdict != Verdict.ALLOWED:
        return denial(session, verdict, spec.permission, intent)
    if (
        spec.permission == Permission.READ_SCHOOL
        and session.speaker.role == Role.ERUN
        and len(session.speaker.structures) > 1
        and session.chosen_structure is None
    ):
        return which_school(session, intent)
    response = spec.handler(session.turn(intent, text, slots, offer=offer))
    if intent == HUMAN:
        asked = tickets.ask_for_person(session, text)
        if asked is not None and response.says:
            response.says[-1].text += f"\n\n{asked}"
    elif (
        session.kb.kind(intent) == "faq"
        and text
        and not response.awaiting
        and response.says
        and tickets.may_hand_over(session)
    ):
        # 👍 / 👎 under every answer of the base: 👎 hands the question to a person.
        response.says[-1].choices.extend(
            tickets.feedback_choices(text, intent, session.confidence)
        )
    return after_handler(session, intent, slots, response)


def after_handler(session: Session, intent: str, slots: Slots, response: Response) -> Outcome:
    state = session.state
    if response.awaiting:
        # What earlier messages named stays; words that named nothing are not carried over.
        kept = {name: replace(r, query=None) for name, r in slots.items()}
        state.form = Form(intent, response.awaiting, kept, session.now)
    else:
        state.form = None
    if response.refusal:
        session.audit(intent, response.targets, "refused", response.refusal)
    if response.proposal is not None:
        return propose(session, intent, response)
    if session.kb.entries.get(intent) and session.kb.entries[intent].answer:
        state.last_topic = intent
    return session.outcome(response)


def propose(session: Session, intent: str, response: Response) -> Outcome:
    """Show the change and keep it pending until « Confirmer »."""
    proposal = response.proposal
    structure = session.structure_id()
    assert proposal is not None and structure is not None
    replaced = session.state.pending
    if replaced is not None:
        session.audit(
            replaced.intent,
            replaced.targets,
            "superseded",
            "remplacée par une nouvelle demande",
            structure=replaced.structure,
        )
        # Its buttons are taken away (Assistant.handle): say why in one line.
        session.notices.append(
            f"J'abandonne la demande précédente : {lowered(session.kb.title(replaced.intent))}."
        )
    pending_id = secrets.token_hex(4)
    session.state.pending = PendingChange(
        pending_id, intent, proposal.args, proposal.targets, structure, session.now
    )
    says = list(response.says)
    says.append(
        Say(
            proposal.summary + "\n\n<i>Je n'applique rien sans votre confirmation "
            "(valable 10 minutes).</i>",
            [
                *(
                    [Choice(o.label, ConfirmChange(pending_id, o.args)) for o in proposal.options]
                    or [Choice(CONFIRM_LABEL, ConfirmChange(pending_id))]
                ),
                Choice(CANCEL_LABEL, CancelChange(pending_id)),
            ],
        )
    )
    outcome = session.outcome(says)
    # The channel reports which message carries these buttons (Assistant.delivered).
    outcome.replies[-1].key = pending_id
    return outcome


def denial(session: Session, verdict: Verdict, permission: Permission, intent: str) -> Outcome:
    """Why the speaker cannot do this here, and how it is done."""
    role = session.speaker.role
    if verdict == Verdict.PRIVATE_ONLY:
        return session.text(
            "Pour agir sur l'annuaire de l'école, écrivez-moi en message privé : je "
            "n'effectue ni ne confirme aucune modification dans un groupe."
        )
    if role == Role.ERUN and permission == Permission.CHANGE_SCHOOL:
        lead = (
            "En tant qu'eRun, vous pouvez consulter l'état des écoles de votre "
            "circonscription ; les modifications de l'annuaire sont faites par la direction "
            "de l'école."
        )
    elif role == Role.DIRECTOR:
        lead = "Cette action n'est pas possible depuis votre compte."
    else:
        lead = (
            "Seule la direction de l'école peut faire cette action, depuis la console "
            "d'administration de l'ENT ou ici après avoir relié son compte. Voici comment "
            "faire :"
        )
    session.audit(intent, [], "refused", f"droits insuffisants ({role})")
    says = [Say(lead)]
    entry = session.kb.entries.get(intent)
    howto = entry.howto if entry else None
    if howto and howto in session.kb.entries:
        turn = session.turn(howto, "", {})
        says.append(Say(turn.render(howto), turn.see_also(session.kb.entries[howto].related)))
    if role not in (Role.DIRECTOR, Role.ERUN):
        says.append(Say(LINK_HINT if session.engine.sign_in is None else ENT_LINK_HINT))
    return session.outcome(says)


def which_school(session: Session, intent: str) -> Outcome:
    """An eRun follows several schools: ask which one, with a button each."""
    choices = []
    for structure_id in session.speaker.structures[:8]:
        structure = session.services.directory.structure(structure_id)
        label = structure.name if structure else structure_id
        choices.append(Choice(label, RunIntent(intent, structure=structure_id)))
    return session.text("Pour quelle école de votre circonscription ?", choices)


def out_of_scope(session: Session, analysis: Analysis | None, question: str = "") -> Outcome:
    session.intent = OUT_OF_SCOPE
    session.question_outcome = QuestionOutcome.DECLINED
    entries = session.kb.entries
    nearest: list[str] = []
    if analysis is not None:
        nearest = [
            c.intent for c in analysis.ranking if c.intent in entries and entries[c.intent].answer
        ][:3]
    for default in FALLBACK_TOPICS:
        if default not in nearest and len(nearest) < 3:
            nearest.append(default)
    choices = [Choice(session.kb.title(i), RunIntent(i)) for i in nearest]
    text = (
        "Désolé, je ne sais pas répondre à cette question : je connais les questions de "
        "rentrée sur l'ENT ONE (EduConnect, comptes, données et partages, actions de la "
        "direction). Peut-être l'un de ces sujets ?"
    )
    if tickets.may_hand_over(session) and tickets.worth_a_person(question):
        handed = tickets.hand_over(
            session, Reason.OUT_OF_SCOPE, question, tickets.candidates_of(analysis)
        )
        text = text.replace(" Peut-être l'un de ces sujets ?", "")
        text += f"\n\n{handed}\n\nEn attendant, peut-être l'un de ces sujets ?"
    elif session.speaker.role != Role.ERUN:
        text += "\n\nIl vous reste des questions ? Contactez votre eRun de circonscription."
    return session.text(text, choices)


def did_you_mean(session: Session, u: Understanding, question: str = "") -> Outcome:
    session.question_outcome = QuestionOutcome.SUGGESTED
    choices = [Choice(session.kb.title(c), RunIntent(c, u.slots)) for c in u.choices]
    if question and tickets.may_hand_over(session):
        choices.append(tickets.none_fits_choice(question, u.analysis))
    return session.text("Vouliez-vous dire…", choices)
