"""Block and unblock the pupils' and parents' accounts of the school."""

from __future__ import annotations

from intents.admin.common import (
    PROFILE_NAMES,
    ask_slot,
    profiles_arg,
    profiles_label,
    the_school,
)
from intents.french import agree, count
from intents.registry import Permission, registry
from intents.turn import Proposal, Response, Say, SchoolTurn, SlotValue


def _block_proposal(turn: SchoolTurn, blocked: bool) -> Response:
    verb = "bloquer" if blocked else "débloquer"
    profiles = turn.value("profiles")
    if not isinstance(profiles, list) or not profiles:
        return ask_slot(
            "profiles",
            f"Quels comptes voulez-vous {verb} ?",
            [
                ("Élèves", ["Student"]),
                ("Parents", ["Relative"]),
                ("Élèves et parents", ["Relative", "Student"]),
            ],
        )
    users = turn.directory.users(turn.structure_id, profiles=profiles)
    to_change = [u for u in users if u.blocked != blocked]
    already = len(users) - len(to_change)
    state = "bloqué" if blocked else "débloqué"
    if not to_change:
        many = len(users) > 1
        return Response.text(
            f"Rien à faire : {'les' if many else 'le'} {count(len(users), 'compte')} "
            f"({profiles_label(profiles)}) de {the_school(turn)} {'sont' if many else 'est'} "
            f"déjà {agree(len(users), state)}."
        )
    counts = ", ".join(
        count(sum(1 for u in to_change if u.profile == p), PROFILE_NAMES[p]) for p in profiles
    )
    summary = (
        f"Je vais <b>{verb}</b> {count(len(to_change), 'compte')} de {the_school(turn)} "
        f"({counts})."
        + (f" ({count(already, 'autre l’est', 'autres le sont')} déjà.)" if already else "")
    )
    if blocked:
        summary += "\nPensez à les débloquer après la rentrée, une fois la bascule ONDE faite."
    return Response([], proposal=Proposal(summary, {"profiles": profiles}, profiles))


def _block_execute(turn: SchoolTurn, args: dict[str, SlotValue], blocked: bool) -> Response:
    result = turn.directory.set_blocked(turn.structure_id, profiles_arg(args), blocked)
    state = "bloqué" if blocked else "débloqué"
    changed = len(result.changed)
    text = (
        f"✅ C'est fait : {count(changed, 'compte')} {agree(changed, state)} "
        f"({profiles_label(profiles_arg(args))})"
        + (
            f" ({count(len(result.unchanged), 'autre l’était', 'autres l’étaient')} déjà)."
            if result.unchanged
            else "."
        )
    )
    if blocked:
        text += "\nN'oubliez pas de les débloquer après la rentrée (« débloque les parents »)."
    # The audit names the accounts that changed, not the profiles asked for.
    return Response([Say(text)], targets=list(result.changed))


@registry.intent(
    "action.block", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("profiles",)
)
def block_accounts(turn: SchoolTurn) -> Response:
    """Bloque les comptes élèves et/ou parents de l'école (avant la rentrée)."""
    return _block_proposal(turn, True)


@registry.executor("action.block")
def execute_block(turn: SchoolTurn, args: dict[str, SlotValue]) -> Response:
    return _block_execute(turn, args, True)


@registry.intent(
    "action.unblock", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("profiles",)
)
def unblock_accounts(turn: SchoolTurn) -> Response:
    """Débloque les comptes élèves et/ou parents de l'école (après la bascule ONDE)."""
    return _block_proposal(turn, False)


@registry.executor("action.unblock")
def execute_unblock(turn: SchoolTurn, args: dict[str, SlotValue]) -> Response:
    return _block_execute(turn, args, False)
