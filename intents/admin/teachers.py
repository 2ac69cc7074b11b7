"""Teachers: attach to a class, detach from the school, make GAR managers."""

from __future__ import annotations

from datetime import datetime

from intents.admin.common import (
    GAR_GROUP,
    arg,
    ask_slot,
    describe,
    gar_state,
    last_done,
    on_day,
    person_slot,
    profiles_arg,
    teachers_of,
    the_school,
)
from intents.domain import User
from intents.french import agree, count
from intents.kb import escape
from intents.nlu.entities import class_mention
from intents.nlu.normalize import fold
from intents.registry import Permission, registry
from intents.turn import Proposal, Response, Say, SchoolTurn, SlotValue


def _empty_class_refusal(name: str) -> str:
    return (
        f"Je ne peux pas rattacher d'enseignant à la classe <b>{escape(name)}</b> : elle n'a "
        "encore aucun élève dans l'ENT. Une classe n'apparaît qu'avec au moins un élève ; pour "
        "les « premières classes » (TPS-PS, CP, CE2 en école de niveau 2) les élèves arrivent "
        "progressivement après la bascule ONDE. Réessayez dans quelques jours."
    )


@registry.intent(
    "action.attach_teacher",
    kind="action",
    permission=Permission.CHANGE_SCHOOL,
    slots=("teacher", "class"),
)
def attach_teacher(turn: SchoolTurn) -> Response:
    """Rattache un enseignant de l'école à une classe (la classe doit avoir un élève)."""
    teachers = teachers_of(turn)
    without_class = [t for t in teachers.values() if not t.classes] or list(teachers.values())
    missing = person_slot(turn, "teacher", teachers, "enseignant", without_class)
    if missing:
        return missing
    teacher = teachers[str(turn.value("teacher"))]
    classes = {c.id: c for c in turn.directory.classes(turn.structure_id)}
    class_id = turn.value("class")
    if not isinstance(class_id, str) or class_id not in classes:
        reading = turn.reading("class")
        candidates = [classes[c] for c in reading.candidates if c in classes]
        options = candidates or sorted(classes.values(), key=lambda c: c.name)
        question = (
            "Quelle classe exactement ?"
            if candidates
            else f"À quelle classe rattacher {escape(teacher.full_name)} ?"
        )
        named = class_mention(reading.query) if reading.query else None
        if named and not candidates:
            question = f"Il n'y a pas de classe {escape(named)} à {the_school(turn)}. " + question
        return ask_slot("class", question, [(c.name, c.id) for c in options])
    school_class = classes[class_id]
    if school_class.pupil_count == 0:
        return Response(
            [Say(_empty_class_refusal(school_class.name))],
            refusal="classe sans élève",
            targets=[teacher.id, class_id],
        )
    if class_id in teacher.classes:
        return Response.text(
            f"Rien à faire : la classe {escape(school_class.name)} est déjà celle de "
            f"{escape(teacher.full_name)}."
        )
    summary = (
        f"Je vais rattacher <b>{escape(teacher.full_name)}</b> à la classe "
        f"<b>{escape(school_class.name)}</b> ({count(school_class.pupil_count, 'élève')})."
    )
    return Response(
        [],
        proposal=Proposal(
            summary, {"teacher": teacher.id, "class": class_id}, [teacher.id, class_id]
        ),
    )


@registry.executor("action.attach_teacher")
def execute_attach(turn: SchoolTurn, args: dict[str, SlotValue]) -> Response:
    teacher = turn.directory.user(arg(args, "teacher"))
    classes = {c.id: c for c in turn.directory.classes(turn.structure_id)}
    school_class = classes.get(arg(args, "class"))
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
        f"✅ C'est fait : la classe {escape(school_class.name)} est maintenant aussi celle de "
        f"{escape(teacher.full_name)}."
    )


# -- detach a teacher ------------------------------------------------------------------------
def _home_school_refusal(turn: SchoolTurn, teacher: User) -> str:
    return (
        f"Je ne peux pas détacher <b>{escape(teacher.full_name)}</b> : {the_school(turn)} est "
        "son école de rattachement administratif. Le document de l'académie demande de ne "
        "jamais détacher un enseignant qui a votre école comme école de rattachement "
        "(remplaçant, PES…)."
    )


@registry.intent(
    "action.detach_teacher", kind="action", permission=Permission.CHANGE_SCHOOL, slots=("teacher",)
)
def detach_teacher(turn: SchoolTurn) -> Response:
    """Détache de l'école un enseignant qui l'a quittée (jamais s'il y est rattaché)."""
    teachers = teachers_of(turn)
    elsewhere = [t for t in teachers.values() if t.home_structure != turn.structure_id]
    gone = _detached_named(turn)
    if gone is not None:
        return Response.text(_already_detached(turn, *gone))
    missing = person_slot(turn, "teacher", teachers, "enseignant", elsewhere)
    if missing:
        return missing
    teacher = teachers[str(turn.value("teacher"))]
    if teacher.home_structure == turn.structure_id:
        return Response(
            [Say(_home_school_refusal(turn, teacher))],
            refusal="école de rattachement",
            targets=[teacher.id],
        )
    classes = {c.id: c.name for c in turn.directory.classes(turn.structure_id)}
    here = [classes[c] for c in teacher.classes if c in classes]
    groups = [
        g.name for g in turn.directory.groups(turn.structure_id) if teacher.id in g.member_ids
    ]
    summary = (
        f"Je vais détacher <b>{escape(teacher.full_name)}</b> de {the_school(turn)}"
        + (f" (et de sa classe {escape(', '.join(here))})" if here else "")
        + ". Sa fiche n'apparaîtra plus dans l'annuaire de l'école ; son école de "
        "rattachement reste inchangée."
        + (
            f" Cela retire aussi sa fiche des groupes de l'école : {escape(', '.join(groups))}."
            if groups
            else ""
        )
    )
    return Response([], proposal=Proposal(summary, {"teacher": teacher.id}, [teacher.id]))


@registry.executor("action.detach_teacher")
def execute_detach(turn: SchoolTurn, args: dict[str, SlotValue]) -> Response:
    teacher = turn.directory.user(arg(args, "teacher"))
    if teacher is None or turn.structure_id not in teacher.structures:
        when = last_done(turn, "action.detach_teacher", [teacher.id]) if teacher else None
        text = (
            _already_detached(turn, teacher, when)
            if teacher
            else "Cet enseignant n'est plus dans l'école : rien à faire."
        )
        return Response([Say(text)], refusal="déjà détaché")
    if teacher.home_structure == turn.structure_id:
        return Response(
            [Say(_home_school_refusal(turn, teacher))], refusal="école de rattachement"
        )
    turn.directory.detach_teacher_from_structure(teacher.id, turn.structure_id)
    return Response.text(
        f"✅ C'est fait : {escape(teacher.full_name)} ne fait plus partie de l'école."
    )


def _detached_named(turn: SchoolTurn) -> tuple[User, datetime] | None:
    """The teacher the message names in full who is no longer in the school because the
    assistant detached them (the audit log says when)."""
    named = turn.reading("teacher").absent
    if named is None or turn.history is None:
        return None
    detached = turn.history.last_done(turn.structure_id, "action.detach_teacher")
    for user_id, when in sorted(detached.items(), key=lambda item: item[1], reverse=True):
        user = turn.directory.user(user_id)
        if (
            user is not None
            and turn.structure_id not in user.structures
            and fold(user.full_name) == fold(named)
        ):
            return user, when
    return None


def _already_detached(turn: SchoolTurn, teacher: User, when: datetime | None) -> str:
    """Said without « détaché·e »: the directory does not tell a teacher's gender."""
    lead = f"{escape(teacher.full_name)} ne fait déjà plus partie de {the_school(turn)}"
    if when is None:
        return f"{lead} : rien à faire."
    return f"{lead} : le détachement a été fait{on_day(when)}. Rien à faire."


# -- GAR managers ----------------------------------------------------------------------------
NO_GAR_GROUP = (
    "Le groupe « Resp-Affect-GAR » n'existe pas dans l'annuaire de {school}. C'est la plateforme "
    "qui le crée (un groupe créé à la main ne donnerait aucun droit dans le GAR) : signalez-le à "
    "votre eRun de circonscription."
)
EXCEPT_WORDS = {"sauf", "excepte", "hormis", "hors"}


@registry.intent(
    "action.gar_managers",
    kind="action",
    permission=Permission.CHANGE_SCHOOL,
    slots=("teacher",),
)
def gar_managers(turn: SchoolTurn) -> Response:
    """Rend les enseignants (tous, ou ceux nommés) responsables d'affectation GAR."""
    group, missing = gar_state(turn)
    if group is None:
        return Response(
            [Say(NO_GAR_GROUP.format(school=the_school(turn)))], refusal="groupe GAR absent"
        )
    reading = turn.reading("teacher")
    teachers = teachers_of(turn)
    if reading.candidates:
        return ask_slot(
            "teacher",
            "Plusieurs enseignants correspondent. Lequel ou laquelle ?",
            [(describe(turn, teachers[c]), c) for c in reading.candidates if c in teachers],
        )
    named = teachers.get(str(reading.value)) if reading.value else None
    if named is not None:
        if EXCEPT_WORDS & set(fold(turn.text).split()):
            missing = [t for t in missing if t.id != named.id]
        elif named in missing:
            missing = [named]
        else:
            return Response.text(
                f"Rien à faire : {escape(named.full_name)} est déjà dans le groupe "
                f"« {GAR_GROUP} »."
            )
    if not missing:
        return Response.text(
            f"Rien à faire : tous les enseignants de {the_school(turn)} sont déjà dans le groupe "
            f"« {GAR_GROUP} »."
        )
    names = ", ".join(escape(t.full_name) for t in missing)
    summary = (
        f"Je vais ajouter {count(len(missing), 'enseignant')} au groupe « {GAR_GROUP} » : "
        f"{names}.\nCe sera effectif à la prochaine alimentation : l'accès au module "
        "d'affectation des ressources GAR s'ouvre le lendemain."
    )
    ids = [t.id for t in missing]
    return Response([], proposal=Proposal(summary, {"teachers": ids}, ids))


@registry.executor("action.gar_managers")
def execute_gar(turn: SchoolTurn, args: dict[str, SlotValue]) -> Response:
    group, missing = gar_state(turn)
    if group is None:
        return Response(
            [Say(NO_GAR_GROUP.format(school=the_school(turn)))], refusal="groupe GAR absent"
        )
    wanted = set(profiles_arg(args, "teachers"))
    added = turn.directory.add_group_members(group.id, [t.id for t in missing if t.id in wanted])
    return Response(
        [
            Say(
                f"✅ C'est fait : {count(len(added), 'enseignant')} {agree(len(added), 'ajouté')}"
                f" au groupe « {GAR_GROUP} ». Effectif demain, après la prochaine alimentation."
            )
        ],
        targets=list(added),
    )
