"""The conversation side of scheduled jobs: the reminder offered after a block, « rappelle-moi
de débloquer les parents le 4 septembre », the GAR check announced after the GAR change, and
/rappels (the weekly checklist's opt-in). Rights are checked here with the one rule
(bot/core/rights.py); the jobs themselves are in bot/core/jobs.py."""

from __future__ import annotations

import re
from datetime import date, timedelta

from bot.core import jobs
from bot.core.messages import Outcome
from bot.core.rights import Verdict, may
from bot.core.session import Session
from intents.domain import Role
from intents.kb import escape
from intents.nlu.normalize import fold
from intents.registry import Permission
from intents.turn import Choice, Response, RunIntent, Say, SlotReading, Slots

# The payload of the « Me le rappeler le … » button (forms.press hands it to pressed()).
REMIND = "reminder.unblock_at"
BUTTONS = (REMIND,)

MONTHS = {
    "janvier": 1, "janv": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "avril": 4,
    "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9,
    "sept": 9, "sep": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11,
    "decembre": 12, "dec": 12,
}  # fmt: skip
MONTH_NAMES = [
    "", "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
    "octobre", "novembre", "décembre",
]  # fmt: skip
WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]

# The document: the ONDE switch comes « juste après la rentrée des classes » (early
# September) and the pupils' and parents' accounts arrive « dans la foulée »; only then is
# unblocking useful. It gives no calendar date, so the default is 4 September, a few days
# after the rentrée, the date the académie's own example uses.
DEFAULT_DAY = (9, 4)
# A block made after that day (the switch is past): reminded a week later by default.
LATE_DEFAULT = timedelta(days=7)

_REQUEST = re.compile(r"\brappel(?:le|lez|ez|er)?\b.*\bd[eé]bloqu", re.IGNORECASE)
_WORD_DATE = re.compile(r"\b(\d{1,2})(?:er)?\s+(" + "|".join(MONTHS) + r")\b(?:\s+(\d{4}))?")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?\b")


# -- dates -------------------------------------------------------------------------------------
def french_day(day: date, today: date) -> str:
    """« 4 septembre », « 1er octobre 2027 » (the year only when it is not this one)."""
    number = "1er" if day.day == 1 else str(day.day)
    year = f" {day.year}" if day.year != today.year else ""
    return f"{number} {MONTH_NAMES[day.month]}{year}"


def parse_day(text: str, today: date) -> date | None:
    """The day a French text names (« le 4 septembre », « 04/09 », « demain », « lundi »); a
    day without its year is the next one to come; None when it names no valid day."""
    folded = fold(text)
    words = folded.split()
    if "apres demain" in folded:
        return today + timedelta(days=2)
    if "demain" in words:
        return today + timedelta(days=1)
    for index, name in enumerate(WEEKDAYS):
        if name in words:
            return today + timedelta(days=(index - today.weekday() - 1) % 7 + 1)
    found = _WORD_DATE.search(folded)
    numbers: tuple[str, str, str | None] | None = None
    if found:
        numbers = (found.group(1), str(MONTHS[found.group(2)]), found.group(3))
    elif found := _NUMERIC_DATE.search(folded):
        numbers = (found.group(1), found.group(2), found.group(3))
    if numbers is None:
        return None
    day, month, year = numbers
    try:
        if year is not None:
            full = int(year) + (2000 if len(year) == 2 else 0)
            return date(full, int(month), int(day))
        this_year = date(today.year, int(month), int(day))
    except ValueError:  # 31 février, 14/13…
        return None
    return this_year if this_year >= today else this_year.replace(year=today.year + 1)


def default_unblock_day(today: date) -> date:
    """When to remind a director who blocked the families (see DEFAULT_DAY)."""
    usual = date(today.year, *DEFAULT_DAY)
    return usual if today < usual else today + LATE_DEFAULT


# -- after a confirmed change (bot/core/confirmation.confirm) ---------------------------------
def after_done(session: Session, intent: str, structure: str, response: Response) -> None:
    """What a done change offers next: the unblock reminder after a block of the families,
    the next day's check after the GAR change (scheduled in the change's transaction)."""
    if response.refusal:
        return
    if intent == "action.block":
        day = default_unblock_day(session.now.date())
        label = f"Me le rappeler le {french_day(day, session.now.date())}"
        choice = Choice(
            label, RunIntent(REMIND, {"date": SlotReading(value=day.isoformat())}, structure)
        )
        response.says.append(
            Say(
                "Voulez-vous un rappel pour les débloquer après la bascule ONDE ? Ou écrivez "
                "par exemple « rappelle-moi de débloquer les parents le 10 septembre ».",
                [choice],
            )
        )
    elif intent == "action.gar_managers":
        due = jobs.tomorrow_at(session.now, jobs.GAR_CHECK_AT)
        key = session.incoming.speaker_key
        jobs.schedule(
            session.services,
            jobs.GarCheck(key, session.login, structure),
            jobs.gar_key(key, structure, due.date()),
            due,
            session.now,
        )
        response.says.append(
            Say(
                "Demain à 9 h, je vérifierai dans l'annuaire que tous les enseignants sont bien "
                "dans le groupe « Resp-Affect-GAR », et je vous le dirai."
            )
        )


# -- the unblock reminder ------------------------------------------------------------------------
def typed(session: Session, text: str) -> Outcome | None:
    """« rappelle-moi de débloquer les parents le 4 septembre »; None for any other text."""
    if not _REQUEST.search(fold(text)):
        return None
    session.intent, session.confidence = "reminder.unblock", 1.0
    structure = session.structure_id()
    refused = _refused(session, Permission.CHANGE_SCHOOL, structure)
    if refused is not None or structure is None:
        return refused
    folded = fold(text)
    profiles = [p for p, w in (("Relative", "parent"), ("Student", "eleve")) if w in folded]
    today = session.now.astimezone(jobs.PARIS).date()
    day = parse_day(text, today)
    if day is None:
        return session.text(
            "Je n'ai pas compris la date du rappel. Écrivez-la ainsi : « rappelle-moi de "
            "débloquer les parents le 4 septembre » (ou le 04/09). Aucun rappel n'a été "
            "programmé."
        )
    return _remind(session, structure, day, profiles or ["Relative"])


def pressed(session: Session, slots: Slots, structure: str | None) -> Outcome:
    """« Me le rappeler le 4 septembre », pressed under the done reply of a block."""
    session.intent, session.confidence = "reminder.unblock", 1.0
    reading = slots.get("date")
    refused = _refused(session, Permission.CHANGE_SCHOOL, structure)
    if refused is not None or structure is None:
        return refused or session.text("Ce bouton n'est plus valide.")
    try:
        day = date.fromisoformat(str(reading.value if reading else ""))
    except ValueError:
        return session.text("Ce bouton n'est plus valide. Écrivez la date du rappel.")
    return _remind(session, structure, day, ["Relative"], edits=True)


def _remind(
    session: Session, structure: str, day: date, profiles: list[str], *, edits: bool = False
) -> Outcome:
    """Schedule (or move) the unblock reminder of this director and school."""
    today = session.now.astimezone(jobs.PARIS).date()
    due = jobs.paris_at(day, jobs.REMINDER_AT)
    if day <= today or due <= session.now:
        example = french_day(today + timedelta(days=7), today)
        return session.text(
            f"Le {french_day(day, today)} est déjà passé : donnez une date à venir, par exemple "
            f"« rappelle-moi de débloquer les parents le {example} ». Aucun rappel n'a été "
            "programmé."
        )
    key = session.incoming.speaker_key
    payload = jobs.UnblockReminder(key, session.login, structure, profiles)
    jobs.schedule(
        session.services, payload, jobs.unblock_key(key, structure), due, session.now, replace=True
    )
    who = "les parents" if profiles == ["Relative"] else "les comptes bloqués"
    return session.outcome(
        [
            Say(
                f"⏰ C'est noté : le {french_day(day, today)} à 8 h, je vous rappellerai de "
                f"débloquer {who}, avec un bouton pour le faire."
            )
        ],
        edits=edits,
    )


# -- /rappels ------------------------------------------------------------------------------------
def weekly(session: Session, argument: str) -> Outcome:
    """/rappels: turn the Monday checklist on or off (toggle, or « on » / « off » / « état »),
    and say where it stands."""
    session.intent = "reminder.weekly"
    structure = session.structure_id()
    refused = _refused(session, Permission.READ_SCHOOL, structure)
    if refused is not None:
        return refused
    key = session.incoming.speaker_key
    store = session.services.jobs
    active = store.opted_in(key) is not None
    wanted = fold(argument)
    if wanted in ("etat", "statut", "status", "?"):
        turn_on = active
    elif wanted in ("on", "oui", "activer", "active", "marche"):
        turn_on = True
    elif wanted in ("off", "non", "desactiver", "arreter", "arret", "stop"):
        turn_on = False
    elif wanted:
        return session.text(
            "Tapez <code>/rappels</code> pour activer ou arrêter le rappel du lundi, "
            "<code>/rappels etat</code> pour savoir s'il est actif."
        )
    else:
        turn_on = not active
    if turn_on:
        store.opt_in(key, session.speaker.login or "", session.now)
        jobs.schedule_weekly(session.services, key, session.login, session.now)
        next_due = jobs.next_monday(session.now).astimezone(jobs.PARIS).date()
        today = session.now.astimezone(jobs.PARIS).date()
        return session.text(
            f"🔔 Rappel du lundi <b>activé</b> : chaque lundi à 8 h, je vous envoie le point "
            f"sur la liste de rentrée de l'école (prochain envoi le lundi "
            f"{french_day(next_due, today)}). <code>/rappels</code> pour l'arrêter."
        )
    store.opt_out(key)
    store.cancel_owned(key, session.now, kind="reminder.weekly")
    return session.text(
        "🔕 Rappel du lundi <b>désactivé</b> : je ne vous envoie plus la liste de rentrée "
        "chaque semaine. <code>/rappels</code> pour le réactiver."
    )


def _refused(session: Session, permission: Permission, structure: str | None) -> Outcome | None:
    """Why this speaker may not, in French, or None when allowed (the one rights rule)."""
    verdict = may(session.speaker, permission, structure, session.incoming.private_chat)
    if verdict == Verdict.ALLOWED:
        return None
    if verdict == Verdict.PRIVATE_ONLY:
        return session.text("Écrivez-moi en message privé pour programmer un rappel.")
    if session.speaker.role in (Role.DIRECTOR, Role.ERUN):
        return session.text("Ce rappel n'est pas possible depuis votre compte.")
    return session.text(
        "Les rappels sont réservés à la direction de l'école, après avoir relié son compte "
        f"({escape('/connexion CODE')}, code demandé à l'eRun)."
    )
