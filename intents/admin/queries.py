"""The director's and eRun's read-only views: lists and the rentrée checklist."""

from __future__ import annotations

from intents.admin.common import (
    GAR_GROUP,
    MANUAL_GROUP,
    PROFILE_NAMES,
    fix_button,
    gar_state,
    is_gar_group,
    is_old_year_name,
    names,
    teachers_of,
    the_school,
)
from intents.domain import Group
from intents.french import agree, count
from intents.kb import escape
from intents.registry import Permission, registry
from intents.turn import Choice, Response, Say, SchoolTurn


@registry.intent("query.teachers_without_class", kind="query", permission=Permission.READ_SCHOOL)
def teachers_without_class(turn: SchoolTurn) -> Response:
    """Liste les enseignants de l'école qui ne sont rattachés à aucune classe."""
    classes = {c.id for c in turn.directory.classes(turn.structure_id)}
    alone = [t for t in teachers_of(turn).values() if not set(t.classes) & classes]
    if not alone:
        return Response.text(f"Tous les enseignants de {the_school(turn)} ont une classe.")
    lines = "\n".join(f"• {escape(t.full_name)}" for t in alone)
    return Response(
        [
            Say(
                f"<b>Enseignants sans classe à {the_school(turn)}</b> ({len(alone)}) :\n{lines}",
                fix_button(turn, "Rattacher un enseignant", "action.attach_teacher"),
            )
        ]
    )


@registry.intent("query.manual_accounts", kind="query", permission=Permission.READ_SCHOOL)
def manual_accounts(turn: SchoolTurn) -> Response:
    """Liste les comptes manuels de l'école, activés ou non."""
    manual = [u for u in turn.directory.users(turn.structure_id) if u.is_manual]
    if not manual:
        school = the_school(turn)
        return Response.text(f"{school[0].upper()}{school[1:]} n'a aucun compte manuel.")
    never = [u for u in manual if not u.activated]
    lines = "\n".join(
        f"• {escape(u.full_name)} — {_profile_fr(u.profile)}, "
        f"{'activé' if u.activated else 'jamais activé'}"
        for u in manual
    )
    return Response(
        [
            Say(
                f"<b>Comptes manuels de {the_school(turn)}</b> ({len(manual)}, dont "
                f"{len(never)} jamais {agree(len(never), 'activé')}) :\n{lines}",
                fix_button(turn, "Supprimer un compte manuel", "action.remove_manual_account"),
            )
        ]
    )


def _profile_fr(profile: str) -> str:
    return {
        "Relative": "parent",
        "Guest": "invité",
        "Teacher": "enseignant",
        "Personnel": "personnel",
        "Student": "élève",
    }.get(profile, profile)


@registry.intent("query.groups", kind="query", permission=Permission.READ_SCHOOL)
def list_groups(turn: SchoolTurn) -> Response:
    """Liste les groupes de l'école, manuels et automatiques."""
    groups = turn.directory.groups(turn.structure_id)
    manual = [g for g in groups if g.type == MANUAL_GROUP]
    automatic = [g for g in groups if g.type != MANUAL_GROUP]

    def line(group: Group) -> str:
        note = ""
        if is_gar_group(group.name):
            note = " — à conserver"
        elif group.type == MANUAL_GROUP and is_old_year_name(group.name, turn.today):
            note = " — année passée"
        members = count(len(group.member_ids), "membre")
        return f"• {escape(group.name)} ({members}){note}"

    text = f"<b>Groupes de {the_school(turn)}</b>\n<b>Manuels</b> ({len(manual)}) :\n"
    text += "\n".join(line(g) for g in manual) or "• aucun"
    text += f"\n<b>Automatiques</b> ({len(automatic)}) :\n"
    text += "\n".join(line(g) for g in automatic) or "• aucun"
    return Response([Say(text, fix_button(turn, "Supprimer un groupe", "action.delete_group"))])


@registry.intent("query.checklist", kind="query", permission=Permission.READ_SCHOOL)
def checklist(turn: SchoolTurn) -> Response:
    """Fait le point sur la liste de rentrée de l'école, avec l'action qui règle chaque point."""
    directory = turn.directory
    structure = turn.structure_id
    users = directory.users(structure)
    here = {u.id for u in users}
    teachers = [u for u in users if u.profile == "Teacher"]
    classes = {c.id for c in directory.classes(structure)}
    items: list[str] = []
    choices: list[Choice] = []

    def item(done: bool, text: str, fix: tuple[str, str] | None = None) -> None:
        items.append(("✅ " if done else "⚠️ ") + text)
        if not done and fix:
            choices.extend(fix_button(turn, *fix))

    alone = [t for t in teachers if not set(t.classes) & classes]
    item(
        not alone,
        "Enseignants sans classe : " + (names(alone) or "aucun"),
        ("Rattacher un enseignant", "action.attach_teacher"),
    )
    away = [t for t in teachers if t.home_structure and t.home_structure != structure]
    item(
        not away,
        "Enseignants rattachés à une autre école (partis ? remplaçants ?) : "
        + (names(away) or "aucun"),
        ("Détacher un enseignant", "action.detach_teacher"),
    )
    stale = []
    for group in directory.groups(structure):
        if group.type != MANUAL_GROUP or is_gar_group(group.name):
            continue
        gone = [m for m in group.member_ids if m not in here]
        if is_old_year_name(group.name, turn.today) or gone:
            reason = "année passée" if is_old_year_name(group.name, turn.today) else ""
            if gone:
                reason = ", ".join(
                    filter(
                        None, [reason, f"{count(len(gone), 'membre')} {agree(len(gone), 'parti')}"]
                    )
                )
            stale.append(f"{escape(group.name)} ({reason})")
    item(
        not stale,
        "Groupes manuels à revoir : " + (", ".join(stale) or "aucun"),
        ("Supprimer un groupe", "action.delete_group"),
    )
    never = [u for u in users if u.is_manual and not u.activated]
    item(
        not never,
        "Comptes manuels jamais activés : " + (names(never) or "aucun"),
        ("Supprimer un compte manuel", "action.remove_manual_account"),
    )
    _, missing = gar_state(turn)
    item(
        not missing,
        f"Groupe « {GAR_GROUP} » : "
        + ("tous les enseignants y sont" if not missing else f"il manque {names(missing)}"),
        ("Enseignants responsables GAR", "action.gar_managers"),
    )
    blocked = {p: sum(1 for u in users if u.profile == p and u.blocked) for p in PROFILE_NAMES}
    still = [count(n, PROFILE_NAMES[p]) for p, n in blocked.items() if n]
    item(
        not still,
        "Comptes bloqués : "
        + (", ".join(still) or "aucun")
        + (" — à débloquer après la bascule ONDE" if still else ""),
        ("Débloquer des comptes", "action.unblock"),
    )
    favorites = [
        f for f in directory.share_favorites(structure) if is_old_year_name(f.name, turn.today)
    ]
    if favorites:
        items.append(
            "ℹ️ Favoris de partage d'une année passée : "
            + ", ".join(escape(f.name) for f in favorites)
            + " (chacun les supprime depuis l'Annuaire, 3e onglet)"
        )
    todo = sum(1 for i in items if i.startswith("⚠️"))
    head = f"<b>Rentrée à {the_school(turn)}</b> : " + (
        "tout est en ordre." if not todo else f"{count(todo, 'point')} à traiter."
    )
    return Response([Say(head + "\n" + "\n".join(items), choices[:6])])
