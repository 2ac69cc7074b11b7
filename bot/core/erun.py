"""The eRun's commands: /triage (open questions grouped), and for a group « Répondre »,
« C'est la FAQ… », « Nouvelle réponse » and « Clore »; /stats.

Rights are checked once, at the gate (`allowed`), before anything of this module runs, and
again by the storage's conditional update: a ticket is handled only if it is still open and
in the eRun's own queue (circonscription).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta

from rapidfuzz import fuzz

from bot.core import jobs
from bot.core.messages import Outcome
from bot.core.rights import Verdict, may
from bot.core.session import Session
from bot.core.state import ErunTask
from bot.core.ticket_jobs import TRIAGE_BUTTON, quote
from bot.core.ticket_records import OPEN, Resolution, Ticket
from bot.core.triage import OpenQuestion, triage
from intents.french import count
from intents.kb import escape
from intents.nlu.analysis import OUT_OF_SCOPE
from intents.nlu.normalize import fold
from intents.nlu.taught import TEACHABLE_KINDS
from intents.registry import Permission
from intents.turn import Choice, RunIntent, SlotReading

GROUP = "erun.group"
REPLY = "erun.reply"
FAQ = "erun.faq"
TEACH = "erun.teach"
DRAFT = "erun.draft"
CLOSE = "erun.close"
BUTTONS = (TRIAGE_BUTTON, GROUP, REPLY, FAQ, TEACH, DRAFT, CLOSE)
# Groups listed by /triage, and given a button.
GROUPS_SHOWN = 10
GROUP_BUTTONS = 8
QUESTIONS_SHOWN = 8
TOPICS_OFFERED = 6
TASK_LIFETIME = timedelta(minutes=30)


def allowed(session: Session) -> Outcome | None:
    """The one rights check of this module: None when the speaker is an eRun in a private
    chat, else the refusal (audited)."""
    speaker = session.speaker
    verdict = may(
        speaker, Permission.HANDLE_TICKETS, session.structure_id(), session.incoming.private_chat
    )
    if verdict == Verdict.ALLOWED:
        return None
    session.audit("erun.tickets", [], "refused", f"droits insuffisants ({speaker.role})")
    if verdict == Verdict.PRIVATE_ONLY:
        return session.text("Les questions transmises se traitent en message privé seulement.")
    return session.text(
        "Cette commande est réservée aux eRun de circonscription : elle montre les questions "
        "que l'assistant leur a transmises."
    )


def queue(session: Session) -> str:
    """The eRun's circonscription (that of their home school)."""
    structure_id = session.speaker.structures[0]
    structure = session.services.directory.structure(structure_id)
    return structure.circonscription if structure is not None else structure_id


def show_triage(session: Session) -> Outcome:
    """/triage: the open questions of the circonscription, grouped, most frequent first."""
    session.intent = "erun.triage"
    refused = allowed(session)
    if refused is not None:
        return refused
    mine = queue(session)
    tickets = session.services.tickets.open_in(mine)
    if not tickets:
        return session.text(
            f"Aucune question en attente pour la circonscription {escape(mine)}. 🎉"
        )
    questions = [OpenQuestion(t.id, t.question, t.top_candidate) for t in tickets]
    groups = triage(questions, session.kb.lexicon)
    lines = [
        f"<b>{count(len(tickets), 'question ouverte', 'questions ouvertes')}</b> pour la "
        f"circonscription {escape(mine)}, {count(len(groups), 'groupe')} :"
    ]
    choices = []
    for number, group in enumerate(groups[:GROUPS_SHOWN], start=1):
        hint = (
            f" — piste : {escape(session.kb.title(group.top_candidate))}"
            if group.top_candidate in session.kb.entries
            else ""
        )
        lines.append(f"<b>{number}.</b> {group.count}× {quote(group.representative)}{hint}")
        if number <= GROUP_BUTTONS:
            label = f"{number}. {_short(group.representative)}"
            choices.append(Choice(label, RunIntent(GROUP, _ids_slot(group.ticket_ids))))
    if len(groups) > GROUPS_SHOWN:
        lines.append(f"… et {count(len(groups) - GROUPS_SHOWN, 'autre groupe')}.")
    lines.append("\nChoisissez un groupe pour y répondre.")
    return session.text("\n".join(lines), choices)


def pressed(session: Session, intent: str, slots: dict[str, SlotReading]) -> Outcome:
    """A button of the eRun's side."""
    session.intent = intent
    refused = allowed(session)
    if refused is not None:
        return refused
    if intent == TRIAGE_BUTTON:
        return show_triage(session)
    ids = _ids(slots)
    if intent == GROUP:
        return _show_group(session, ids)
    if intent == REPLY:
        return _ask(session, "reply", ids)
    if intent == DRAFT:
        return _ask(session, "draft", ids)
    if intent == FAQ:
        return _offer_topics(session, ids)
    if intent == TEACH:
        topic = slots.get("intent", SlotReading()).value
        return _teach(session, ids, topic if isinstance(topic, str) else "")
    return _close(session, ids)


def typed(session: Session, text: str) -> Outcome | None:
    """The eRun's message after « Répondre », « Nouvelle réponse » or a search; None when no
    such task waits (or it is too old: then the message is read as usual)."""
    task = session.state.erun_task
    if task is None:
        return None
    if session.now - task.at > TASK_LIFETIME:
        session.state.erun_task = None
        return None
    refused = allowed(session)
    if refused is not None:
        session.state.erun_task = None
        return refused
    session.confidence = 1.0
    if task.kind == "search":
        session.intent = "erun.search"
        return _offer_topics(session, task.tickets, words=text)
    session.state.erun_task = None
    return _answer(session, task, text)


# -- a group -----------------------------------------------------------------------------------
def _show_group(session: Session, ids: list[int]) -> Outcome:
    tickets = _open(session, ids)
    if not tickets:
        return _gone(session)
    lines = [f"<b>{count(len(tickets), 'question')}</b> :"]
    directory = session.services.directory
    for ticket in tickets[:QUESTIONS_SHOWN]:
        school = directory.structure(ticket.structure_id) if ticket.structure_id else None
        where = escape(school.name) if school else "école inconnue"
        lines.append(f"• {quote(ticket.question)} ({where})")
    if len(tickets) > QUESTIONS_SHOWN:
        lines.append(f"• … et {count(len(tickets) - QUESTIONS_SHOWN, 'autre')}")
    topics = _candidate_topics(session, tickets)
    if topics:
        titles = ", ".join(escape(session.kb.title(t)) for t in topics[:3])
        lines.append(f"\nPistes de l'assistant : {titles}.")
    slot = _ids_slot(t.id for t in tickets)
    choices = [
        Choice("Répondre", RunIntent(REPLY, slot)),
        Choice("C'est la FAQ…", RunIntent(FAQ, slot)),
        Choice("Nouvelle réponse", RunIntent(DRAFT, slot)),
        Choice("Clore", RunIntent(CLOSE, slot)),
    ]
    return session.text("\n".join(lines), choices)


def _ask(session: Session, kind: str, ids: list[int]) -> Outcome:
    tickets = _open(session, ids)
    if not tickets:
        return _gone(session)
    session.state.erun_task = ErunTask(kind, [t.id for t in tickets], session.now)
    people = count(len({t.speaker_key for t in tickets}), "personne")
    if kind == "reply":
        return session.text(
            f"Écrivez votre réponse : je l'envoie aux {people} qui ont posé ces questions, "
            "avec leur question. (/annuler pour abandonner)"
        )
    return session.text(
        f"Écrivez la nouvelle réponse : je l'envoie aux {people} qui ont posé ces questions, "
        "et je la garde comme brouillon de fiche, relu avant d'entrer dans la base. "
        "(/annuler pour abandonner)"
    )


def _answer(session: Session, task: ErunTask, text: str) -> Outcome:
    """Send the eRun's reply (or new answer) to each asker still waiting."""
    resolution = Resolution.REPLY if task.kind == "reply" else Resolution.DRAFT
    session.intent = f"erun.{resolution.value}"
    won = _resolve(session, task.tickets, resolution)
    if not won:
        return _gone(session)
    for ticket in won:
        _deliver(session, ticket, reply=text)
    lines = [f"✅ Réponse envoyée : {_people(won)}."]
    if resolution == Resolution.DRAFT:
        draft = session.services.tickets.add_draft(
            won[0].question, text, _who(session), session.now
        )
        lines.append(
            f"Gardée comme brouillon de fiche n° {draft}, à relire : l'équipe l'exporte avec "
            "<code>python -m bot knowledge export-learned</code>."
        )
    lines += _lost_line(task.tickets, won)
    return session.text("\n".join(lines))


# -- « C'est la FAQ… » -----------------------------------------------------------------------
def _offer_topics(session: Session, ids: list[int], words: str = "") -> Outcome:
    tickets = _open(session, ids)
    if not tickets:
        session.state.erun_task = None
        return _gone(session)
    topics = _search(session, words) if words else _candidate_topics(session, tickets)
    session.state.erun_task = ErunTask("search", [t.id for t in tickets], session.now)
    slot = _ids_slot(t.id for t in tickets)
    choices = [
        Choice(session.kb.title(topic), RunIntent(TEACH, {**slot, "intent": SlotReading(topic)}))
        for topic in topics[:TOPICS_OFFERED]
    ]
    if words and not choices:
        return session.text(
            f"Aucun sujet ne correspond à « {escape(words)} ». Essayez d'autres mots "
            "(par exemple « mot de passe » ou « GAR »), ou /annuler."
        )
    lead = "Les sujets trouvés :" if words else "Quelle fiche répond à ces questions ?"
    return session.text(f"{lead} Ou écrivez quelques mots pour chercher un autre sujet.", choices)


def _teach(session: Session, ids: list[int], topic: str) -> Outcome:
    """The askers get the topic's answer; their phrasings become its examples at once."""
    entry = session.kb.entries.get(topic)
    if entry is None or not entry.answer or session.kb.kind(topic) not in TEACHABLE_KINDS:
        return session.text("Ce sujet n'existe plus dans la base. Choisissez-en un autre.")
    won = _resolve(session, ids, Resolution.FAQ, intent=topic)
    session.state.erun_task = None
    if not won:
        return _gone(session)
    texts = [t.question for t in won]
    session.services.tickets.teach(texts, topic, _who(session), session.now)
    understander = session.engine.understander
    for text in texts:
        try:
            understander.learn(text, topic)
        except ValueError:  # nothing to learn in it (« ??? »): the askers get the answer
            continue
    for ticket in won:
        _deliver(session, ticket, intent=topic)
    title = escape(session.kb.title(topic))
    lines = [
        f"✅ {_people(won).capitalize()} reçoivent la fiche « {title} ».",
        f"J'ai appris {count(len(set(texts)), 'formulation')} : la prochaine fois, je réponds "
        "moi-même.",
        *_lost_line(ids, won),
    ]
    return session.text("\n".join(lines))


def _candidate_topics(session: Session, tickets: Sequence[Ticket]) -> list[str]:
    """The assistant's candidates over the tickets, by summed score, teachable ones only."""
    scores: dict[str, float] = defaultdict(float)
    for ticket in tickets:
        for intent, score in ticket.candidates:
            scores[intent] += score
    ranked = sorted(scores, key=lambda i: -scores[i])
    return [i for i in ranked if _teachable(session, i)]


def _search(session: Session, words: str) -> list[str]:
    """Topics for the eRun's words: what the assistant understands of them, then titles."""
    found: list[str] = []
    analysis = session.engine.understander.understand(words).analysis
    if analysis is not None:
        found += [c.intent for c in analysis.ranking[:4] if c.intent != OUT_OF_SCOPE]
    wanted = fold(words)
    closeness = {
        i: fuzz.partial_ratio(wanted, fold(session.kb.title(i))) for i in session.kb.entries
    }
    found += [i for i in sorted(closeness, key=lambda i: -closeness[i]) if closeness[i] >= 70]
    return [i for i in dict.fromkeys(found) if _teachable(session, i)]


def _teachable(session: Session, intent: str) -> bool:
    entry = session.kb.entries.get(intent)
    return session.kb.kind(intent) in TEACHABLE_KINDS and entry is not None and bool(entry.answer)


# -- closing -----------------------------------------------------------------------------------
def _close(session: Session, ids: list[int]) -> Outcome:
    won = _resolve(session, ids, Resolution.CLOSED)
    session.state.erun_task = None
    if not won:
        return _gone(session)
    lines = [f"Clos : {count(len(won), 'question')}, sans réponse envoyée.", *_lost_line(ids, won)]
    return session.text("\n".join(lines))


# -- helpers -----------------------------------------------------------------------------------
def _open(session: Session, ids: Sequence[int]) -> list[Ticket]:
    """The tickets still open in the eRun's queue (another queue's are never shown)."""
    mine = queue(session)
    return [t for t in session.services.tickets.get(ids) if t.status == OPEN and t.queue == mine]


def _resolve(
    session: Session, ids: Sequence[int], resolution: Resolution, intent: str | None = None
) -> list[Ticket]:
    """Take the tickets (the conditional update re-checks queue and status), audited."""
    won = session.services.tickets.resolve(
        ids, queue(session), resolution, _who(session), session.now, intent
    )
    if won:
        detail = f"{resolution.value}" + (f" : {intent}" if intent else "")
        session.audit(f"erun.{resolution.value}", [str(t.id) for t in won], "done", detail)
    return won


def _deliver(
    session: Session, ticket: Ticket, *, reply: str | None = None, intent: str | None = None
) -> None:
    """The answer goes by a job due now, committed with the ticket's change: it is sent once,
    even if this process stops right after."""
    payload = jobs.AnswerAsker(ticket.speaker_key, ticket.question, reply, intent)
    key = f"answer:{ticket.id}"
    jobs.schedule(session.services, payload, key, session.now, session.now)
    session.jobs_due = True


def _gone(session: Session) -> Outcome:
    return session.text(
        "Ces questions ont déjà été traitées (par vous ou un collègue) ou ne sont plus "
        "ouvertes. Tapez /triage pour voir celles qui restent."
    )


def _lost_line(asked: Sequence[int], won: Sequence[Ticket]) -> list[str]:
    lost = len(set(asked)) - len(won)
    if lost <= 0:
        return []
    return [f"({count(lost, 'question')} déjà traitée{'s' if lost > 1 else ''} entre-temps.)"]


def _people(tickets: Sequence[Ticket]) -> str:
    return count(len({t.speaker_key for t in tickets}), "personne")


def _who(session: Session) -> str:
    return session.speaker.login or session.speaker.key


def _short(text: str, size: int = 28) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _ids_slot(ids: Iterable[int]) -> dict[str, SlotReading]:
    return {"tickets": SlotReading(value=[str(i) for i in ids])}


def _ids(slots: dict[str, SlotReading]) -> list[int]:
    value = slots.get("tickets", SlotReading()).value
    if not isinstance(value, list):
        return []
    return [int(v) for v in value if v.isdigit()]
