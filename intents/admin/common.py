"""What the director's actions and queries share: names, slots, French phrasing, rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from intents.domain import Group, Role, User
from intents.french import agree, day, day_of, this
from intents.kb import escape, school_year_start
from intents.nlu.normalize import fold
from intents.turn import Choice, FillSlot, Response, RunIntent, Say, SchoolTurn, SlotValue

# Singular: agreed with a number by intents.french.count.
PROFILE_NAMES = {"Relative": "parent", "Student": "élève"}
GAR_GROUP = "Resp-Affect-GAR"
MANUAL_GROUP = "ManualGroup"
_YEARS = re.compile(r"\b(20\d\d)(?:\s*[-/]\s*(20\d\d))?\b")


def is_gar_group(name: str) -> bool:
    """« Resp-Affect-GAR » whatever its spelling, spacing or case."""
    return re.sub(r"[^a-z]", "", fold(name)) == "respaffectgar"


def is_old_year_name(name: str, today: date) -> bool:
    """A name that carries a school year already over (« APE 2022-2023 »)."""
    start = school_year_start(today)
    for first, second in _YEARS.findall(name):
        last = int(second or first)
        if (second and last <= start) or (not second and last < start):
            return True
    return False


def the_school(turn: SchoolTurn) -> str:
    """The school's name, to follow « à » or « de » (« l'école » when unknown)."""
    structure = turn.directory.structure(turn.structure_id) if turn.directory else None
    return f"l'école « {escape(structure.name)} »" if structure else "l'école"


def profiles_label(profiles: list[str]) -> str:
    """« élèves et parents »: the kinds of accounts, in the plural."""
    ordered = sorted(profiles, key=lambda p: p != "Student")
    return " et ".join(agree(2, PROFILE_NAMES[p]) for p in ordered)


# -- slots -----------------------------------------------------------------------------------
def ask_slot(slot: str, question: str, options: Sequence[tuple[str, SlotValue]]) -> Response:
    choices = [Choice(label, FillSlot(slot, value)) for label, value in options[:8]]
    return Response(
        [Say(question + "\n<i>(« annule » pour abandonner)</i>", choices)], awaiting=slot
    )


def person_slot(
    turn: SchoolTurn, slot: str, people: dict[str, User], what: str, defaults: list[User]
) -> Response | None:
    """Ask for a person when the message named none, several, or nobody known."""
    reading = turn.reading(slot)
    if reading.value in people:
        return None
    candidates = [people[i] for i in reading.candidates if i in people]
    if candidates:
        return ask_slot(
            slot,
            f"Plusieurs {what}s correspondent. Lequel ou laquelle ?",
            [(describe(turn, p), p.id) for p in candidates],
        )
    if reading.absent is not None:
        return ask_slot(
            slot,
            # Whom the message named is not repeated: nothing is said of other schools.
            f"{this(what)[:1].upper()}{this(what)[1:]} ne fait pas (ou plus) partie de "
            f"{the_school(turn)}. Quel {what} ? Écrivez son nom ou choisissez :",
            [(p.full_name, p.id) for p in defaults],
        )
    suggestions = [people[i] for i in reading.suggestions if i in people]
    if reading.query is not None and (reading.unanswered or suggestions):
        names = ", ".join(escape(p.full_name) for p in suggestions) or "aucun nom proche"
        return ask_slot(
            slot,
            f"Je ne trouve pas {this(what)} à {the_school(turn)}. Noms les plus proches : "
            f"{names}. Lequel voulez-vous ?",
            [(p.full_name, p.id) for p in suggestions],
        )
    return ask_slot(
        slot,
        f"Quel {what} ? Écrivez son nom ou choisissez :",
        [(p.full_name, p.id) for p in defaults],
    )


def describe(turn: SchoolTurn, person: User) -> str:
    if person.profile == "Teacher" and turn.directory is not None:
        classes = {c.id: c.name for c in turn.directory.classes(turn.structure_id)}
        names = [classes[c] for c in person.classes if c in classes]
        if names:
            return f"{person.full_name} ({', '.join(names)})"
        return f"{person.full_name} (sans classe)"
    return person.full_name


def teachers_of(turn: SchoolTurn) -> dict[str, User]:
    return {u.id: u for u in turn.directory.users(turn.structure_id, profiles=["Teacher"])}


def gar_state(turn: SchoolTurn) -> tuple[Group | None, list[User]]:
    group = next(
        (g for g in turn.directory.groups(turn.structure_id) if is_gar_group(g.name)), None
    )
    teachers = list(teachers_of(turn).values())
    members = set(group.member_ids) if group else set()
    return group, [t for t in teachers if t.id not in members]


def fix_button(turn: SchoolTurn, label: str, intent: str) -> list[Choice]:
    """A button that fixes an item, only for whom can fix it."""
    if turn.speaker.role != Role.DIRECTOR:
        return []
    return [Choice(label, RunIntent(intent))]


def last_done(turn: SchoolTurn, action: str, targets: Iterable[str]) -> datetime | None:
    """When that action was last done in the school on one of these targets (audit log)."""
    if turn.history is None:
        return None
    when = turn.history.last_done(turn.structure_id, action)
    return max((when[t] for t in targets if t in when), default=None)


def on_day(moment: datetime | str | None) -> str:
    """« le 28/11/2026 » after a space, for a moment or an ISO date; nothing when unknown."""
    if moment is None:
        return ""
    return f" le {day_of(moment) if isinstance(moment, datetime) else day(moment)}"


def names(people: list[User]) -> str:
    return ", ".join(escape(p.full_name) for p in people)


def arg(args: dict[str, SlotValue], name: str) -> str:
    """A record id stored in a confirmed change's arguments."""
    value = args[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not an id")
    return value


def profiles_arg(args: dict[str, SlotValue], name: str = "profiles") -> list[str]:
    """A list stored in a confirmed change's arguments (profiles, record ids)."""
    value = args.get(name, [])
    return [value] if isinstance(value, str) else list(value)
