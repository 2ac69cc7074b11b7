"""« Annuler cette action »: a detach, a pre-deletion or an attach undone within 10 minutes,
as far as the ENT gives it back, through the real core; refused late or without the rights,
run once, pressed only by its owner; and the directory's failures told as they are."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import DEMO_SCHOOL
from bot.core.assistant import Assistant
from bot.core.session import Session
from bot.entcore.backend import EntServices, SpeakerDirectory
from bot.settings import Settings
from bot.storage.schoolfile import import_school
from bot.storage.store import Store
from bot.storage.tables import UserRow
from intents.domain import Directory, DirectoryFailure, User
from tests.fake_entcore.seed import CE2, CLAIRE, JAURES, PASTEUR
from tests.fake_entcore.support import RunningEnt, running_ent
from tests.support import DEMO, DIRECTOR, PARENT, Clock, Conversation, shared_kb_and_matcher

UNDO = "Annuler cette action"
DETACH = "détache Hugo Lambert, il est reparti à Pasteur"
HUGO = "usr-t11"


def _user(store: Store, user_id: str) -> User:
    user = store.directory.user(user_id)
    assert user is not None
    return user


def _undo_entries(store: Store) -> list[tuple[str, str]]:
    return [(e.action, e.outcome) for e in store.audit.entries() if e.action.startswith("undo.")]


def _detached(talk: Any) -> Conversation:
    director: Conversation = talk(DIRECTOR)
    director.say(DETACH)
    done = director.press("Confirmer")
    assert "C'est fait" in done.text and UNDO in done.buttons
    return director


# -- each undoable change, given back as the ENT gives it back -------------------------------
def test_a_detach_undone_gives_back_the_school_not_the_classes(talk, store) -> None:
    before = _user(store, HUGO)
    assert "cls-cm2" in before.classes
    director = _detached(talk)
    assert DEMO not in _user(store, HUGO).structures
    undone = director.press(UNDO)
    assert "C'est annulé" in undone.text and "classes" in undone.text
    assert undone.outcome.replies[0].edits_pressed and undone.buttons == []
    after = _user(store, HUGO)
    assert DEMO in after.structures and after.home_structure == before.home_structure
    # entcore's link gives back the school (and so its profile group), not the classes.
    assert "cls-cm2" not in after.classes
    assert HUGO in store.directory.group("grp-pg-teachers").member_ids
    last = store.audit.entries()[-1]
    assert (last.action, last.outcome, last.targets) == (
        "undo.action.detach_teacher",
        "done",
        (HUGO,),
    )
    assert last.who == director.key and last.structure_id == DEMO


def test_an_attach_undone_takes_the_teacher_out_of_the_class(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("rattache Thomas Petit au CE2")
    done = director.press("Confirmer")
    assert "cls-ce2" in _user(store, "usr-t09").classes and UNDO in done.buttons
    undone = director.press(UNDO)
    assert "n'est plus celle de Thomas Petit" in undone.text
    user = _user(store, "usr-t09")
    assert "cls-ce2" not in user.classes and DEMO in user.structures
    assert _undo_entries(store) == [("undo.action.attach_teacher", "done")]


def test_a_pre_deletion_undone_restores_the_account(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("supprime le compte de Martine Duhamel")
    done = director.press("Confirmer")
    assert _user(store, "usr-m03").pre_deleted and UNDO in done.buttons
    undone = director.press(UNDO)
    assert "n'est plus en pré-suppression" in undone.text
    user = _user(store, "usr-m03")
    assert user.is_live and user.pre_deleted is None
    assert _undo_entries(store) == [("undo.action.remove_manual_account", "done")]


def test_a_deletion_for_good_offers_no_undo(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("supprime le compte invité de Kévin Lagache")
    done = director.press("Confirmer")
    assert _user(store, "usr-m02").deleted
    assert UNDO not in done.buttons and "Annuler" not in done.text


def test_changes_without_an_undo_offer_none(talk) -> None:
    director = talk(DIRECTOR)
    director.say("supprime le groupe APE 2021")
    assert UNDO not in director.press("Confirmer").buttons
    director.say("bloque les parents")
    assert UNDO not in director.press("Confirmer").buttons


def test_restoring_an_account_deleted_for_good_is_refused(store) -> None:
    store.directory.remove_manual_account("usr-m02", DEMO_DAY)
    with pytest.raises(DirectoryFailure) as refused:
        store.directory.restore_user("usr-m02")
    assert "définitivement" in refused.value.message
    assert _user(store, "usr-m02").deleted


# -- refused, once, by its owner only ----------------------------------------------------------
def test_after_eleven_minutes_the_undo_is_refused(talk, store, clock) -> None:
    director = _detached(talk)
    undo = director.button_id(UNDO)
    clock.advance(minutes=11)
    seen = director.press_id(undo)
    assert "trop tard" in seen.text and "rien n'a été modifié" in seen.text
    assert DEMO not in _user(store, HUGO).structures
    assert _undo_entries(store) == [("undo.action.detach_teacher", "refused")]


def test_within_ten_minutes_the_undo_still_works(talk, store, clock) -> None:
    director = _detached(talk)
    clock.advance(minutes=9)
    assert "C'est annulé" in director.press(UNDO).text
    assert DEMO in _user(store, HUGO).structures


def test_pressed_twice_the_undo_runs_once(talk, store) -> None:
    director = _detached(talk)
    undo = director.button_id(UNDO)
    director.press_id(undo)
    again = director.press_id(undo)
    assert "plus valide" in again.text
    assert _undo_entries(store) == [("undo.action.detach_teacher", "done")]


def test_two_presses_at_once_undo_once(database_url, clock, monkeypatch) -> None:
    """A second process presses while the first is between its read and its claim: the
    first's conditional write fails, and its retry finds the button gone."""
    store = Store.from_url(database_url)
    try:
        store.upgrade()
        import_school(store, DEMO_SCHOOL)
        kb, matcher = shared_kb_and_matcher()
        assistant = Assistant(Settings(), store, kb, matcher, clock=clock)
        director = Conversation(assistant, DIRECTOR)
        director.say(DETACH)
        director.press("Confirmer")
        undo = director.button_id(UNDO)
        other = Conversation(assistant, DIRECTOR)
        answers: list[str] = []
        original = Session.save_state
        raced = threading.Event()

        def racing(self: Session, *, last: bool = False) -> None:
            if (self.intent or "").startswith("undo.") and not raced.is_set():
                raced.set()
                thread = threading.Thread(target=lambda: answers.append(other.press_id(undo).text))
                thread.start()
                thread.join()
            original(self, last=last)

        monkeypatch.setattr(Session, "save_state", racing)
        first = director.press_id(undo)
        assert raced.is_set() and len(answers) == 1
        texts = [first.text, answers[0]]
        assert sum("C'est annulé" in t for t in texts) == 1
        assert sum("plus valide" in t for t in texts) == 1
        assert _undo_entries(store) == [("undo.action.detach_teacher", "done")]
        assert DEMO in _user(store, HUGO).structures
    finally:
        store.dispose()


def test_a_director_who_lost_the_rights_cannot_undo(talk, store) -> None:
    code = store.accounts.invite(DIRECTOR)
    linked = talk(None, key="tg:42")
    linked.say(f"/connexion {code}")
    linked.say(DETACH)
    linked.press("Confirmer")
    undo = linked.button_id(UNDO)
    store.accounts.revoke(DIRECTOR)
    seen = linked.press_id(undo)
    assert "plus les droits" in seen.text
    assert DEMO not in _user(store, HUGO).structures
    assert _undo_entries(store) == [("undo.action.detach_teacher", "refused")]


def test_a_parent_cannot_press_the_directors_undo(talk, store) -> None:
    director = _detached(talk)
    undo = director.button_id(UNDO)
    seen = talk(PARENT).press_id(undo)
    assert "quelqu'un d'autre" in seen.text
    assert DEMO not in _user(store, HUGO).structures
    assert _undo_entries(store) == []
    # The director's own button still works.
    assert "C'est annulé" in director.press_id(undo).text


# -- the directory's failures, told as they are ------------------------------------------------
ENT_SAYS = "L'ENT a refusé la demande (accès interdit) : votre compte n'a pas ce droit."


def _failing(*args: object) -> None:
    raise DirectoryFailure(ENT_SAYS)


def test_a_failed_undo_is_audited_and_told(talk, store, monkeypatch) -> None:
    director = _detached(talk)
    monkeypatch.setattr(type(store.directory), "reattach_to_structure", _failing)
    seen = director.press(UNDO)
    assert "n'a pas abouti" in seen.text and ENT_SAYS in seen.text
    assert "rien n'a été modifié" not in seen.text
    last = store.audit.entries()[-1]
    assert (last.action, last.outcome, last.detail) == (
        "undo.action.detach_teacher",
        "failed",
        ENT_SAYS,
    )


def test_accounts_given_back_before_a_failure_are_said(talk, store, monkeypatch) -> None:
    director = talk(DIRECTOR)
    director.say("supprime les comptes de Nadine Dewitte et Martine Duhamel")
    done = director.press("Confirmer")
    assert _user(store, "usr-m01").pre_deleted and _user(store, "usr-m03").pre_deleted
    assert "Nadine Dewitte, Martine Duhamel" in done.text
    original = type(store.directory).restore_user

    def refuse_martine(self: Any, user_id: str) -> None:
        if user_id == "usr-m03":
            raise DirectoryFailure(ENT_SAYS)
        original(self, user_id)

    monkeypatch.setattr(type(store.directory), "restore_user", refuse_martine)
    seen = director.press(UNDO)
    assert "Annulation faite pour Nadine Dewitte, mais pas pour la suite" in seen.text
    assert ENT_SAYS in seen.text
    assert _user(store, "usr-m01").is_live and _user(store, "usr-m03").pre_deleted
    assert _undo_entries(store) == [("undo.action.remove_manual_account", "failed")]


def test_an_account_deleted_for_good_meanwhile_is_not_restored(talk, store) -> None:
    director = talk(DIRECTOR)
    director.say("supprime le compte de Martine Duhamel")
    director.press("Confirmer")
    # Deleted for good in the ENT meanwhile (its purge of pre-deleted accounts).
    with store.session() as session:
        row = session.get(UserRow, "usr-m03")
        assert row is not None
        row.deleted = DEMO_DAY.isoformat()
    seen = director.press(UNDO)
    assert "définitivement" in seen.text
    assert _user(store, "usr-m03").deleted
    assert _undo_entries(store) == [("undo.action.remove_manual_account", "failed")]


def test_a_directory_failure_at_confirmation_is_told_not_hidden(talk, store, monkeypatch) -> None:
    director = talk(DIRECTOR)
    director.say(DETACH)
    monkeypatch.setattr(type(store.directory), "detach_teacher_from_structure", _failing)
    seen = director.press("Confirmer")
    assert "n'a pas abouti" in seen.text and ENT_SAYS in seen.text
    # On the ENT nothing is rolled back: « rien n'a été modifié » would be a guess.
    assert "rien n'a été modifié" not in seen.text and UNDO not in seen.buttons
    last = store.audit.entries()[-1]
    assert (last.action, last.outcome, last.detail) == (
        "action.detach_teacher",
        "failed",
        ENT_SAYS,
    )


# -- the same undo on the ENT (fake entcore, real HTTP client) ---------------------------------
@pytest.fixture
def ent() -> Iterator[RunningEnt]:
    with running_ent() as running:
        yield running


def test_the_ent_directory_undoes_a_detach_end_to_end(
    store: Store, ent: RunningEnt, clock: Clock
) -> None:
    # EntcoreDirectory is a Directory, undo operations included (checked by mypy).
    claire: Directory = ent.directory(CLAIRE)
    assert claire.user("u-parti") is not None
    services = EntServices(store, SpeakerDirectory(ent.client, lambda key: CLAIRE, 0))
    kb, matcher = shared_kb_and_matcher()
    assistant = Assistant(Settings(), services, kb, matcher, clock=clock)
    director = Conversation(assistant, DIRECTOR, key="console:claire.martin")
    seen = director.say("détache Anne Dupont")
    assert "Confirmer" in seen.buttons, seen.text
    done = director.press("Confirmer")
    assert ent.state.users["u-parti"].structures == [PASTEUR] and UNDO in done.buttons
    undone = director.press(UNDO)
    assert "C'est annulé" in undone.text, undone.text
    assert JAURES in ent.state.users["u-parti"].structures
    # entcore's link gives back the school only: the class stays lost.
    assert CE2 not in ent.state.users["u-parti"].classes
    assert [
        c.path for c in ent.fake.calls_to("PUT /directory/structure/{structureId}/link/{userId}")
    ] == [f"/directory/structure/{JAURES}/link/u-parti"]
    assert _undo_entries(store) == [("undo.action.detach_teacher", "done")]


DEMO_DAY = Clock().now.date()
