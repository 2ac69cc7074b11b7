"""Director actions by chat: rules of the académie, confirmation, rights and audit."""

from __future__ import annotations

import pytest

from bot.storage.schoolfile import export_school
from intents.nlu.normalize import fold
from tests.support import DEMO, DIRECTOR, ERUN, OTHER_DIRECTOR, PARENT


def _user(store, user_id: str):  # type: ignore[no-untyped-def]
    return store.directory.user(user_id)


def _relatives_blocked(store) -> list[bool]:  # type: ignore[no-untyped-def]
    return [u.blocked for u in store.directory.users(DEMO, profiles=["Relative"])]


# -- block / unblock -------------------------------------------------------------------------
def test_block_parents_after_confirmation(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("bloque les parents")
    assert seen.intent == "action.block"
    assert seen.buttons == ["Confirmer", "Annuler"]
    # Of the demo school's live parents, Ana Ferreira alone is already blocked.
    assert "14 comptes" in seen.text and "(1 autre l’est déjà.)" in seen.text
    assert not all(_relatives_blocked(store)), "nothing changes before the confirmation"
    done = director.press("Confirmer")
    assert "C'est fait" in done.text and done.outcome.replies[0].edits_pressed
    assert "débloquer" in done.text
    assert all(_relatives_blocked(store))
    assert [u.blocked for u in store.directory.users(DEMO, profiles=["Student"])].count(True) == 0
    last = store.audit.entries()[-1]
    # Who typed (the transport identity), the school, and the accounts that changed.
    assert (last.who, last.action, last.outcome) == (director.key, "action.block", "done")
    assert last.structure_id == DEMO
    blocked_now = {u.id for u in store.directory.users(DEMO, profiles=["Relative"]) if u.blocked}
    assert len(last.targets) == 14 and set(last.targets) <= blocked_now


def test_unblock_pupils_and_parents(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("bloque élèves et parents")
    director.press("Confirmer")
    seen = director.say("débloque tout le monde")
    assert seen.intent == "action.unblock"
    # Ana Ferreira was blocked on her own before: the director chooses.
    director.press("Tout débloquer")
    assert not any(
        u.blocked for u in store.directory.users(DEMO, profiles=["Relative", "Student"])
    )


def test_block_without_profile_asks_which_accounts(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("/bloquer")
    assert "Quels comptes" in seen.text
    assert "Élèves" in seen.buttons
    chosen = director.press("Élèves")
    assert chosen.buttons == ["Confirmer", "Annuler"]
    director.press("Confirmer")
    assert all(u.blocked for u in store.directory.users(DEMO, profiles=["Student"]))


# -- attach ----------------------------------------------------------------------------------
def test_attach_teacher_to_class(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("rattache Thomas Petit au CE2")
    assert "Thomas Petit" in seen.text and "CE2" in seen.text
    director.press("Confirmer")
    assert "cls-ce2" in _user(store, "usr-t09").classes


def test_attach_refused_while_the_class_has_no_pupil(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("rattache M. Petit à la classe ULIS")
    assert "aucun élève" in seen.text
    assert "Confirmer" not in seen.buttons
    assert "cls-ulis" not in _user(store, "usr-t09").classes
    assert store.audit.entries()[-1].outcome == "refused"


def test_two_leroy_the_assistant_asks_which_one(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("rattache Mme Leroy au CE2")
    assert "Plusieurs" in seen.text
    assert any("Nathalie Leroy" in b for b in seen.buttons)
    assert any("Julien Leroy" in b for b in seen.buttons)
    label = next(b for b in seen.buttons if "Nathalie" in b)
    chosen = director.press(label)
    assert "Nathalie Leroy" in chosen.text and "Confirmer" in chosen.buttons
    director.press("Confirmer")
    assert "cls-ce2" in _user(store, "usr-t02").classes
    assert "cls-ce2" not in _user(store, "usr-t03").classes


def test_missing_class_is_asked_then_answered_in_the_next_message(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("rattache Thomas Petit")
    assert "quelle classe" in fold(seen.text)
    follow = director.say("le CM1")
    assert "Confirmer" in follow.buttons and "CM1" in follow.text
    director.press("Confirmer")
    assert "cls-cm1" in _user(store, "usr-t09").classes


def test_a_form_can_be_cancelled(talk) -> None:
    director = talk(DIRECTOR)
    director.say("rattache Thomas Petit")
    seen = director.say("annule")
    assert "abandonne" in seen.text
    follow = director.say("le CM1")
    assert "Confirmer" not in follow.buttons


def test_unknown_teacher_gets_the_closest_names(talk) -> None:
    director = talk(DIRECTOR)
    seen = director.say("détache Mme Lemairre")
    assert "Émilie Lemaire" in seen.text or "Émilie Lemaire" in " ".join(seen.buttons)


def test_a_word_after_madame_is_a_last_name_not_a_first_name(talk) -> None:
    director = talk(DIRECTOR)
    seen = director.say("rattache Mme Olivier au CM1")
    # Olivier Caron may be suggested, but never put up for confirmation as if named.
    assert "Confirmer" not in seen.buttons
    named = director.say("rattache Olivier au CM1")
    assert "Olivier Caron" in named.text and "Confirmer" in named.buttons


def test_teacher_named_with_a_typo_and_no_accent(talk) -> None:
    director = talk(DIRECTOR)
    seen = director.say("rattache marie helene vasseur lambert aux ms-gs")
    assert "Marie-Hélène Vasseur-Lambert" in seen.text and "MS-GS" in seen.text


# -- detach ----------------------------------------------------------------------------------
def test_detach_a_teacher_whose_home_school_is_elsewhere(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("détache Hugo Lambert, il est reparti à Pasteur")
    assert seen.buttons == ["Confirmer", "Annuler"]
    director.press("Confirmer")
    assert DEMO not in _user(store, "usr-t11").structures


def test_detach_refused_for_a_teacher_of_this_home_school(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("détache M. Petit")
    assert "école de rattachement" in seen.text
    assert "Confirmer" not in seen.buttons
    assert DEMO in _user(store, "usr-t09").structures


# -- groups ----------------------------------------------------------------------------------
def test_delete_an_old_manual_group(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("supprime le groupe APE 2021")
    assert "APE 2021-2022" in seen.text
    director.press("Confirmer")
    assert store.directory.group("grp-ape-2021") is None


@pytest.mark.parametrize("name", ["Resp-Affect-GAR", "resp affect gar", "RESP-AFFECT-GAR"])
def test_the_gar_group_is_never_deleted(talk, store, name: str) -> None:
    director = talk(DIRECTOR)
    seen = director.say(f"supprime le groupe {name}")
    assert "ne supprime pas" in seen.text
    assert store.directory.group("grp-gar") is not None


def test_automatic_groups_are_not_deleted(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("supprime le groupe Parents de l'école")
    assert "groupe automatique" in seen.text
    assert store.directory.group("grp-pg-relatives") is not None


# -- manual accounts -------------------------------------------------------------------------
def test_never_activated_manual_account_is_deleted(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("supprime le compte invité de Kévin Lagache")
    assert "jamais été activé" in seen.text
    done = director.press("Confirmer")
    assert "supprimé" in done.text
    assert _user(store, "usr-m02").deleted


def test_activated_manual_account_is_pre_deleted(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("supprime le compte de Martine Duhamel")
    done = director.press("Confirmer")
    assert "pré-supprimé" in done.text
    user = _user(store, "usr-m03")
    assert user.pre_deleted and not user.deleted


def test_an_account_fed_by_the_academie_is_not_removed(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("supprime le compte de Pauline Devos")
    assert "comptes manuels" in seen.text
    assert _user(store, "usr-p10").is_live


# -- GAR -------------------------------------------------------------------------------------
def test_every_teacher_becomes_gar_manager(talk, store) -> None:
    director = talk(DIRECTOR)
    seen = director.say("mets tous les profs dans Resp-Affect-GAR")
    assert seen.intent == "action.gar_managers"
    assert "lendemain" in seen.text
    director.press("Confirmer")
    teachers = {u.id for u in store.directory.users(DEMO, profiles=["Teacher"])}
    assert teachers <= set(store.directory.group("grp-gar").member_ids)


# -- confirmations ---------------------------------------------------------------------------
def test_cancel_changes_nothing(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("bloque les parents")
    seen = director.press("Annuler")
    assert "rien n'a été modifié" in seen.text
    assert not all(_relatives_blocked(store))
    assert store.audit.entries()[-1].outcome == "cancelled"


def test_confirmation_expires_after_ten_minutes(talk, store, clock) -> None:
    director = talk(DIRECTOR)
    director.say("bloque les parents")
    confirm = director.button_id("Confirmer")
    clock.advance(minutes=11)
    seen = director.press_id(confirm)
    assert "expiré" in seen.text
    assert not all(_relatives_blocked(store))
    assert store.audit.entries()[-1].outcome == "expired"


def test_pressing_twice_executes_once(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("supprime le groupe chorale")
    confirm = director.button_id("Confirmer")
    director.press_id(confirm)
    again = director.press_id(confirm)
    assert "plus en attente" in again.text
    done = [e for e in store.audit.entries() if e.outcome == "done"]
    assert len(done) == 1


def test_another_user_cannot_press_the_confirm_button(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("bloque les parents")
    confirm = director.button_id("Confirmer")
    intruder = talk(OTHER_DIRECTOR)
    seen = intruder.press_id(confirm)
    assert "quelqu'un d'autre" in seen.text
    assert not all(_relatives_blocked(store))


def test_a_failure_in_the_middle_leaves_the_directory_unchanged(talk, store, monkeypatch) -> None:
    before = export_school(store)
    director = talk(DIRECTOR)
    director.say("mets tous les profs dans Resp-Affect-GAR")
    original = store.directory.add_group_members

    def add_then_fail(group_id, user_ids):  # type: ignore[no-untyped-def]
        original(group_id, list(user_ids)[:2])
        raise RuntimeError("disk full")

    monkeypatch.setattr(
        type(store.directory), "add_group_members", lambda self, g, u: add_then_fail(g, u)
    )
    seen = director.press("Confirmer")
    assert "rien n'a été modifié" in seen.text
    assert export_school(store) == before
    assert store.audit.entries()[-1].outcome == "failed"


# -- rights ----------------------------------------------------------------------------------
@pytest.mark.parametrize("login", [None, PARENT])
def test_public_and_parents_get_the_how_to_and_no_school_detail(talk, store, login) -> None:
    before = _relatives_blocked(store)
    someone = talk(login)
    seen = someone.say("bloque les parents")
    assert "Confirmer" not in seen.buttons
    assert "Blocage en lot" in seen.text
    assert "/connexion" in seen.text
    assert "Jean Jaurès" not in seen.text
    assert _relatives_blocked(store) == before


def test_public_asking_about_a_name_learns_nothing(talk) -> None:
    seen = talk(None).say("détache Hugo Lambert")
    assert "Hugo" not in seen.text and "Lambert" not in seen.text


def test_erun_reads_but_does_not_change(talk) -> None:
    erun = talk(ERUN)
    seen = erun.say("bloque les parents")
    assert "eRun" in seen.text and "Confirmer" not in seen.buttons
    report = erun.say("où en est l'école Jean Jaurès pour la rentrée ?")
    assert report.intent == "query.checklist"
    assert "Thomas Petit" in report.text
    assert not any(b.startswith("Rattacher") for b in report.buttons)


def test_director_of_another_school_cannot_touch_this_one(talk, store) -> None:
    other = talk(OTHER_DIRECTOR)
    seen = other.say("détache Thomas Petit")
    assert "Confirmer" not in seen.buttons
    assert "Thomas Petit" not in seen.text
    assert DEMO in _user(store, "usr-t09").structures


def test_rights_are_checked_again_at_execution(talk, store) -> None:
    code = store.accounts.invite(DIRECTOR)
    linked = talk(None, key="tg:42")
    linked.say(f"/connexion {code}")
    linked.say("bloque les parents")
    confirm = linked.button_id("Confirmer")
    store.accounts.revoke(DIRECTOR)
    seen = linked.press_id(confirm)
    assert "plus les droits" in seen.text
    assert not all(_relatives_blocked(store))


def test_no_change_from_a_group_chat(talk) -> None:
    director = talk(DIRECTOR, private=False)
    seen = director.say("bloque les parents")
    assert "message privé" in seen.text
    assert "Confirmer" not in seen.buttons


# -- queries ---------------------------------------------------------------------------------
def test_checklist_lists_what_remains_with_the_fixing_actions(talk) -> None:
    seen = talk(DIRECTOR).say("qu'est-ce qu'il me reste à faire pour la rentrée ?")
    assert seen.intent == "query.checklist"
    for fact in (
        "Thomas Petit",
        "Hugo Lambert",
        "APE 2021-2022",
        "Kévin Lagache",
        "Resp-Affect-GAR",
        # Blocked accounts are counted, not named (Ana Ferreira is the blocked parent).
        "Comptes bloqués : 1 parent",
    ):
        assert fact in seen.text
    assert "Rattacher un enseignant" in seen.buttons


def test_teachers_without_class(talk) -> None:
    seen = talk(DIRECTOR).say("quels enseignants n'ont pas de classe ?")
    assert seen.intent == "query.teachers_without_class"
    assert "Thomas Petit" in seen.text
    assert "Claire Martin" not in seen.text
    assert "Bernard Vanacker" not in seen.text, "a pre-deleted teacher is no longer listed"


def test_manual_accounts_and_groups(talk) -> None:
    director = talk(DIRECTOR)
    accounts = director.say("liste les comptes manuels")
    assert accounts.intent == "query.manual_accounts"
    assert "Kévin Lagache" in accounts.text and "jamais activé" in accounts.text
    groups = director.say("quels groupes a l'école ?")
    assert groups.intent == "query.groups"
    assert "APE 2021-2022" in groups.text and "Parents de l'école" in groups.text


def test_how_to_offers_the_action_to_a_linked_director(talk) -> None:
    director = talk(DIRECTOR)
    seen = director.say("comment on bloque les comptes parents et eleves ?")
    assert seen.intent == "howto.block_accounts"
    assert "Je peux le faire pour vous" in seen.buttons
    # The offer does what the question spoke of: both kinds of accounts, blocked.
    offered = director.press("Je peux le faire pour vous")
    assert "Je vais bloquer" in offered.text
    assert "parents" in offered.text and "élèves" in offered.text
    assert offered.buttons == ["Confirmer", "Annuler"]


def test_a_how_to_question_about_unblocking_offers_to_unblock(talk) -> None:
    director = talk(DIRECTOR)
    seen = director.say("comment débloquer les parents ?")
    assert seen.intent == "howto.block_accounts"
    offered = director.press("Je peux le faire pour vous")
    assert offered.intent == "action.unblock"
    assert "Je vais débloquer" in offered.text


def test_a_question_with_il_faut_or_je_dois_is_not_an_order(talk) -> None:
    director = talk(DIRECTOR)
    for question in ("il faut bloquer les parents ?", "je dois supprimer le groupe chorale ?"):
        seen = director.say(question)
        assert seen.intent.startswith("howto."), question
        assert "Confirmer" not in seen.buttons
        assert "Je peux le faire pour vous" in seen.buttons
    offered = director.press("Je peux le faire pour vous")
    assert "Chorale 2025-2026" in offered.text


# -- linking ---------------------------------------------------------------------------------
def test_link_with_a_one_time_code_then_unlink(talk, store) -> None:
    code = store.accounts.invite(DIRECTOR)
    phone = talk(None, key="tg:1001")
    seen = phone.say(f"/connexion {code}")
    assert "Bienvenue Claire Martin" in seen.text
    assert seen.outcome.menu == "director"
    assert "Confirmer" in phone.say("bloque les parents").buttons
    again = talk(None, key="tg:2002").say(f"/connexion {code}")
    assert "Bienvenue" not in again.text
    out = phone.say("/deconnexion")
    assert out.outcome.menu == "public"
    assert "Confirmer" not in phone.say("bloque les parents").buttons


def test_wrong_codes_are_limited(talk) -> None:
    phone = talk(None, key="tg:3003")
    answers = [phone.say("/connexion ZZZZZZZZ").text for _ in range(6)]
    assert "Bienvenue" not in " ".join(answers)
    assert answers[-1] != answers[0]


def test_erun_following_several_schools_is_asked_which_one(talk) -> None:
    erun = talk(ERUN)
    seen = erun.say("quels groupes a l'école ?")
    assert "Pour quelle école" in seen.text
    assert "École maternelle Pasteur" in seen.buttons
    chosen = erun.press("École maternelle Pasteur")
    assert "Pasteur" in chosen.text and "Resp-Affect-GAR" in chosen.text
    named = erun.say("fais le point de rentrée pour l'école Jean Jaurès")
    assert named.intent == "query.checklist" and "Jean Jaurès" in named.text


def test_deep_links_open_on_their_topic(talk) -> None:
    public = talk(None)
    assert public.say("/start educonnect").intent == "educonnect.activate"
    assert public.say("/start data_free_space").intent == "data.free_space"
    assert public.say("/start").intent == "dialogue.greet"
    assert public.say("/start n_importe_quoi").intent == "dialogue.greet"


def test_help_lists_the_director_actions_from_the_handlers(talk) -> None:
    director_help = talk(DIRECTOR).say("/aide")
    assert "Rattache un enseignant" in director_help.text
    public_help = talk(None).say("/aide")
    assert "Rattache un enseignant" not in public_help.text
    assert "EduConnect" in public_help.text
