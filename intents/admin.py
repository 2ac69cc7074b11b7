"""The director's actions and queries on the school directory, with the académie's rules.

Handlers propose (the core asks for confirmation); executors carry the change out and check
the rules again, since the directory may have changed in between.
"""

from __future__ import annotations

import re
from datetime import date
from html import escape
from typing import Any

from intents.nlu.normalize import fold
from intents.registry import Permission, registry
from intents.turn import Choice, Proposal, Response, Say, Turn

PROFILE_NAMES = {"Relative": "parents", "Student": "élèves"}
GAR_GROUP = "Resp-Affect-GAR"
MANUAL_GROUP = "ManualGroup"
_YEARS = re.compile(r"\b(20\d\d)(?:\s*[-/]\s*(20\d\d))?\b")


def is_gar_group(name: str) -> bool:
    """« Resp-Affect-GAR » whatever its spelling, spacing or case."""
    return re.sub(r"[^a-z]", "", fold(name)) == "respaffectgar"


def school_year_start(today: date) -> int:
    return today.year if today.month >= 9 else today.year - 1


def is_old_year_name(name: str, today: date) -> bool:
    """A name that carries a school year already over (« APE 2022-2023 »)."""
    start = school_year_start(today)
    for first, second in _YEARS.findall(name):
        last = int(second or first)
        if (second and last <= start) or (not second and last < start):
            return True
    return False


def _h(text: str) -> str:
    return escape(text, quote=False)


def _school(turn: Turn) -> str:
    """The school's name, to follow « à » or « de » (« l'école » when unknown)."""
    structure = turn.directory.structure(turn.structure_id) if turn.directory else None
    return f"l'école « {_h(structure.name)} »" if structure else "l'école"


def _plural(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count <= 1 else plural}"


def _profiles_label(profiles: list[str]) -> str:
    return " et ".join(PROFILE_NAMES[p] for p in sorted(profiles, key=lambda p: p != "Student"))


# -- slots -----------------------------------------------------------------------------------
def _ask(turn: Turn, slot: str, question: str, options: list[tuple[str, Any]]) -> Response:
    choices = [Choice(label, {"slot": slot, "value": value}) for label, value in options[:8]]
    return Response(
        [Say(question + "\n<i>(« annule » pour abandonner)</i>", choices)], awaiting=slot
    )


def _person_slot(
    turn: Turn, slot: str, people: dict[str, Any], what: str, defaults: list[Any]
) -> Response | None:
    """Ask for a person when the message named none, several, or nobody known."""
    entities = turn.entities
    if entities.get(slot) in people:
        return None
    candidates = [people[i] for i in entities.get(f"{slot}_candidates", []) if i in people]
    if candidates:
        return _ask(
            turn,
            slot,
            f"Plusieurs {what}s correspondent. Lequel ou laquelle ?",
            [(_describe(turn, p), p.id) for p in candidates],
        )
    suggestions = [people[i] for i in entities.get(f"{slot}_suggestions", []) if i in people]
    if f"{slot}_query" in entities and (entities.get(f"{slot}_missing") or suggestions):
        names = ", ".join(_h(p.full_name) for p in suggestions) or "aucun nom proche"
        return _ask(
            turn,
            slot,
            f"Je ne trouve pas ce {what} à {_school(turn)}. Noms les plus proches : {names}. "
            "Lequel voulez-vous ?",
            [(p.full_name, p.id) for p in suggestions],
        )
    return _ask(
        turn,
        slot,
        f"Quel {what} ? Écrivez son nom ou choisissez :",
        [(p.full_name, p.id) for p in defaults],
    )


def _describe(turn: Turn, person: Any) -> str:
    if person.profile == "Teacher" and turn.directory is not None:
        classes = {c.id: c.name for c in turn.directory.classes(turn.structure_id)}
        names = [classes[c] for c in person.classes if c in classes]
        if names:
            return f"{person.full_name} ({', '.join(names)})"
        return f"{person.full_name} (sans classe)"
    return person.full_name


# -- block / unblock -------------------------------------------------------------------------
def _block_proposal(turn: Turn, blocked: bool) -> Response:
    verb = "bloquer" if blocked else "débloquer"
    profiles = turn.entities.get("profiles")
    if not profiles:
        return _ask(
            turn,
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
    state = "bloqués" if blocked else "débloqués"
    if not to_change:
        return Response.text(
            f"Rien à faire : les {len(users)} comptes {_profiles_label(profiles)} de "
            f"{_school(turn)} sont déjà {state}."
        )
    counts = ", ".join(
        f"{sum(1 for u in to_change if u.profile == p)} {PROFILE_NAMES[p]}" for p in profiles
    )
    summary = f"Je vais <b>{verb}</b> {len(to_change)} comptes de {_school(turn)} ({counts})." + (
        f" ({_plural(already, 'autre l’est', 'autres le sont')} déjà.)" if already else ""
    )
    if blocked:
        summary += "\nPensez à les débloquer après la rentrée, une fois la bascule ONDE faite."
    return Response([], proposal=Proposal(summary, {"profiles": profiles}, profiles))


def _block_execute(turn: Turn, args: dict[str, Any], blocked: bool) -> Response:
    result = turn.directory.set_blocked(turn.structure_id, args["profiles"], blocked)
    state = "bloqués" if blocked else "débloqués"
    text = (
        f"✅ C'est fait : {_plural(len(result.changed), 'compte', 'comptes')} "
        f"{_profiles_label(args['profiles'])} {state}"
        + (
            f" ({_plural(len(result.unchanged), 'autre l’était', 'autres l’étaient')} déjà)."
            if result.unchanged
            else "."
        )
    )
    if blocked:
        text += "\nN'oubliez pas de les débloquer après la rentrée (« débloque les parents »)."
    return Response.text(text)


@registry.intent(
    "action.block", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("profiles",)
)
def block_accounts(turn: Turn) -> Response:
    """Bloque les comptes élèves et/ou parents de l'école (avant la rentrée)."""
    return _block_proposal(turn, True)


@registry.executor("action.block")
def execute_block(turn: Turn, args: dict[str, Any]) -> Response:
    return _block_execute(turn, args, True)


@registry.intent(
    "action.unblock", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("profiles",)
)
def unblock_accounts(turn: Turn) -> Response:
    """Débloque les comptes élèves et/ou parents de l'école (après la bascule ONDE)."""
    return _block_proposal(turn, False)


@registry.executor("action.unblock")
def execute_unblock(turn: Turn, args: dict[str, Any]) -> Response:
    return _block_execute(turn, args, False)


# -- attach a teacher to a class -------------------------------------------------------------
def _teachers(turn: Turn) -> dict[str, Any]:
    return {u.id: u for u in turn.directory.users(turn.structure_id, profiles=["Teacher"])}


def _empty_class_refusal(name: str) -> str:
    return (
        f"Je ne peux pas rattacher d'enseignant à la classe <b>{_h(name)}</b> : elle n'a encore "
        "aucun élève dans l'ENT. Une classe n'apparaît qu'avec au moins un élève ; pour les "
        "« premières classes » (TPS-PS, CP, CE2 en école de niveau 2) les élèves arrivent "
        "progressivement après la bascule ONDE. Réessayez dans quelques jours."
    )


@registry.intent(
    "action.attach_teacher",
    kind="action",
    permission=Permission.CHANGE_SCHOOL,
    slots=("teacher", "class"),
)
def attach_teacher(turn: Turn) -> Response:
    """Rattache un enseignant de l'école à une classe (la classe doit avoir un élève)."""
    teachers = _teachers(turn)
    without_class = [t for t in teachers.values() if not t.classes] or list(teachers.values())
    missing = _person_slot(turn, "teacher", teachers, "enseignant", without_class)
    if missing:
        return missing
    teacher = teachers[turn.entities["teacher"]]
    classes = {c.id: c for c in turn.directory.classes(turn.structure_id)}
    class_id = turn.entities.get("class")
    if class_id not in classes:
        candidates = [
            classes[c] for c in turn.entities.get("class_candidates", []) if c in classes
        ]
        options = candidates or sorted(classes.values(), key=lambda c: c.name)
        question = (
            "Quelle classe exactement ?"
            if candidates
            else f"À quelle classe rattacher {_h(teacher.full_name)} ?"
        )
        return _ask(turn, "class", question, [(c.name, c.id) for c in options])
    school_class = classes[class_id]
    if school_class.pupil_count == 0:
        return Response(
            [Say(_empty_class_refusal(school_class.name))],
            refusal="classe sans élève",
            targets=[teacher.id, class_id],
        )
    if class_id in teacher.classes:
        return Response.text(
            f"{_h(teacher.full_name)} est déjà rattaché(e) à la classe {_h(school_class.name)}."
        )
    summary = (
        f"Je vais rattacher <b>{_h(teacher.full_name)}</b> à la classe "
        f"<b>{_h(school_class.name)}</b> ({school_class.pupil_count} élève"
        f"{'s' if school_class.pupil_count > 1 else ''})."
    )
    return Response(
        [],
        proposal=Proposal(
            summary, {"teacher": teacher.id, "class": class_id}, [teacher.id, class_id]
        ),
    )


@registry.executor("action.attach_teacher")
def execute_attach(turn: Turn, args: dict[str, Any]) -> Response:
    teacher = turn.directory.user(args["teacher"])
    classes = {c.id: c for c in turn.directory.classes(turn.structure_id)}
    school_class = classes.get(args["class"])
    if teacher is None or not teacher.is_live or school_class is None:
        return Response(
            [Say("L'enseignant ou la classe n'existe plus : rien n'a été modifié.")],
            refusal="cible disparue",
        )
    if school_class.pupil_count == 0:
        return Response(
            [Say(_empty_class_refusal(school_class.name))], refusal="classe sans élève"
        )
    turn.directory.attach_teacher_to_class(teacher.id, school_class.id)
    return Response.text(
        f"✅ C'est fait : {_h(teacher.full_name)} est rattaché(e) à la classe "
        f"{_h(school_class.name)}."
    )


# -- detach a teacher ------------------------------------------------------------------------
def _home_school_refusal(turn: Turn, teacher: Any) -> str:
    return (
        f"Je ne peux pas détacher <b>{_h(teacher.full_name)}</b> : {_school(turn)} est son école "
        "de rattachement administratif. Le document de l'académie demande de ne jamais détacher "
        "un enseignant qui a votre école comme école de rattachement (remplaçant, PES…)."
    )


@registry.intent(
    "action.detach_teacher", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("teacher",)
)
def detach_teacher(turn: Turn) -> Response:
    """Détache de l'école un enseignant qui l'a quittée (jamais s'il y est rattaché)."""
    teachers = _teachers(turn)
    elsewhere = [t for t in teachers.values() if t.home_structure != turn.structure_id]
    missing = _person_slot(turn, "teacher", teachers, "enseignant", elsewhere)
    if missing:
        return missing
    teacher = teachers[turn.entities["teacher"]]
    if teacher.home_structure == turn.structure_id:
        return Response(
            [Say(_home_school_refusal(turn, teacher))],
            refusal="école de rattachement",
            targets=[teacher.id],
        )
    classes = {c.id: c.name for c in turn.directory.classes(turn.structure_id)}
    here = [classes[c] for c in teacher.classes if c in classes]
    summary = (
        f"Je vais détacher <b>{_h(teacher.full_name)}</b> de {_school(turn)}"
        + (f" (et de sa classe {_h(', '.join(here))})" if here else "")
        + ". Sa fiche n'apparaîtra plus dans l'annuaire de l'école ; son école de "
        "rattachement reste inchangée."
    )
    return Response([], proposal=Proposal(summary, {"teacher": teacher.id}, [teacher.id]))


@registry.executor("action.detach_teacher")
def execute_detach(turn: Turn, args: dict[str, Any]) -> Response:
    teacher = turn.directory.user(args["teacher"])
    if teacher is None or turn.structure_id not in teacher.structures:
        return Response(
            [Say("Cet enseignant n'est plus dans l'école : rien à faire.")], refusal="déjà détaché"
        )
    if teacher.home_structure == turn.structure_id:
        return Response(
            [Say(_home_school_refusal(turn, teacher))], refusal="école de rattachement"
        )
    turn.directory.detach_teacher_from_structure(teacher.id, turn.structure_id)
    return Response.text(f"✅ C'est fait : {_h(teacher.full_name)} est détaché(e) de l'école.")


# -- delete a group --------------------------------------------------------------------------
def _group_refusal(group: Any) -> str | None:
    if is_gar_group(group.name):
        return (
            f"Je ne supprime pas le groupe <b>{_h(group.name)}</b> : c'est lui qui donne aux "
            "enseignants l'accès à l'affectation des ressources du GAR, et le document de "
            "l'académie demande de ne surtout pas le supprimer."
        )
    if group.type != MANUAL_GROUP:
        return (
            f"Je ne peux pas supprimer <b>{_h(group.name)}</b> : c'est un groupe automatique, "
            "créé par l'alimentation de l'annuaire. Seuls les groupes manuels se suppriment."
        )
    return None


@registry.intent(
    "action.delete_group", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("group",)
)
def delete_group(turn: Turn) -> Response:
    """Supprime un groupe manuel de l'école (jamais « Resp-Affect-GAR »)."""
    groups = {g.id: g for g in turn.directory.groups(turn.structure_id)}
    group = groups.get(turn.entities.get("group"))
    if group is None:
        candidates = [groups[g] for g in turn.entities.get("group_candidates", []) if g in groups]
        manual = [
            g for g in groups.values() if g.type == MANUAL_GROUP and not is_gar_group(g.name)
        ]
        if candidates:
            return _ask(
                turn,
                "group",
                "Plusieurs groupes correspondent. Lequel ?",
                [(g.name, g.id) for g in candidates],
            )
        lead = "Je ne trouve pas ce groupe. " if turn.entities.get("group_missing") else ""
        return _ask(
            turn,
            "group",
            f"{lead}Quel groupe supprimer ? Groupes manuels de l'école :",
            [(g.name, g.id) for g in manual],
        )
    refusal = _group_refusal(group)
    if refusal:
        return Response([Say(refusal)], refusal="groupe protégé", targets=[group.id])
    summary = (
        f"Je vais supprimer le groupe manuel <b>{_h(group.name)}</b> "
        f"({len(group.member_ids)} membre{'s' if len(group.member_ids) > 1 else ''}). "
        "Les partages faits à ce groupe ne seront plus visibles de ses membres."
    )
    return Response([], proposal=Proposal(summary, {"group": group.id}, [group.id]))


@registry.executor("action.delete_group")
def execute_delete_group(turn: Turn, args: dict[str, Any]) -> Response:
    group = turn.directory.group(args["group"])
    if group is None or group.structure_id != turn.structure_id:
        return Response([Say("Ce groupe n'existe plus : rien à faire.")], refusal="déjà supprimé")
    refusal = _group_refusal(group)
    if refusal:
        return Response([Say(refusal)], refusal="groupe protégé")
    turn.directory.delete_group(group.id)
    return Response.text(f"✅ C'est fait : le groupe {_h(group.name)} est supprimé.")


# -- remove a manual account -----------------------------------------------------------------
def _account_refusal(user: Any) -> str | None:
    if not user.is_manual:
        return (
            f"Je ne peux pas supprimer le compte de <b>{_h(user.full_name)}</b> : il vient de "
            "l'alimentation de l'académie (ONDE/AAF), pas d'une création manuelle. Seuls les "
            "comptes manuels se suppriment ici."
        )
    if not user.is_live:
        return f"Le compte de {_h(user.full_name)} est déjà supprimé ou pré-supprimé."
    return None


@registry.intent(
    "action.remove_manual_account",
    kind="action",
    permission=Permission.CHANGE_SCHOOL,
    slots=("account",),
)
def remove_manual_account(turn: Turn) -> Response:
    """Supprime un compte manuel (pré-suppression s'il a déjà été activé)."""
    everyone = {u.id: u for u in turn.directory.users(turn.structure_id)}
    manual = {i: u for i, u in everyone.items() if u.is_manual}
    chosen = everyone.get(turn.entities.get("account"))
    if chosen is None:
        missing = _person_slot(turn, "account", manual, "compte manuel", list(manual.values()))
        if missing:
            return missing
        chosen = manual[turn.entities["account"]]
    refusal = _account_refusal(chosen)
    if refusal:
        return Response([Say(refusal)], refusal="compte non manuel", targets=[chosen.id])
    if chosen.activated:
        what = (
            "<b>pré-supprimer</b> le compte manuel de <b>{}</b> : il a déjà été activé, il "
            "passe donc en pré-suppression."
        )
    else:
        what = (
            "<b>supprimer</b> le compte manuel de <b>{}</b> : il n'a jamais été activé, il "
            "est donc supprimé directement."
        )
    summary = "Je vais " + what.format(_h(chosen.full_name))
    return Response([], proposal=Proposal(summary, {"account": chosen.id}, [chosen.id]))


@registry.executor("action.remove_manual_account")
def execute_remove_account(turn: Turn, args: dict[str, Any]) -> Response:
    user = turn.directory.user(args["account"])
    if user is None:
        return Response([Say("Ce compte n'existe plus : rien à faire.")], refusal="disparu")
    refusal = _account_refusal(user)
    if refusal:
        return Response([Say(refusal)], refusal="compte non manuel ou déjà supprimé")
    outcome = turn.directory.remove_manual_account(user.id, turn.today)
    if outcome == "pre_deleted":
        return Response.text(
            f"✅ C'est fait : le compte de {_h(user.full_name)} est <b>pré-supprimé</b> "
            "(il avait déjà été activé)."
        )
    return Response.text(
        f"✅ C'est fait : le compte de {_h(user.full_name)} est <b>supprimé</b> "
        "(il n'avait jamais été activé)."
    )


# -- GAR managers ----------------------------------------------------------------------------
def _gar_state(turn: Turn) -> tuple[Any, list[Any]]:
    group = next(
        (g for g in turn.directory.groups(turn.structure_id) if is_gar_group(g.name)), None
    )
    teachers = list(_teachers(turn).values())
    members = set(group.member_ids) if group else set()
    return group, [t for t in teachers if t.id not in members]


@registry.intent("action.gar_managers", kind="action", permission=Permission.CHANGE_SCHOOL)
def gar_managers(turn: Turn) -> Response:
    """Rend tous les enseignants responsables d'affectation des ressources GAR."""
    group, missing = _gar_state(turn)
    if not missing:
        return Response.text(
            f"Rien à faire : tous les enseignants de {_school(turn)} sont déjà dans le groupe "
            f"« {GAR_GROUP} »."
        )
    names = ", ".join(_h(t.full_name) for t in missing)
    summary = (
        f"Je vais ajouter {len(missing)} enseignant{'s' if len(missing) > 1 else ''} au groupe "
        f"« {GAR_GROUP} »{'' if group else ' (que je crée, il manque)'} : {names}.\n"
        "Ce sera effectif à la prochaine alimentation : ils auront accès au module "
        "d'affectation des ressources GAR le lendemain."
    )
    return Response([], proposal=Proposal(summary, {}, [t.id for t in missing]))


@registry.executor("action.gar_managers")
def execute_gar(turn: Turn, args: dict[str, Any]) -> Response:
    group, missing = _gar_state(turn)
    if group is None:
        group = turn.directory.create_group(turn.structure_id, GAR_GROUP, MANUAL_GROUP)
    added = turn.directory.add_group_members(group.id, [t.id for t in missing])
    return Response(
        [
            Say(
                f"✅ C'est fait : {len(added)} enseignant{'s' if len(added) > 1 else ''} ajouté"
                f"{'s' if len(added) > 1 else ''} au groupe « {GAR_GROUP} ». Effectif demain, "
                "après la prochaine alimentation."
            )
        ],
        targets=list(added),
    )


# -- queries ---------------------------------------------------------------------------------
def _fix(turn: Turn, label: str, intent: str) -> list[Choice]:
    """A button that fixes an item, only for whom can fix it."""
    if turn.speaker.role != "director":
        return []
    return [Choice(label, {"intent": intent})]


@registry.intent("query.teachers_without_class", kind="query", permission=Permission.READ_SCHOOL)
def teachers_without_class(turn: Turn) -> Response:
    """Liste les enseignants de l'école qui ne sont rattachés à aucune classe."""
    classes = {c.id for c in turn.directory.classes(turn.structure_id)}
    alone = [t for t in _teachers(turn).values() if not set(t.classes) & classes]
    if not alone:
        return Response.text(f"Tous les enseignants de {_school(turn)} ont une classe.")
    lines = "\n".join(f"• {_h(t.full_name)}" for t in alone)
    return Response(
        [
            Say(
                f"<b>Enseignants sans classe à {_school(turn)}</b> ({len(alone)}) :\n{lines}",
                _fix(turn, "Rattacher un enseignant", "action.attach_teacher"),
            )
        ]
    )


@registry.intent("query.manual_accounts", kind="query", permission=Permission.READ_SCHOOL)
def manual_accounts(turn: Turn) -> Response:
    """Liste les comptes manuels de l'école, activés ou non."""
    manual = [u for u in turn.directory.users(turn.structure_id) if u.is_manual]
    if not manual:
        school = _school(turn)
        return Response.text(f"{school[0].upper()}{school[1:]} n'a aucun compte manuel.")
    never = [u for u in manual if not u.activated]
    lines = "\n".join(
        f"• {_h(u.full_name)} — {_profile_fr(u.profile)}, "
        f"{'activé' if u.activated else 'jamais activé'}"
        for u in manual
    )
    return Response(
        [
            Say(
                f"<b>Comptes manuels de {_school(turn)}</b> ({len(manual)}, dont "
                f"{len(never)} jamais activé{'s' if len(never) > 1 else ''}) :\n{lines}",
                _fix(turn, "Supprimer un compte manuel", "action.remove_manual_account"),
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
def list_groups(turn: Turn) -> Response:
    """Liste les groupes de l'école, manuels et automatiques."""
    groups = turn.directory.groups(turn.structure_id)
    manual = [g for g in groups if g.type == MANUAL_GROUP]
    automatic = [g for g in groups if g.type != MANUAL_GROUP]

    def line(group: Any) -> str:
        note = ""
        if is_gar_group(group.name):
            note = " — à conserver"
        elif group.type == MANUAL_GROUP and is_old_year_name(group.name, turn.today):
            note = " — année passée"
        return f"• {_h(group.name)} ({len(group.member_ids)} membres){note}"

    text = f"<b>Groupes de {_school(turn)}</b>\n<b>Manuels</b> ({len(manual)}) :\n"
    text += "\n".join(line(g) for g in manual) or "• aucun"
    text += f"\n<b>Automatiques</b> ({len(automatic)}) :\n"
    text += "\n".join(line(g) for g in automatic) or "• aucun"
    return Response([Say(text, _fix(turn, "Supprimer un groupe", "action.delete_group"))])


@registry.intent("query.checklist", kind="query", permission=Permission.READ_SCHOOL)
def checklist(turn: Turn) -> Response:
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
            choices.extend(_fix(turn, *fix))

    alone = [t for t in teachers if not set(t.classes) & classes]
    item(
        not alone,
        "Enseignants sans classe : " + (_names(alone) or "aucun"),
        ("Rattacher un enseignant", "action.attach_teacher"),
    )
    away = [t for t in teachers if t.home_structure and t.home_structure != structure]
    item(
        not away,
        "Enseignants rattachés à une autre école (partis ? remplaçants ?) : "
        + (_names(away) or "aucun"),
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
                reason = ", ".join(filter(None, [reason, f"{len(gone)} membre(s) parti(s)"]))
            stale.append(f"{_h(group.name)} ({reason})")
    item(
        not stale,
        "Groupes manuels à revoir : " + (", ".join(stale) or "aucun"),
        ("Supprimer un groupe", "action.delete_group"),
    )
    never = [u for u in users if u.is_manual and not u.activated]
    item(
        not never,
        "Comptes manuels jamais activés : " + (_names(never) or "aucun"),
        ("Supprimer un compte manuel", "action.remove_manual_account"),
    )
    _, missing = _gar_state(turn)
    item(
        not missing,
        f"Groupe « {GAR_GROUP} » : "
        + ("tous les enseignants y sont" if not missing else f"il manque {_names(missing)}"),
        ("Enseignants responsables GAR", "action.gar_managers"),
    )
    blocked = {p: sum(1 for u in users if u.profile == p and u.blocked) for p in PROFILE_NAMES}
    still = [f"{n} {PROFILE_NAMES[p]}" for p, n in blocked.items() if n]
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
            + ", ".join(_h(f.name) for f in favorites)
            + " (chacun les supprime depuis l'Annuaire, 3e onglet)"
        )
    todo = sum(1 for i in items if i.startswith("⚠️"))
    head = f"<b>Rentrée à {_school(turn)}</b> : " + (
        "tout est en ordre." if not todo else f"{todo} point(s) à traiter."
    )
    return Response([Say(head + "\n" + "\n".join(items), choices[:6])])


def _names(people: list[Any]) -> str:
    return ", ".join(_h(p.full_name) for p in people)
