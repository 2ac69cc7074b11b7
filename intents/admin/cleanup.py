"""Clean-up of the year change: manual groups and manual accounts."""

from __future__ import annotations

from intents.admin.common import (
    GAR_GROUP,
    MANUAL_GROUP,
    arg,
    ask_slot,
    is_gar_group,
    last_done,
    on_day,
    person_slot,
    profiles_arg,
    the_school,
)
from intents.domain import Group, RemovedGroup, User
from intents.french import count, day
from intents.kb import escape
from intents.nlu.normalize import fold
from intents.registry import Permission, registry
from intents.turn import Proposal, Response, Say, SchoolTurn, SlotValue


def _group_refusal(group: Group) -> str | None:
    if is_gar_group(group.name):
        return (
            f"Je ne supprime pas le groupe <b>{escape(group.name)}</b> : c'est lui qui donne aux "
            "enseignants l'accès à l'affectation des ressources du GAR, et le document de "
            "l'académie demande de ne surtout pas le supprimer."
        )
    if group.type != MANUAL_GROUP:
        return (
            f"Je ne peux pas supprimer <b>{escape(group.name)}</b> : c'est un groupe automatique, "
            "créé par l'alimentation de l'annuaire. Seuls les groupes manuels se suppriment."
        )
    return None


@registry.intent(
    "action.delete_group", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("group",)
)
def delete_group(turn: SchoolTurn) -> Response:
    """Supprime un groupe manuel de l'école (jamais « Resp-Affect-GAR »)."""
    groups = {g.id: g for g in turn.directory.groups(turn.structure_id)}
    group_id = turn.value("group")
    group = groups.get(group_id) if isinstance(group_id, str) else None
    if group is None:
        gone = _removed_named(turn)
        if gone is not None:
            return Response.text(_already_removed(turn, gone))
        candidates = [groups[g] for g in turn.reading("group").candidates if g in groups]
        manual = [
            g for g in groups.values() if g.type == MANUAL_GROUP and not is_gar_group(g.name)
        ]
        if candidates:
            return ask_slot(
                "group",
                "Plusieurs groupes correspondent. Lequel ?",
                [(g.name, g.id) for g in candidates],
            )
        lead = "Je ne trouve pas ce groupe. " if turn.reading("group").unanswered else ""
        if not manual:
            return Response.text(
                f"{lead}Il n'y a aucun groupe manuel à supprimer à {the_school(turn)} : les "
                f"groupes automatiques et « {GAR_GROUP} » ne se suppriment pas."
            )
        return ask_slot(
            "group",
            f"{lead}Quel groupe supprimer ? Groupes manuels de l'école :",
            [(g.name, g.id) for g in manual],
        )
    refusal = _group_refusal(group)
    if refusal:
        return Response([Say(refusal)], refusal="groupe protégé", targets=[group.id])
    summary = (
        f"Je vais supprimer le groupe manuel <b>{escape(group.name)}</b> "
        f"({count(len(group.member_ids), 'membre')}). "
        "Les partages faits à ce groupe ne seront plus visibles de ses membres."
    )
    return Response([], proposal=Proposal(summary, {"group": group.id}, [group.id]))


@registry.executor("action.delete_group")
def execute_delete_group(turn: SchoolTurn, args: dict[str, SlotValue]) -> Response:
    group_id = arg(args, "group")
    group = turn.directory.group(group_id)
    if group is None or group.structure_id != turn.structure_id:
        gone = next(
            (g for g in turn.directory.removed_groups(turn.structure_id) if g.id == group_id), None
        )
        text = _already_removed(turn, gone) if gone else "Ce groupe n'existe plus : rien à faire."
        return Response([Say(text)], refusal="déjà supprimé")
    refusal = _group_refusal(group)
    if refusal:
        return Response([Say(refusal)], refusal="groupe protégé")
    turn.directory.delete_group(group.id, turn.today)
    return Response.text(f"✅ C'est fait : le groupe {escape(group.name)} est supprimé.")


def _removed_named(turn: SchoolTurn) -> RemovedGroup | None:
    """The deleted group the message names (every word of its name but the years), when no
    group of the school answers to it: « supprime le groupe chorale » once more."""
    query = turn.reading("group").query
    if not query:
        return None
    said = set(fold(query).split())
    for gone in turn.directory.removed_groups(turn.structure_id):
        words = {w for w in fold(gone.name).split() if not w.isdigit() and len(w) >= 2}
        if words and words <= said:
            return gone
    return None


def _already_removed(turn: SchoolTurn, gone: RemovedGroup) -> str:
    """« Le groupe « Chorale » a déjà été supprimé le 12/11/2026 : rien à faire. »"""
    when = gone.removed_on or last_done(turn, "action.delete_group", [gone.id])
    return f"Le groupe « {escape(gone.name)} » a déjà été supprimé{on_day(when)} : rien à faire."


# -- remove a manual account -----------------------------------------------------------------
def _account_refusal(user: User) -> str | None:
    if not user.is_manual:
        return (
            f"Je ne peux pas supprimer le compte de <b>{escape(user.full_name)}</b> : il vient de "
            "l'alimentation de l'académie (ONDE/AAF), pas d'une création manuelle. Seuls les "
            "comptes manuels se suppriment ici."
        )
    if user.deleted:
        return (
            f"Rien à faire : le compte de {escape(user.full_name)} est déjà supprimé "
            f"(depuis le {escape(day(user.deleted))})."
        )
    if user.pre_deleted:
        return (
            f"Rien à faire : le compte de {escape(user.full_name)} est déjà pré-supprimé "
            f"(depuis le {escape(day(user.pre_deleted))})."
        )
    return None


@registry.intent(
    "action.remove_manual_account",
    kind="action",
    permission=Permission.CHANGE_SCHOOL,
    slots=("account",),
)
def remove_manual_account(turn: SchoolTurn) -> Response:
    """Supprime un ou plusieurs comptes manuels (pré-suppression s'ils ont été activés)."""
    everyone = {u.id: u for u in turn.directory.users(turn.structure_id, include_removed=True)}
    manual = {i: u for i, u in everyone.items() if u.is_manual}
    live = [u for u in manual.values() if u.is_live]
    named = turn.value("account")
    if isinstance(named, list):
        chosen = [everyone[i] for i in named if i in everyone]
    elif isinstance(named, str) and named in everyone:
        chosen = [everyone[named]]
    else:
        missing = person_slot(turn, "account", manual, "compte manuel", live)
        if missing:
            return missing
        chosen = [manual[str(turn.value("account"))]]
    refusals = [r for r in map(_account_refusal, chosen) if r]
    kept = [u for u in chosen if _account_refusal(u) is None]
    if not kept:
        return Response(
            [Say("\n".join(refusals))], refusal="compte non manuel", targets=[u.id for u in chosen]
        )
    lines = [_removal_line(u) for u in kept]
    summary = "Je vais :\n" + "\n".join(lines) if len(lines) > 1 else "Je vais " + lines[0][2:]
    says = [Say("\n".join(refusals))] if refusals else []
    ids = [u.id for u in kept]
    return Response(says, proposal=Proposal(summary, {"accounts": ids}, ids))


def _removal_line(user: User) -> str:
    name = escape(user.full_name)
    if user.activated:
        return (
            f"• <b>pré-supprimer</b> le compte manuel de <b>{name}</b> : il a déjà été activé, "
            "il passe donc en pré-suppression."
        )
    return (
        f"• <b>supprimer</b> le compte manuel de <b>{name}</b> : il n'a jamais été activé, il "
        "est donc supprimé directement."
    )


@registry.executor("action.remove_manual_account")
def execute_remove_account(turn: SchoolTurn, args: dict[str, SlotValue]) -> Response:
    ids = profiles_arg(args, "accounts") or [arg(args, "account")]
    lines, refusals, done = [], [], []
    for user_id in ids:
        user = turn.directory.user(user_id)
        refusal = "Ce compte n'existe plus : rien à faire." if user is None else None
        refusal = refusal or (_account_refusal(user) if user else None)
        if refusal or user is None:
            refusals.append(refusal or "")
            continue
        outcome = turn.directory.remove_manual_account(user.id, turn.today)
        state = "pré-supprimé" if outcome == "pre_deleted" else "supprimé"
        why = (
            "il avait déjà été activé"
            if outcome == "pre_deleted"
            else "il n'avait jamais été activé"
        )
        lines.append(f"le compte de {escape(user.full_name)} est <b>{state}</b> ({why})")
        done.append(user.id)
    if not done:
        return Response([Say("\n".join(refusals))], refusal="compte non manuel ou déjà supprimé")
    text = "✅ C'est fait : " + " ; ".join(lines) + "."
    if refusals:
        text += "\n" + "\n".join(refusals)
    return Response([Say(text)], targets=done)
