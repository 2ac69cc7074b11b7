"""Block and unblock the pupils' and parents' accounts of the school."""

from __future__ import annotations

from intents.admin.common import (
    PROFILE_NAMES,
    ask_slot,
    last_done,
    on_day,
    profiles_arg,
    profiles_label,
    the_school,
)
from intents.domain import User
from intents.french import agree, count
from intents.kb import escape
from intents.registry import Permission, registry
from intents.turn import Option, Proposal, Response, Say, SchoolTurn, SlotValue


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
            f"déjà {agree(len(users), state)}{_since(turn, blocked, users)}."
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
        # The audit of a proposal that ends unconfirmed names the accounts, not « Relative ».
        targets = [u.id for u in to_change]
        return Response([], proposal=Proposal(summary, {"profiles": profiles}, targets))
    return _unblock_proposal(summary, profiles, to_change)


def _since(turn: SchoolTurn, blocked: bool, users: list[User]) -> str:
    """« depuis le 28/11/2026 »: the last time the assistant made them so, when the audit
    log knows it and nothing undid it since."""
    ids = [u.id for u in users]
    action, undo = (
        ("action.block", "action.unblock") if blocked else ("action.unblock", "action.block")
    )
    when = last_done(turn, action, ids)
    undone = last_done(turn, undo, ids)
    if when is None or (undone is not None and undone >= when):
        return ""
    return f" depuis{on_day(when)}"


# Named one by one up to this many; beyond, « … et 12 autres ».
NAMED_AT_MOST = 10


def _unblock_proposal(summary: str, profiles: list[str], to_change: list[User]) -> Response:
    """Unblocking a profile lifts individual blocks too (the ENT's rule): those accounts are
    named, and the director chooses whether they stay blocked."""
    args: dict[str, SlotValue] = {"profiles": profiles}
    targets = [u.id for u in to_change]
    alone = [u for u in to_change if u.blocked_individually]
    if not alone:
        return Response([], proposal=Proposal(summary, args, targets))
    n = len(alone)
    shown = ", ".join(
        f"{escape(u.full_name)} ({PROFILE_NAMES.get(u.profile, u.profile)})"
        for u in alone[:NAMED_AT_MOST]
    )
    if n > NAMED_AT_MOST:
        shown += f" et {count(n - NAMED_AT_MOST, 'autre')}"
    them = "le" if n == 1 else "les"
    if n == len(to_change):
        # Nothing else to unblock: keeping them blocked would change nothing, so the only
        # question is whether to lift these blocks.
        summary += (
            f"\n\n{'Ce compte a été bloqué' if n == 1 else f'Ces {n} comptes ont été bloqués'} "
            f"individuellement : {shown} ; les {profiles_label(profiles)} ne sont pas bloqués "
            f"dans leur ensemble. Débloquer les {profiles_label(profiles)} {them} débloque "
            "(règle de l'ENT) : confirmez seulement si c'est voulu."
        )
        return Response([], proposal=Proposal(summary, args, targets))
    summary += (
        f"\n\nParmi eux, {count(n, 'compte a été bloqué', 'comptes ont été bloqués')} "
        f"individuellement : "
        f"{shown}. Débloquer les {profiles_label(profiles)} {them} débloque aussi (règle de "
        f"l'ENT). {'Faut-il le garder bloqué ?' if n == 1 else 'Faut-il les garder bloqués ?'}"
    )
    keep = "Garder ce compte bloqué" if n == 1 else f"Garder ces {n} comptes bloqués"
    options = [
        Option("Tout débloquer", args),
        Option(keep, {"profiles": profiles, "keep": [u.id for u in alone]}),
    ]
    return Response([], proposal=Proposal(summary, args, targets, options))


def _block_execute(turn: SchoolTurn, args: dict[str, SlotValue], blocked: bool) -> Response:
    result = turn.directory.set_blocked(
        turn.structure_id, profiles_arg(args), blocked, keep=profiles_arg(args, "keep")
    )
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
    if result.kept:
        kept = [turn.directory.user(i) for i in result.kept]
        text += (
            f"\n{count(len(result.kept), 'compte reste bloqué', 'comptes restent bloqués')} "
            f"comme demandé : {', '.join(escape(u.full_name) for u in kept if u)}."
        )
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
